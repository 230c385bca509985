package ai.mode.tests.kernels;

import static ai.mode.tests.kernels.EmuOps.assertKernel;
import static ai.mode.tests.kernels.EmuOps.assertMatchesCpu;
import static ai.mode.tests.kernels.EmuOps.f32;
import static ai.mode.tests.kernels.EmuOps.host;
import static ai.mode.tests.kernels.EmuOps.hostInts;
import static ai.mode.tests.kernels.EmuOps.i32;
import static ai.mode.tests.kernels.EmuOps.poisoned;
import static ai.mode.tests.kernels.EmuOps.round;
import static ai.mode.tests.kernels.EmuOps.tensor;
import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The MoDE gate (softmax forward/backward, weighted merge forward/backward) and the data-movement kernels
 * (embedding lookup and its scatter-add backward, top-k routing, gather and scatter-add rows) on the
 * emulator. Data movement is compared exactly: gathers bit for bit, scatter-adds against float32 sums
 * taken in row order (the kernels' fixed order), top-k indices exactly, ties included.
 */
class EmuGateRoutingTest {
    private static final DType[] TYPES = {DType.F32, DType.BF16};

    @Test
    void softmaxForwardBackward() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int[] ne : new int[][] {{1, 1}, {7, 3}, {130, 5}}) {
                int n = ne[0], e = ne[1];
                float[] logits = round(dt, TestData.normal(n * 10L + e, n * e, 2)),
                        dp = round(dt, TestData.normal(n + e, n * e));
                String what = " " + dt + " n=" + n + " e=" + e;
                Tensor probs = poisoned(be, dt, n, e);
                be.softmaxForward(tensor(be, dt, logits, n, e), probs);
                double[] ref = Ref.F64.softmax(toDouble(logits), n, e);
                float[] got = host(be, probs);
                assertKernel("softmaxForward" + what, dt, got, Ref.F32.softmax(toDouble(logits), n, e), ref);
                Tensor alias = tensor(be, dt, dp, n, e);
                be.softmaxBackward(alias, probs, alias);
                double[] probsD = toDouble(got);
                assertKernel(
                        "softmaxBackward in place" + what,
                        dt,
                        host(be, alias),
                        Ref.F32.softmaxBackward(toDouble(dp), probsD, n, e),
                        Ref.F64.softmaxBackward(toDouble(dp), probsD, n, e));
                if (dt == DType.F32) {
                    Tensor cp = poisoned(cpu, dt, n, e);
                    cpu.softmaxForward(f32(cpu, logits, n, e), cp);
                    assertMatchesCpu("softmaxForward vs cpu" + what, got, host(cpu, cp), ref);
                }
            }
        }
    }

    @Test
    void weightedMergeForwardBackward() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int[] s : new int[][] {{1, 1, 1}, {3, 5, 7}, {2, 4, 300}}) {
                int e = s[0], n = s[1], d = s[2];
                float[] br = round(dt, TestData.normal(e * 100L + n + d, e * n * d));
                float[] pr = round(dt, TestData.probabilities(n + d, n, e)),
                        dy = round(dt, TestData.normal(n * 7L + d, n * d));
                String what = " " + dt + " E=" + e + " N=" + n + " D=" + d;
                Tensor out = poisoned(be, dt, n, d);
                be.weightedMergeForward(tensor(be, dt, br, e, n, d), tensor(be, dt, pr, n, e), out);
                double[] ref = Ref.F64.weightedMergeForward(toDouble(br), toDouble(pr), e, n, d);
                assertKernel(
                        "weightedMergeForward" + what,
                        dt,
                        host(be, out),
                        Ref.F32.weightedMergeForward(toDouble(br), toDouble(pr), e, n, d),
                        ref);
                Tensor db = poisoned(be, dt, e, n, d), dp = poisoned(be, dt, n, e);
                be.weightedMergeBackward(
                        tensor(be, dt, dy, n, d), tensor(be, dt, br, e, n, d), tensor(be, dt, pr, n, e), db, dp);
                double[][] g64 = Ref.F64.weightedMergeBackward(toDouble(dy), toDouble(br), toDouble(pr), e, n, d);
                double[][] g32 = Ref.F32.weightedMergeBackward(toDouble(dy), toDouble(br), toDouble(pr), e, n, d);
                assertKernel("weightedMergeBackward dBranches" + what, dt, host(be, db), g32[0], g64[0]);
                assertKernel("weightedMergeBackward dProbs" + what, dt, host(be, dp), g32[1], g64[1]);
                Tensor dpOnly = poisoned(be, dt, n, e);
                be.weightedMergeBackward(
                        tensor(be, dt, dy, n, d), tensor(be, dt, br, e, n, d), tensor(be, dt, pr, n, e), null, dpOnly);
                assertArrayEquals(host(be, dp), host(be, dpOnly), "dProbs without dBranches" + what);
                if (dt == DType.F32) {
                    Tensor co = poisoned(cpu, dt, n, d);
                    cpu.weightedMergeForward(f32(cpu, br, e, n, d), f32(cpu, pr, n, e), co);
                    assertMatchesCpu("weightedMergeForward vs cpu" + what, host(be, out), host(cpu, co), ref);
                }
            }
        }
    }

    @Test
    void topKExactWithTies() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int[] s : new int[][] {{1, 1, 1}, {9, 4, 2}, {33, 8, 3}}) {
                int n = s[0], e = s[1], k = s[2];
                float[] p = round(dt, TestData.probabilities(n * 3L + e, n, e));
                if (n > 1 && e > 2) {
                    p[e] = p[e + 2]; // row 1: a tie between columns 0 and 2
                }
                String what = " " + dt + " n=" + n + " e=" + e + " k=" + k;
                Tensor idx = i32(be, filled(n * k, -7), n, k), w = poisoned(be, dt, n, k);
                be.topK(tensor(be, dt, p, n, e), k, idx, w);
                Ref.TopK ref = Ref.F64.topK(toDouble(p), n, e, k);
                assertArrayEquals(ref.indices(), hostInts(be, idx), "topK indices" + what);
                assertKernel(
                        "topK weights" + what,
                        dt,
                        host(be, w),
                        Ref.F32.topK(toDouble(p), n, e, k).weights(),
                        ref.weights());
                if (dt == DType.F32) {
                    Tensor ci = i32(cpu, filled(n * k, -7), n, k), cw = poisoned(cpu, dt, n, k);
                    cpu.topK(f32(cpu, p, n, e), k, ci, cw);
                    assertArrayEquals(hostInts(cpu, ci), hostInts(be, idx), "topK indices vs cpu" + what);
                }
            }
        }
    }

    @Test
    void gatherAndScatterAddRowsExact() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            // {37, 1000, 130}: 37 output-row slices, 8 chunks of 128 source rows (the last short), 2 column tiles
            for (int[] s : new int[][] {{1, 1, 1}, {5, 9, 3}, {40, 7, 130}, {37, 1000, 130}}) {
                int nsrc = s[0], m = s[1], d = s[2];
                float[] src = round(dt, TestData.normal(nsrc * 13L + m + d, nsrc * d));
                int[] index = TestData.ints(m + d, m, nsrc);
                String what = " " + dt + " nsrc=" + nsrc + " m=" + m + " d=" + d;
                Tensor out = poisoned(be, dt, m, d);
                be.gatherRows(tensor(be, dt, src, nsrc, d), i32(be, index, m), out);
                float[] gathered = host(be, out);
                assertArrayEquals(
                        TestData.toFloat(Ref.F64.gatherRows(toDouble(src), index, d)), gathered, "gatherRows" + what);

                float[] base = round(dt, TestData.normal(d * 3L + m, nsrc * d));
                Tensor acc = tensor(be, dt, base, nsrc, d);
                be.scatterAddRows(tensor(be, dt, gathered, m, d), i32(be, index, m), acc);
                float[] expected = new float[nsrc * d];
                for (int i = 0; i < expected.length; i++) expected[i] = base[i];
                for (int r = 0; r < m; r++) {
                    for (int j = 0; j < d; j++) {
                        int o = index[r] * d + j;
                        expected[o] = round(dt, new float[] {expected[o] + gathered[r * d + j]})[0];
                    }
                }
                assertArrayEquals(expected, host(be, acc), "scatterAddRows (row-order sums)" + what);
                if (dt == DType.F32) {
                    Tensor ca = f32(cpu, base, nsrc, d);
                    cpu.scatterAddRows(f32(cpu, gathered, m, d), i32(cpu, index, m), ca);
                    assertArrayEquals(host(cpu, ca), host(be, acc), "scatterAddRows vs cpu" + what);
                }
            }
        }
    }

    @Test
    void embeddingForwardBackwardExact() {
        Backend be = EmuOps.emu();
        for (DType dt : TYPES) {
            embeddingRoundTrip(be, dt, 11, 5, 17);
            embeddingRoundTrip(be, dt, 301, 129, 1111);
        }
    }

    /** Forward exact, backward equal to float32 sums in row order (twice, the same bits), at v x d with n ids. */
    private static void embeddingRoundTrip(Backend be, DType dt, int v, int d, int n) {
        float[] table = round(dt, TestData.normal(v * d, v * d));
        int[] ids = TestData.ints(n, n, v);
        ids[3] = ids[5]; // repeated ids accumulate
        Tensor out = poisoned(be, dt, n, d);
        be.embeddingForward(tensor(be, dt, table, v, d), i32(be, ids, n), out);
        assertArrayEquals(
                TestData.toFloat(Ref.F64.embeddingForward(toDouble(table), ids, d)),
                host(be, out),
                "embeddingForward " + dt);
        float[] dy = round(dt, TestData.normal(n * d, n * d));
        Tensor dTable = be.zeros(v, d);
        be.embeddingBackward(tensor(be, dt, dy, n, d), i32(be, ids, n), dTable);
        assertArrayEquals(
                TestData.toFloat(Ref.F32.embeddingBackward(toDouble(dy), ids, v, d)),
                host(be, dTable),
                "embeddingBackward " + dt + " v=" + v + " d=" + d + " n=" + n + " (float32 sums in row order)");
        Tensor again = be.zeros(v, d);
        be.embeddingBackward(tensor(be, dt, dy, n, d), i32(be, ids, n), again);
        assertArrayEquals(host(be, dTable), host(be, again), "embeddingBackward is deterministic");
    }

    @Test
    void indexErrorsAreReported() {
        Backend be = EmuOps.emu();
        Tensor table = f32(be, TestData.normal(1, 12), 4, 3);
        Tensor out = poisoned(be, DType.F32, 2, 3);
        be.embeddingForward(table, i32(be, new int[] {1, 4}, 2), out);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> host(be, out));
        assertTrue(e.getMessage().contains("token id 4"), e.getMessage());
        be.gatherRows(table, i32(be, new int[] {-1}, 1), poisoned(be, DType.F32, 1, 3));
        e = assertThrows(IllegalArgumentException.class, be::synchronize);
        assertTrue(e.getMessage().startsWith("gatherRows: index -1"), e.getMessage());
        be.scatterAddRows(f32(be, TestData.normal(2, 3), 1, 3), i32(be, new int[] {9}, 1), table);
        e = assertThrows(IllegalArgumentException.class, be::synchronize);
        assertTrue(e.getMessage().startsWith("scatterAddRows: index 9"), e.getMessage());
        be.synchronize(); // cleared
        assertEquals(12, host(be, table).length);
    }

    /**
     * Two bad indices where the grid-stride order reaches the higher position first: with 65535 blocks, block 0
     * handles rows 0 and 65535, block 2 rows 2 and 65537. Every backend reports the lowest offending position
     * (a "first error wins" word would report 65535 whenever block 0 runs before block 2).
     */
    @Test
    void theLowestOffendingPositionIsReportedOnEveryBackend() {
        int m = 65_535 + 4, d = 2, bad = 65_535;
        int[] index = new int[m];
        for (int i = 0; i < m; i++) index[i] = i % 3;
        index[bad] = -7;
        index[2] = 9;
        for (Backend be : new Backend[] {EmuOps.emu(), EmuOps.cpu()}) {
            Tensor table = f32(be, TestData.normal(4, 3 * d), 3, d);
            Tensor ids = i32(be, index, m);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                be.gatherRows(table, ids, be.zeros(m, d));
                be.synchronize();
            });
            assertTrue(e.getMessage().contains(" 9 at position 2 "), be.name() + ": " + e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> {
                be.embeddingForward(table, ids, be.zeros(m, d));
                be.synchronize();
            });
            assertTrue(e.getMessage().contains("token id 9 at position 2 "), be.name() + ": " + e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> {
                be.crossEntropy(be.zeros(m, 3), ids, null, 1f);
                be.synchronize();
            });
            assertTrue(
                    e.getMessage().contains("target 9 ") && e.getMessage().contains("row 2 "),
                    be.name() + ": " + e.getMessage());
            be.synchronize(); // cleared
        }
    }

    private static int[] filled(int n, int value) {
        int[] a = new int[n];
        Arrays.fill(a, value);
        return a;
    }
}
