package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.cuda.CudaOptions;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.tests.reference.TestData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What the {@code cuda} backend adds to the conformance suite ({@link CudaConformanceTest}, every op against float64
 * at edge and model sizes): the project's GEMM kernel against cuBLASLt at 2048^3, float32 and bf16, with timings
 * printed for the report. Skips without a GPU.
 */
@Tag("gpu")
class CudaBackendGpuTest {
    private static Backend cuda;

    @BeforeEach
    void open() {
        Gpu.requireGpu();
        if (cuda == null) cuda = Backends.create("cuda", 0);
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
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
