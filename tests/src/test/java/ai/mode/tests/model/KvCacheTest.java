package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.generate.Generator;
import ai.mode.model.generate.Sampling;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Init;
import ai.mode.model.nn.KvCache;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The key/value cache against the model without it, on cpu and emu, for a Llama backbone and a composed two-expert
 * MoDE model (dense token routing, random experts and gates): after a prompt of 6 tokens in one pass, then one token at
 * a time, then a chunk of 3, the logits of the last position equal those of a full forward over the whole sequence so
 * far at every step, within float32 rounding (2e-5 of the largest logit, where a position off by one or a missing key
 * moves them by about 1e-1). Generation with and without the cache picks the same tokens, greedy and seeded.
 */
class KvCacheTest {
    static final LlamaConfig CFG = new LlamaConfig(40, 32, 2, 4, 2, 48, 24, 10000f, 1e-5f, false);

    static Backend open(String name) {
        if (name.equals("emu")) {
            BackendProvider emu = Backends.providers().stream()
                    .filter(p -> p.name().equals("emu"))
                    .findFirst()
                    .orElse(null);
            assumeTrue(
                    emu != null && emu.available(),
                    () -> "emu backend not available: " + (emu == null ? "no provider" : emu.unavailableReason()));
        }
        return Backends.create(name, 2);
    }

    /** A Llama model with weights large enough that its logits are far from ties (normal(0, 0.15), unit norm gains). */
    static LlamaModel base(Backend be) {
        LlamaModel m = LlamaModel.create(be, CFG);
        for (Parameter p : m.parameters()) {
            if (p.shape().length == 1) Init.constant(p, 1f);
            else Init.normal(p, 5, 0.15);
        }
        return m;
    }

    /** A two-expert MoDE model over {@code base} with random experts and gates (not the identity at start). */
    static ModeModel mode(LlamaModel base) {
        ModeModel m = ModeModel.create(
                base, new ModeConfig(2, 1, List.of("a", "b"), ModeConfig.ExpertInit.COPY, 0.5, Routing.DENSE), 3);
        for (Parameter p : m.addedParameters()) {
            if (p.shape().length == 1 && !p.name().contains("gate")) Init.constant(p, 1f);
            else Init.normal(p, 11, p.name().contains("gate") ? 0.5 : 0.1);
        }
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "emu"})
    void cachedLogitsEqualTheFullForwardAtEveryStep(String backend) {
        try (Backend be = open(backend);
                LlamaModel base = base(be);
                ModeModel mode = mode(base)) {
            assertTrue(base.supportsCache() && mode.supportsCache());
            check(be, base, "llama " + backend);
            check(be, mode, "MoDE " + backend);
        }
    }

    private static void check(Backend be, CausalLm model, String what) {
        int v = CFG.vocabSize(), n = CFG.maxSeqLen();
        SplittableRandom r = new SplittableRandom(2);
        int[] seq = new int[n];
        for (int i = 0; i < n; i++) seq[i] = r.nextInt(v);
        int[] ends = {6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24}; // the last step adds 3 tokens
        try (KvCache cache = new KvCache(be, n);
                Tensor out = be.zeros(1, v)) {
            int from = 0;
            for (int end : ends) {
                try (Tensor ids = be.fromHost(Arrays.copyOfRange(seq, from, end), 1, end - from)) {
                    model.forwardCached(ids, cache, out);
                }
                assertEquals(end, cache.length());
                float[] cached = be.toHostFloats(out);
                float[] full = fullLastLogits(be, model, Arrays.copyOf(seq, end));
                double max = 0, diff = 0;
                for (int j = 0; j < v; j++) {
                    max = Math.max(max, Math.abs(full[j]));
                    diff = Math.max(diff, Math.abs(cached[j] - full[j]));
                }
                assertTrue(
                        diff <= 2e-5 * max,
                        what + " position " + (end - 1) + ": cached logits differ by " + diff
                                + " from the full forward (max |logit| " + max + ")");
                from = end;
            }
            IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> {
                try (Tensor ids = be.fromHost(new int[] {1}, 1, 1)) {
                    model.forwardCached(ids, cache, out);
                }
            });
            assertTrue(full.getMessage().contains("exceed the model's max_position_embeddings 24"), full.getMessage());
        }
    }

    @Test
    void routingWithoutACacheRecomputesTheSequence() {
        try (Backend be = open("cpu");
                LlamaModel base = base(be);
                ModeModel top1 = ModeModel.create(
                        base,
                        new ModeConfig(
                                2,
                                1,
                                List.of("a", "b"),
                                ModeConfig.ExpertInit.COPY,
                                0.5,
                                new Routing(Routing.Level.TOKEN, 1)),
                        3)) {
            assertTrue(!top1.supportsCache());
            Generator g = new Generator(top1);
            assertTrue(!g.cached());
            Generator.Result r = g.generate(new int[] {3, 17}, 5, Sampling.GREEDY, null, id -> true);
            assertEquals(5, r.tokens().length);
            assertTrue(!r.cached());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Generator(top1, true));
            assertTrue(e.getMessage().contains("without a key/value cache"), e.getMessage());
        }
    }

    static float[] fullLastLogits(Backend be, CausalLm model, int[] ids) {
        int v = CFG.vocabSize(), t = ids.length;
        try (Tensor in = be.fromHost(ids, 1, t);
                Tensor out = be.zeros(t, v)) {
            model.logits(in, out);
            return Arrays.copyOfRange(be.toHostFloats(out), (t - 1) * v, t * v);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "emu"})
    void generationWithTheCachePicksTheSameTokens(String backend) {
        try (Backend be = open(backend);
                LlamaModel base = base(be);
                ModeModel mode = mode(base)) {
            int[] prompt = {3, 17, 5};
            for (CausalLm m : List.<CausalLm>of(base, mode)) {
                for (Sampling s : List.of(Sampling.GREEDY, new Sampling(1.0, 10, 0.9, 42))) {
                    Generator.Result cached = new Generator(m, true).generate(prompt, 15, s, null, id -> true);
                    Generator.Result full = new Generator(m, false).generate(prompt, 15, s, null, id -> true);
                    assertArrayEquals(full.tokens(), cached.tokens(), backend + " " + s);
                    assertEquals(15, cached.tokens().length);
                    assertEquals(Generator.Stop.MAX_TOKENS, cached.stop());
                    assertTrue(cached.cached() && !full.cached());
                }
            }
            Sampling a = new Sampling(1.0, 0, 1, 1), b = new Sampling(1.0, 0, 1, 2);
            int[] first = new Generator(base)
                    .generate(prompt, 20, a, null, id -> true)
                    .tokens();
            assertArrayEquals(
                    first,
                    new Generator(base)
                            .generate(prompt, 20, a, null, id -> true)
                            .tokens(),
                    "same seed");
            assertNotEquals(
                    Arrays.toString(first),
                    Arrays.toString(new Generator(base)
                            .generate(prompt, 20, b, null, id -> true)
                            .tokens()),
                    "another seed");
            Generator.Result ctx = new Generator(base).generate(prompt, 100, Sampling.GREEDY, null, id -> true);
            assertEquals(CFG.maxSeqLen() - prompt.length, ctx.tokens().length);
            assertEquals(Generator.Stop.CONTEXT, ctx.stop());
        }
    }
}
