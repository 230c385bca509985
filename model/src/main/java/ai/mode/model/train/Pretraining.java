package ai.mode.model.train;

import ai.mode.model.LlamaConfig;
import ai.mode.model.data.DataLoader;
import ai.mode.model.data.EvalBatches;
import ai.mode.model.io.AtomicFiles;
import ai.mode.model.io.StoreLock;
import ai.mode.model.nn.LlamaModel;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Pretraining of a Llama base model on tokenized text: the reusable core of {@code mode pretrain} and of the demo
 * (which the MoDE demo extends). Writes checkpoints, metrics.jsonl, loss.png and summary.json.
 *
 * <p>Run folder layout ({@code out}): {@code checkpoints/step-NNNNNNNN/} (HF config + model + tokenizer +
 * trainer state), {@code metrics.jsonl}, {@code loss.png}, {@code summary.json}.
 */
public final class Pretraining {
    private Pretraining() {}

    /** What to train and how. */
    public record Settings(
            Path out,
            LlamaConfig config,
            int steps,
            int batch,
            int seqLen,
            int accumulation,
            double lr,
            int warmupSteps,
            int evalEvery,
            int evalWindows,
            int checkpointEvery,
            int keepCheckpoints,
            long seed,
            boolean resume,
            Set<String> allowChanged,
            boolean force) {
        public Settings {
            allowChanged = Set.copyOf(allowChanged);
            if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1 (got " + steps + ")");
            if (!(lr > 0) || Double.isInfinite(lr))
                throw new IllegalArgumentException("--lr must be a positive number (got " + lr + ")");
            if (seqLen > config.maxSeqLen()) {
                throw new IllegalArgumentException(
                        "--seq " + seqLen + " exceeds max_position_embeddings " + config.maxSeqLen()
                                + " of the model config; raise it with --config max_position_embeddings=" + seqLen);
            }
        }

        public Path checkpointDir() {
            return out.resolve(SavedModels.CHECKPOINTS);
        }

        public Path metricsFile() {
            return out.resolve("metrics.jsonl");
        }

        public Path plotFile() {
            return out.resolve("loss.png");
        }

        public Path summaryFile() {
            return out.resolve("summary.json");
        }

        /**
         * What a resume of this run compares (docs/checkpoints.md): the warm-up as resolved (5% of {@code --steps}
         * unless given), so that raising {@code --steps} alone shows that it moves the warm-up too.
         */
        RunSettings runSettings(int[] trainTokens) {
            return new RunSettings()
                    .add("--steps", steps, RunSettings.OnChange.WARN)
                    .add("--batch", batch, RunSettings.OnChange.FIXED)
                    .add("--seq", seqLen, RunSettings.OnChange.FIXED)
                    .add("--accum", accumulation, RunSettings.OnChange.REFUSE)
                    .add("--lr", lr, RunSettings.OnChange.REFUSE)
                    .add("--warmup", Math.min(warmupSteps, steps), RunSettings.OnChange.REFUSE)
                    .add("--eval-every", evalEvery, RunSettings.OnChange.WARN)
                    .add("--eval-windows", evalWindows, RunSettings.OnChange.WARN)
                    .add(
                            "data",
                            RunSettings.dataFingerprint(Map.of("train split", trainTokens)),
                            RunSettings.OnChange.FIXED);
        }
    }

    /** Outcome of a run. */
    /**
     * @param seconds    wall time of the training loop (steps, validation, checkpoints)
     * @param cpuSeconds process CPU time over the same span (all threads), or NaN where the JVM cannot tell;
     *                   on a shared machine, cpuSeconds / cores estimates the wall time an idle machine needs
     */
    public record Result(
            int steps,
            double trainLoss,
            LossStats validation,
            LossStats unigram,
            double seconds,
            double cpuSeconds,
            double tokensPerSecond,
            long parameters,
            Path checkpoint,
            boolean resumed,
            boolean alreadyDone) {}

    /** Process CPU time in seconds (all threads), or NaN. */
    static double processCpuSeconds() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os) {
            long ns = os.getProcessCpuTime();
            return ns < 0 ? Double.NaN : ns / 1e9;
        }
        return Double.NaN;
    }

    /**
     * Trains (or resumes, or — if the run folder already holds a finished checkpoint with {@code resume} — just
     * re-evaluates) and writes the run folder.
     *
     * @param trainTokens   the training split, documents separated by an end-of-text token
     * @param valTokens     the validation split
     * @param tokenizerJson copied into every checkpoint
     * @param listeners     extra listeners (progress display)
     */
    public static Result run(
            Backend backend,
            Settings s,
            int[] trainTokens,
            int[] valTokens,
            Path tokenizerJson,
            List<Trainer.Listener> listeners)
            throws IOException {
        LlamaConfig c = s.config();
        MemoryEstimate.training(c, c.numLayers(), c.parameterCount(), c.parameterCount(), s.batch(), s.seqLen())
                .require("pretraining");
        Files.createDirectories(s.out());
        int warm = Math.min(s.warmupSteps(), s.steps());
        Trainer.Options opt = new Trainer.Options(
                s.steps(),
                s.batch(),
                s.seqLen(),
                s.accumulation(),
                new LrSchedule(s.lr(), warm, s.steps(), 0.1),
                AdamW.Config.defaults(),
                s.evalEvery(),
                s.checkpointEvery(),
                s.seed());
        List<int[]> valWindows =
                LoaderStream.windows(new EvalBatches(valTokens, s.batch(), s.seqLen(), s.evalWindows()));
        LossStats unigram = new UnigramBaseline(trainTokens, s.config().vocabSize()).evaluate(valWindows);
        ModelCheckpointing ckpt = new ModelCheckpointing(s.checkpointDir(), s.keepCheckpoints(), tokenizerJson);
        try (StoreLock lock = StoreLock.acquire(s.checkpointDir())) { // one writer per run folder
            RunFolder.requireNewOrResumed(s.out(), ckpt.store(), s.metricsFile(), s.resume(), s.force());
            return train(backend, s, trainTokens, listeners, opt, valWindows, unigram, ckpt);
        }
    }

    private static Result train(
            Backend backend,
            Settings s,
            int[] trainTokens,
            List<Trainer.Listener> listeners,
            Trainer.Options opt,
            List<int[]> valWindows,
            LossStats unigram,
            ModelCheckpointing ckpt)
            throws IOException {
        List<Trainer.Listener> all = new ArrayList<>();
        try (LlamaModel model = LlamaModel.create(backend, s.config()).initialize(s.seed());
                MetricsLog metrics = new MetricsLog(s.metricsFile())) {
            ParameterSelection.all().apply(model.parameters());
            all.add(metrics);
            all.addAll(listeners);
            Trainer t = new Trainer(
                    model,
                    new LoaderStream(DataLoader.of(trainTokens, s.batch(), s.seqLen(), s.seed())),
                    () -> valWindows,
                    opt,
                    ckpt,
                    all);
            t.settings(s.runSettings(trainTokens), s.allowChanged());
            boolean resumed = s.resume() && t.resume();
            boolean done = t.step() >= s.steps();
            int startStep = t.step();
            double cpu0 = processCpuSeconds();
            Trainer.Result r = done ? null : t.run();
            double cpu = done ? 0 : processCpuSeconds() - cpu0;
            LossStats val = done ? Evaluator.evaluate(model, valWindows, s.batch()) : r.lastValidation();
            double secs = done ? 0 : r.seconds();
            double tps = done ? 0 : r.tokensPerSecond(opt.tokensPerStep(), r.steps() - startStep);
            Result res = new Result(
                    t.step(),
                    done ? Double.NaN : r.lastLoss(),
                    val,
                    unigram,
                    secs,
                    cpu,
                    tps,
                    s.config().parameterCount(),
                    ckpt.latest().orElse(null),
                    resumed,
                    done);
            if (!done) {
                LossPlot.write(
                        s.metricsFile(),
                        s.plotFile(),
                        String.format(
                                "pretraining, %.2fM parameters", s.config().parameterCount() / 1e6),
                        Map.of("unigram baseline (validation)", unigram.meanLoss()));
            }
            writeSummary(s, res);
            return res;
        }
    }

    private static void writeSummary(Settings s, Result r) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("steps", r.steps());
        o.addProperty("parameters", r.parameters());
        o.addProperty("batch", s.batch());
        o.addProperty("seq_len", s.seqLen());
        o.addProperty("accumulation", s.accumulation());
        o.addProperty("lr", s.lr());
        o.addProperty("seed", s.seed());
        if (Double.isFinite(r.trainLoss())) o.addProperty("train_loss", r.trainLoss());
        o.addProperty("val_loss", r.validation().meanLoss());
        o.addProperty("val_ppl", Math.exp(r.validation().meanLoss()));
        o.addProperty("val_acc", r.validation().accuracy());
        o.addProperty("unigram_val_loss", r.unigram().meanLoss());
        o.addProperty("unigram_val_acc", r.unigram().accuracy());
        o.addProperty("seconds", r.seconds());
        if (Double.isFinite(r.cpuSeconds())) o.addProperty("cpu_seconds", r.cpuSeconds());
        o.addProperty("tokens_per_s", r.tokensPerSecond());
        if (r.checkpoint() != null) o.addProperty("checkpoint", r.checkpoint().toString());
        AtomicFiles.writeString(
                s.summaryFile(), new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n");
    }
}
