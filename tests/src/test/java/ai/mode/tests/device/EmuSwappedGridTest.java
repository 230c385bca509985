package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.kernels.KernelLaunch;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.device.Device;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.device.DeviceTensor;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.runtime.device.LaunchGeometry;
import ai.mode.runtime.emu.EmuDevice;
import ai.mode.tests.reference.TestData;
import java.lang.foreign.Arena;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The GEMM grid swap for more than 65535 row tiles ({@link LaunchGeometry#gemm}), at a size the emulator runs
 * quickly: the kernels launched directly on a swapped grid (row tiles along x) write every tile and give the same
 * bits as on the normal grid. An emulator-only check of one launch arrangement; what every backend must compute is
 * the conformance suite's ({@code EmuConformanceTest}). Skips where the emulator library was not built.
 */
class EmuSwappedGridTest {
    @Test
    void swappedGridComputesTheSameBits() {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "emu backend unavailable: " + EmuDevice.unavailableReason());
        int m = 200, n = 70, k = 33; // 4 row tiles, 2 column tiles: the kernels tell the grids apart
        LaunchGeometry.Grid normal = LaunchGeometry.gemm(m, n, 1);
        assertEquals(
                new LaunchGeometry.Grid(
                        LaunchGeometry.tiles(n, LaunchGeometry.GEMM_TILE_N),
                        LaunchGeometry.tiles(m, LaunchGeometry.GEMM_TILE_M),
                        1),
                normal);
        assertTrue(normal.x() != normal.y(), "the shape must tell the two grids apart: " + normal);
        try (DeviceBackend be = new DeviceBackend(EmuDevice.open(), "emu")) {
            for (String entry :
                    new String[] {"mode_gemm_tiled_f32", "mode_gemm_wmma_bf16f32", "mode_gemm_tiled_bf16"}) {
                DType ab = entry.endsWith("_f32") && !entry.contains("bf16") ? DType.F32 : DType.BF16;
                DType ct = entry.endsWith("_bf16") ? DType.BF16 : DType.F32;
                for (int tr = 0; tr < 4; tr++) {
                    boolean transA = (tr & 1) != 0, transB = (tr & 2) != 0;
                    Tensor a = tensor(be, ab, TestData.normal(tr + 1, m * k), transA ? k : m, transA ? m : k);
                    Tensor b = tensor(be, ab, TestData.normal(tr + 9, k * n), transB ? n : k, transB ? k : n);
                    float[][] got = new float[2][];
                    for (int swapped = 0; swapped < 2; swapped++) {
                        Tensor c = be.allocate(ct, m, n);
                        float[] nan = new float[m * n];
                        Arrays.fill(nan, Float.NaN);
                        be.copyFromHost(nan, c);
                        launch(be.device(), entry, transA, transB, m, n, k, a, b, c, normal, swapped == 1);
                        got[swapped] = be.toHostFloats(c);
                    }
                    String what = entry + " transA=" + transA + " transB=" + transB;
                    for (float v : got[1])
                        assertTrue(Float.isFinite(v), what + ": every tile written on the swapped grid");
                    assertArrayEquals(got[0], got[1], what);
                }
            }
        }
    }

    /** c [m, n] = 1.25 * op(a) op(b), launched on {@code grid} or on it with x and y swapped. */
    private static void launch(
            Device dev,
            String entry,
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            Tensor a,
            Tensor b,
            Tensor c,
            LaunchGeometry.Grid grid,
            boolean swap) {
        KernelFunction f = dev.function(entry);
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs args = new KernelArgs(arena, 13)
                    .i32(transA ? 1 : 0)
                    .i32(transB ? 1 : 0)
                    .i32(m)
                    .i32(n)
                    .i32(k)
                    .f32(1.25f)
                    .ptr(((DeviceTensor) a).pointer())
                    .i64(0)
                    .ptr(((DeviceTensor) b).pointer())
                    .i64(0)
                    .f32(0f)
                    .ptr(((DeviceTensor) c).pointer())
                    .i64(0);
            dev.verifyParameters(f, args.signature());
            int threads = KernelLaunch.threads(entry);
            int gx = swap ? grid.y() : grid.x(), gy = swap ? grid.x() : grid.y();
            dev.launch(f, gx, gy, 1, threads, 1, 1, 0, args.build());
        }
    }

    private static Tensor tensor(DeviceBackend be, DType dtype, float[] data, int... shape) {
        Tensor t = be.allocate(dtype, shape);
        be.copyFromHost(data, t);
        return t;
    }
}
