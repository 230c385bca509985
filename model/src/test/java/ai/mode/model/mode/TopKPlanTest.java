package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.model.nn.BufferPool;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The top-k routing plan shared by {@link ModeBlock} and the multi-device scheduler, on its own: which tokens a
 * branch gets, how they are packed per sequence, and the gradient of the renormalised weights with respect to the
 * gate probabilities (against central differences of the renormalisation, in double).
 */
class TopKPlanTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 1);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    /** Random softmax rows [r, e] (distinct values, so the top-k is unambiguous). */
    private static float[] probs(Random rnd, int r, int e) {
        float[] p = new float[r * e];
        for (int i = 0; i < r; i++) {
            double s = 0;
            for (int j = 0; j < e; j++) s += p[i * e + j] = (float) Math.exp(2 * rnd.nextGaussian());
            for (int j = 0; j < e; j++) p[i * e + j] /= (float) s;
        }
        return p;
    }

    /** The k largest entries of row i, largest first. */
    private static int[] topK(float[] p, int i, int e, int k) {
        Integer[] idx = new Integer[e];
        for (int j = 0; j < e; j++) idx[j] = j;
        Arrays.sort(idx, (a, b) -> Float.compare(p[i * e + b], p[i * e + a]));
        int[] out = new int[k];
        for (int j = 0; j < k; j++) out[j] = idx[j];
        return out;
    }

    @Test
    void selectionFollowsTheTopKOfEachTokenInSequenceOrder() {
        int b = 3, t = 4, e = 4, k = 2;
        float[] p = probs(new Random(3), b * t, e);
        try (BufferPool own = new BufferPool(be);
                Tensor pd = be.fromHost(p, b * t, e);
                TopKPlan plan = new TopKPlan(be, pd, new Routing(Routing.Level.TOKEN, k), b, t, own, "k")) {
            int total = 0;
            for (int br = 0; br < e; br++) {
                TopKPlan.Selection s = plan.select(br);
                int n = 0;
                int[] perSeq = new int[b];
                for (int tok = 0; tok < b * t; tok++) {
                    int[] top = topK(p, tok, e, k);
                    for (int j = 0; j < k; j++) {
                        if (top[j] != br) continue;
                        assertEquals(tok, s.tokens()[n], "branch " + br + ": token order");
                        assertEquals(tok * k + j, s.weightIndex()[n], "branch " + br + ": weight slot");
                        perSeq[tok / t]++;
                        n++;
                    }
                }
                assertEquals(n, s.size());
                assertArrayEquals(perSeq, s.perSequence());
                total += n;
            }
            assertEquals(b * t * k, total, "every token goes to exactly k branches");
        }
    }

    @Test
    void sequenceLevelRoutesWholeSequences() {
        int b = 3, t = 5, e = 3;
        float[] p = probs(new Random(8), b, e);
        try (BufferPool own = new BufferPool(be);
                Tensor pd = be.fromHost(p, b, e);
                TopKPlan plan = new TopKPlan(be, pd, new Routing(Routing.Level.SEQUENCE, 1), b, t, own, "k")) {
            for (int seqNo = 0; seqNo < b; seqNo++) {
                TopKPlan.Selection s = plan.select(topK(p, seqNo, e, 1)[0]);
                assertEquals(t, s.perSequence()[seqNo], "sequence " + seqNo + " goes whole to its branch");
            }
        }
    }

    @Test
    void packingPutsEachSequenceInARowPaddedWithItsFirstItem() {
        List<Tensor> made = new ArrayList<>();
        int[] items = {3, 4, 9, 11, 12, 13};
        int[] perSeq = {2, 0, 1, 3};
        TopKPlan.Packed pk = TopKPlan.Packed.of(items, perSeq, v -> {
            Tensor x = be.fromHost(v, v.length);
            made.add(x);
            return x;
        });
        try {
            assertEquals(3, pk.rows(), "one row per sequence with items");
            assertEquals(3, pk.len(), "rows as long as the longest sequence");
            assertEquals(6, pk.selected());
            int[] gather = new int[9], slot = new int[6];
            be.toHost(pk.gather(), gather);
            be.toHost(pk.slot(), slot);
            assertArrayEquals(new int[] {3, 4, 3, 9, 9, 9, 11, 12, 13}, gather);
            assertArrayEquals(new int[] {0, 1, 3, 6, 7, 8}, slot);
        } finally {
            for (Tensor x : made) x.close();
        }
    }

    @Test
    void probabilityGradientIsTheDerivativeOfTheRenormalisedWeights() {
        int r = 4, e = 5, k = 3;
        Random rnd = new Random(11);
        float[] p = probs(rnd, r, e);
        float[] g = new float[r * k];
        for (int i = 0; i < g.length; i++) g[i] = (float) rnd.nextGaussian();
        try (BufferPool own = new BufferPool(be);
                Tensor pd = be.fromHost(p, r, e);
                TopKPlan plan = new TopKPlan(be, pd, new Routing(Routing.Level.TOKEN, k), r, 1, own, "k")) {
            float[] dP = plan.probabilityGradient(g);
            for (int i = 0; i < r; i++) {
                int[] top = topK(p, i, e, k);
                for (int c = 0; c < e; c++) {
                    double h = 1e-4,
                            up = renormalised(p, g, top, i, e, c, h),
                            down = renormalised(p, g, top, i, e, c, -h);
                    assertEquals((up - down) / (2 * h), dP[i * e + c], 1e-4, "row " + i + ", branch " + c);
                }
            }
        }
    }

    /** Σ_j g_j p_{top_j} / Σ_j p_{top_j} for row i, with p_c moved by h (the chosen set held fixed). */
    private static double renormalised(float[] p, float[] g, int[] top, int i, int e, int c, double h) {
        double s = 0, dot = 0;
        for (int j : top) s += p[i * e + j] + (j == c ? h : 0);
        for (int j = 0; j < top.length; j++) dot += g[i * top.length + j] * (p[i * e + top[j]] + (top[j] == c ? h : 0));
        return dot / s;
    }
}
