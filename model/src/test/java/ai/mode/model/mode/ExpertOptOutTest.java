package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Domain opt-out at inference ({@link ModeModel#useExperts}): the gate renormalised over the kept branches matches
 * a float64 softmax over their logits; a model with an expert removed computes what a model composed without that
 * expert (its gate row dropped) computes, for dense and top-k routing at token and sequence level; keeping every
 * expert is bitwise the full model; bad expert sets fail with one line naming the fix.
 */
class ExpertOptOutTest {
    private static final LlamaConfig CFG = ModeTestSupport.TINY;
    private static final List<String> DOMAINS = List.of("code", "math", "law");
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    @Test
    void maskedGateIsTheFloat64SoftmaxOverTheKeptLogits() {
        int e = 4, d = CFG.hiddenSize(), r = 7;
        Random rnd = new Random(5);
        float[] w = gaussian(rnd, e * d, 1.5), b = gaussian(rnd, e, 1.0), x = gaussian(rnd, r * d, 1.0);
        boolean[] kept = {true, false, true, true};
        try (BufferPool scratch = new BufferPool(be);
                Gate gate = new Gate(be, 0, e, d, scratch);
                Tensor xs = be.fromHost(x, r, d)) {
            be.copyFromHost(w, gate.weight().value());
            be.copyFromHost(b, gate.bias().value());
            GateRouter router = new GateRouter(be, gate, Routing.Level.TOKEN);
            router.keepBranches(kept);
            float[] got = be.toHostFloats(router.forward(be.view(xs, 1, r, d)));
            for (int row = 0; row < r; row++) {
                double[] logits = new double[e];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < e; j++) {
                    logits[j] = b[j];
                    for (int c = 0; c < d; c++) logits[j] += (double) x[row * d + c] * w[j * d + c];
                    if (kept[j]) max = Math.max(max, logits[j]);
                }
                for (int j = 0; j < e; j++) if (kept[j]) sum += Math.exp(logits[j] - max);
                for (int j = 0; j < e; j++) {
                    double expected = kept[j] ? Math.exp(logits[j] - max) / sum : 0;
                    assertEquals(expected, got[row * e + j], 2e-6, "row " + row + " branch " + j);
                    if (!kept[j]) assertEquals(0f, got[row * e + j], "a removed branch gets exactly 0");
                }
            }
            router.releaseBuffers();
        }
    }

    @Test
    void removingAnExpertEqualsTheModelComposedWithoutIt() {
        int b = 2, t = 9;
        int[] ids = ModeTestSupport.tokens(8, b * t, CFG.vocabSize());
        try (LlamaModel base = ModeTestSupport.backbone(be, 1)) {
            for (Routing r : List.of(
                    Routing.DENSE,
                    new Routing(Routing.Level.TOKEN, 1),
                    new Routing(Routing.Level.TOKEN, 2),
                    new Routing(Routing.Level.SEQUENCE, 0),
                    new Routing(Routing.Level.SEQUENCE, 2))) {
                assertOptOutMatchesComposition(base, r, List.of("code", "law"), r, ids, b, t);
            }
            // top-3 of 4 branches with one expert kept: k shrinks to the 2 branches left, as in the 2-branch model
            assertOptOutMatchesComposition(
                    base,
                    new Routing(Routing.Level.TOKEN, 3),
                    List.of("math"),
                    new Routing(Routing.Level.TOKEN, 2),
                    ids,
                    b,
                    t);
        }
    }

    private static void assertOptOutMatchesComposition(
            LlamaModel base, Routing full, List<String> kept, Routing reduced, int[] ids, int b, int t) {
        try (ModeModel all = ModeModel.create(
                        base, ModeConfig.residualRandom(2, 1, DOMAINS).withRouting(full), 7);
                ModeModel without = ModeModel.create(
                        base, ModeConfig.residualRandom(2, 1, kept).withRouting(reduced), 7)) {
            ModeTestSupport.randomizeAdded(be, all, 11);
            int[] rows = new int[kept.size() + 1]; // gate rows of the reduced model: backbone, then the kept experts
            for (int j = 0; j < kept.size(); j++) {
                int src = DOMAINS.indexOf(kept.get(j));
                rows[j + 1] = src + 1;
                copy(all.expertParameters(src), without.expertParameters(j));
            }
            for (int i = 0; i < all.gates().size(); i++)
                copyRows(all.gates().get(i), without.gates().get(i), rows);

            all.useExperts(kept);
            assertEquals(kept, all.activeExperts());
            float[] expected = ModeTestSupport.logits(be, without, ids, b, t),
                    got = ModeTestSupport.logits(be, all, ids, b, t);
            for (int i = 0; i < expected.length; i++)
                assertEquals(expected[i], got[i], 2e-5, full + " without " + DOMAINS + " - " + kept + ": logit " + i);

            all.collectGateStatistics(true);
            ModeTestSupport.logits(be, all, ids, b, t);
            double[][] stats = all.gateStatistics();
            all.collectGateStatistics(false);
            for (double[] block : stats)
                for (int j = 0; j < DOMAINS.size(); j++)
                    if (!kept.contains(DOMAINS.get(j)))
                        assertEquals(0.0, block[j + 1], full + ": a removed expert's mean gate weight is 0");
        }
    }

    @Test
    void keepingEveryExpertIsBitwiseTheFullModel() {
        int b = 2, t = 7;
        int[] ids = ModeTestSupport.tokens(9, b * t, CFG.vocabSize());
        try (LlamaModel base = ModeTestSupport.backbone(be, 2)) {
            for (Routing r : List.of(
                    Routing.DENSE, new Routing(Routing.Level.TOKEN, 2), new Routing(Routing.Level.SEQUENCE, 1))) {
                try (ModeModel m = ModeModel.create(
                        base, ModeConfig.residualRandom(2, 1, DOMAINS).withRouting(r), 7)) {
                    ModeTestSupport.randomizeAdded(be, m, 12);
                    float[] today = ModeTestSupport.logits(be, m, ids, b, t);
                    m.useExperts(DOMAINS);
                    assertArrayEquals(today, ModeTestSupport.logits(be, m, ids, b, t), r + ": all experts kept");
                    m.useExperts(m.expertsWithout(List.of("math")));
                    assertFalse(
                            Arrays.equals(today, ModeTestSupport.logits(be, m, ids, b, t)),
                            r + ": removing an expert changes logits");
                    m.useExperts(List.of("law", "code", "math"));
                    assertArrayEquals(today, ModeTestSupport.logits(be, m, ids, b, t), r + ": every expert restored");
                }
            }
        }
    }

    @Test
    void badExpertSetsFailWithOneLineNamingTheFix() {
        try (LlamaModel base = ModeTestSupport.backbone(be, 3);
                ModeModel m = ModeModel.create(base, ModeConfig.residualRandom(2, 1, DOMAINS), 7)) {
            var empty = assertThrows(IllegalArgumentException.class, () -> m.useExperts(List.of()));
            assertTrue(
                    empty.getMessage().contains("empty") && empty.getMessage().contains("keep at least one"));
            var unknown = assertThrows(IllegalArgumentException.class, () -> m.useExperts(List.of("code", "poetry")));
            assertTrue(unknown.getMessage().contains("'poetry'")
                    && unknown.getMessage().contains("[code, math, law]"));
            var without = assertThrows(IllegalArgumentException.class, () -> m.expertsWithout(List.of("poetry")));
            assertTrue(without.getMessage().contains("'poetry'"));
            for (var ex : List.of(empty, unknown, without))
                assertFalse(ex.getMessage().contains("\n"));
            assertEquals(DOMAINS, m.activeExperts(), "a rejected set leaves the model unchanged");
        }
    }

    private static void copy(List<Parameter> from, List<Parameter> to) {
        assertEquals(from.size(), to.size());
        for (int i = 0; i < from.size(); i++)
            be.copy(from.get(i).value(), to.get(i).value());
    }

    /** Copies gate rows {@code rows} of {@code from} (weight rows and bias entries) into {@code to}, in order. */
    private static void copyRows(Gate from, Gate to, int[] rows) {
        int d = from.weight().shape()[1];
        float[] w = be.toHostFloats(from.weight().value()),
                bias = be.toHostFloats(from.bias().value());
        float[] w2 = new float[rows.length * d], b2 = new float[rows.length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(w, rows[i] * d, w2, i * d, d);
            b2[i] = bias[rows[i]];
        }
        be.copyFromHost(w2, to.weight().value());
        be.copyFromHost(b2, to.bias().value());
    }

    private static float[] gaussian(Random rnd, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (std * rnd.nextGaussian());
        return v;
    }
}
