package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import ai.mode.model.generate.Generator;
import ai.mode.model.generate.Sampling;
import ai.mode.model.nn.LlamaModel;
import ai.mode.runtime.Backend;
import java.util.SplittableRandom;

/**
 * Generation throughput of {@link Generator} with its key/value cache: greedy decoding of {@code newTokens} tokens
 * after a random prompt of {@code promptTokens}, on the benchmark's model with random weights, as the PyTorch peer
 * (benchmarks/peers/torch_generate.py) does with transformers. Untimed runs first until the JIT has compiled the
 * paths (at least {@link #WARM_UP_RUNS} runs, each followed by {@link #WARM_UP_PROMPT_PASSES} prompt-only passes,
 * and {@link #WARM_UP_NANOS}), then {@code repeats} runs; the medians of
 * prompt (prefill) and decode tokens/s.
 */
public final class GenerateBench {

    /** Median prefill and decode tokens/s over the measured runs. */
    public record Result(double prefillTokensPerSecond, double decodeTokensPerSecond, double[] decodeRuns) {}

    /**
     * Untimed runs before measuring, and the least time they take together: after one run (the warm-up until
     * 2026-12-08) the prompt's pass was still being compiled, at 447 and 1,989 prompt tokens/s in the second and
     * third runs against 13,000-14,000 after 35 runs (AMD EPYC Zen 5, 2 threads, shared machine at load 4-7).
     */
    static final int WARM_UP_RUNS = 3;

    static final long WARM_UP_NANOS = 2_000_000_000L;

    /**
     * Prompt-only passes after each warm-up run. The decode step's one-row products no longer run the tiled SGEMM
     * that the prompt's pass runs, so full runs alone call its tasks too rarely for the JIT's top tier: after
     * 3 runs and 2 s its task lambdas were still in the profiling tier (-XX:+PrintCompilation), and the prompt's pass
     * read 7,000-11,700 tokens/s where a loop of prompt passes gave 15,000-16,600 (AMD EPYC Zen 5, 2026-12-08).
     */
    static final int WARM_UP_PROMPT_PASSES = 10;

    private GenerateBench() {}

    /** The benchmark's model with a context of {@code promptTokens + newTokens} (at least the config's). */
    static LlamaConfig withContext(LlamaConfig c, int context) {
        return new LlamaConfig(
                c.vocabSize(),
                c.hiddenSize(),
                c.numLayers(),
                c.numHeads(),
                c.numKvHeads(),
                c.intermediateSize(),
                Math.max(c.maxSeqLen(), context),
                c.ropeTheta(),
                c.rmsNormEps(),
                c.tieEmbeddings());
    }

    public static Result run(
            Backend backend, LlamaConfig cfg, int promptTokens, int newTokens, int repeats, long seed) {
        if (newTokens < 2 || promptTokens < 1 || repeats < 1)
            throw new IllegalArgumentException("generate bench: need >= 2 new tokens, a prompt and a run");
        SplittableRandom r = new SplittableRandom(seed);
        int[] prompt = new int[promptTokens];
        for (int i = 0; i < promptTokens; i++) prompt[i] = r.nextInt(cfg.vocabSize());
        try (LlamaModel model = LlamaModel.create(backend, withContext(cfg, promptTokens + newTokens))
                .initialize(seed)) {
            Generator g = new Generator(model);
            long warmUpEnd = System.nanoTime() + WARM_UP_NANOS;
            for (int i = 0; i < WARM_UP_RUNS || System.nanoTime() < warmUpEnd; i++) {
                g.generate(prompt, newTokens, Sampling.GREEDY, null, id -> true);
                for (int j = 0; j < WARM_UP_PROMPT_PASSES; j++)
                    g.generate(prompt, 1, Sampling.GREEDY, null, id -> true);
            }
            double[] prefill = new double[repeats], decode = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                Generator.Result res = g.generate(prompt, newTokens, Sampling.GREEDY, null, id -> true);
                prefill[i] = res.promptTokensPerSecond();
                decode[i] = res.decodeTokensPerSecond();
            }
            return new Result(Stats.median(prefill), Stats.median(decode), decode);
        }
    }
}
