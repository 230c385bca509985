package ai.mode.parallel.sched;

import ai.mode.model.train.Evaluator;
import ai.mode.model.train.TokenStream;
import ai.mode.model.train.Trainer;
import ai.mode.model.train.TrainingLoop;
import ai.mode.runtime.LossStats;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * The training loop of a parallel MoDE model: the shared {@link TrainingLoop} (the single-device {@link Trainer}'s
 * schedule, accumulation, clipping, validation and listeners), with each step's micro-batches run by every rank.
 *
 * <p>Trains a {@link ParallelModeModel} with {@link Trainer.Options} semantics: per step, {@code accumulation}
 * micro-batches of {@code batch × seqLen} tokens (gradients reduced over each group after the last one), loss
 * = mean over the step's tokens, the global gradient norm clipped, AdamW at the scheduled rate. Every process
 * of a multi-process run constructs the same stream and calls {@link #run()}; listeners are called in every
 * process (give them only to the leader).
 */
public final class ParallelTrainer {
    private final ParallelModeModel model;
    private final Trainer.Options options;
    private final List<Double> losses = new ArrayList<>();
    private final TrainingLoop loop;

    /** @param validation windows of seqLen+1 tokens re-iterated at each validation; null = none */
    public ParallelTrainer(
            ParallelModeModel model,
            TokenStream train,
            Supplier<Iterable<int[]>> validation,
            Trainer.Options options,
            List<Trainer.Listener> listeners) {
        this.model = model;
        this.options = options;
        List<Trainer.Listener> all = new ArrayList<>();
        all.add(new Trainer.Listener() {
            @Override
            public void onStep(Trainer.StepMetrics m) {
                losses.add(m.loss());
            }
        });
        all.addAll(listeners);
        TrainingLoop.Target ranks = new TrainingLoop.Target(
                model::zeroGrad,
                (ids, targets, b, t, scale, last) -> model.forwardBackward(ids, targets, b, t, scale, true, last),
                lr -> model.step(lr, options.adamw().maxGradNorm()),
                this::evaluate);
        this.loop = new TrainingLoop(ranks, train, validation, options, null, all);
    }

    /** Training loss of every step run so far. */
    public List<Double> losses() {
        return List.copyOf(losses);
    }

    public int step() {
        return loop.step();
    }

    /** Trains up to {@code options.steps()}. */
    public Trainer.Result run() {
        return loop.run(options.steps());
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
