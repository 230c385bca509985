package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.ParameterSelection;
import ai.mode.model.train.RandomWindowStream;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * End-to-end training throughput of our trainer: the real Trainer loop (forward, backward, clipping, AdamW) on random
 * tokens, the same model, batch, sequence and threads as the PyTorch peer script. Runs warm-up + measured optimizer
 * steps and reports the median step's tokens/s.
 */
public final class TrainBench {

    /**
     * Result of one training benchmark.
     *
     * @param stepSeconds seconds of every measured step (warm-up excluded)
     * @param tokensPerStep batch x seq
     * @param firstLoss loss of the first step (sanity: near ln V for a fresh model)
     * @param lastLoss loss of the last step
     * @param losses loss of every step, warm-up included, in order (for comparing backends step by step)
     */
    public record Result(double[] stepSeconds, long tokensPerStep, double firstLoss, double lastLoss, double[] losses) {
        public double medianSeconds() {
            return Stats.median(stepSeconds);
        }

        public double tokensPerSecond() {
            return tokensPerStep / medianSeconds();
        }

        /** The result of a trainer's {@code steps}, of which the first {@code warmup} are not measured. */
        static Result of(List<Trainer.StepMetrics> steps, int warmup, long tokensPerStep) {
            double[] secs = new double[steps.size() - warmup];
            for (int i = 0; i < secs.length; i++)
                secs[i] = tokensPerStep / steps.get(warmup + i).tokensPerSecond();
            return new Result(
                    secs,
                    tokensPerStep,
                    steps.getFirst().loss(),
                    steps.getLast().loss(),
                    steps.stream().mapToDouble(Trainer.StepMetrics::loss).toArray());
        }
    }

    private TrainBench() {}

    /** The model of the reference measurements: 4 layers, d_model 256, 4 heads, F 688, vocab 4096, seq 256. */
    public static LlamaConfig referenceConfig() {
        return LlamaConfig.tinyDefault(4096);
    }

    /** Trains {@code warmup + measured} steps of full-parameter training on {@code backend}. */
    public static Result run(
            Backend backend, LlamaConfig cfg, int batch, int seq, int warmup, int measured, long seed) {
        if (measured < 1) throw new IllegalArgumentException("need at least one measured step, got " + measured);
        int[] corpus = new int[Math.max(1 << 16, 4 * batch * (seq + 1))];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < corpus.length; i++) corpus[i] = rng.nextInt(cfg.vocabSize());
        try (LlamaModel model = LlamaModel.create(backend, cfg).initialize(seed)) {
            ParameterSelection.all().apply(model.parameters());
            Trainer.Options opts = new Trainer.Options(
                    warmup + measured, batch, seq, 1, LrSchedule.constant(3e-4), AdamW.Config.defaults(), 0, 0, seed);
            List<Trainer.StepMetrics> steps = new ArrayList<>();
            Trainer.Listener collect = new Trainer.Listener() {
                @Override
                public void onStep(Trainer.StepMetrics m) {
                    steps.add(m);
                }
            };
            Trainer trainer =
                    new Trainer(model, new RandomWindowStream(corpus, seed), null, opts, null, List.of(collect));
            trainer.run();
            trainer.optimizer().close();
            return Result.of(steps, warmup, opts.tokensPerStep());
        }
    }
}
