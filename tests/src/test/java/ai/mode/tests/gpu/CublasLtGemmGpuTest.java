package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.DType;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.Gemm;
import ai.mode.tests.reference.TestData;
import java.util.Optional;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The cuBLASLt GEMM hook on a real GPU against a float64 reference: float32 and bf16 inputs, float32 and
 * bf16 outputs, every transpose combination, strided batches and a broadcast operand, odd shapes.
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
            float beta) {
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
        long da = ab == DType.BF16 ? Gpu.upload(dev, Gpu.toBf16(a)) : Gpu.upload(dev, a);
        long db = ab == DType.BF16 ? Gpu.upload(dev, Gpu.toBf16(b)) : Gpu.upload(dev, b);
        long dc = cType == DType.BF16 ? Gpu.upload(dev, Gpu.toBf16(c0)) : Gpu.upload(dev, c0);
        boolean ran = gemm.run(new Gemm.Problem(
                ta, tb, m, n, k, alpha, da, (long) m * k, db, strideB, ab, beta, dc, (long) m * n, cType, batch));
        assertTrue(ran, "cuBLASLt declined " + ab + "->" + cType + " m=" + m + " n=" + n + " k=" + k);
        float[] got = cType == DType.BF16
                ? Gpu.fromBf16(Gpu.downloadShorts(dev, dc, want.length))
                : Gpu.downloadFloats(dev, dc, want.length);
        // float32 accumulation of k products of N(0,1) values: error ~ k * 2^-24 * sqrt(k); bf16 output adds 2^-9
        // relative
        double tol = (cType == DType.BF16 ? 0.0 : 1e-4) * Math.sqrt(k);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got[i] - want[i]);
            double bound =
                    cType == DType.BF16 ? Math.abs(want[i]) / 128 + 1e-3 * Math.sqrt(k) : tol * (1 + Math.abs(want[i]));
            assertTrue(
                    err <= bound,
                    ab + "->" + cType + " ta=" + ta + " tb=" + tb + " batch=" + batch + " element " + i + ": got "
                            + got[i] + " want " + want[i]);
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
                    run(dev, gemm.get(), ta, tb, 67, 45, 33, 1, false, DType.F32, DType.F32, 0.25f);
                    run(dev, gemm.get(), ta, tb, 64, 128, 96, 3, false, DType.BF16, DType.F32, 1f);
                    run(dev, gemm.get(), ta, tb, 128, 64, 256, 2, true, DType.BF16, DType.BF16, 0f);
                    run(dev, gemm.get(), ta, tb, 32, 48, 40, 4, true, DType.F32, DType.F32, 0f);
                }
            }
            Gemm.Problem mixed =
                    new Gemm.Problem(false, false, 8, 8, 8, 1f, 256, 0, 512, 0, DType.F32, 0f, 768, 0, DType.BF16, 1);
            assertTrue(!gemm.get().run(mixed), "float32 inputs with a bf16 output are declined");
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
