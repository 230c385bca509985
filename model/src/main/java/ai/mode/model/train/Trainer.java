package ai.mode.model.train;

import ai.mode.model.nn.CausalLm;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Training a model on one device: the shared {@link TrainingLoop} (micro-batches with gradient accumulation, the
 * warm-up + cosine schedule, periodic validation and checkpoints, a clean stop on non-finite values) driving a
 * {@link CausalLm} with AdamW and clipping, plus exact resume from its checkpoints (a checkpoint with non-finite weights
 * or moments is never written, so "last good checkpoint" is always usable).
 *
 * <p>Trains the trainable parameters of a {@link CausalLm} (select them beforehand with a
 * {@link ParameterSelection}). One optimizer step = {@code accumulation} micro-batches of
 * {@code batch × seqLen} tokens; the loss is the mean over all tokens of the step.
 *
 * <p>Determinism: given the same seed, data stream and backend, runs are bitwise reproducible; a run
 * resumed from a checkpoint (model, moments, step, data position) continues exactly as if uninterrupted,
 * because the schedule is a function of the step and the data stream restores its position.
 */
public final class Trainer {
    /**
     * @param steps           total optimizer steps
     * @param batch           sequences per micro-batch
     * @param seqLen          tokens per sequence
     * @param accumulation    micro-batches per optimizer step
     * @param schedule        learning rate per step
     * @param adamw           optimizer hyper-parameters
     * @param evalEvery       validate every this many steps (and at the end); 0 = never
     * @param checkpointEvery checkpoint every this many steps (and at the end); 0 = only at the end
     * @param seed            the run's seed (recorded in checkpoints)
     */
    public record Options(
            int steps,
            int batch,
            int seqLen,
            int accumulation,
            LrSchedule schedule,
            AdamW.Config adamw,
            int evalEvery,
            int checkpointEvery,
            long seed) {
        public Options {
            if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1 (got " + steps + ")");
            if (batch < 1) throw new IllegalArgumentException("--batch must be >= 1 (got " + batch + ")");
            if (seqLen < 1) throw new IllegalArgumentException("--seq must be >= 1 (got " + seqLen + ")");
            if (accumulation < 1) throw new IllegalArgumentException("--accum must be >= 1 (got " + accumulation + ")");
            if (evalEvery < 0 || checkpointEvery < 0)
                throw new IllegalArgumentException("evaluation and checkpoint intervals must be >= 0");
        }

        public long tokensPerStep() {
            return (long) batch * seqLen * accumulation;
        }
    }

    /** Metrics of one optimizer step. */
    public record StepMetrics(
            int step,
            double loss,
            double accuracy,
            double lr,
            double gradNorm,
            double tokensPerSecond,
            long tokensSeen,
            double elapsedSeconds) {}

    /** Callbacks for progress display, metrics files and plots. */
    public interface Listener {
        default void onStart(int firstStep, int totalSteps, Options options) {}

        /**
         * Before each micro-batch of step {@code step} runs: the source (domain) of each of its rows, as an index in
         * the stream's source order ({@link TokenStream#rowSources}), or null when the stream does not say.
         */
        default void onMicroBatch(int step, int[] rowSources) {}

        default void onStep(StepMetrics m) {}

        default void onValidation(int step, LossStats stats) {}

        default void onCheckpoint(int step, Path where) {}

        default void onEnd(int lastStep) {}
    }

    /**
     * What a run ended with. {@code seconds} is wall time including validation and checkpoints;
     * {@code trainSeconds} only the optimizer steps (for throughput).
     */
    public record Result(
            int steps,
            double lastLoss,
            LossStats lastValidation,
            double seconds,
            double trainSeconds,
            long tokensSeen) {
        /** Training tokens per second of this run (steps only). */
        public double tokensPerSecond(long tokensPerStep, int stepsRun) {
            return trainSeconds > 0 ? tokensPerStep * (double) stepsRun / trainSeconds : 0;
        }
    }

    private final CausalLm model;
    private final Options options;
    private final Checkpointing checkpoints;
    private final AdamW optimizer;
    private final TrainingLoop loop;
    private RunSettings settings;
    private Set<String> allowChanged = Set.of();

    /**
     * @param validation  windows of seqLen+1 tokens, re-iterated at each validation; null = none
     * @param checkpoints where checkpoints go; null = none
     */
    public Trainer(
            CausalLm model,
            TokenStream train,
            Supplier<Iterable<int[]>> validation,
            Options options,
            Checkpointing checkpoints,
            List<Listener> listeners) {
        this.model = model;
        this.options = options;
        this.checkpoints = checkpoints;
        this.optimizer = new AdamW(model.backend(), options.adamw());
        if (model.trainableParameters().isEmpty()) {
            throw new IllegalArgumentException(
                    "nothing to train: no parameter is trainable (check the parameter selection)");
        }
        if (options.seqLen() > model.config().maxSeqLen()) {
            throw new IllegalArgumentException(
                    "--seq " + options.seqLen() + " exceeds the model's max_position_embeddings "
                            + model.config().maxSeqLen());
        }
        TrainingLoop.Checkpoints saves = checkpoints == null
                ? null
                : new TrainingLoop.Checkpoints() {
                    @Override
                    public Path save(TrainProgress progress) throws IOException {
                        return checkpoints.save(model, optimizer, progress);
                    }

                    @Override
                    public Optional<Path> latest() {
                        return checkpoints.latest();
                    }

                    @Override
                    public String numerics() {
                        return model.backend().numerics();
                    }

                    @Override
                    public JsonObject settings() {
                        return settings.toJson();
                    }
                };
        TrainingLoop.Target target = new TrainingLoop.Target(
                model::zeroGrad,
                this::microBatch,
                lr -> {
                    double norm =
                            optimizer.update(model.trainableParameters(), lr).gradNorm();
                    model.backend().synchronize();
                    return norm;
                },
                (windows, batch) -> Evaluator.evaluate(model, windows, batch));
        settings(new RunSettings(), Set.of());
        MemoryEstimate.training(model, options.batch(), options.seqLen()).require("training");
        this.loop = new TrainingLoop(target, train, validation, options, saves, listeners);
    }

    private LossStats microBatch(int[] ids, int[] targets, int batch, int seq, float gradScale, boolean lastOfStep) {
        Backend be = model.backend();
        try (Tensor i = be.fromHost(ids, batch, seq);
                Tensor t = be.fromHost(targets, batch, seq)) {
            return model.forwardBackward(i, t, gradScale);
        }
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Steps completed so far. */
    public int step() {
        return loop.step();
    }

    /**
     * The settings this run records in its checkpoints and compares with theirs on {@link #resume} (see
     * {@link RunSettings}); the trainer adds {@code --seed} (fixed) and the backend's {@code numerics} (warned).
     *
     * @param allowChanged settings whose refused change the user accepts ({@code --allow-changed})
     */
    public Trainer settings(RunSettings runSettings, Set<String> allowChanged) {
        this.settings = new RunSettings()
                .addAll(runSettings)
                .add("--seed", options.seed(), RunSettings.OnChange.FIXED)
                .add("numerics", model.backend().numerics(), RunSettings.OnChange.WARN);
        this.allowChanged = Set.copyOf(allowChanged);
        return this;
    }

    /**
     * Restores the latest checkpoint, if any; returns whether one was found. Its recorded settings are compared
     * with this run's first ({@link #settings(RunSettings, Set)}): a refused change ends the resume with one line naming the setting,
     * both values and the fix, before anything is loaded.
     */
    public boolean resume() throws IOException {
        if (checkpoints == null) return false;
        Optional<TrainProgress> s = checkpoints.restoreLatest(
                model, optimizer, p -> settings.resumeFrom(recorded(p), p.step(), allowChanged));
        if (s.isEmpty()) return false;
        loop.restore(s.get());
        return true;
    }

    /** A checkpoint's settings record; for one written before records existed, its seed and numerics. */
    private static JsonObject recorded(TrainProgress p) {
        if (p.settings() != null) return p.settings();
        JsonObject values = new JsonObject();
        values.addProperty("--seed", Long.toString(p.seed()));
        if (p.numerics() != null) values.addProperty("numerics", p.numerics());
        JsonObject o = new JsonObject();
        o.add("values", values);
        return o;
    }

    /** Trains from the current step up to {@code options.steps}. */
    public Result run() {
        return run(options.steps());
    }

    /**
     * Trains from the current step up to {@code min(untilStep, options.steps)}; the schedule still spans
     * {@code options.steps}, so a run split into pieces (or interrupted and resumed) follows the same path.
     * A checkpoint is written at the stop step when checkpoints are on.
     */
    public Result run(int untilStep) {
        return loop.run(untilStep);
    }

    /** Runs validation now and notifies listeners. */
    public LossStats validate() {
        return loop.validate();
    }
}
