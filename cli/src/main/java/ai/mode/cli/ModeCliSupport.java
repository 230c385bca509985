// Shared plumbing of the MoDE commands: backbone and tokenizer from a checkpoint, domain data, expert-file
// lookup, progress printing and the per-domain score table.
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExperimentReport;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeExperiment;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.RouterStatistics;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.LossStats;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;

final class ModeCliSupport {
    /** The retention corpus evaluated beside the target domains. */
    static final String RETENTION = "english-retention";

    private ModeCliSupport() {}

    /**
     * The inputs among {@code args} that name files or folders (a corpus may also be a built-in name, an expert a
     * run name): what an output must not write over.
     */
    static List<Path> existing(Object... args) {
        List<Path> out = new ArrayList<>();
        for (Object a : args) {
            if (a instanceof Path p) { // before Iterable: a Path is an Iterable of its names
                if (Files.exists(p)) out.add(p);
            } else if (a instanceof Iterable<?> many) {
                for (Object x : many) out.addAll(existing(x));
            } else if (a != null && Files.exists(Path.of(a.toString()))) {
                out.add(Path.of(a.toString()));
            }
        }
        return out;
    }

    static BpeTokenizer tokenizer(Checkpoint c) throws IOException {
        Path f = c.dir().resolve(Checkpoint.TOKENIZER);
        if (!Files.isRegularFile(f))
            throw new IllegalArgumentException(
                    "checkpoint " + c.dir() + " has no tokenizer.json; MoDE training needs the backbone's tokenizer");
        return BpeTokenizer.load(f);
    }

    static List<DomainTokens> domains(List<String> names, BpeTokenizer tok) {
        List<DomainTokens> out = new ArrayList<>();
        for (String n : names) out.add(DomainTokens.load(n, tok));
        return out;
    }

    /** The evaluated domains: the given list, or the trained domains followed by the English retention books. */
    static List<String> evalDomains(List<String> requested, List<String> trained) {
        if (requested != null && !requested.isEmpty()) return requested;
        LinkedHashSet<String> s = new LinkedHashSet<>(trained);
        s.add(RETENTION);
        return List.copyOf(s);
    }

    /**
     * An expert file from a user argument: a file, a run folder holding experts.safetensors, or a bare name
     * meaning {@code runs/expert-<name>} (where {@code mode expert --domain <name>} writes by default).
     */
    static Path expertFile(String arg, Path runsDir) {
        Path p = Path.of(arg);
        if (Files.isRegularFile(p)) return p;
        if (Files.isDirectory(p) && Files.isRegularFile(p.resolve(ExpertFile.FILE_NAME)))
            return p.resolve(ExpertFile.FILE_NAME);
        Path named = runsDir.resolve("expert-" + arg).resolve(ExpertFile.FILE_NAME);
        if (!arg.contains("/") && Files.isRegularFile(named)) return named;
        throw new IllegalArgumentException("no expert file at '" + arg
                + "': pass an experts.safetensors, a run folder holding one, or a domain name with "
                + runsDir.resolve("expert-" + arg) + " written by 'mode expert --domain " + arg + "'");
    }

    /** Prints stage lines and gives each training run a progress display. */
    static ModeExperiment.Progress progress(boolean quiet, PrintStream out, PrintStream err) {
        return new ModeExperiment.Progress() {
            @Override
            public void stageStarted(String id, String description) {
                out.printf("-- %s: %s%n", id, description);
            }

            @Override
            public void stageFinished(String id, double seconds, String summary) {
                out.printf(Locale.ROOT, "   %s done in %.1f s; test: %s%n", id, seconds, summary);
            }

            @Override
            public List<Trainer.Listener> listeners(String runId, int steps) {
                return List.of(new ConsoleReporter(runId, quiet, err));
            }
        };
    }

    /** [0.812 0.094 0.094] */
    private static String fixed(double[] v) {
        StringBuilder b = new StringBuilder("[");
        for (int j = 0; j < v.length; j++) b.append(j == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.3f", v[j]));
        return b.append(']').toString();
    }

    /** Per-domain test scores, parameter counts and (MoDE) router statistics of one model. */
    static void printEvaluation(PrintStream out, ModeTraining.Evaluation e, ModeTraining.ParamCounts counts) {
        out.printf(
                Locale.ROOT,
                "parameters: total %s, trainable %s, added %s%n",
                ExperimentReport.compact(counts.total()),
                ExperimentReport.compact(counts.trainable()),
                ExperimentReport.compact(counts.added()));
        out.printf("%-20s %10s %10s%n", "test domain", "accuracy", "loss");
        double acc = 0, loss = 0;
        for (Map.Entry<String, LossStats> s : e.scores().entrySet()) {
            out.printf(
                    Locale.ROOT,
                    "%-20s %9.2f%% %10.4f%n",
                    s.getKey(),
                    100 * s.getValue().accuracy(),
                    s.getValue().meanLoss());
            acc += s.getValue().accuracy();
            loss += s.getValue().meanLoss();
        }
        int n = e.scores().size();
        out.printf(Locale.ROOT, "%-20s %9.2f%% %10.4f%n", "mean", 100 * acc / n, loss / n);
        for (Map.Entry<String, List<RouterStatistics.Summary>> g : e.router().entrySet()) {
            out.printf("router on %s (weights and load: backbone first):%n", g.getKey());
            for (int blk = 0; blk < g.getValue().size(); blk++) {
                RouterStatistics.Summary st = g.getValue().get(blk);
                StringBuilder b = new StringBuilder(String.format(
                        Locale.ROOT, "  block %d weights %s entropy %.3f", blk, fixed(st.meanWeight()), st.entropy()));
                if (st.load() != null)
                    b.append(" load ")
                            .append(fixed(st.load()))
                            .append(" over capacity ")
                            .append(st.overCapacity());
                out.println(b);
            }
        }
    }
}
