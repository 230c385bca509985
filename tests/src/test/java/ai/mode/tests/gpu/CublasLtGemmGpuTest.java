package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.DType;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.Gemm;
import ai.mode.tests.reference.TestData;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The cuBLASLt GEMM hook on a real GPU against a float64 reference: float32 and bf16 inputs, float32 and
 * bf16 outputs, every transpose combination, strided batches and a broadcast (stride-0) operand, odd shapes, and
 * operands that are slices at odd offsets of larger allocations.
 */
@Tag("gpu")
class CublasLtGemmGpuTest {

    /** Reference C = alpha op(A) op(B) + beta C0, row-major, per batch (strideB 0 broadcasts B). */
    private static double[] reference(
            boolean ta,
            boolean tb,
            int m,
            int n,
            int k,
            int batch,
            float alpha,
            float[] a,
            float[] b,
            long strideB,
            float beta,
            float[] c0) {
        double[] out = new double[batch * m * n];
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) {
                        double av = ta ? a[bi * m * k + l * m + i] : a[bi * m * k + i * k + l];
                        int bb = (int) (bi * strideB);
                        double bv = tb ? b[bb + j * k + l] : b[bb + l * n + j];
                        s += av * bv;
                    }
                    int at = bi * m * n + i * n + j;
                    out[at] = alpha * s + beta * c0[at];
                }
            }
        }
        return out;
    }

    /** A value outside every GEMM's results here, written around offset slices to see that nothing touches it. */
    private static final float GUARD = 12345f;

    /**
     * Uploads {@code data} stored as {@code t} at element {@code off} of an allocation with {@code off} guard elements
     * before and after it; returns the allocation's address (the slice starts {@code off} elements later).
     */
    private static long uploadSlice(CudaDevice dev, float[] data, DType t, int off) {
        float[] all = new float[data.length + 2 * off];
        Arrays.fill(all, GUARD);
        System.arraycopy(data, 0, all, off, data.length);
        return t == DType.BF16 ? Gpu.upload(dev, Gpu.toBf16(all)) : Gpu.upload(dev, all);
    }

    private static float[] download(CudaDevice dev, long base, DType t, int n) {
        return t == DType.BF16 ? Gpu.fromBf16(Gpu.downloadShorts(dev, base, n)) : Gpu.downloadFloats(dev, base, n);
    }

    /**
     * One GEMM through the hook against float64; with {@code off > 0} every operand and the result are slices starting
     * {@code off} elements into their allocations, and the guards around the result's slice must stay untouched.
     */
    private static void run(
            CudaDevice dev,
            Gemm gemm,
            boolean ta,
            boolean tb,
            int m,
            int n,
            int k,
            int batch,
            boolean broadcastB,
            DType ab,
            DType cType,
            float beta,
            int off) {
        float alpha = 0.5f;
        float[] a = TestData.normal(11 + m, batch * m * k);
        int bCount = broadcastB ? k * n : batch * k * n;
        float[] b = TestData.normal(13 + n, bCount);
        float[] c0 = TestData.normal(17 + k, batch * m * n);
        if (ab == DType.BF16) {
            a = Gpu.fromBf16(Gpu.toBf16(a));
            b = Gpu.fromBf16(Gpu.toBf16(b));
        }
        if (cType == DType.BF16) c0 = Gpu.fromBf16(Gpu.toBf16(c0));
        long strideB = broadcastB ? 0 : (long) k * n;
        double[] want = reference(ta, tb, m, n, k, batch, alpha, a, b, strideB, beta, c0);
        long da = uploadSlice(dev, a, ab, off),
                db = uploadSlice(dev, b, ab, off),
                dc = uploadSlice(dev, c0, cType, off);
        long abBytes = ab.bytes(), cBytes = cType.bytes();
        boolean ran = gemm.run(new Gemm.Problem(
                ta,
                tb,
                m,
                n,
                k,
                alpha,
                da + off * abBytes,
                (long) m * k,
                db + off * abBytes,
                strideB,
                ab,
                beta,
                dc + off * cBytes,
                (long) m * n,
                cType,
                batch));
        String what = ab + "->" + cType + " ta=" + ta + " tb=" + tb + " m=" + m + " n=" + n + " k=" + k + " batch="
                + batch + (broadcastB ? " (b stride 0)" : "") + " offset " + off;
        assertTrue(ran, "cuBLASLt declined " + what);
        float[] all = download(dev, dc, cType, want.length + 2 * off);
        float[] got = Arrays.copyOfRange(all, off, off + want.length);
        for (int i = 0; i < off; i++) {
            assertEquals(GUARD, all[i], what + ": guard before the result at " + i);
            assertEquals(GUARD, all[off + want.length + i], what + ": guard after the result at " + i);
        }
        // float32 accumulation of k products of N(0,1) values: error ~ k * 2^-24 * sqrt(k); bf16 output adds 2^-9
        // relative
        double tol = (cType == DType.BF16 ? 0.0 : 1e-4) * Math.sqrt(k);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got[i] - want[i]);
            double bound =
                    cType == DType.BF16 ? Math.abs(want[i]) / 128 + 1e-3 * Math.sqrt(k) : tol * (1 + Math.abs(want[i]));
            assertTrue(err <= bound, what + " element " + i + ": got " + got[i] + " want " + want[i]);
        }
        dev.free(da);
        dev.free(db);
        dev.free(dc);
    }

    @Test
    void float32AndBf16GemmsMatchFloat64() {
        Gpu.requireGpu();
        try (CudaDevice dev = CudaDevice.open(0)) {
            Optional<Gemm> gemm = dev.vendorGemm();
            assumeTrue(gemm.isPresent(), "cuBLASLt not available (build with -Pcuda-libs or install cuBLAS)");
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    run(dev, gemm.get(), ta, tb, 67, 45, 33, 1, false, DType.F32, DType.F32, 0.25f, 0);
                    run(dev, gemm.get(), ta, tb, 64, 128, 96, 3, false, DType.BF16, DType.F32, 1f, 0);
                    run(dev, gemm.get(), ta, tb, 128, 64, 256, 2, true, DType.BF16, DType.BF16, 0f, 0);
                    run(dev, gemm.get(), ta, tb, 32, 48, 40, 4, true, DType.F32, DType.F32, 0f, 0);
                }
            }
            Gemm.Problem mixed =
                    new Gemm.Problem(false, false, 8, 8, 8, 1f, 256, 0, 512, 0, DType.F32, 0f, 768, 0, DType.BF16, 1);
            assertTrue(!gemm.get().run(mixed), "float32 inputs with a bf16 output are declined");
        }
    }

    /**
     * Operands and result as slices at odd element offsets inside larger allocations (4- or 2-byte aligned instead of
     * a fresh allocation's 256 bytes; cuBLASLt picks its algorithm by alignment), every transpose, every dtype pair it
     * takes, single, batched and stride-0 (broadcast) B; the elements around the result's slice stay untouched.
     */
    @Test
    void offsetSlicesOfLargerAllocations() {
        Gpu.requireGpu();
        try (CudaDevice dev = CudaDevice.open(0)) {
            Optional<Gemm> gemm = dev.vendorGemm();
            assumeTrue(gemm.isPresent(), "cuBLASLt not available");
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    run(dev, gemm.get(), ta, tb, 19, 23, 37, 1, false, DType.F32, DType.F32, 0.5f, 1);
                    run(dev, gemm.get(), ta, tb, 9, 5, 3, 2, true, DType.F32, DType.F32, 0f, 7);
                    run(dev, gemm.get(), ta, tb, 33, 17, 41, 3, true, DType.BF16, DType.F32, 0f, 3);
                    run(dev, gemm.get(), ta, tb, 20, 70, 40, 2, false, DType.BF16, DType.BF16, 1f, 5);
                    run(dev, gemm.get(), ta, tb, 64, 64, 64, 2, true, DType.BF16, DType.BF16, 0f, 1);
                }
            }
        }
    }

    @Test
    void betaZeroIgnoresNaNInC() {
        Gpu.requireGpu();
        try (CudaDevice dev = CudaDevice.open(0)) {
            Optional<Gemm> gemm = dev.vendorGemm();
            assumeTrue(gemm.isPresent(), "cuBLASLt not available");
            int m = 16, n = 24, k = 8;
            float[] a = TestData.normal(1, m * k), b = TestData.normal(2, k * n);
            long da = Gpu.upload(dev, a), db = Gpu.upload(dev, b), dc = Gpu.upload(dev, TestData.nans(m * n));
            assertTrue(gemm.get()
                    .run(new Gemm.Problem(
                            false, false, m, n, k, 1f, da, 0, db, 0, DType.F32, 0f, dc, 0, DType.F32, 1)));
            float[] got = Gpu.downloadFloats(dev, dc, m * n);
            double[] want = reference(false, false, m, n, k, 1, 1f, a, b, 0, 0f, new float[m * n]);
            for (int i = 0; i < got.length; i++) {
                assertTrue(
                        Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), "element " + i + ": " + got[i]);
            }
        }
    }
}
