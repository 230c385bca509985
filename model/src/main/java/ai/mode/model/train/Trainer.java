package ai.mode.model.train;

import ai.mode.model.io.NonFiniteTensorException;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The training loop: micro-batches with gradient accumulation, AdamW with clipping on a warm-up + cosine schedule,
 * periodic validation and checkpoints, exact resume, and a clean stop on non-finite values (a checkpoint with
 * non-finite weights or moments is never written, so "last good checkpoint" is always usable).
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
    private static final System.Logger LOG = System.getLogger(Trainer.class.getName());

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
    private final TokenStream train;
    private final Supplier<Iterable<int[]>> validation;
    private final Options options;
    private final Checkpointing checkpoints;
    private final List<Listener> listeners;
    private final AdamW optimizer;
    private int step;
    private long tokensSeen;
    private double lastValLoss = Double.NaN;

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
        this.train = train;
        this.validation = validation;
        this.options = options;
        this.checkpoints = checkpoints;
        this.listeners = List.copyOf(listeners);
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
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Steps completed so far. */
    public int step() {
        return step;
    }

    /** Restores the latest checkpoint, if any; returns whether one was found. */
    public boolean resume() throws IOException {
        if (checkpoints == null) return false;
        Optional<TrainProgress> s = checkpoints.restoreLatest(model, optimizer);
        if (s.isEmpty()) return false;
        TrainProgress st = s.get();
        if (st.seed() != options.seed()) {
            throw new IllegalArgumentException("checkpoint was trained with seed " + st.seed() + " but --seed is "
                    + options.seed() + "; use the same seed to resume");
        }
        String now = model.backend().numerics();
        if (st.numerics() != null && !st.numerics().equals(now)) {
            LOG.log(
                    System.Logger.Level.WARNING,
                    "resuming at step " + st.step() + " on other numerics than the checkpoint's, so the run"
                            + " continues correctly but not bit for bit as it would have: saved with [" + st.numerics()
                            + "], now ["
                            + now + "]; later checkpoints record the new ones");
        }
        step = st.step();
        tokensSeen = st.tokensSeen();
        lastValLoss = st.lastValLoss();
        train.restore(st.data());
        return true;
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
        int stop = Math.min(untilStep, options.steps());
        List<Parameter> params = model.trainableParameters();
        Backend be = model.backend();
        int b = options.batch(), t = options.seqLen(), accum = options.accumulation();
        int[][] windows = new int[accum][b * (t + 1)];
        for (Listener l : listeners) l.onStart(step + 1, options.steps(), options);
        long start = System.nanoTime();
        double lastLoss = Double.NaN, trainSeconds = 0;
        LossStats lastVal = null;
        while (step < stop) {
            long t0 = System.nanoTime();
            int current = step + 1;
            long counted = 0;
            for (int m = 0; m < accum; m++) {
                train.next(b, t, windows[m]);
                for (int v : Evaluator.targets(windows[m], b, t)) if (v != Backend.IGNORE_INDEX) counted++;
            }
            if (counted == 0) throw new IllegalStateException("step " + current + ": the batch has no target tokens");
            float gradScale = (float) (1.0 / counted);
            model.zeroGrad();
            LossStats stats = LossStats.ZERO;
            for (int m = 0; m < accum; m++) {
                try (Tensor ids = be.fromHost(Evaluator.inputs(windows[m], b, t), b, t);
                        Tensor tg = be.fromHost(Evaluator.targets(windows[m], b, t), b, t)) {
                    stats = stats.plus(model.forwardBackward(ids, tg, gradScale));
                }
            }
            double loss = stats.meanLoss();
            if (!Double.isFinite(loss)) throw diverged(current, "loss is " + loss);
            double lr = options.schedule().at(current);
            AdamW.StepInfo info = optimizer.update(params, lr);
            if (!Double.isFinite(info.gradNorm())) throw diverged(current, "gradient norm is " + info.gradNorm());
            be.synchronize();
            step = current;
            tokensSeen += options.tokensPerStep();
            lastLoss = loss;
            double secs = (System.nanoTime() - t0) / 1e9;
            trainSeconds += secs;
            StepMetrics sm = new StepMetrics(
                    step,
                    loss,
                    stats.accuracy(),
                    lr,
                    info.gradNorm(),
                    options.tokensPerStep() / secs,
                    tokensSeen,
                    (System.nanoTime() - start) / 1e9);
            for (Listener l : listeners) l.onStep(sm);
            boolean last = step == stop;
            if (validation != null && ((options.evalEvery() > 0 && step % options.evalEvery() == 0) || last)) {
                lastVal = validate();
            }
            if (checkpoints != null
                    && ((options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0) || last)) {
                saveCheckpoint();
            }
        }
        for (Listener l : listeners) l.onEnd(step);
        return new Result(step, lastLoss, lastVal, (System.nanoTime() - start) / 1e9, trainSeconds, tokensSeen);
    }

    /** Runs validation now and notifies listeners. */
    public LossStats validate() {
        LossStats v = Evaluator.evaluate(model, validation.get(), options.batch());
        lastValLoss = v.meanLoss();
        for (Listener l : listeners) l.onValidation(step, v);
        return v;
    }

    private void saveCheckpoint() {
        try {
            Path where = checkpoints.save(
                    model,
                    optimizer,
                    new TrainProgress(
                            step,
                            options.seed(),
                            train.state(),
                            tokensSeen,
                            lastValLoss,
                            model.backend().numerics()));
            for (Listener l : listeners) l.onCheckpoint(step, where);
        } catch (NonFiniteTensorException e) {
            throw diverged(step, "the checkpoint was not written because its " + e.detail());
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the checkpoint at step " + step + ": " + e.getMessage(), e);
        }
    }

    private TrainingDivergedException diverged(int at, String what) {
        String last = checkpoints == null
                ? null
                : checkpoints.latest().map(Path::toString).orElse(null);
        return new TrainingDivergedException(
                at,
                "training diverged: " + what + " at step " + at + "; "
                        + (last == null
                                ? "no checkpoint was saved yet"
                                : "last good checkpoint: " + last + " (lower --lr and resume with --resume)"));
    }
}
