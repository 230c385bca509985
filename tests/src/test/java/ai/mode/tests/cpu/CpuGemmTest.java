package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.t;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What the cpu SGEMM adds to the conformance suite: shapes past its blocking on every tile height, oneMKL and the
 * scalar path; slices; batched items bitwise equal to lone GEMMs; bits independent of the thread count.
 */
class CpuGemmTest {

    /**
     * {M, N, K} past the cpu SGEMM's blocking (the small and tile-edge shapes, transposes, batching and alpha/beta
     * are the conformance suite's, {@link CpuConformanceTest}): K past one block (256) and past one pass of blocks
     * (1024), N past one task (256) and one packed chunk (4096), M past one packed chunk (64 tasks of 96 rows); K
     * exactly 256, where a row-major A is read in place (whole tasks inside the array, a last task whose partial
     * panel would read past the array end, one exact panel). Run on every tile height, oneMKL and the scalar path.
     */
    private static final int[][] SHAPES = {
        {6, 32, 16},
        {37, 259, 31},
        {3, 4100, 5},
        {97, 17, 513},
        {29, 45, 1100},
        {6200, 20, 7},
        {202, 70, 256},
        {12, 40, 256},
        {1, 259, 700},
        {4, 4100, 256},
    };

    private static void checkOne(
            CpuBackend be, boolean ta, boolean tb, int m, int n, int k, float alpha, float beta, long seed) {
        float[] a = TestData.normal(seed, m * k);
        float[] b = TestData.normal(seed + 1, k * n);
        float[] c0 = TestData.normal(seed + 2, m * n);
        Tensor at = t(be, a, ta ? new int[] {k, m} : new int[] {m, k});
        Tensor bt = t(be, b, tb ? new int[] {n, k} : new int[] {k, n});
        Tensor ct = t(be, c0, m, n);
        be.gemm(ta, tb, alpha, at, bt, beta, ct);
        double[] ref = Ref.F64.gemm(
                ta, tb, m, n, k, alpha, TestData.toDouble(a), TestData.toDouble(b), beta, TestData.toDouble(c0));
        double[] naive = Ref.F32.gemm(
                ta, tb, m, n, k, alpha, TestData.toDouble(a), TestData.toDouble(b), beta, TestData.toDouble(c0));
        Tolerance.assertWithinNaiveBound(
                CpuVariants.label(be) + " gemm ta=" + ta + " tb=" + tb + " " + m + "x" + n + "x" + k,
                host(be, ct),
                naive,
                ref);
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#gemmTiles")
    void allTransposesAndShapesMatchReference(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        long seed = 1;
        for (int[] s : SHAPES) {
            for (int combo = 0; combo < 4; combo++) {
                checkOne(be, (combo & 1) != 0, (combo & 2) != 0, s[0], s[1], s[2], 1f, 0f, seed++);
            }
        }
    }

    private static double[] slice(float[] x, int from, int len) {
        return TestData.toDouble(java.util.Arrays.copyOfRange(x, from, from + len));
    }

    @Test
    void gemmOnSlicesUsesTheirOffsets() {
        CpuBackend be = CpuVariants.VECTOR;
        int m = 5, n = 18, k = 7;
        float[] big = TestData.normal(60, 3 * m * k);
        Tensor a = be.slice(t(be, big, 3, m, k), 1, 1);
        Tensor a2 = be.view(a, m, k);
        float[] b = TestData.normal(61, k * n);
        Tensor c = CpuVariants.poisoned(be, m, n);
        be.gemm(false, false, 1f, a2, t(be, b, k, n), 0f, c);
        double[] ref = Ref.F64.gemm(false, false, m, n, k, 1, slice(big, m * k, m * k), TestData.toDouble(b), 0, null);
        Tolerance.assertClose("gemm on a slice", host(be, c), ref, 1e-5, 1e-5);
    }

    /**
     * A batched GEMM (one packing and one compute region for all items, multithreaded at this size) gives every
     * item exactly the bits of that item's GEMM run alone, with per-item and with shared B; at K 256 the batch
     * reads a row-major A in place (a partial panel's extra rows from the next item) where the lone GEMM of the
     * last rows packs them.
     */
    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#gemmTiles")
    void batchedItemsEqualLoneGemmsBitwise(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        int batch = 4, m = 53, n = 70;
        for (int k : new int[] {300, 256})
            for (int combo = 0; combo < 4; combo++) {
                boolean ta = (combo & 1) != 0, tb = (combo & 2) != 0;
                for (boolean shared : new boolean[] {false, true}) {
                    float[] a = TestData.normal(90 + combo, batch * m * k);
                    float[] b = TestData.normal(95 + combo, (shared ? 1 : batch) * k * n);
                    int[] aShape = ta ? new int[] {k, m} : new int[] {m, k};
                    int[] bShape = tb ? new int[] {n, k} : new int[] {k, n};
                    Tensor bt = shared ? t(be, b, bShape) : t(be, b, batch, bShape[0], bShape[1]);
                    Tensor ct = be.zeros(batch, m, n);
                    be.gemm(ta, tb, 1f, t(be, a, batch, aShape[0], aShape[1]), bt, 0f, ct);
                    float[] got = host(be, ct);
                    for (int i = 0; i < batch; i++) {
                        Tensor ci = be.zeros(m, n);
                        float[] bi = java.util.Arrays.copyOfRange(
                                b, shared ? 0 : i * k * n, (shared ? 0 : i * k * n) + k * n);
                        be.gemm(
                                ta,
                                tb,
                                1f,
                                t(be, java.util.Arrays.copyOfRange(a, i * m * k, (i + 1) * m * k), aShape),
                                t(be, bi, bShape),
                                0f,
                                ci);
                        assertArrayEquals(
                                host(be, ci),
                                java.util.Arrays.copyOfRange(got, i * m * n, (i + 1) * m * n),
                                variant + " k=" + k + " ta=" + ta + " tb=" + tb + " shared=" + shared + " item " + i);
                    }
                }
            }
    }

    /**
     * Products of at most four rows (generation's one token at a time) run row by row instead of on the register
     * tile, with the tile's arithmetic: every such row equals, bit for bit, the same row of a many-row product, for
     * both layouts of B, K in one and several blocks, N with a partial panel, past one task and past one packed
     * chunk, alpha and beta not 1, batched items with their own B, on one thread and two (oneMKL, which cuts its
     * calls by shape, is not bound by this). Every shape is past the small-GEMM rule's 4,096 multiply-adds.
     */
    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#gemmTiles")
    void fewRowsEqualTheSameRowsOfATiledProductBitwise(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        assumeTrue(!be.usesMkl(), "oneMKL's rows depend on the call's shape");
        int big = 29, batch = 2;
        long seed = 300;
        for (int[] nk : new int[][] {{70, 300}, {256, 256}, {45, 688}, {4100, 31}, {130, 40}})
            for (boolean tb : new boolean[] {false, true})
                for (float[] ab : new float[][] {{1f, 0f}, {1f, 1f}, {0.5f, 0.75f}}) {
                    int n = nk[0], k = nk[1];
                    float alpha = ab[0], beta = ab[1];
                    float[] a = TestData.normal(seed++, batch * big * k);
                    float[] b = TestData.normal(seed++, batch * k * n);
                    float[] c0 = TestData.normal(seed++, batch * big * n);
                    int[] bShape = tb ? new int[] {batch, n, k} : new int[] {batch, k, n};
                    Tensor whole = t(be, c0, batch, big, n);
                    be.gemm(false, tb, alpha, t(be, a, batch, big, k), t(be, b, bShape), beta, whole);
                    float[] tiled = host(be, whole);
                    for (int m = 1; m <= 4; m++) {
                        int r0 = big - m - 3; // rows [r0, r0 + m) of every item
                        float[] am = new float[batch * m * k], cm = new float[batch * m * n];
                        for (int e = 0; e < batch; e++) {
                            System.arraycopy(a, (e * big + r0) * k, am, e * m * k, m * k);
                            System.arraycopy(c0, (e * big + r0) * n, cm, e * m * n, m * n);
                        }
                        for (int threads : new int[] {1, 2}) {
                            try (CpuBackend one =
                                    threads == 1 ? new CpuBackend(1, be.vectorized(), CpuGemm.VECTOR) : null) {
                                CpuBackend run = one == null ? be : one;
                                Tensor c = t(run, cm, batch, m, n);
                                run.gemm(false, tb, alpha, t(run, am, batch, m, k), t(run, b, bShape), beta, c);
                                float[] got = host(run, c);
                                for (int e = 0; e < batch; e++)
                                    assertArrayEquals(
                                            java.util.Arrays.copyOfRange(
                                                    tiled, (e * big + r0) * n, (e * big + r0 + m) * n),
                                            java.util.Arrays.copyOfRange(got, e * m * n, (e + 1) * m * n),
                                            variant + " " + m + " rows, n=" + n + " k=" + k + " tb=" + tb + " alpha="
                                                    + alpha + " beta=" + beta + " threads=" + threads + " item " + e);
                            }
                        }
                    }
                }
    }

    @ParameterizedTest
    @EnumSource(
            value = CpuGemm.class,
            names = {"VECTOR", "MKL"})
    void threadCountDoesNotChangeBits(CpuGemm gemm) {
        if (gemm == CpuGemm.MKL) assumeTrue(CpuVariants.MKL != null, "oneMKL does not load here");
        // 600 x 300: oneMKL cuts C into 2 row pieces; 150 x 520: 2 column pieces
        for (int[] s : new int[][] {{600, 300, 520}, {150, 520, 300}}) {
            int m = s[0], n = s[1], k = s[2];
            float[] a = TestData.normal(70, m * k), b = TestData.normal(71, k * n);
            float[][] results = new float[3][];
            int[] threadCounts = {1, 2, 3};
            for (int i = 0; i < 3; i++) {
                try (CpuBackend be = new CpuBackend(threadCounts[i], true, gemm)) {
                    Tensor c = be.zeros(m, n);
                    be.gemm(true, false, 1f, t(be, a, k, m), t(be, b, k, n), 0f, c);
                    results[i] = host(be, c);
                }
            }
            assertArrayEquals(results[0], results[1], gemm + " " + m + "x" + n + "x" + k + ": 1 vs 2 threads");
            assertArrayEquals(results[0], results[2], gemm + " " + m + "x" + n + "x" + k + ": 1 vs 3 threads");
        }
    }

    @Test
    void vectorAndScalarAgree() {
        int m = 40, n = 70, k = 90;
        float[] a = TestData.normal(80, m * k), b = TestData.normal(81, k * n);
        float[][] r = new float[2][];
        int i = 0;
        for (CpuBackend be : CpuVariants.all()) {
            Tensor c = be.zeros(m, n);
            be.gemm(false, true, 1f, t(be, a, m, k), t(be, b, n, k), 0f, c);
            r[i++] = host(be, c);
        }
        Tolerance.assertClose("vector vs scalar", r[0], TestData.toDouble(r[1]), 1e-4, 1e-5);
    }

    @Test
    void vectorPathIsActiveUnderTheTestFlags() {
        assertTrue(
                CpuVariants.VECTOR.vectorized(),
                "tests run with --add-modules jdk.incubator.vector; got " + CpuVariants.VECTOR.kernelDescription());
        assertEquals("scalar", CpuVariants.SCALAR.kernelDescription());
    }

    @Test
    void gemmTileHeightFollowsThePropertyAndRejectsOthers() {
        assertTrue(
                CpuVariants.VECTOR_6_ROWS.kernelDescription().contains(" 6 x "),
                CpuVariants.VECTOR_6_ROWS.kernelDescription());
        assertTrue(
                CpuVariants.VECTOR_12_ROWS.kernelDescription().contains(" 12 x "),
                CpuVariants.VECTOR_12_ROWS.kernelDescription());
        String before = System.getProperty("mode.cpu.gemmRows");
        System.setProperty("mode.cpu.gemmRows", "4");
        try {
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> new CpuBackend(1, true, CpuGemm.VECTOR));
            assertTrue(
                    e.getMessage().contains("-Dmode.cpu.gemmRows=4")
                            && e.getMessage().contains("use 6 or 12"),
                    e.getMessage());
        } finally {
            if (before == null) System.clearProperty("mode.cpu.gemmRows");
            else System.setProperty("mode.cpu.gemmRows", before);
        }
    }
}
