// `mode generate`: text from a base checkpoint, an imported Llama checkpoint, a stage-1 expert or a composed MoDE
// model, streamed token by token, with greedy or seeded sampling and a key/value cache; prints tokens/s at the end.
package ai.mode.cli;

import ai.mode.model.generate.Generator;
import ai.mode.model.generate.Sampling;
import ai.mode.model.generate.TextStream;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.text.StrictUtf8;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.HfTokenizer;
import ai.mode.model.tokenizer.TokenizerFileException;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import com.google.gson.JsonElement;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.function.IntPredicate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = "Generate text from a checkpoint (base, imported Llama) or a MoDE model (--experts FILE),"
                + " streamed as it is produced; prompt from --prompt, --prompt-file or standard input.")
public final class GenerateCommand implements Callable<Integer> {
    @Option(
            names = "--checkpoint",
            required = true,
            description = "Checkpoint directory, run folder or Hugging Face Llama folder.")
    Path checkpoint;

    @Option(
            names = "--experts",
            description = "A MoDE model over the checkpoint: an expert file (stage 1 or composed), a run folder holding"
                    + " one, or a domain name (RUNS/expert-NAME).")
    String experts;

    @Option(
            names = "--runs",
            defaultValue = "runs",
            description = "Where bare expert names are looked up (default: ${DEFAULT-VALUE}).")
    Path runs;

    @Option(names = "--routing", description = "Routing to run with (default: the one stored in the expert file).")
    String routing;

    @Mixin
    ModeCliOptions.ExpertChoice choice;

    @Option(names = "--prompt", description = "The prompt text (default: --prompt-file, else standard input).")
    String prompt;

    @Option(names = "--prompt-file", description = "A UTF-8 file holding the prompt.")
    Path promptFile;

    @Option(
            names = "--max-tokens",
            defaultValue = "200",
            description = "New tokens at most (default: ${DEFAULT-VALUE}; fewer at the end of the context).")
    int maxTokens;

    @Option(
            names = "--temperature",
            defaultValue = "0",
            description = "0 = greedy (default), else the softmax temperature, e.g. 0.8.")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Sample from the k most probable tokens (0 = all).")
    int topK;

    @Option(
            names = "--top-p",
            defaultValue = "1",
            description = "Sample from the smallest set of tokens with this much probability, in (0, 1] (1 = all).")
    double topP;

    @Option(names = "--stop", description = "Stop when the text produces this string (it is not printed).")
    String stop;

    @Option(names = "--no-cache", description = "Recompute the whole sequence for every token (no key/value cache).")
    boolean noCache;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        Sampling sampling = new Sampling(temperature, topK, topP, common.seed);
        if (maxTokens < 0)
            throw new IllegalArgumentException("--max-tokens " + maxTokens + " is negative; give a count such as 200");
        if ((choice.given() || routing != null) && experts == null)
            throw new IllegalArgumentException("--keep, --without and --routing choose a MoDE model's experts; give its"
                    + " expert file with --experts");
        if (stop != null && stop.isEmpty())
            throw new IllegalArgumentException("--stop is empty; give the text that should end generation");
        String text = promptText();
        Checkpoint c = SavedModels.resolve(checkpoint);
        Codec codec = Codec.of(c);
        int[] ids = codec.encode.apply(text);
        Generator.checkPrompt(ids, c.config().maxSeqLen());
        ExpertFile f = experts == null ? null : ExpertFile.read(ModeCliSupport.expertFile(experts, runs));
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel mode = f == null
                        ? null
                        : Composer.load(base, f, routing == null ? f.config().routing() : Routing.parse(routing))) {
            if (mode != null && choice.given()) {
                List<String> chosen = choice.chosen(mode);
                if (chosen.isEmpty())
                    throw new IllegalArgumentException("the expert set is empty; keep at least one of "
                            + f.config().domains() + " (the backbone always stays; for the base model alone, leave"
                            + " out --experts)");
                mode.useExperts(chosen);
            }
            CausalLm model = mode != null ? mode : base;
            Generator gen = new Generator(model, !noCache && model.supportsCache());
            TextStream stream = new TextStream(codec.decode, ids, stop);
            System.out.print(stream.promptText());
            System.out.flush();
            Generator.Result r = gen.generate(ids, maxTokens, sampling, codec.endOfText, id -> {
                System.out.print(stream.add(id));
                System.out.flush();
                return !stream.stopped();
            });
            System.out.println(stream.finish());
            System.out.flush();
            String what = mode == null
                    ? c.dir().toString()
                    : "MoDE " + f.source() + " over " + c.dir() + ", experts " + mode.activeExperts();
            System.err.printf(
                    Locale.ROOT,
                    "generate: %s; %s on %s; prompt %d tokens at %.1f tokens/s; generated %d tokens at %.1f tokens/s"
                            + " (%s); stopped at %s%n",
                    what,
                    sampling,
                    be.name(),
                    r.promptTokens(),
                    r.promptTokensPerSecond(),
                    r.tokens().length,
                    r.decodeTokensPerSecond(),
                    r.cached() ? "key/value cache" : "no cache: the whole sequence per token",
                    stopReason(r.stop()));
        }
        return 0;
    }

    private static String stopReason(Generator.Stop s) {
        return switch (s) {
            case END_OF_TEXT -> "end of text";
            case MAX_TOKENS -> "--max-tokens";
            case CONTEXT -> "the end of the model's context";
            case LISTENER -> "--stop";
        };
    }

    private String promptText() throws IOException {
        if (prompt != null && promptFile != null)
            throw new IllegalArgumentException("--prompt and --prompt-file both given; use one of them");
        if (prompt != null) return prompt;
        byte[] bytes;
        String source;
        if (promptFile != null) {
            try {
                bytes = Files.readAllBytes(promptFile);
            } catch (NoSuchFileException e) {
                throw new IllegalArgumentException(
                        "--prompt-file " + promptFile + " does not exist; give a UTF-8 text file");
            }
            source = "--prompt-file " + promptFile;
        } else {
            InputStream in = System.in;
            bytes = in.readAllBytes();
            source = "standard input";
        }
        try {
            return StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            throw new IllegalArgumentException(
                    "the prompt from " + source + " is " + e.getMessage() + "; save it as UTF-8");
        }
    }

    /** The checkpoint's tokenizer as generation uses it: prompt ids, decoding, and which ids end the text. */
    record Codec(Function<String, int[]> encode, Function<int[], String> decode, IntPredicate endOfText) {
        static Codec of(Checkpoint c) throws IOException {
            Path file = c.dir().resolve(Checkpoint.TOKENIZER);
            if (!Files.isRegularFile(file))
                throw new IllegalArgumentException(
                        "checkpoint " + c.dir() + " has no tokenizer.json; generation needs the model's tokenizer");
            BpeTokenizer ours = null;
            try {
                ours = BpeTokenizer.load(file);
            } catch (TokenizerFileException e) {
                // not MoDE-J's own byte-level BPE: an imported model's tokenizer, read below
            }
            if (ours != null) {
                BpeTokenizer tok = ours;
                int eot = tok.endOfTextId();
                // Our corpora put the end-of-text token between documents, so a text starts after one.
                return new Codec(
                        s -> {
                            int[] body = tok.encode(s);
                            if (eot < 0) return body;
                            int[] ids = new int[body.length + 1];
                            ids[0] = eot;
                            System.arraycopy(body, 0, ids, 1, body.length);
                            return ids;
                        },
                        ids -> tok.decodeToString(withoutSpecial(ids, tok::isSpecial)),
                        id -> id == eot);
            }
            HfTokenizer tok = HfTokenizer.load(file);
            Set<Integer> eos = new HashSet<>();
            JsonElement e = c.hfConfig().extra().get("eos_token_id");
            if (e != null && e.isJsonPrimitive()) eos.add(e.getAsInt());
            else if (e != null && e.isJsonArray()) e.getAsJsonArray().forEach(x -> eos.add(x.getAsInt()));
            if (eos.isEmpty())
                for (String s : List.of("</s>", "<|end_of_text|>", "<|eot_id|>"))
                    tok.tokenId(s).ifPresent(eos::add);
            return new Codec(s -> tok.encode(s, true), ids -> tok.decode(ids, true), eos::contains);
        }

        private static int[] withoutSpecial(int[] ids, IntPredicate special) {
            return java.util.Arrays.stream(ids).filter(id -> !special.test(id)).toArray();
        }
    }
}
