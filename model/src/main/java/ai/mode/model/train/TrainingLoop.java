package ai.mode.model.train;

import ai.mode.model.io.NonFiniteTensorException;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Supplier;

/**
 * The training loop, written once for one device ({@link Trainer}) and for a model placed on many (the parallel
 * trainer): per optimizer step, {@code accumulation} micro-batches of {@code batch × seqLen} tokens from the
 * stream with the loss scaled by 1 / (the step's target tokens), the optimizer at the scheduled rate, a clean
 * stop on a non-finite loss or gradient norm, metrics to the listeners, validation every {@code evalEvery} steps
 * and checkpoints every {@code checkpointEvery} steps (and both at the stop step).
 *
 * <p>The schedule is a function of the step and the stream restores its position, so a run resumed with
 * {@link #restore} continues exactly as if uninterrupted.
 */
public final class TrainingLoop {
    /**
     * What the loop trains, a model on one device or the ranks of a placed model, as four operations.
     *
     * @param zeroGrad   zeroes the trainable gradients
     * @param microBatch forward, loss and backward of one micro-batch, accumulating scaled gradients
     * @param update     the optimizer step at a learning rate, with clipping; returns the gradient norm before
     *                   clipping
     * @param evaluate   summed loss statistics over validation windows of seqLen+1 tokens
     */
    public record Target(Runnable zeroGrad, MicroBatch microBatch, DoubleUnaryOperator update, Evaluation evaluate) {}

    /** Forward, loss and backward of one micro-batch. */
    @FunctionalInterface
    public interface MicroBatch {
        /**
         * @param ids        I32 [batch·seq] input tokens
         * @param targets    I32 [batch·seq] next tokens
         * @param lastOfStep whether this is the step's last micro-batch (gradients are complete after it)
         */
        LossStats run(int[] ids, int[] targets, int batch, int seq, float gradScale, boolean lastOfStep);
    }

    /** Loss statistics over windows of seqLen+1 tokens, {@code batch} windows at a time. */
    @FunctionalInterface
    public interface Evaluation {
        LossStats evaluate(Iterable<int[]> windows, int batch);
    }

    /** Where the loop's checkpoints go. */
    public interface Checkpoints {
        /** Writes a checkpoint of the target's current state with this progress; returns its location. */
        Path save(TrainProgress progress) throws IOException;

        /** The latest complete checkpoint, if any. */
        Optional<Path> latest();

        /** What computes the numbers ({@link Backend#numerics()}), recorded in each checkpoint. */
        String numerics();

        /** The run's settings and their changes ({@link RunSettings#toJson()}), recorded in each checkpoint. */
        default JsonObject settings() {
            return null;
        }
    }

    private final Target target;
    private final TokenStream train;
    private final Supplier<Iterable<int[]>> validation;
    private final Trainer.Options options;
    private final Checkpoints checkpoints;
    private final List<Trainer.Listener> listeners;
    private int step;
    private long tokensSeen;
    private double lastValLoss = Double.NaN;

    /**
     * @param validation  windows of seqLen+1 tokens, re-iterated at each validation; null = none
     * @param checkpoints where checkpoints go; null = none
     */
    public TrainingLoop(
            Target target,
            TokenStream train,
            Supplier<Iterable<int[]>> validation,
            Trainer.Options options,
            Checkpoints checkpoints,
            List<Trainer.Listener> listeners) {
        this.target = target;
        this.train = train;
        this.validation = validation;
        this.options = options;
        this.checkpoints = checkpoints;
        this.listeners = List.copyOf(listeners);
    }

    /** Steps completed so far. */
    public int step() {
        return step;
    }

    /** Continues from a checkpoint's progress: step, tokens seen, last validation loss and the stream's position. */
    public void restore(TrainProgress st) {
        step = st.step();
        tokensSeen = st.tokensSeen();
        lastValLoss = st.lastValLoss();
        train.restore(st.data());
    }

    /**
     * Trains from the current step up to {@code min(untilStep, options.steps)}; the schedule still spans
     * {@code options.steps}, so a run split into pieces (or interrupted and resumed) follows the same path.
     */
    public Trainer.Result run(int untilStep) {
        int stop = Math.min(untilStep, options.steps());
        int b = options.batch(), t = options.seqLen(), accum = options.accumulation();
        int[][] windows = new int[accum][b * (t + 1)];
        int[][] sources = new int[accum][];
        for (Trainer.Listener l : listeners) l.onStart(step + 1, options.steps(), options);
        long start = System.nanoTime();
        double lastLoss = Double.NaN, trainSeconds = 0;
        LossStats lastVal = null;
        while (step < stop) {
            long t0 = System.nanoTime();
            int current = step + 1;
            long counted = 0;
            for (int m = 0; m < accum; m++) {
                train.next(b, t, windows[m]);
                sources[m] = train.rowSources();
                for (int v : Evaluator.targets(windows[m], b, t)) if (v != Backend.IGNORE_INDEX) counted++;
            }
            if (counted == 0) throw new IllegalStateException("step " + current + ": the batch has no target tokens");
            float gradScale = (float) (1.0 / counted);
            target.zeroGrad().run();
            LossStats stats = LossStats.ZERO;
            for (int m = 0; m < accum; m++) {
                for (Trainer.Listener l : listeners) l.onMicroBatch(current, sources[m]);
                stats = stats.plus(target.microBatch()
                        .run(
                                Evaluator.inputs(windows[m], b, t),
                                Evaluator.targets(windows[m], b, t),
                                b,
                                t,
                                gradScale,
                                m == accum - 1));
            }
            double loss = stats.meanLoss();
            if (!Double.isFinite(loss)) throw diverged(current, "loss is " + loss);
            double lr = options.schedule().at(current);
            double norm = target.update().applyAsDouble(lr);
            if (!Double.isFinite(norm)) throw diverged(current, "gradient norm is " + norm);
            step = current;
            tokensSeen += options.tokensPerStep();
            lastLoss = loss;
            double secs = (System.nanoTime() - t0) / 1e9;
            trainSeconds += secs;
            Trainer.StepMetrics sm = new Trainer.StepMetrics(
                    step,
                    loss,
                    stats.accuracy(),
                    lr,
                    norm,
                    options.tokensPerStep() / secs,
                    tokensSeen,
                    (System.nanoTime() - start) / 1e9);
            for (Trainer.Listener l : listeners) l.onStep(sm);
            boolean last = step == stop;
            if (validation != null && ((options.evalEvery() > 0 && step % options.evalEvery() == 0) || last)) {
                lastVal = validate();
            }
            if (checkpoints != null
                    && ((options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0) || last)) {
                saveCheckpoint();
            }
        }
        for (Trainer.Listener l : listeners) l.onEnd(step);
        return new Trainer.Result(step, lastLoss, lastVal, (System.nanoTime() - start) / 1e9, trainSeconds, tokensSeen);
    }

    /** Runs validation now and notifies listeners. */
    public LossStats validate() {
        LossStats v = target.evaluate().evaluate(validation.get(), options.batch());
        lastValLoss = v.meanLoss();
        for (Trainer.Listener l : listeners) l.onValidation(step, v);
        return v;
    }

    private void saveCheckpoint() {
        try {
            Path where = checkpoints.save(new TrainProgress(
                    step,
                    options.seed(),
                    train.state(),
                    tokensSeen,
                    lastValLoss,
                    checkpoints.numerics(),
                    checkpoints.settings()));
            for (Trainer.Listener l : listeners) l.onCheckpoint(step, where);
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
