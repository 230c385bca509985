package ai.mode.parallel.sched;

import ai.mode.model.train.Evaluator;
import ai.mode.model.train.TokenStream;
import ai.mode.model.train.Trainer;
import ai.mode.model.train.TrainingDivergedException;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * The training loop of a parallel MoDE model: the single-device Trainer's schedule, accumulation, clipping, validation
 * and listeners, with each step's micro-batches run by every rank of the placement.
 *
 * <p>Trains a {@link ParallelModeModel} with {@link Trainer.Options} semantics: per step, {@code accumulation}
 * micro-batches of {@code batch × seqLen} tokens (gradients reduced over each group after the last one), loss
 * = mean over the step's tokens, the global gradient norm clipped, AdamW at the scheduled rate. Every process
 * of a multi-process run constructs the same stream and calls {@link #run()}; listeners are called in every
 * process (give them only to the leader).
 */
public final class ParallelTrainer {
    private final ParallelModeModel model;
    private final TokenStream train;
    private final Supplier<Iterable<int[]>> validation;
    private final Trainer.Options options;
    private final List<Trainer.Listener> listeners;
    private final List<Double> losses = new ArrayList<>();
    private int step;
    private long tokensSeen;

    /** @param validation windows of seqLen+1 tokens re-iterated at each validation; null = none */
    public ParallelTrainer(
            ParallelModeModel model,
            TokenStream train,
            Supplier<Iterable<int[]>> validation,
            Trainer.Options options,
            List<Trainer.Listener> listeners) {
        this.model = model;
        this.train = train;
        this.validation = validation;
        this.options = options;
        this.listeners = List.copyOf(listeners);
    }

    /** Training loss of every step run so far. */
    public List<Double> losses() {
        return List.copyOf(losses);
    }

    public int step() {
        return step;
    }

    /** Trains up to {@code options.steps()}. */
    public Trainer.Result run() {
        int b = options.batch(), t = options.seqLen(), accum = options.accumulation();
        int[][] windows = new int[accum][b * (t + 1)];
        for (Trainer.Listener l : listeners) l.onStart(step + 1, options.steps(), options);
        long start = System.nanoTime();
        double lastLoss = Double.NaN, trainSeconds = 0;
        LossStats lastVal = null;
        while (step < options.steps()) {
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
                stats = stats.plus(model.forwardBackward(
                        Evaluator.inputs(windows[m], b, t),
                        Evaluator.targets(windows[m], b, t),
                        b,
                        t,
                        gradScale,
                        true,
                        m == accum - 1));
            }
            double loss = stats.meanLoss();
            if (!Double.isFinite(loss))
                throw new TrainingDivergedException(
                        current, "training diverged: loss is " + loss + " at step " + current);
            double lr = options.schedule().at(current);
            double norm = model.step(lr, options.adamw().maxGradNorm());
            if (!Double.isFinite(norm))
                throw new TrainingDivergedException(
                        current, "training diverged: gradient norm is " + norm + " at step " + current);
            step = current;
            tokensSeen += options.tokensPerStep();
            lastLoss = loss;
            losses.add(loss);
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
            boolean last = step == options.steps();
            if (validation != null && ((options.evalEvery() > 0 && step % options.evalEvery() == 0) || last)) {
                lastVal = evaluate(validation.get(), b);
                for (Trainer.Listener l : listeners) l.onValidation(step, lastVal);
            }
        }
        for (Trainer.Listener l : listeners) l.onEnd(step);
        return new Trainer.Result(step, lastLoss, lastVal, (System.nanoTime() - start) / 1e9, trainSeconds, tokensSeen);
    }

    /**
     * Summed loss statistics over windows of T+1 tokens, in batches of {@code batch} windows; a final remainder
     * too small to split over the largest group is evaluated with the batch before it.
     */
    public LossStats evaluate(Iterable<int[]> windows, int batch) {
        int minRows = 1;
        for (int g = 0; g < model.placement().groups().size(); g++)
            minRows = Math.max(minRows, model.placement().groupSize(g));
        List<int[]> all = new ArrayList<>();
        windows.forEach(all::add);
        if (all.isEmpty()) return LossStats.ZERO;
        if (all.size() < minRows)
            throw new IllegalArgumentException(
                    all.size() + " evaluation windows cannot be split over a group of " + minRows + " devices");
        int per = Math.max(batch, minRows);
        LossStats total = LossStats.ZERO;
        int i = 0;
        while (i < all.size()) {
            int n = Math.min(per, all.size() - i);
            if (all.size() - i - n > 0 && all.size() - i - n < minRows) n = all.size() - i;
            total = total.plus(evaluateBatch(all.subList(i, i + n)));
            i += n;
        }
        return total;
    }

    private LossStats evaluateBatch(List<int[]> rows) {
        int b = rows.size(), t = rows.get(0).length - 1;
        int[] flat = new int[b * (t + 1)];
        for (int i = 0; i < b; i++) {
            if (rows.get(i).length != t + 1)
                throw new IllegalArgumentException("evaluation windows must all have " + (t + 1) + " tokens");
            System.arraycopy(rows.get(i), 0, flat, i * (t + 1), t + 1);
        }
        return model.evaluate(Evaluator.inputs(flat, b, t), Evaluator.targets(flat, b, t), b, t);
    }
}
