// `mode eval`: loss, perplexity and next-token accuracy of a checkpoint on corpus splits.
package ai.mode.cli;

import ai.mode.model.data.Split;
import ai.mode.model.io.AtomicFiles;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.CorpusEvaluation;
import ai.mode.model.train.MemoryEstimate;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import com.google.gson.GsonBuilder;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "eval",
        mixinStandardHelpOptions = true,
        description = "Report loss, perplexity and next-token accuracy of a checkpoint per corpus split.")
public final class EvalCommand implements Callable<Integer> {
    /** Corpora evaluated by default: the general corpus, the held-out retention books and the two target domains. */
    public static final List<String> DEFAULT_CORPORA = List.of("english", "english-retention", "code", "math");

    @Option(
            names = "--checkpoint",
            required = true,
            description = "Checkpoint directory, or a run folder (its latest checkpoint).")
    Path checkpoint;

    @Option(
            names = "--corpus",
            arity = "1..*",
            description = "Corpora (built-in names or paths); default: english english-retention code math.")
    List<String> corpora;

    @Option(
            names = "--split",
            arity = "1..*",
            defaultValue = "validation,test",
            split = ",",
            description = "Splits to evaluate (default: ${DEFAULT-VALUE}).")
    List<String> splits;

    @Option(names = "--seq", defaultValue = "0", description = "Tokens per window (default: 128, capped by the model).")
    int seq;

    @Option(names = "--batch", defaultValue = "16", description = "Windows per batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(
            names = "--max-windows",
            defaultValue = "128",
            description = "Windows per split, spread over it (0 = whole split; default: ${DEFAULT-VALUE}).")
    int maxWindows;

    @Option(names = "--json", description = "Also write the table as JSON to this file.")
    Path json;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws IOException {
        if (batch < 1) throw new IllegalArgumentException("--batch must be >= 1 (got " + batch + ")");
        if (maxWindows < 0)
            throw new IllegalArgumentException(
                    "--max-windows must be >= 0 (got " + maxWindows + "); 0 evaluates the whole split");
        if (seq < 0) throw new IllegalArgumentException("--seq must be >= 0 (got " + seq + "); 0 means 128");
        Checkpoint c = SavedModels.resolve(checkpoint);
        if (json != null) OutputGuard.file(json, "--json", common.force, ModeCliSupport.existing(c.dir(), corpora));
        Path tokFile = c.dir().resolve(Checkpoint.TOKENIZER);
        if (!Files.isRegularFile(tokFile)) {
            throw new IllegalArgumentException(
                    "checkpoint " + c.dir() + " has no tokenizer.json; evaluation needs the model's tokenizer");
        }
        BpeTokenizer tok = BpeTokenizer.load(tokFile);
        List<Split> sp = new ArrayList<>();
        for (String s : splits) sp.add(Split.parse(s));
        int t = seq > 0 ? seq : Math.min(128, c.config().maxSeqLen());
        if (t > c.config().maxSeqLen()) {
            throw new IllegalArgumentException("--seq " + t + " exceeds the model's max_position_embeddings "
                    + c.config().maxSeqLen());
        }
        MemoryEstimate.evaluation(c.config(), c.config().parameterCount(), batch, t)
                .require("evaluating " + c.dir());
        try (Backend be = common.openBackend();
                LlamaModel model = SavedModels.load(be, c)) {
            List<CorpusEvaluation.Row> rows = CorpusEvaluation.evaluate(
                    model, tok, corpora == null ? DEFAULT_CORPORA : corpora, sp, t, batch, maxWindows);
            System.out.println("checkpoint " + c.dir());
            printTable(rows, System.out);
            CorpusEvaluation.requireFiniteLoss(rows, c.dir());
            if (json != null) {
                AtomicFiles.writeString(
                        json,
                        new GsonBuilder().setPrettyPrinting().create().toJson(CorpusEvaluation.toJson(rows)) + "\n");
            }
        }
        return 0;
    }

    static void printTable(List<CorpusEvaluation.Row> rows, PrintStream out) {
        out.printf("%-20s %-11s %9s %9s %10s %9s%n", "corpus", "split", "tokens", "loss", "perplexity", "accuracy");
        for (CorpusEvaluation.Row r : rows) {
            out.printf(
                    "%-20s %-11s %9d %9.4f %10.2f %8.2f%%%n",
                    r.corpus(), r.split().label(), r.stats().count(), r.loss(), r.perplexity(), 100 * r.accuracy());
        }
    }
}
