package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Mkl;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.OpShapes;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import ai.mode.tests.reference.TestData;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The op contract's small GEMMs ({@link OpShapes#SMALL_GEMM_WORK}) give the same bits on every backend and provider:
 * the cpu backend's vector and scalar paths, with our SGEMM and with oneMKL's, and the emulated device with either
 * GEMM kernel, every transpose, batched with a shared B, with alpha and beta; and a GEMM one multiply-add larger
 * does not (the providers' own orders take over), so the test would notice the rule not applying.
 */
class SmallGemmBitsTest {

    private static Map<String, Backend> backends() {
        Map<String, Backend> out = new LinkedHashMap<>();
        out.put("cpu vector", new CpuBackend(2, true, CpuGemm.VECTOR));
        out.put("cpu scalar", new CpuBackend(2, false, CpuGemm.VECTOR));
        if (Mkl.unavailableReason().isEmpty()) out.put("cpu oneMKL", new CpuBackend(2, true, CpuGemm.MKL));
        assumeTrue(EmuDevice.libraryAvailable(), () -> "no emulator library: " + EmuDevice.unavailableReason());
        out.put("emu tiled", new DeviceBackend(EmuDevice.open(), "emu", false));
        out.put("emu wmma", new DeviceBackend(EmuDevice.open(), "emu", true));
        return out;
    }

    /** c of one GEMM on {@code be}: a [batch?, op(A)], b shared, c starting from c0 (read when beta != 0). */
    private static float[] gemm(
            Backend be, boolean ta, boolean tb, int batch, int m, int n, int k, float alpha, float beta) {
        long seed = 7L * m + 3L * n + k + (ta ? 100 : 0) + (tb ? 200 : 0);
        int items = Math.max(1, batch);
        float[] a = TestData.normal(seed, items * m * k), b = TestData.normal(seed + 1, k * n);
        float[] c0 = TestData.normal(seed + 2, items * m * n);
        int[] aShape = ta ? new int[] {k, m} : new int[] {m, k}, bShape = tb ? new int[] {n, k} : new int[] {k, n};
        Tensor ta3 = be.allocate(DType.F32, batch > 0 ? new int[] {batch, aShape[0], aShape[1]} : aShape);
        Tensor tb2 = be.allocate(DType.F32, bShape);
        Tensor tc = be.allocate(DType.F32, batch > 0 ? new int[] {batch, m, n} : new int[] {m, n});
        be.copyFromHost(a, ta3);
        be.copyFromHost(b, tb2);
        be.copyFromHost(c0, tc);
        be.gemm(ta, tb, alpha, ta3, tb2, beta, tc);
        return be.toHostFloats(tc);
    }

    @Test
    void smallGemmsGiveTheSameBitsEverywhere() {
        Map<String, Backend> bes = backends();
        try {
            int[][] shapes = {{5, 1, 9}, {1, 7, 3}, {3, 5, 7}, {9, 5, 3}, {16, 16, 16}};
            for (int[] s : shapes) {
                assertTrue(OpShapes.smallGemm(s[0], s[1], s[2]));
                for (int tr = 0; tr < 4; tr++) {
                    boolean ta = (tr & 1) != 0, tb = (tr & 2) != 0;
                    for (int batch : new int[] {0, 3}) {
                        float alpha = batch == 0 ? 1f : -0.75f, beta = batch == 0 ? 0f : 0.5f;
                        float[] first = null;
                        String firstName = null;
                        for (Map.Entry<String, Backend> e : bes.entrySet()) {
                            float[] got = gemm(e.getValue(), ta, tb, batch, s[0], s[1], s[2], alpha, beta);
                            if (first == null) {
                                first = got;
                                firstName = e.getKey();
                            } else {
                                assertArrayEquals(
                                        first,
                                        got,
                                        e.getKey() + " vs " + firstName + ": " + s[0] + "x" + s[1] + "x" + s[2] + " ta="
                                                + ta + " tb=" + tb + " batch=" + batch);
                            }
                        }
                    }
                }
            }
            // one multiply-add more: each provider sums in its own float32 order, and some element differs
            List<float[]> large = new ArrayList<>();
            for (Backend be : bes.values()) large.add(gemm(be, true, false, 0, 16, 16, 17, 1f, 0f));
            boolean anyDiffers = false;
            for (float[] x : large) anyDiffers |= !java.util.Arrays.equals(x, large.getFirst());
            assertTrue(anyDiffers, "above the small size the backends' own float32 sums should show");
        } finally {
            bes.values().forEach(Backend::close);
        }
    }
}
