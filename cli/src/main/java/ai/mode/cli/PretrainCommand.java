// `mode pretrain`: trains the tokenizer (if absent) and a Llama base model on a corpus, with checkpoints,
// metrics, a loss plot and the unigram baseline for comparison.
package ai.mode.cli;

import ai.mode.model.LlamaConfig;
import ai.mode.model.data.Corpus;
import ai.mode.model.data.Split;
import ai.mode.model.data.TokenCache;
import ai.mode.model.io.HfConfig;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.BpeTrainer;
import ai.mode.model.train.Pretraining;
import ai.mode.runtime.Backend;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "pretrain",
        mixinStandardHelpOptions = true,
        description = {
            "Pretrain a Llama-style base model (and its BPE tokenizer, if absent) on a corpus.",
            "Writes OUT/tokenizer.json, OUT/checkpoints/step-N/ (Hugging Face config.json + model.safetensors),",
            "OUT/metrics.jsonl, OUT/loss.png and OUT/summary.json."
        })
public final class PretrainCommand implements Callable<Integer> {
    /** Default optimizer steps of the embedded base model (about 590 s of CPU time on 2 cores; docs/training.md). */
    public static final int DEFAULT_STEPS = 600;

    @Option(names = "--out", defaultValue = "runs/base", description = "Run folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(
            names = "--corpus",
            defaultValue = "english",
            description =
                    "Built-in corpus name or a path to your own (folder of text files or .jsonl); default: ${DEFAULT-VALUE}.")
    String corpus;

    @Option(
            names = "--vocab",
            defaultValue = "4096",
            description = "Tokenizer vocabulary size when training one (default: ${DEFAULT-VALUE}).")
    int vocab;

    @Option(names = "--tokenizer", description = "Use this tokenizer.json instead of training one.")
    Path tokenizer;

    @Option(
            names = "--config",
            description =
                    "Model shape: a config.json file, or overrides like hidden_size=256,num_hidden_layers=4 (HF names).")
    String config;

    @Mixin
    TrainingOptions training = TrainingOptions.withSteps(DEFAULT_STEPS);

    @Mixin
    ResumeOptions resume;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws IOException {
        OutputGuard.folder(out, "pretrain", common.force || resume.resume, ModeCliSupport.existing(corpus, tokenizer));
        try (Backend be = common.openBackend()) {
            Pretraining.Result r =
                    run(be, out, corpus, vocab, tokenizer, config, training, resume, common, System.out, System.err);
            printSummary(r, System.out);
        }
        return 0;
    }

    /** Tokenizer + data + pretraining; shared with {@code mode demo}. */
    static Pretraining.Result run(
            Backend be,
            Path out,
            String corpusName,
            int vocab,
            Path tokenizerFile,
            String configSpec,
            TrainingOptions t,
            ResumeOptions resume,
            CommonOptions common,
            PrintStream stdout,
            PrintStream err)
            throws IOException {
        if (configSpec != null && configSpec.contains("="))
            LlamaConfig.baseDefault(vocab).withOverrides(configSpec); // fail fast
        Files.createDirectories(out);
        Corpus corpus = Corpus.load(corpusName);
        Path tokPath = out.resolve("tokenizer.json");
        BpeTokenizer tok = ensureTokenizer(corpus, tokenizerFile, tokPath, vocab, common.quiet, err);
        long t0 = System.nanoTime();
        int[] train = TokenCache.tokens(corpus, Split.TRAIN, tok);
        int[] val = TokenCache.tokens(corpus, Split.VALIDATION, tok);
        if (!common.quiet) {
            err.printf(
                    "data: corpus '%s', %,d train / %,d validation tokens (%.1fs)%n",
                    corpus.name(), train.length, val.length, (System.nanoTime() - t0) / 1e9);
        }
        LlamaConfig cfg = modelConfig(configSpec, tok.vocabSize(), t.seq);
        Pretraining.Settings s = t.settings(out, cfg, common.seed, resume, common.force);
        if (!common.quiet) {
            err.printf(
                    "model: %,d parameters (d=%d, layers=%d, heads=%d/%d, ffn=%d, vocab=%d, tied=%b); %d steps x %d tokens%n",
                    cfg.parameterCount(),
                    cfg.hiddenSize(),
                    cfg.numLayers(),
                    cfg.numHeads(),
                    cfg.numKvHeads(),
                    cfg.intermediateSize(),
                    cfg.vocabSize(),
                    cfg.tieEmbeddings(),
                    s.steps(),
                    (long) s.batch() * s.seqLen() * s.accumulation());
        }
        try (ConsoleReporter reporter = new ConsoleReporter("pretrain", common.quiet, err)) {
            return Pretraining.run(be, s, train, val, tokPath, List.of(reporter));
        }
    }

    /** Loads the given or existing tokenizer, or trains one on the corpus' train split and saves it. */
    static BpeTokenizer ensureTokenizer(
            Corpus corpus, Path given, Path target, int vocab, boolean quiet, PrintStream err) throws IOException {
        if (given != null) {
            if (Files.isDirectory(given))
                throw new IllegalArgumentException("--tokenizer " + given + " is a folder; give the tokenizer.json file"
                        + (Files.isRegularFile(given.resolve("tokenizer.json"))
                                ? " in it: --tokenizer " + given.resolve("tokenizer.json")
                                : " itself"));
            if (!Files.isRegularFile(given))
                throw new IllegalArgumentException(
                        "--tokenizer " + given + " does not exist; give the path of a tokenizer.json file");
            BpeTokenizer tok = BpeTokenizer.load(given);
            if (!given.toAbsolutePath().equals(target.toAbsolutePath())) tok.save(target);
            return tok;
        }
        if (Files.exists(target)) return BpeTokenizer.load(target);
        long t0 = System.nanoTime();
        BpeTokenizer tok = BpeTrainer.train(corpus.utf8(Split.TRAIN), vocab);
        tok.save(target);
        if (tok.vocabSize() < vocab) // not silently: the model gets the smaller vocabulary
        err.printf(
                    "WARNING: --vocab %d asks for more ids than corpus '%s' gives: the tokenizer has %d (every pair"
                            + " that occurs was merged); the model's vocab_size is %d%n",
                    vocab, corpus.name(), tok.vocabSize(), tok.vocabSize());
        if (!quiet)
            err.printf(
                    "tokenizer: trained %d-token byte-level BPE on '%s' in %.1fs -> %s%n",
                    tok.vocabSize(), corpus.name(), (System.nanoTime() - t0) / 1e9, target);
        return tok;
    }

    /** The default shape for this vocabulary, or a config.json file, or key=value overrides of the default. */
    static LlamaConfig modelConfig(String spec, int vocab, int seq) throws IOException {
        LlamaConfig base = LlamaConfig.baseDefault(vocab);
        if (spec != null && !spec.isBlank() && !spec.contains("=")) {
            Path file = Path.of(spec);
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException(
                        "--config " + spec + ": no such file (give a config.json or key=value overrides)");
            }
            base = HfConfig.read(file).model();
            if (base.vocabSize() != vocab) {
                throw new IllegalArgumentException(
                        "--config " + spec + " has vocab_size " + base.vocabSize() + " but the tokenizer has " + vocab);
            }
            return base;
        }
        LlamaConfig cfg = base.withOverrides(spec);
        if (cfg.vocabSize() != vocab) {
            throw new IllegalArgumentException("vocab_size override " + cfg.vocabSize()
                    + " differs from the tokenizer's " + vocab + "; set --vocab instead");
        }
        if (seq > cfg.maxSeqLen()) cfg = cfg.withOverrides("max_position_embeddings=" + seq);
        return cfg;
    }

    static void printSummary(Pretraining.Result r, PrintStream out) {
        if (r.alreadyDone()) out.printf("already trained to step %d (%s); re-evaluated%n", r.steps(), r.checkpoint());
        out.printf("%-26s %10s %10s %9s%n", "", "val loss", "val ppl", "val acc");
        out.printf(
                "%-26s %10.4f %10.2f %8.2f%%%n",
                "model (step " + r.steps() + ")",
                r.validation().meanLoss(),
                Math.exp(r.validation().meanLoss()),
                100 * r.validation().accuracy());
        out.printf(
                "%-26s %10.4f %10.2f %8.2f%%%n",
                "unigram baseline",
                r.unigram().meanLoss(),
                Math.exp(r.unigram().meanLoss()),
                100 * r.unigram().accuracy());
        if (!r.alreadyDone()) {
            out.printf(
                    "trained %,d parameters for %.1f s (%.0f tokens/s, %.0f s of process CPU time); checkpoint %s%n",
                    r.parameters(), r.seconds(), r.tokensPerSecond(), r.cpuSeconds(), r.checkpoint());
        }
    }
}
