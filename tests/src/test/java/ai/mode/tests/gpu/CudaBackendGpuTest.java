package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.cuda.CudaOptions;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.tests.reference.TestData;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every {@link Backend} op on the {@code cuda} backend against the {@code cpu} backend, on shapes larger than
 * the emulator can run (B=2, T=128, D=256, F=704, V=4096, 8 heads over 2 kv heads): float32 throughout,
 * bf16 for the GEMMs and the main activation ops, and the project's GEMM kernel against cuBLASLt (with
 * timings printed for the report). Skips without a GPU.
 */
@Tag("gpu")
class CudaBackendGpuTest {
    private static final int B = 2, T = 128, H = 8, HKV = 2, HD = 32, D = H * HD, F = 704, V = 4096, N = B * T, E = 3;
    private static Backend cpu;
    private static Backend cuda;

    /** One tensor on both backends. */
    record P(Tensor c, Tensor g) {
        Tensor on(Backend b) {
            return b == cpu ? c : g;
        }
    }

    @BeforeEach
    void open() {
        Gpu.requireGpu();
        if (cuda == null) {
            cpu = Backends.create("cpu", 0);
            cuda = Backends.create("cuda", 0);
        }
        assertEquals("cuda", cuda.name());
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
        if (cpu != null) cpu.close();
    }

    private static P f(long seed, int... shape) {
        float[] d = TestData.normal(seed, (int) ai.mode.runtime.Shapes.numel(shape));
        return new P(cpu.fromHost(d, shape), cuda.fromHost(d, shape));
    }

    private static P bf16(long seed, int... shape) {
        float[] d = Gpu.fromBf16(Gpu.toBf16(TestData.normal(seed, (int) ai.mode.runtime.Shapes.numel(shape))));
        Tensor g = cuda.allocate(DType.BF16, shape);
        cuda.copyFromHost(d, g);
        return new P(cpu.fromHost(d, shape), g);
    }

    private static P ints(int[] d, int... shape) {
        return new P(cpu.fromHost(d, shape), cuda.fromHost(d, shape));
    }

    private static P zeros(int... shape) {
        return new P(cpu.zeros(shape), cuda.zeros(shape));
    }

    private static P zerosBf16(int... shape) {
        return new P(cpu.zeros(shape), cuda.allocate(DType.BF16, shape));
    }

    private static void both(Consumer<Backend> op) {
        op.accept(cpu);
        op.accept(cuda);
        cuda.synchronize();
    }

    /** max |cuda - cpu| <= tol * (1 + max |cpu|), and no NaN. */
    private static void check(String what, P p, double tol) {
        float[] c = cpu.toHostFloats(p.c);
        float[] g = cuda.toHostFloats(p.g);
        assertEquals(c.length, g.length);
        double maxRef = 0, maxErr = 0;
        for (int i = 0; i < c.length; i++) {
            assertTrue(!Float.isNaN(g[i]), what + ": NaN at " + i);
            maxRef = Math.max(maxRef, Math.abs(c[i]));
            maxErr = Math.max(maxErr, Math.abs(c[i] - g[i]));
        }
        assertTrue(maxErr <= tol * (1 + maxRef), what + ": max error " + maxErr + " (max |ref| " + maxRef + ")");
    }

    private static void checkInts(String what, P p) {
        int[] c = new int[(int) p.c.numel()], g = new int[c.length];
        cpu.toHost(p.c, c);
        cuda.toHost(p.g, g);
        assertArrayEquals(c, g, what);
    }

    @Test
    void gemmsAllShapesAndTransposes() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int m = 190, n = 130, k = 257;
                P a = f(1, ta ? new int[] {k, m} : new int[] {m, k});
                P b = f(2, tb ? new int[] {n, k} : new int[] {k, n});
                P c = f(3, m, n);
                both(x -> x.gemm(ta, tb, 0.5f, a.on(x), b.on(x), 0.25f, c.on(x)));
                check("gemm f32 ta=" + ta + " tb=" + tb, c, 1e-4);
                P a3 = f(4, ta ? new int[] {3, k, m} : new int[] {3, m, k});
                P b2 = f(5, tb ? new int[] {n, k} : new int[] {k, n});
                P c3 = zeros(3, m, n);
                both(x -> x.gemm(ta, tb, 1f, a3.on(x), b2.on(x), 0f, c3.on(x)));
                check("batched gemm, broadcast b, ta=" + ta + " tb=" + tb, c3, 1e-4);
                P ab = bf16(6, ta ? new int[] {k, m} : new int[] {m, k});
                P bb = bf16(7, tb ? new int[] {n, k} : new int[] {k, n});
                P cf = zeros(m, n);
                P cb = zerosBf16(m, n);
                both(x -> x.gemm(ta, tb, 1f, ab.on(x), bb.on(x), 0f, cf.on(x)));
                check("gemm bf16 -> f32", cf, 1e-4);
                both(x -> x.gemm(ta, tb, 1f, ab.on(x), bb.on(x), 0f, cb.on(x)));
                check("gemm bf16 -> bf16", cb, 1e-2);
            }
        }
    }

    @Test
    void elementwiseAndReductions() {
        P a = f(10, N, D), b = f(11, N, D), out = zeros(N, D);
        both(x -> x.add(a.on(x), b.on(x), out.on(x)));
        check("add", out, 1e-6);
        both(x -> x.axpy(-0.75f, a.on(x), b.on(x)));
        check("axpy", b, 1e-6);
        both(x -> x.scale(a.on(x), 1.5f));
        check("scale", a, 1e-6);
        double sc = cpu.sumSquares(a.c), sg = cuda.sumSquares(a.g);
        assertEquals(sc, sg, 1e-9 * sc, "sumSquares");
        P sums = f(12, D);
        both(x -> x.sumRowsAccumulate(a.on(x), sums.on(x)));
        check("sumRowsAccumulate", sums, 1e-5);
        P copy = zeros(N, D);
        both(x -> x.copy(a.on(x), copy.on(x)));
        check("copy", copy, 0);
        both(x -> x.fill(out.on(x), 0.125f));
        check("fill", out, 0);
        P rows = new P(cpu.slice(a.c, 5, 7), cuda.slice(a.g, 5, 7));
        P rowsCopy = zeros(7, D);
        both(x -> x.copy(rows.on(x), rowsCopy.on(x)));
        check("slice", rowsCopy, 0);
    }

    @Test
    void embeddingNormRopeSwiGlu() {
        int[] ids = TestData.ints(20, N, V);
        P table = f(21, V, D), idx = ints(ids, N), emb = zeros(N, D), dTable = zeros(V, D), dOut = f(22, N, D);
        both(x -> x.embeddingForward(table.on(x), idx.on(x), emb.on(x)));
        check("embedding fwd", emb, 0);
        both(x -> x.embeddingBackward(dOut.on(x), idx.on(x), dTable.on(x)));
        check("embedding bwd", dTable, 1e-5);

        P w = f(23, D), norm = zeros(N, D), rstd = zeros(N), dx = zeros(N, D), dw = zeros(D);
        both(x -> x.rmsNormForward(emb.on(x), w.on(x), 1e-5f, norm.on(x), rstd.on(x)));
        check("rmsnorm fwd", norm, 1e-5);
        check("rmsnorm rstd", rstd, 1e-5);
        both(x -> x.rmsNormBackward(dOut.on(x), emb.on(x), w.on(x), rstd.on(x), dx.on(x), dw.on(x)));
        check("rmsnorm dx", dx, 1e-4);
        check("rmsnorm dweight", dw, 1e-4);

        P q = f(24, B, T, H, HD), rq = zeros(B, T, H, HD), back = zeros(B, T, H, HD);
        both(x -> x.ropeForward(q.on(x), 10000f, 3, rq.on(x)));
        check("rope fwd", rq, 1e-5);
        both(x -> x.ropeBackward(rq.on(x), 10000f, 3, back.on(x)));
        check("rope bwd", back, 1e-5);

        P gate = f(25, N, F),
                up = f(26, N, F),
                act = zeros(N, F),
                dAct = f(27, N, F),
                dg = zeros(N, F),
                du = zeros(N, F);
        both(x -> x.swiGluForward(gate.on(x), up.on(x), act.on(x)));
        check("swiglu fwd", act, 1e-5);
        both(x -> x.swiGluBackward(dAct.on(x), gate.on(x), up.on(x), dg.on(x), du.on(x)));
        check("swiglu dgate", dg, 1e-5);
        check("swiglu dup", du, 1e-5);
    }

    @Test
    void attentionForwardAndBackward() {
        P q = f(30, B, T, H, HD), k = f(31, B, T, HKV, HD), v = f(32, B, T, HKV, HD);
        P out = zeros(B, T, H, HD), lse = zeros(B, H, T);
        both(x -> x.attentionForward(q.on(x), k.on(x), v.on(x), out.on(x), lse.on(x)));
        check("attention out", out, 1e-4);
        check("attention lse", lse, 1e-5);
        P dOut = f(33, B, T, H, HD), dq = zeros(B, T, H, HD), dk = zeros(B, T, HKV, HD), dv = zeros(B, T, HKV, HD);
        both(x -> x.attentionBackward(
                dOut.on(x), q.on(x), k.on(x), v.on(x), out.on(x), lse.on(x), dq.on(x), dk.on(x), dv.on(x)));
        check("attention dq", dq, 1e-4);
        check("attention dk", dk, 1e-4);
        check("attention dv", dv, 1e-4);
    }

    @Test
    void lossOptimizerGateAndRouting() {
        int[] targets = TestData.ints(40, N, V);
        targets[3] = Backend.IGNORE_INDEX;
        targets[17] = Backend.IGNORE_INDEX;
        P logits = f(41, N, V), tgt = ints(targets, N), dLogits = zeros(N, V);
        LossStats[] stats = new LossStats[2];
        both(x -> stats[x == cpu ? 0 : 1] = x.crossEntropy(logits.on(x), tgt.on(x), dLogits.on(x), 1f / N));
        assertEquals(stats[0].count(), stats[1].count());
        assertEquals(stats[0].correct(), stats[1].correct());
        assertEquals(stats[0].lossSum(), stats[1].lossSum(), 1e-5 * Math.abs(stats[0].lossSum()));
        check("cross-entropy dlogits", dLogits, 1e-5);

        P param = f(42, 1000, 37), grad = f(43, 1000, 37), m = zeros(1000, 37), v = zeros(1000, 37);
        for (int step = 1; step <= 3; step++) {
            AdamWStep s = new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            both(x -> x.adamW(param.on(x), grad.on(x), m.on(x), v.on(x), s));
        }
        check("adamw param", param, 1e-6);
        check("adamw m", m, 1e-6);
        check("adamw v", v, 1e-6);

        P gl = f(44, N, E), probs = zeros(N, E), dProbs = f(45, N, E), dgl = zeros(N, E);
        both(x -> x.softmaxForward(gl.on(x), probs.on(x)));
        check("softmax fwd", probs, 1e-6);
        both(x -> x.softmaxBackward(dProbs.on(x), probs.on(x), dgl.on(x)));
        check("softmax bwd", dgl, 1e-6);

        P branches = f(46, E, N, D),
                merged = zeros(N, D),
                dMerged = f(47, N, D),
                dBranches = zeros(E, N, D),
                dp = zeros(N, E);
        both(x -> x.weightedMergeForward(branches.on(x), probs.on(x), merged.on(x)));
        check("merge fwd", merged, 1e-5);
        both(x -> x.weightedMergeBackward(dMerged.on(x), branches.on(x), probs.on(x), dBranches.on(x), dp.on(x)));
        check("merge dbranches", dBranches, 1e-6);
        check("merge dprobs", dp, 1e-4);

        P idx = ints(new int[N * 2], N, 2), wts = zeros(N, 2);
        both(x -> x.topK(probs.on(x), 2, idx.on(x), wts.on(x)));
        checkInts("topK indices", idx);
        check("topK weights", wts, 1e-6);

        int[] rowsIdx = TestData.ints(48, 300, N);
        P src = f(49, N, D), ri = ints(rowsIdx, 300), gathered = zeros(300, D), scattered = zeros(N, D);
        both(x -> x.gatherRows(src.on(x), ri.on(x), gathered.on(x)));
        check("gather", gathered, 0);
        both(x -> x.scatterAddRows(gathered.on(x), ri.on(x), scattered.on(x)));
        check("scatter-add", scattered, 1e-6);
    }

    @Test
    void bf16ActivationsTrackFloat32() {
        P x = bf16(50, N, D),
                w = new P(cpu.fromHost(TestData.normal(51, D), D), cuda.fromHost(TestData.normal(51, D), D));
        P out = zerosBf16(N, D), rstd = zeros(N);
        both(b -> b.rmsNormForward(x.on(b), w.on(b), 1e-5f, out.on(b), rstd.on(b)));
        check("rmsnorm bf16", out, 2e-2);
        P gate = bf16(52, N, F), up = bf16(53, N, F), act = zerosBf16(N, F);
        both(b -> b.swiGluForward(gate.on(b), up.on(b), act.on(b)));
        check("swiglu bf16", act, 2e-2);
        P q = bf16(54, B, T, H, HD), k = bf16(55, B, T, HKV, HD), v = bf16(56, B, T, HKV, HD);
        P ao = zerosBf16(B, T, H, HD), lse = zeros(B, H, T);
        both(b -> b.attentionForward(q.on(b), k.on(b), v.on(b), ao.on(b), lse.on(b)));
        check("attention bf16", ao, 2e-2);
        check("attention lse (bf16 inputs)", lse, 1e-3);
    }

    @Test
    void kernelGemmAgreesWithCublasLtAndIsTimed() {
        int ordinal = BackendSpec.fromEnvironment("cuda", 0).ordinal();
        DeviceBackend kernelOnly =
                new DeviceBackend(CudaDevice.open(ordinal, new CudaOptions(true, false, false)), "cuda");
        try (kernelOnly) {
            CudaDevice vendorDev = (CudaDevice) ((DeviceBackend) cuda).device();
            boolean haveCublas = vendorDev.vendorGemm().isPresent();
            int m = 2048, n = 2048, k = 2048;
            for (DType t : new DType[] {DType.F32, DType.BF16}) {
                float[] ha = TestData.normal(60, m * k), hb = TestData.normal(61, k * n);
                Tensor[] kt = gemmOperands(kernelOnly, t, ha, hb, m, n, k);
                Tensor[] vt = gemmOperands(cuda, t, ha, hb, m, n, k);
                kernelOnly.gemm(false, true, 1f, kt[0], kt[1], 0f, kt[2]);
                cuda.gemm(false, true, 1f, vt[0], vt[1], 0f, vt[2]);
                float[] kr = kernelOnly.toHostFloats(kt[2]), vr = cuda.toHostFloats(vt[2]);
                double maxRef = 0, maxErr = 0;
                for (int i = 0; i < kr.length; i++) {
                    maxRef = Math.max(maxRef, Math.abs(vr[i]));
                    maxErr = Math.max(maxErr, Math.abs(kr[i] - vr[i]));
                }
                assertTrue(maxErr <= 1e-4 * (1 + maxRef), t + " kernel vs vendor GEMM: max error " + maxErr);
                float kernelMs = ((CudaDevice) kernelOnly.device()).timeMillis(() -> {
                            for (int i = 0; i < 10; i++) kernelOnly.gemm(false, true, 1f, kt[0], kt[1], 0f, kt[2]);
                        })
                        / 10;
                float vendorMs = vendorDev.timeMillis(() -> {
                            for (int i = 0; i < 10; i++) cuda.gemm(false, true, 1f, vt[0], vt[1], 0f, vt[2]);
                        })
                        / 10;
                double flop = 2.0 * m * n * k;
                System.out.printf(
                        "GEMM %dx%dx%d %s on %s: kernel %.3f ms (%.1f TFLOP/s), %s %.3f ms (%.1f TFLOP/s)%n",
                        m,
                        n,
                        k,
                        t,
                        vendorDev.name(),
                        kernelMs,
                        flop / kernelMs / 1e9,
                        haveCublas ? "cuBLASLt" : "kernel (no cuBLASLt)",
                        vendorMs,
                        flop / vendorMs / 1e9);
                for (Tensor x : kt) x.close();
                for (Tensor x : vt) x.close();
            }
        }
    }

    private static Tensor[] gemmOperands(Backend be, DType t, float[] a, float[] b, int m, int n, int k) {
        Tensor ta = be.allocate(t, m, k), tb = be.allocate(t, n, k), tc = be.allocate(DType.F32, m, n);
        be.copyFromHost(a, ta);
        be.copyFromHost(b, tb);
        return new Tensor[] {ta, tb, tc};
    }
}
