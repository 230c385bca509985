package ai.mode.conformance;

import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;

/**
 * The op checks every {@link Backend} must pass, written once and run against each backend: {@code cpu} with the
 * scalar and the vector kernels and with each GEMM provider, {@code emu} and {@code cuda} in this project, and any
 * outside backend that subclasses this class ({@code docs/contributing.md}, "Backend conformance suite").
 *
 * <p>Every op, forward and backward, runs on random inputs of awkward sizes (1, odd, vector width and kernel block
 * edges, more than one task or tile) in every float storage type the backend declares, into outputs that start as
 * NaN. Results are compared with the float64 reference {@link Ref#F64}: the largest error may be at most twice
 * that of the naive float32 reference {@link Ref#F32} on the same inputs (plus bfloat16 rounding for BF16
 * storage, {@link Tolerance#assertWithinNaiveBound(String, DType, float[], double[], double[])}); BF16 attention on
 * tensor cores is held to twice the error of the naive bf16-operand implementation {@link Ref#BF16} instead
 * ({@link #bf16TensorCoreAttention()}). Data movement is
 * exact (gathers bit for bit, scatter-adds equal to float32 sums taken in row order, top-k indices with ties to
 * the lower index), reductions are deterministic, aliasing that {@link Backend} allows gives the same bits, index
 * errors name the op and the offending value, and bad shapes are rejected with the messages of the op contract
 * ({@link ai.mode.runtime.OpShapes}).
 *
 * <p>A subclass supplies the backend ({@link #createBackend()}, called once per class and closed after its last
 * test; it may skip the class by assumption when the backend cannot run here) and, when it stores BF16, says so
 * ({@link #floatTypes()}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendConformance {
    /** Row widths: 1, odd, vector width +- 1, one warp, more than one 128-column task, more than a 256 block. */
    private static final int[] WIDTHS = {1, 7, 15, 16, 17, 33, 130, 301};

    private Backend be;

    /** The backend under test; may skip the class with an assumption (for example, no GPU here). */
    protected abstract Backend createBackend();

    /** The float storage types the backend keeps: F32, and BF16 where it stores bfloat16 activations. */
    protected List<DType> floatTypes() {
        return List.of(DType.F32);
    }

    @BeforeAll
    final void openBackend() {
        be = createBackend();
    }

    @AfterAll
    final void closeBackend() {
        if (be != null) be.close();
    }

    /**
     * Whether each op check also runs one case at the sizes of a small model (batch 2 x 128 tokens, width 256, SwiGLU
     * 704, vocabulary 4096, 8 query heads over 2 key/value heads of 32): for backends where that is cheap (the
     * default is no: the edge sizes are what find bugs, and the emulator is slow at model sizes).
     */
    protected boolean modelSizes() {
        return false;
    }

    /**
     * Whether BF16 attention on this backend may round the operands of its internal products to bfloat16 (tensor-core
     * kernels: the probabilities P before P V, dS before dS K): then BF16 attention is held to the naive-bf16 rule,
     * twice the error of {@link Ref#BF16} (the naive implementation with the same bf16 operands), instead of the
     * naive float32 one. The default is no.
     */
    protected boolean bf16TensorCoreAttention() {
        return false;
    }

    /** The backend under test (for subclasses adding checks of their own). */
    protected final Backend backend() {
        return be;
    }

    // ================================================================== memory

    @Test
    void memoryOps() {
        float[] data = TestData.normal(3, 24);
        Tensor x = f32(data, 4, 6);
        assertArrayEquals(data, host(x));
        Tensor s = be.slice(x, 1, 2);
        assertArrayEquals(Arrays.copyOfRange(data, 6, 18), host(s));
        Tensor v = be.view(s, 3, 4);
        be.fill(v, 2f);
        float[] after = host(x);
        for (int i = 0; i < 24; i++)
            assertEquals(i >= 6 && i < 18 ? 2f : data[i], after[i], "fill through a view of a slice");
        Tensor y = be.zeros(2, 12);
        be.copy(x, y);
        assertArrayEquals(after, host(y));
        be.copyFromHost(data, y);
        assertArrayEquals(data, host(y));
        int[] ids = {3, -1, 7};
        assertArrayEquals(ids, hostInts(be.fromHost(ids, 3)));
        assertArrayEquals(new float[5], host(be.allocate(DType.F32, 5)));
        for (int n : new int[] {1, 7, 257, 1000}) {
            Tensor t = poisoned(DType.F32, n);
            be.fill(t, -3.5f);
            for (float f : host(t)) assertEquals(-3.5f, f, "fill n=" + n);
        }
        for (DType dt : floatTypes()) {
            float[] held = stored(dt, data);
            Tensor t = tensor(dt, held, 4, 6);
            assertArrayEquals(held, host(t), "copyFromHost/toHost round trip " + dt);
            assertArrayEquals(held, host(tensor(dt, held, 4, 6)), "storage rounding is idempotent " + dt);
        }
    }

    // ================================================================== elementwise and reductions

    @Test
    void elementwise() {
        for (DType dt : floatTypes()) {
            for (int n : sizes(new int[] {1, 7, 17, 257, 1000, 40_000}, 256 * 256)) {
                float[] a = stored(dt, TestData.normal(n, n)), b = stored(dt, TestData.normal(n + 1, n));
                double[] sum = new double[n], axpy = new double[n], scaled = new double[n];
                double[] sum32 = new double[n], axpy32 = new double[n], scaled32 = new double[n];
                for (int i = 0; i < n; i++) {
                    sum[i] = (double) a[i] + b[i];
                    sum32[i] = a[i] + b[i];
                    axpy[i] = b[i] + 0.75 * a[i];
                    axpy32[i] = b[i] + 0.75f * a[i];
                    scaled[i] = a[i] * -1.25;
                    scaled32[i] = a[i] * -1.25f;
                }
                String sz = " " + dt + " n=" + n;
                Tensor out = poisoned(dt, n);
                be.add(tensor(dt, a, n), tensor(dt, b, n), out);
                near("add" + sz, dt, host(out), sum32, sum);
                Tensor y = tensor(dt, b, n);
                be.axpy(0.75f, tensor(dt, a, n), y);
                near("axpy" + sz, dt, host(y), axpy32, axpy);
                Tensor x = tensor(dt, a, n);
                be.scale(x, -1.25f);
                near("scale" + sz, dt, host(x), scaled32, scaled);
                Tensor alias = tensor(dt, a, n);
                be.add(alias, alias, alias);
                float[] doubled = host(alias);
                for (int i = 0; i < n; i++) assertEquals(2 * a[i], doubled[i], "add in place" + sz);
            }
        }
    }

    @Test
    void sumSquaresInFloat64() {
        for (DType dt : floatTypes()) {
            for (int n : new int[] {1, 7, 257, 20_000, 70_001}) {
                float[] x = stored(dt, TestData.normal(3L * n, n, 3.0));
                double ref = 0;
                for (float v : x) ref += (double) v * v;
                double got = be.sumSquares(tensor(dt, x, n));
                assertEquals(ref, got, 1e-12 * ref, "sumSquares " + dt + " n=" + n);
                assertEquals(got, be.sumSquares(tensor(dt, x, n)), "sumSquares is deterministic");
            }
        }
    }

    @Test
    void sumRowsAccumulates() {
        for (DType dt : floatTypes()) {
            // 1001 x 33 and 700 x 5: long columns (on devices, several row chunks of a two-stage sum, the last short)
            for (int[] rc : cases(
                    new int[][] {{1, 1}, {37, 7}, {9, 33}, {20, 130}, {37, 301}, {70, 16}, {1001, 33}, {700, 5}},
                    256,
                    256)) {
                int rows = rc[0], d = rc[1];
                float[] x = stored(dt, TestData.normal(rows * 131L + d, rows * d)), base = TestData.normal(d + 5, d);
                double[] ref = new double[d], naive = new double[d];
                for (int j = 0; j < d; j++) {
                    ref[j] = base[j];
                    float s = base[j];
                    for (int r = 0; r < rows; r++) {
                        ref[j] += x[r * d + j];
                        s += x[r * d + j];
                    }
                    naive[j] = s;
                }
                Tensor out = f32(base, d), again = f32(base, d);
                String what = "sumRowsAccumulate " + dt + " rows=" + rows + " d=" + d;
                be.sumRowsAccumulate(tensor(dt, x, 1, rows, d), out);
                near(what, DType.F32, host(out), naive, ref);
                be.sumRowsAccumulate(tensor(dt, x, 1, rows, d), again);
                assertArrayEquals(host(out), host(again), what + " twice: the same bits");
            }
        }
    }

    // ================================================================== dense linear algebra

    /** {m, n, k}: single element, vector and tile edges, more than one 64 x 64 tile in every dimension. */
    private static final int[][] GEMM_SHAPES = {
        {1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 7}, {7, 33, 17}, {65, 17, 33}, {20, 70, 40}, {64, 64, 64}, {13, 50, 300}
    };

    @Test
    void gemmAllTransposes() {
        for (int[] s : cases(GEMM_SHAPES, 190, 130, 257)) {
            for (int tr = 0; tr < 4; tr++)
                gemm(DType.F32, DType.F32, (tr & 1) != 0, (tr & 2) != 0, 0, false, s, 1f, 0f);
        }
    }

    @Test
    void gemmBatchedBroadcastAlphaBeta() {
        for (int tr = 0; tr < 4; tr++) {
            for (boolean broadcast : new boolean[] {false, true}) {
                gemm(
                        DType.F32,
                        DType.F32,
                        (tr & 1) != 0,
                        (tr & 2) != 0,
                        3,
                        broadcast,
                        new int[] {11, 37, 19},
                        1f,
                        0.5f);
            }
        }
        gemm(DType.F32, DType.F32, false, true, 3, false, new int[] {9, 66, 13}, 1f, 0.5f);
        gemm(DType.F32, DType.F32, true, false, 2, true, new int[] {70, 5, 19}, -0.75f, 0f);
        gemm(DType.F32, DType.F32, true, true, 2, false, new int[] {4, 4, 100}, 1f, 2f);
        gemm(DType.F32, DType.F32, false, false, 0, false, new int[] {9, 40, 20}, 0.5f, 1f);
        gemm(DType.F32, DType.F32, true, true, 0, false, new int[] {9, 40, 20}, -1.5f, 0.25f);
        gemm(DType.F32, DType.F32, true, false, 0, false, new int[] {4, 5, 0}, 1f, 0.5f); // K = 0: c = beta * c
    }

    @Test
    void gemmBf16Operands() {
        if (!floatTypes().contains(DType.BF16)) return;
        for (int[] s : new int[][] {{3, 5, 7}, {65, 17, 33}, {20, 70, 40}}) {
            for (int tr = 0; tr < 4; tr++)
                gemm(DType.BF16, DType.F32, (tr & 1) != 0, (tr & 2) != 0, 0, false, s, 1f, 0f);
        }
        gemm(DType.BF16, DType.BF16, false, true, 2, true, new int[] {33, 17, 40}, 0.5f, 0f);
        gemm(DType.BF16, DType.F32, true, false, 3, false, new int[] {17, 9, 35}, 1f, 1f);
        gemm(DType.BF16, DType.BF16, true, true, 2, false, new int[] {7, 70, 20}, 1f, 0.25f);
        gemm(DType.BF16, DType.F32, false, true, 2, true, new int[] {9, 5, 3}, 2f, 0f);
    }

    /**
     * One GEMM of op(a) [m,k] by op(b) [k,n] into c [m,n] (per batch item when batch > 0; b shared when
     * broadcastB). c starts as NaN when beta == 0 (it must not be read), random otherwise.
     */
    private void gemm(
            DType ab,
            DType ct,
            boolean transA,
            boolean transB,
            int batch,
            boolean broadcastB,
            int[] mnk,
            float alpha,
            float beta) {
        int m = mnk[0], n = mnk[1], k = mnk[2], bt = Math.max(1, batch);
        long seed = 31L * m + 7L * n + k + (transA ? 1000 : 0) + (transB ? 2000 : 0) + 17L * batch;
        int bCount = broadcastB ? 1 : bt;
        float[] a = stored(ab, TestData.normal(seed, bt * m * k));
        float[] b = stored(ab, TestData.normal(seed + 1, bCount * k * n));
        float[] c0 = stored(ct, TestData.normal(seed + 2, bt * m * n));
        int[] aShape = transA ? new int[] {k, m} : new int[] {m, k};
        int[] bShape = transB ? new int[] {n, k} : new int[] {k, n};
        int[] cShape = {m, n};
        if (batch > 0) {
            aShape = prepend(batch, aShape);
            if (!broadcastB) bShape = prepend(batch, bShape);
            cShape = prepend(batch, cShape);
        }
        Tensor tc = beta == 0 ? poisoned(ct, cShape) : tensor(ct, c0, cShape);
        be.gemm(transA, transB, alpha, tensor(ab, a, aShape), tensor(ab, b, bShape), beta, tc);
        double[] ref = new double[bt * m * n], naive = new double[bt * m * n];
        for (int i = 0; i < bt; i++) {
            double[] ai = toDouble(Arrays.copyOfRange(a, i * m * k, (i + 1) * m * k));
            int bi = broadcastB ? 0 : i;
            double[] bb = toDouble(Arrays.copyOfRange(b, bi * k * n, (bi + 1) * k * n));
            double[] ci = beta == 0 ? null : toDouble(Arrays.copyOfRange(c0, i * m * n, (i + 1) * m * n));
            System.arraycopy(Ref.F64.gemm(transA, transB, m, n, k, alpha, ai, bb, beta, ci), 0, ref, i * m * n, m * n);
            System.arraycopy(
                    Ref.F32.gemm(transA, transB, m, n, k, alpha, ai, bb, beta, ci), 0, naive, i * m * n, m * n);
        }
        String what = "gemm " + ab + "->" + ct + " " + (transA ? "T" : "N") + (transB ? "T" : "N") + " m=" + m
                + " n=" + n + " k=" + k + " batch=" + batch + (broadcastB ? " (b broadcast)" : "") + " alpha=" + alpha
                + " beta=" + beta;
        near(what, ct, host(tc), naive, ref);
    }

    // ================================================================== grouped expert GEMM

    /**
     * The grouped expert GEMM ops against per-group float64 products, under the naive-bf16 rule (a backend may round
     * the operands to bf16 for tensor cores: the bound is twice the error of a naive product of bf16-rounded operands
     * accumulated in float32). Equal groups (dense routing) and ragged ones with an empty group, a group over one row
     * tile and a token list (top-k gather), at sizes that are not multiples of the 16 x 16 fragments or 64 x 64 tiles;
     * outputs start as NaN unless accumulated into.
     */
    @Test
    void groupedGemm() {
        for (DType dt : floatTypes()) {
            // G, source rows S, per-group rows (null: equal groups of S / G, no token list), N, K
            grouped(dt, 3, 15, null, 17, 20);
            grouped(dt, 4, 23, new int[] {0, 7, 1, 70}, 9, 33);
            grouped(dt, 2, 5, new int[] {3, 0}, 66, 7);
        }
    }

    private void grouped(DType dt, int groups, int sources, int[] counts, int n, int k) {
        boolean ragged = counts != null;
        int[] off = new int[groups + 1];
        for (int g = 0; g < groups; g++) off[g + 1] = off[g] + (ragged ? counts[g] : sources / groups);
        int r = off[groups];
        long seed = 101L * groups + 13L * sources + 7L * n + k;
        int[] rows = ragged ? TestData.ints(seed, r, sources) : null;
        float[] x = stored(dt, TestData.normal(seed + 1, sources * k));
        float[] w = TestData.normal(seed + 2, groups * n * k), wUp = TestData.normal(seed + 3, groups * n * k);
        float[] dy = stored(dt, TestData.normal(seed + 4, r * n));
        float[] y0 = stored(dt, TestData.normal(seed + 5, r * n)), dx0 = stored(dt, TestData.normal(seed + 6, r * k));
        float[] dw0 = TestData.normal(seed + 7, groups * n * k);
        float[] xr = new float[r * k]; // operand rows: x read through the token list
        for (int i = 0; i < r; i++) System.arraycopy(x, (ragged ? rows[i] : i) * k, xr, i * k, k);
        Tensor tx = tensor(dt, x, sources, k), tw = f32(w, groups, n, k), twUp = f32(wUp, groups, n, k);
        Tensor tRows = ragged ? be.fromHost(rows, r) : null, tOff = ragged ? be.fromHost(off, groups + 1) : null;
        String what = " " + dt + " G=" + groups + " rows=" + Arrays.toString(Arrays.copyOf(off, groups + 1)) + " N=" + n
                + " K=" + k;
        // per-group references: [0] float64, [1] naive bf16 operands with float32 accumulation
        double[][] fwd = groupedRef(false, xr, w, off, n, k, 0.5, y0);
        Tensor y = tensor(dt, y0, r, n);
        be.groupedGemmForward(tx, tRows, tw, tOff, 0.5f, y);
        near("groupedGemmForward beta=0.5" + what, dt, host(y), fwd[1], fwd[0]);
        double[][] gate = groupedRef(false, xr, w, off, n, k, 0, null),
                up = groupedRef(false, xr, wUp, off, n, k, 0, null);
        Tensor tg = poisoned(dt, r, n), tu = poisoned(dt, r, n), out = poisoned(dt, r, n), out2 = poisoned(dt, r, n);
        be.groupedSwiGluForward(tx, tRows, tw, twUp, tOff, tg, tu, out);
        near("groupedSwiGluForward gate" + what, dt, host(tg), gate[1], gate[0]);
        near("groupedSwiGluForward up" + what, dt, host(tu), up[1], up[0]);
        double[] act32 = Ref.F32.swiGluForward(gate[1], up[1]), act64 = Ref.F64.swiGluForward(gate[0], up[0]);
        near("groupedSwiGluForward out" + what, dt, host(out), act32, act64);
        Tensor yNew = poisoned(dt, r, n);
        be.groupedGemmForward(tx, tRows, tw, tOff, 0f, yNew);
        near("groupedGemmForward beta=0" + what, dt, host(yNew), gate[1], gate[0]);
        be.groupedSwiGluForward(tx, tRows, tw, twUp, tOff, null, null, out2);
        assertArrayEquals(host(out), host(out2), "groupedSwiGluForward without saving gate and up" + what);
        Tensor dx = tensor(dt, dx0, r, k);
        be.groupedGemmBackwardData(tensor(dt, dy, r, n), tw, tOff, 1f, dx);
        double[][] bwd = groupedRef(true, dy, w, off, k, n, 1, dx0);
        near("groupedGemmBackwardData beta=1" + what, dt, host(dx), bwd[1], bwd[0]);
        for (float beta : new float[] {0f, 1f}) {
            Tensor dw = beta == 0 ? poisoned(DType.F32, groups, n, k) : f32(dw0, groups, n, k);
            be.groupedGemmBackwardWeight(tensor(dt, dy, r, n), tx, tRows, tOff, beta, dw);
            double[] ref = new double[groups * n * k], naive = new double[groups * n * k];
            for (int g = 0; g < groups; g++) {
                int s = off[g], m = off[g + 1] - s;
                double[] c = beta == 0 ? null : toDouble(Arrays.copyOfRange(dw0, g * n * k, (g + 1) * n * k));
                float[] dyg = Arrays.copyOfRange(dy, s * n, (s + m) * n),
                        xg = Arrays.copyOfRange(xr, s * k, (s + m) * k);
                System.arraycopy(
                        Ref.F64.gemm(true, false, n, k, m, 1, toDouble(dyg), toDouble(xg), beta, c),
                        0,
                        ref,
                        g * n * k,
                        n * k);
                System.arraycopy(
                        Ref.F32.gemm(
                                true,
                                false,
                                n,
                                k,
                                m,
                                1,
                                toDouble(TestData.bf16(dyg)),
                                toDouble(TestData.bf16(xg)),
                                beta,
                                c),
                        0,
                        naive,
                        g * n * k,
                        n * k);
            }
            near("groupedGemmBackwardWeight beta=" + beta + what, DType.F32, host(dw), naive, ref);
        }
    }

    /**
     * Per group g (rows off[g]..off[g+1] of a [R, inner]): {@code a_g @ w_g^T} (w [G, cols, inner]), or {@code a_g @
     * w_g} when {@code data} (w [G, inner, cols]), plus beta * c; returns {float64, naive bf16-operand float32}.
     */
    private static double[][] groupedRef(
            boolean data, float[] a, float[] w, int[] off, int cols, int inner, double beta, float[] c) {
        int groups = off.length - 1, r = off[groups];
        double[][] out = {new double[r * cols], new double[r * cols]};
        for (int g = 0; g < groups; g++) {
            int s = off[g], m = off[g + 1] - s;
            float[] ag = Arrays.copyOfRange(a, s * inner, (s + m) * inner);
            float[] wg = Arrays.copyOfRange(w, g * cols * inner, (g + 1) * cols * inner);
            double[] cg = c == null ? null : toDouble(Arrays.copyOfRange(c, s * cols, (s + m) * cols));
            System.arraycopy(
                    Ref.F64.gemm(false, !data, m, cols, inner, 1, toDouble(ag), toDouble(wg), beta, cg),
                    0,
                    out[0],
                    s * cols,
                    m * cols);
            System.arraycopy(
                    Ref.F32.gemm(
                            false,
                            !data,
                            m,
                            cols,
                            inner,
                            1,
                            toDouble(TestData.bf16(ag)),
                            toDouble(TestData.bf16(wg)),
                            beta,
                            cg),
                    0,
                    out[1],
                    s * cols,
                    m * cols);
        }
        return out;
    }

    // ================================================================== embedding

    @Test
    void embedding() {
        for (DType dt : floatTypes()) {
            for (int d : sizes(WIDTHS, 256)) embedding(dt, 11, d, 29);
            embedding(dt, 301, 129, 1111); // many ids per row and more vocabulary rows than one slice of blocks
        }
    }

    /** Forward exact, backward (twice: the same bits) equal to float32 sums in row order, for n ids of vocab x d. */
    private void embedding(DType dt, int vocab, int d, int n) {
        float[] table = stored(dt, TestData.normal(d, vocab * d));
        int[] ids = TestData.ints(d + 1, n, vocab);
        ids[0] = ids[n - 1]; // a repeated id accumulates
        String what = " " + dt + " vocab=" + vocab + " d=" + d + " n=" + n;
        Tensor out = poisoned(dt, 1, n, d);
        be.embeddingForward(tensor(dt, table, vocab, d), be.fromHost(ids, 1, n), out);
        assertArrayEquals(
                TestData.toFloat(Ref.F64.embeddingForward(toDouble(table), ids, d)),
                host(out),
                "embeddingForward (exact)" + what);
        float[] dOut = stored(dt, TestData.normal(d + 2, n * d)), base = TestData.normal(d + 3, vocab * d);
        Tensor dTable = f32(base, vocab, d);
        be.embeddingBackward(tensor(dt, dOut, n, d), be.fromHost(ids, n), dTable);
        assertArrayEquals(
                rowOrderScatterAdd(dOut, ids, base, d, DType.F32),
                host(dTable),
                "embeddingBackward (float32 sums in row order)" + what);
        Tensor again = f32(base, vocab, d);
        be.embeddingBackward(tensor(dt, dOut, n, d), be.fromHost(ids, n), again);
        assertArrayEquals(host(dTable), host(again), "embeddingBackward twice: the same bits" + what);
    }

    // ================================================================== RMSNorm and RoPE

    @Test
    void rmsNorm() {
        float eps = 1e-5f;
        for (DType dt : floatTypes()) {
            for (int[] nd : cases(
                    new int[][] {{1, 1}, {3, 7}, {70, 15}, {70, 17}, {70, 33}, {5, 130}, {70, 301}, {777, 40}},
                    256,
                    256)) {
                // 70 rows: more than one 32-row partial of the weight gradient; 777: several row chunks on devices
                int rows = nd[0], d = nd[1];
                long seed = 100L * rows + d;
                float[] x = stored(dt, TestData.normal(seed, rows * d, 2)), w = TestData.normal(seed + 1, d);
                float[] dy = stored(dt, TestData.normal(seed + 2, rows * d)), dw0 = TestData.normal(seed + 3, d);
                String sz = " " + dt + " rows=" + rows + " d=" + d;
                Tensor xt = tensor(dt, x, rows, d), wt = f32(w, d);
                Tensor out = poisoned(dt, rows, d), rstd = poisoned(DType.F32, rows);
                be.rmsNormForward(xt, wt, eps, out, rstd);
                near(
                        "rmsNormForward" + sz,
                        dt,
                        host(out),
                        Ref.F32.rmsNormForward(toDouble(x), toDouble(w), rows, d, eps),
                        Ref.F64.rmsNormForward(toDouble(x), toDouble(w), rows, d, eps));
                near(
                        "rmsNorm rstd" + sz,
                        DType.F32,
                        host(rstd),
                        Ref.F32.rmsNormRstd(toDouble(x), rows, d, eps),
                        Ref.F64.rmsNormRstd(toDouble(x), rows, d, eps));
                Tensor dx = poisoned(dt, rows, d), dw = f32(dw0, d);
                be.rmsNormBackward(tensor(dt, dy, rows, d), xt, wt, rstd, dx, dw);
                double[][] r64 = Ref.F64.rmsNormBackward(toDouble(dy), toDouble(x), toDouble(w), rows, d, eps);
                double[][] r32 = Ref.F32.rmsNormBackward(toDouble(dy), toDouble(x), toDouble(w), rows, d, eps);
                near("rmsNormBackward dx" + sz, dt, host(dx), r32[0], r64[0]);
                double[] dwRef = new double[d], dwNaive = new double[d];
                for (int j = 0; j < d; j++) {
                    dwRef[j] = dw0[j] + r64[1][j];
                    dwNaive[j] = dw0[j] + (float) r32[1][j];
                }
                near("rmsNormBackward dWeight (accumulated)" + sz, DType.F32, host(dw), dwNaive, dwRef);
            }
        }
    }

    /**
     * RoPE against the float64 reference with two frequency tables per head dimension: plain theta 10000, and a
     * non-uniform one (inverse frequencies 10^-4u for random u, in no order, as scaled RoPE makes tables that are
     * no power series), so a kernel that recomputes frequencies instead of reading the table fails.
     */
    @Test
    void rope() {
        for (DType dt : floatTypes()) {
            for (int[] s : cases(
                    new int[][] {{1, 1, 1, 2}, {2, 5, 3, 8}, {1, 9, 2, 34}, {1, 9, 2, 64}, {2, 3, 1, 64}},
                    2,
                    128,
                    8,
                    32)) {
                int b = s[0], t = s[1], h = s[2], hd = s[3], n = b * t * h * hd;
                Random rnd = new Random(hd);
                double[] scattered = new double[hd / 2];
                for (int i = 0; i < scattered.length; i++) scattered[i] = Math.pow(10, -4 * rnd.nextDouble());
                double[][] references = {Ref.plainRopeFrequencies(10000, hd), scattered};
                RopeFrequencies[] tables = {RopeFrequencies.plain(10000f, hd), RopeFrequencies.of(scattered)};
                for (int table = 0; table < tables.length; table++) {
                    RopeFrequencies frequencies = tables[table];
                    double[] invFreq = references[table];
                    for (int offset : new int[] {0, 17, 4093}) {
                        float[] x = stored(dt, TestData.normal(n + offset, n));
                        String what = " " + dt + " " + Arrays.toString(s) + " offset " + offset + " "
                                + (table == 0 ? "plain" : "scattered") + " frequencies";
                        for (boolean forward : new boolean[] {true, false}) {
                            String op = forward ? "ropeForward" : "ropeBackward";
                            Tensor out = poisoned(dt, b, t, h, hd), inPlace = tensor(dt, x, b, t, h, hd);
                            rope(forward, tensor(dt, x, b, t, h, hd), frequencies, offset, out);
                            rope(forward, inPlace, frequencies, offset, inPlace);
                            double[] xd = toDouble(x);
                            Function<Ref, double[]> reference = r -> forward
                                    ? r.ropeForward(xd, b, t, h, hd, invFreq, offset)
                                    : r.ropeBackward(xd, b, t, h, hd, invFreq, offset);
                            near(op + what, dt, host(out), reference.apply(Ref.F32), reference.apply(Ref.F64));
                            assertArrayEquals(host(out), host(inPlace), op + " in place" + what);
                        }
                    }
                }
            }
        }
    }

    private void rope(boolean forward, Tensor in, RopeFrequencies frequencies, int offset, Tensor out) {
        if (forward) be.ropeForward(in, frequencies, offset, out);
        else be.ropeBackward(in, frequencies, offset, out);
    }

    // ================================================================== attention

    /**
     * {B, T, H, Hkv, hd}: one token, GQA, several query and key tiles, head dims that pad every tile, and each
     * head-dimension tile exactly (32, 64, 128) with ragged sequence tails (70 = 64 + 6 query rows, 32-row key tiles
     * + 6; 37 with a GQA group of 3; 45 over the 32-row key tiles of the widest tile).
     */
    private static final int[][] ATTENTION_SHAPES = {
        {1, 1, 1, 1, 1},
        {1, 1, 1, 1, 2},
        {2, 5, 2, 1, 8},
        {2, 5, 4, 2, 8},
        {1, 33, 4, 2, 16},
        {1, 70, 2, 1, 16},
        {1, 17, 2, 2, 40},
        {1, 65, 6, 2, 20},
        {1, 18, 2, 1, 72},
        {1, 70, 4, 2, 32},
        {2, 37, 3, 1, 64},
        {1, 45, 2, 1, 128},
        {2, 70, 3, 1, 128},
    };

    @Test
    void attention() {
        for (DType dt : floatTypes()) {
            for (int[] s : cases(ATTENTION_SHAPES, 2, 128, 8, 2, 32)) attention(dt, s, 1.0);
        }
    }

    @Test
    void attentionLargeScoresStayFinite() {
        // Scores of several hundred: the online softmax must rescale instead of overflowing exp.
        for (DType dt : floatTypes()) attention(dt, new int[] {1, 80, 1, 1, 16}, 30.0);
    }

    private void attention(DType dt, int[] s, double std) {
        int b = s[0], t = s[1], h = s[2], hkv = s[3], hd = s[4];
        long seed = 1000L * t + 10L * h + hd;
        int nq = b * t * h * hd, nk = b * t * hkv * hd;
        float[] q = stored(dt, TestData.normal(seed, nq, std)), k = stored(dt, TestData.normal(seed + 1, nk, std));
        float[] v = stored(dt, TestData.normal(seed + 2, nk)), dy = stored(dt, TestData.normal(seed + 3, nq));
        String what = " " + dt + " B=" + b + " T=" + t + " H=" + h + " Hkv=" + hkv + " hd=" + hd;
        Tensor tq = tensor(dt, q, b, t, h, hd), tk = tensor(dt, k, b, t, hkv, hd), tv = tensor(dt, v, b, t, hkv, hd);
        Tensor out = poisoned(dt, b, t, h, hd), lse = poisoned(DType.F32, b, h, t);
        be.attentionForward(tq, tk, tv, out, lse);
        // The naive implementation the output is held to: float32, or bf16 product operands (tensor cores).
        Ref naive = dt == DType.BF16 && bf16TensorCoreAttention() ? Ref.BF16 : Ref.F32;
        double[][] f64 = Ref.F64.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        double[][] f32 = Ref.F32.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        double[][] fNaive = naive.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        near("attentionForward out" + what, dt, host(out), fNaive[0], f64[0]);
        near("attentionForward lse" + what, DType.F32, host(lse), f32[1], f64[1]);
        Tensor dq = poisoned(dt, b, t, h, hd), dk = poisoned(dt, b, t, hkv, hd), dv = poisoned(dt, b, t, hkv, hd);
        be.attentionBackward(tensor(dt, dy, b, t, h, hd), tq, tk, tv, out, lse, dq, dk, dv);
        double[][] g64 =
                Ref.F64.attentionBackward(toDouble(dy), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        double[][] g32 = naive.attentionBackward(toDouble(dy), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        near("attentionBackward dq" + what, dt, host(dq), g32[0], g64[0]);
        near("attentionBackward dk" + what, dt, host(dk), g32[1], g64[1]);
        near("attentionBackward dv" + what, dt, host(dv), g32[2], g64[2]);
    }

    /** {B, t, cap, length, H, Hkv, hd}: one decode step, a prefill, a chunk after a prefix, GQA, padded head dims. */
    private static final int[][] CACHED_ATTENTION_SHAPES = {
        {1, 1, 1, 1, 1, 1, 1},
        {1, 1, 9, 5, 2, 1, 8},
        {2, 1, 40, 33, 4, 2, 16},
        {1, 3, 12, 7, 2, 2, 40},
        {2, 6, 6, 6, 6, 2, 20},
        {1, 1, 70, 70, 2, 1, 72},
        {1, 2, 140, 131, 2, 1, 128},
    };

    @Test
    void attentionCached() {
        for (DType dt : floatTypes()) for (int[] s : CACHED_ATTENTION_SHAPES) attentionCached(dt, s);
    }

    private void attentionCached(DType dt, int[] s) {
        int b = s[0], t = s[1], cap = s[2], len = s[3], h = s[4], hkv = s[5], hd = s[6];
        long seed = 7000L * t + 31L * len + hd;
        float[] q = stored(dt, TestData.normal(seed, b * t * h * hd));
        float[] k = stored(dt, TestData.normal(seed + 1, b * cap * hkv * hd));
        float[] v = stored(dt, TestData.normal(seed + 2, b * cap * hkv * hd));
        for (int bi = 0; bi < b; bi++) // rows past the cached length are never read
        Arrays.fill(k, (bi * cap + len) * hkv * hd, (bi + 1) * cap * hkv * hd, Float.NaN);
        String what =
                " " + dt + " B=" + b + " t=" + t + " C=" + cap + " L=" + len + " H=" + h + " Hkv=" + hkv + " hd=" + hd;
        Tensor out = poisoned(dt, b, t, h, hd);
        be.attentionCachedForward(
                tensor(dt, q, b, t, h, hd), tensor(dt, k, b, cap, hkv, hd), tensor(dt, v, b, cap, hkv, hd), len, out);
        double[] qd = toDouble(q), kd = toDouble(k), vd = toDouble(v);
        near(
                "attentionCachedForward out" + what,
                dt,
                host(out),
                Ref.F32.attentionCached(qd, kd, vd, b, t, cap, len, h, hkv, hd),
                Ref.F64.attentionCached(qd, kd, vd, b, t, cap, len, h, hkv, hd));
    }

    // ================================================================== SwiGLU, loss, optimizer

    @Test
    void swiGlu() {
        for (DType dt : floatTypes()) {
            for (int n : sizes(new int[] {1, 7, 17, 257, 301, 40_000}, 256 * 704)) {
                float[] g = stored(dt, TestData.normal(n, n, 2)),
                        u = stored(dt, TestData.normal(n + 1, n)),
                        dy = stored(dt, TestData.normal(n + 2, n));
                String sz = " " + dt + " n=" + n;
                Tensor out = poisoned(dt, n);
                be.swiGluForward(tensor(dt, g, n), tensor(dt, u, n), out);
                near(
                        "swiGluForward" + sz,
                        dt,
                        host(out),
                        Ref.F32.swiGluForward(toDouble(g), toDouble(u)),
                        Ref.F64.swiGluForward(toDouble(g), toDouble(u)));
                Tensor dg = poisoned(dt, n), du = poisoned(dt, n);
                be.swiGluBackward(tensor(dt, dy, n), tensor(dt, g, n), tensor(dt, u, n), dg, du);
                double[][] r64 = Ref.F64.swiGluBackward(toDouble(dy), toDouble(g), toDouble(u));
                double[][] r32 = Ref.F32.swiGluBackward(toDouble(dy), toDouble(g), toDouble(u));
                near("swiGluBackward dGate" + sz, dt, host(dg), r32[0], r64[0]);
                near("swiGluBackward dUp" + sz, dt, host(du), r32[1], r64[1]);
            }
        }
    }

    @Test
    void crossEntropy() {
        for (DType dt : floatTypes()) {
            for (int[] nv : cases(new int[][] {{1, 1}, {5, 7}, {45, 2}, {45, 17}, {9, 300}, {45, 1001}}, 256, 4096)) {
                int rows = nv[0], vocab = nv[1];
                float[] logits = stored(dt, TestData.normal(17L * rows + vocab, rows * vocab, 3));
                int[] targets = TestData.ints(rows + vocab, rows, vocab);
                if (rows > 3) {
                    targets[1] = Backend.IGNORE_INDEX;
                    targets[rows - 1] = Backend.IGNORE_INDEX;
                    // Row 3: a tie at the maximum resolves to the lower index, which is the target.
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < vocab; j++) max = Math.max(max, logits[3 * vocab + j]);
                    logits[3 * vocab] = max;
                    logits[3 * vocab + vocab - 1] = max;
                    targets[3] = 0;
                }
                float scale = 1f / 43;
                String what = " " + dt + " rows=" + rows + " V=" + vocab;
                Ref.CrossEntropy ref = Ref.F64.crossEntropy(toDouble(logits), targets, rows, vocab, scale);
                Ref.CrossEntropy naive = Ref.F32.crossEntropy(toDouble(logits), targets, rows, vocab, scale);
                Tensor grad = poisoned(dt, rows, vocab);
                LossStats st =
                        be.crossEntropy(tensor(dt, logits, rows, vocab), be.fromHost(targets, rows), grad, scale);
                assertEquals(ref.count(), st.count(), "count" + what);
                assertEquals(ref.correct(), st.correct(), "correct (ties to the lower index)" + what);
                double lossBound = Math.max(
                        2 * Math.abs(naive.lossSum() - ref.lossSum()), 1e-6 * Math.max(1, Math.abs(ref.lossSum())));
                assertEquals(ref.lossSum(), st.lossSum(), lossBound, "lossSum" + what);
                near("crossEntropy dLogits" + what, dt, host(grad), naive.dLogits(), ref.dLogits());
                // Aliased gradient (written over the logits) and the no-gradient pass give the same statistics.
                Tensor alias = tensor(dt, logits, rows, vocab);
                LossStats st2 = be.crossEntropy(alias, be.fromHost(targets, rows), alias, scale);
                assertArrayEquals(host(grad), host(alias), "dLogits in place" + what);
                LossStats st3 = be.crossEntropy(tensor(dt, logits, rows, vocab), be.fromHost(targets, rows), null, 0f);
                assertEquals(st, st2, "in place" + what);
                assertEquals(st, st3, "without gradient" + what);
            }
        }
    }

    @Test
    void crossEntropyAllRowsIgnored() {
        Tensor grad = poisoned(DType.F32, 2, 3);
        LossStats s =
                be.crossEntropy(f32(TestData.normal(1, 6), 2, 3), be.fromHost(new int[] {-100, -100}, 2), grad, 1f);
        assertEquals(0, s.count());
        assertEquals(0.0, s.lossSum());
        for (float g : host(grad)) assertEquals(0f, g, "ignored rows get a zero gradient");
    }

    @Test
    void adamW() {
        for (int n : sizes(new int[] {1, 7, 17, 257, 50_001}, 1000 * 37)) {
            for (int step : new int[] {1, 7, 10}) {
                float[] p = TestData.normal(n, n), g = TestData.normal(n + 1, n), m = TestData.normal(n + 2, n, 0.1);
                float[] v = TestData.uniform(n + 3, n, 0.001, 0.5);
                AdamWStep s = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
                Tensor tp = f32(p, n), tm = f32(m, n), tv = f32(v, n);
                be.adamW(tp, f32(g, n), tm, tv, s);
                Function<Ref, double[][]> reference = ref -> ref.adamW(
                        toDouble(p),
                        toDouble(g),
                        toDouble(m),
                        toDouble(v),
                        s.lr(),
                        s.beta1(),
                        s.beta2(),
                        s.eps(),
                        s.weightDecay(),
                        step,
                        s.gradScale());
                double[][] r64 = reference.apply(Ref.F64), r32 = reference.apply(Ref.F32);
                String sz = " n=" + n + " step=" + step;
                near("adamW param" + sz, DType.F32, host(tp), r32[0], r64[0]);
                near("adamW m" + sz, DType.F32, host(tm), r32[1], r64[1]);
                near("adamW v" + sz, DType.F32, host(tv), r32[2], r64[2]);
            }
        }
    }

    // ================================================================== MoDE gate and merge

    @Test
    void softmax() {
        for (DType dt : floatTypes()) {
            for (int[] ne : cases(new int[][] {{1, 1}, {23, 2}, {7, 3}, {23, 17}, {23, 40}, {130, 5}}, 256, 3)) {
                int n = ne[0], e = ne[1];
                float[] logits = stored(dt, TestData.normal(n * 10L + e, n * e, 2)),
                        dp = stored(dt, TestData.normal(n + e, n * e));
                String what = " " + dt + " n=" + n + " E=" + e;
                Tensor probs = poisoned(dt, n, e);
                be.softmaxForward(tensor(dt, logits, n, e), probs);
                float[] p = host(probs);
                near(
                        "softmaxForward" + what,
                        dt,
                        p,
                        Ref.F32.softmax(toDouble(logits), n, e),
                        Ref.F64.softmax(toDouble(logits), n, e));
                Tensor inPlace = tensor(dt, logits, n, e);
                be.softmaxForward(inPlace, inPlace);
                assertArrayEquals(p, host(inPlace), "softmaxForward in place" + what);
                Tensor dl = poisoned(dt, n, e);
                be.softmaxBackward(tensor(dt, dp, n, e), probs, dl);
                near(
                        "softmaxBackward" + what,
                        dt,
                        host(dl),
                        Ref.F32.softmaxBackward(toDouble(dp), toDouble(p), n, e),
                        Ref.F64.softmaxBackward(toDouble(dp), toDouble(p), n, e));
                Tensor dAlias = tensor(dt, dp, n, e);
                be.softmaxBackward(dAlias, probs, dAlias);
                assertArrayEquals(host(dl), host(dAlias), "softmaxBackward in place" + what);
            }
        }
    }

    @Test
    void weightedMerge() {
        for (DType dt : floatTypes()) {
            for (int[] s : cases(
                    new int[][] {{1, 1, 1}, {3, 5, 7}, {3, 13, 16}, {3, 13, 33}, {2, 4, 300}, {3, 13, 301}},
                    3,
                    256,
                    256)) {
                int e = s[0], n = s[1], d = s[2];
                float[] br = stored(dt, TestData.normal(e * 100L + n + d, e * n * d));
                float[] pr = stored(dt, TestData.probabilities(n + d, n, e)),
                        dy = stored(dt, TestData.normal(n * 7L + d, n * d));
                String what = " " + dt + " E=" + e + " N=" + n + " D=" + d;
                Tensor out = poisoned(dt, n, d);
                be.weightedMergeForward(tensor(dt, br, e, n, d), tensor(dt, pr, n, e), out);
                near(
                        "weightedMergeForward" + what,
                        dt,
                        host(out),
                        Ref.F32.weightedMergeForward(toDouble(br), toDouble(pr), e, n, d),
                        Ref.F64.weightedMergeForward(toDouble(br), toDouble(pr), e, n, d));
                Tensor db = poisoned(dt, e, n, d), dp = poisoned(dt, n, e);
                be.weightedMergeBackward(tensor(dt, dy, n, d), tensor(dt, br, e, n, d), tensor(dt, pr, n, e), db, dp);
                double[][] g64 = Ref.F64.weightedMergeBackward(toDouble(dy), toDouble(br), toDouble(pr), e, n, d);
                double[][] g32 = Ref.F32.weightedMergeBackward(toDouble(dy), toDouble(br), toDouble(pr), e, n, d);
                near("weightedMergeBackward dBranches" + what, dt, host(db), g32[0], g64[0]);
                near("weightedMergeBackward dProbs" + what, dt, host(dp), g32[1], g64[1]);
                Tensor dpOnly = poisoned(dt, n, e);
                be.weightedMergeBackward(
                        tensor(dt, dy, n, d), tensor(dt, br, e, n, d), tensor(dt, pr, n, e), null, dpOnly);
                assertArrayEquals(host(dp), host(dpOnly), "dProbs without dBranches" + what);
            }
        }
    }

    // ================================================================== sparse routing and data movement

    @Test
    void topKExactWithTies() {
        for (DType dt : floatTypes()) {
            for (int[] s : cases(
                    new int[][] {{1, 1, 1}, {9, 4, 2}, {33, 8, 3}, {19, 6, 1}, {19, 6, 4}, {19, 6, 6}}, 256, 3, 2)) {
                int n = s[0], e = s[1], k = s[2];
                float[] raw = TestData.probabilities(n * 3L + e, n, e);
                if (n == 19) raw[2 * e + 1] = raw[2 * e + 4] = 0.9f; // row 2: index 1 must come before 4
                if (n > 1 && e > 2) raw[e] = raw[e + 2]; // row 1: a tie between columns 0 and 2
                float[] p = stored(dt, raw);
                String what = " " + dt + " n=" + n + " e=" + e + " k=" + k;
                int[] junk = new int[n * k];
                Arrays.fill(junk, -7);
                Tensor idx = be.fromHost(junk, n, k), w = poisoned(dt, n, k);
                be.topK(tensor(dt, p, n, e), k, idx, w);
                Ref.TopK ref = Ref.F64.topK(toDouble(p), n, e, k);
                assertArrayEquals(ref.indices(), hostInts(idx), "topK indices" + what);
                near(
                        "topK weights" + what,
                        dt,
                        host(w),
                        Ref.F32.topK(toDouble(p), n, e, k).weights(),
                        ref.weights());
            }
        }
    }

    @Test
    void gatherAndScatterAddRowsExact() {
        for (DType dt : floatTypes()) {
            for (int[] s : cases(
                    // {37, 1000, 130}: on devices 37 output-row slices, 8 chunks of 128 source rows, 2 column tiles
                    new int[][] {
                        {1, 1, 1}, {5, 9, 3}, {9, 14, 17}, {9, 14, 33}, {40, 7, 130}, {9, 14, 301}, {37, 1000, 130}
                    },
                    256,
                    300,
                    256)) {
                int nsrc = s[0], m = s[1], d = s[2];
                float[] src = stored(dt, TestData.normal(nsrc * 13L + m + d, nsrc * d));
                int[] index = TestData.ints(m + d, m, nsrc);
                index[0] = index[m - 1]; // a repeated row accumulates
                String what = " " + dt + " nsrc=" + nsrc + " m=" + m + " d=" + d;
                Tensor out = poisoned(dt, m, d);
                be.gatherRows(tensor(dt, src, nsrc, d), be.fromHost(index, m), out);
                float[] gathered = host(out);
                assertArrayEquals(
                        TestData.toFloat(Ref.F64.gatherRows(toDouble(src), index, d)), gathered, "gatherRows" + what);
                float[] base = stored(dt, TestData.normal(d * 3L + m, nsrc * d));
                Tensor acc = tensor(dt, base, nsrc, d);
                be.scatterAddRows(tensor(dt, gathered, m, d), be.fromHost(index, m), acc);
                assertArrayEquals(
                        rowOrderScatterAdd(gathered, index, base, d, dt),
                        host(acc),
                        "scatterAddRows (row-order sums)" + what);
            }
        }
    }

    @Test
    void indexErrorsNameTheOpAndValueThenClear() {
        Tensor table = f32(TestData.normal(1, 12), 4, 3);
        rejectsAtCallOrSync(
                "token id 4",
                () -> be.embeddingForward(table, be.fromHost(new int[] {1, 4}, 2), poisoned(DType.F32, 2, 3)));
        rejectsAtCallOrSync(
                "token id -1",
                () -> be.embeddingBackward(be.zeros(1, 3), be.fromHost(new int[] {-1}, 1), be.zeros(4, 3)));
        rejectsAtCallOrSync(
                "gatherRows: row index -1",
                () -> be.gatherRows(table, be.fromHost(new int[] {-1}, 1), poisoned(DType.F32, 1, 3)));
        rejectsAtCallOrSync(
                "scatterAddRows: row index 9",
                () -> be.scatterAddRows(
                        f32(TestData.normal(2, 3), 1, 3), be.fromHost(new int[] {9}, 1), be.zeros(4, 3)));
        rejectsAtCallOrSync(
                "crossEntropy: target 3 at position 1",
                () -> be.crossEntropy(f32(TestData.normal(1, 6), 2, 3), be.fromHost(new int[] {1, 3}, 2), null, 1f));
        Tensor w = f32(TestData.normal(3, 2 * 5 * 3), 2, 5, 3), offsets = be.fromHost(new int[] {0, 2, 4}, 3);
        rejectsAtCallOrSync(
                "groupedGemm: row index 4 at position 2",
                () -> be.groupedGemmForward(
                        table, be.fromHost(new int[] {0, 3, 4, -1}, 4), w, offsets, 0f, poisoned(DType.F32, 4, 5)));
        rejectsAtCallOrSync(
                "groupedGemm: group offset 5 at position 1",
                () -> be.groupedGemmBackwardData(
                        be.zeros(4, 5), w, be.fromHost(new int[] {0, 5, 4}, 3), 0f, poisoned(DType.F32, 4, 3)));
        be.synchronize(); // the errors were cleared: the next calls are fine
        assertEquals(
                2,
                be.crossEntropy(f32(TestData.normal(1, 6), 2, 3), be.fromHost(new int[] {1, 2}, 2), null, 1f)
                        .count());
        assertEquals(12, host(table).length);
        // an index error is reported, not a fault: the device (a GPU context) still computes correctly
        gemm(DType.F32, DType.F32, true, false, 0, false, new int[] {65, 17, 33}, 1f, 0f);
    }

    /**
     * Two bad indices where a grid-stride order reaches the higher position first (with 65535 blocks, block 0 takes
     * rows 0 and 65535, block 2 rows 2 and 65537): every backend reports the lowest offending position, so the
     * message is the same on every run and every backend.
     */
    @Test
    void indexErrorsNameTheLowestOffendingPosition() {
        int m = 65_535 + 4, d = 2;
        int[] index = new int[m];
        for (int i = 0; i < m; i++) index[i] = i % 3;
        index[65_535] = -7;
        index[2] = 9;
        Tensor table = f32(TestData.normal(4, 3 * d), 3, d);
        Tensor ids = be.fromHost(index, m);
        rejectsAtCallOrSync("gatherRows: row index 9 at position 2 ", () -> be.gatherRows(table, ids, be.zeros(m, d)));
        rejectsAtCallOrSync("token id 9 at position 2 ", () -> be.embeddingForward(table, ids, be.zeros(m, d)));
        rejectsAtCallOrSync(
                "scatterAddRows: row index 9 at position 2 ",
                () -> be.scatterAddRows(be.zeros(m, d), ids, be.zeros(3, d)));
        rejectsAtCallOrSync(
                "crossEntropy: target 9 at position 2 ", () -> be.crossEntropy(be.zeros(m, 3), ids, null, 1f));
        be.synchronize(); // cleared
        gemm(DType.F32, DType.F32, false, true, 0, false, new int[] {20, 70, 40}, 1f, 0f);
    }

    // ================================================================== the op contract's rejections

    @Test
    void badShapesAreRejectedWithTheContractMessage() {
        Tensor a = be.zeros(3, 4), b = be.zeros(3, 5), ids = be.allocate(DType.I32, 3);
        rejects("add: shape mismatch f32[3, 4] vs f32[3, 5]", () -> be.add(a, b, a));
        rejects("axpy: shape mismatch", () -> be.axpy(1f, a, b));
        rejects(
                "add: b i32[3, 4] must have the dtype of a f32[3, 4]",
                () -> be.add(a, be.allocate(DType.I32, 3, 4), a));
        rejects("sumRowsAccumulate: out must have 4 elements", () -> be.sumRowsAccumulate(a, be.zeros(5)));
        rejects("embeddingForward: out must be [3, 4]", () -> be.embeddingForward(a, ids, be.zeros(3, 5)));
        rejects("embeddingForward: ids must be I32", () -> be.embeddingForward(a, a, a));
        rejects(
                "rmsNormForward: weight must have 4 elements",
                () -> be.rmsNormForward(a, be.zeros(5), 1e-5f, be.zeros(3, 4), be.zeros(3)));
        rejects(
                "rmsNormForward: eps must be a finite non-negative number",
                () -> be.rmsNormForward(a, be.zeros(4), -1f, be.zeros(3, 4), be.zeros(3)));
        rejects(
                "rmsNormBackward: rstd must have 3 elements",
                () -> be.rmsNormBackward(a, a, be.zeros(4), be.zeros(2), be.zeros(3, 4), be.zeros(4)));
        RopeFrequencies plain4 = RopeFrequencies.plain(1e4f, 4);
        rejects("ropeForward: input must have rank 4", () -> be.ropeForward(a, plain4, 0, a));
        rejects("head dimension 3", () -> be.ropeForward(be.zeros(1, 2, 1, 3), plain4, 0, be.zeros(1, 2, 1, 3)));
        rejects(
                "ropeForward: the RoPE frequency table has 2 pairs but head dimension 6",
                () -> be.ropeForward(be.zeros(1, 2, 1, 6), plain4, 0, be.zeros(1, 2, 1, 6)));
        rejects(
                "ropeBackward: positionOffset must be >= 0",
                () -> be.ropeBackward(be.zeros(1, 2, 1, 4), plain4, -1, be.zeros(1, 2, 1, 4)));
        rejects("swiGluForward: shape mismatch", () -> be.swiGluForward(a, b, a));
        rejects(
                "crossEntropy: targets must have 3 elements",
                () -> be.crossEntropy(a, be.allocate(DType.I32, 2), null, 1f));
        rejects(
                "crossEntropy: logits f32[3, 0] has an empty last dimension",
                () -> be.crossEntropy(be.zeros(3, 0), ids, null, 1f));
        AdamWStep step = new AdamWStep(1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1, 1f);
        rejects("adamW: shape mismatch", () -> be.adamW(a, b, a, a, step));
        rejects("adamW: step must not be null", () -> be.adamW(a, a, a, a, null));
        rejects("softmaxForward: shape mismatch", () -> be.softmaxForward(a, b));
        rejects(
                "weightedMergeForward: probs must be [3, 2]",
                () -> be.weightedMergeForward(be.zeros(2, 3, 4), be.zeros(3, 3), be.zeros(3, 4)));
        rejects(
                "weightedMergeBackward: dOut must be [3, 4]",
                () -> be.weightedMergeBackward(
                        be.zeros(3, 5), be.zeros(2, 3, 4), be.zeros(3, 2), null, be.zeros(3, 2)));
        rejects("topK: k must be in [1, 4]", () -> be.topK(a, 5, be.allocate(DType.I32, 3, 5), be.zeros(3, 5)));
        rejects("topK: indices must be [3, 2]", () -> be.topK(a, 2, be.allocate(DType.I32, 3, 3), be.zeros(3, 2)));
        rejects("gatherRows: out must be [1, 4]", () -> be.gatherRows(a, be.allocate(DType.I32, 1), be.zeros(1, 5)));
        rejects(
                "scatterAddRows: src must be [2, 4]",
                () -> be.scatterAddRows(a, be.allocate(DType.I32, 2), be.zeros(5, 4)));
        rejects("view: cannot view f32[3, 4] as [5]", () -> be.view(a, 5));
        rejects("slice: rows [2, 4) are outside dimension 0", () -> be.slice(a, 2, 2));
        rejects("fromHost: 3 floats do not fill shape [2, 2]", () -> be.fromHost(new float[3], 2, 2));
        rejects("copy: f32[3, 4] -> f32[3, 5] differ in dtype or element count", () -> be.copy(a, b));
        rejects("toHost: host array has 2 elements but f32[3, 4] has 12", () -> be.toHost(a, new float[2]));
        rejects("toHost: src must be I32", () -> be.toHost(a, new int[12]));
        rejects("fill: t must be F32", () -> be.fill(ids, 1f));
        Tensor q = be.zeros(1, 4, 3, 8), k = be.zeros(1, 4, 2, 8), k1 = be.zeros(1, 4, 1, 8);
        rejects(
                "attentionCachedForward: cached length 5 must be at least the 4 new queries and at most the cache"
                        + " capacity 4",
                () -> be.attentionCachedForward(q, k1, k1, 5, be.zeros(1, 4, 3, 8)));
        rejects(
                "attentionForward: query heads 3 must be a multiple of key/value heads 2",
                () -> be.attentionForward(q, k, k, be.zeros(1, 4, 3, 8), be.zeros(1, 3, 4)));
        rejects(
                "attentionForward: lse must be [1, 3, 4]",
                () -> be.attentionForward(q, k1, k1, be.zeros(1, 4, 3, 8), be.zeros(1, 4, 3)));
        rejects(
                "to match q",
                () -> be.attentionForward(
                        q, be.zeros(1, 5, 1, 8), be.zeros(1, 5, 1, 8), be.zeros(1, 4, 3, 8), be.zeros(1, 3, 4)));
        Tensor ga = be.zeros(4, 5), gb = be.zeros(6, 7), gc = be.zeros(4, 7), gb2 = be.zeros(5, 7);
        rejects("gemm: inner dimensions differ", () -> be.gemm(false, false, 1f, ga, gb, 0f, gc));
        rejects("gemm: c must be [4, 7]", () -> be.gemm(false, false, 1f, ga, gb2, 0f, be.zeros(4, 8)));
        rejects(
                "gemm: batch of c",
                () -> be.gemm(false, false, 1f, be.zeros(2, 4, 5), be.zeros(2, 5, 7), 0f, be.zeros(3, 4, 7)));
        rejects("gemm: a must be 2-D or 3-D", () -> be.gemm(false, false, 1f, be.zeros(4), gb2, 0f, gc));
        Tensor gw = be.zeros(2, 5, 4);
        rejects(
                "groupedGemmForward: w must have rank 3",
                () -> be.groupedGemmForward(ga, null, gb, null, 0f, be.zeros(4, 7)));
        rejects(
                "groupedGemmForward: x f32[4, 5] must have 4 columns",
                () -> be.groupedGemmForward(ga, null, gw, null, 0f, be.zeros(4, 5)));
        rejects(
                "groupedGemmForward: 3 rows do not split into 2 equal groups",
                () -> be.groupedGemmForward(a, null, gw, null, 0f, be.zeros(3, 5)));
        rejects(
                "groupedGemmForward: offsets must have 3 elements",
                () -> be.groupedGemmForward(a, null, gw, be.allocate(DType.I32, 2), 0f, be.zeros(3, 5)));
        rejects(
                "groupedSwiGluForward: up must be [3, 5]",
                () -> be.groupedSwiGluForward(
                        a, ids, be.zeros(1, 5, 4), be.zeros(1, 5, 4), null, null, be.zeros(3, 4), be.zeros(3, 5)));
        rejects(
                "groupedGemmBackwardWeight: dw must be F32",
                () -> be.groupedGemmBackwardWeight(
                        be.zeros(4, 5), a, be.allocate(DType.I32, 4), null, 0f, be.allocate(DType.I32, 2, 5, 4)));
    }

    // ================================================================== helpers

    /** The 2x-naive-float32 rule ({@link Tolerance}), for every check of every backend. */
    private void near(String what, DType storage, float[] got, double[] naive32, double[] ref64) {
        Tolerance.assertWithinNaiveBound(what, storage, got, naive32, ref64);
    }

    private static void rejects(String expectedFragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(
                e.getMessage().contains(expectedFragment),
                "message '" + e.getMessage() + "' should contain '" + expectedFragment + "'");
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    /** An index error may surface at the call or, on asynchronous backends, at the next synchronize. */
    private void rejectsAtCallOrSync(String expectedFragment, Executable call) {
        rejects(expectedFragment, () -> {
            call.execute();
            be.synchronize();
        });
    }

    /** out[index[r], :] += src[r, :] for r in order, in float32, each sum rounded to {@code storage}. */
    private float[] rowOrderScatterAdd(float[] src, int[] index, float[] base, int d, DType storage) {
        float[] out = base.clone();
        for (int r = 0; r < index.length; r++) {
            for (int j = 0; j < d; j++) {
                int o = index[r] * d + j;
                out[o] = out[o] + src[r * d + j];
            }
            if (storage != DType.F32) out = stored(storage, out);
        }
        return out;
    }

    /** The values a tensor of {@code dtype} holds for {@code data} (BF16 rounds; read back through the backend). */
    protected final float[] stored(DType dtype, float[] data) {
        if (dtype == DType.F32) return data.clone();
        return host(tensor(dtype, data, data.length));
    }

    protected final Tensor tensor(DType dtype, float[] data, int... shape) {
        Tensor t = be.allocate(dtype, shape);
        be.copyFromHost(data, t);
        return t;
    }

    protected final Tensor f32(float[] data, int... shape) {
        return be.fromHost(data, shape);
    }

    /** An output filled with NaN, so elements an op fails to write are caught. */
    protected final Tensor poisoned(DType dtype, int... shape) {
        Tensor t = be.allocate(dtype, shape);
        float[] nan = new float[Math.toIntExact(t.numel())];
        Arrays.fill(nan, Float.NaN);
        be.copyFromHost(nan, t);
        return t;
    }

    protected final float[] host(Tensor t) {
        return be.toHostFloats(t);
    }

    protected final int[] hostInts(Tensor t) {
        int[] out = new int[Math.toIntExact(t.numel())];
        be.toHost(t, out);
        return out;
    }

    /** The edge cases, plus the model-size case when {@link #modelSizes()}. */
    private int[][] cases(int[][] edge, int... modelCase) {
        if (!modelSizes()) return edge;
        int[][] out = Arrays.copyOf(edge, edge.length + 1);
        out[edge.length] = modelCase;
        return out;
    }

    /** The edge sizes, plus the model size when {@link #modelSizes()}. */
    private int[] sizes(int[] edge, int modelSize) {
        if (!modelSizes()) return edge;
        int[] out = Arrays.copyOf(edge, edge.length + 1);
        out[edge.length] = modelSize;
        return out;
    }

    private static int[] prepend(int d, int[] shape) {
        int[] out = new int[shape.length + 1];
        out[0] = d;
        System.arraycopy(shape, 0, out, 1, shape.length);
        return out;
    }
}
