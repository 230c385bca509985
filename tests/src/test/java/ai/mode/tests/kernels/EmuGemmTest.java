package ai.mode.tests.kernels;

import static ai.mode.tests.kernels.EmuOps.assertKernel;
import static ai.mode.tests.kernels.EmuOps.assertMatchesCpu;
import static ai.mode.tests.kernels.EmuOps.host;
import static ai.mode.tests.kernels.EmuOps.poisoned;
import static ai.mode.tests.kernels.EmuOps.round;
import static ai.mode.tests.kernels.EmuOps.tensor;
import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.device.Device;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.device.DeviceTensor;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.runtime.device.LaunchGeometry;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import java.lang.foreign.Arena;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The GEMM kernels on the emulator: tiled float32 ({@code mode_gemm_tiled_f32}), tiled bf16 storage
 * ({@code _bf16}, {@code _bf16f32}) and WMMA tensor cores ({@code mode_gemm_wmma_*}), for all four
 * transpose combinations, 2-D, batched 3-D and a 2-D b broadcast over the batch, sizes that are not
 * multiples of the 64x64 tile, alpha/beta with beta == 0 on a NaN-poisoned c (must not propagate).
 * Against float64 ({@link Ref}) and, for float32, the cpu backend.
 */
class EmuGemmTest {
    /** {m, n, k}: single element, tile edges, more than one tile in every dimension. */
    private static final int[][] SHAPES = {{1, 1, 1}, {3, 5, 7}, {65, 17, 33}, {20, 70, 40}, {64, 64, 64}};

    @Test
    void float32AllTransposes2d() {
        for (int[] s : SHAPES) {
            for (int tr = 0; tr < 4; tr++)
                check(EmuOps.emu(), DType.F32, DType.F32, (tr & 1) != 0, (tr & 2) != 0, 0, false, s, 1.5f, 0f);
        }
    }

    @Test
    void float32BatchedBroadcastAndBeta() {
        check(EmuOps.emu(), DType.F32, DType.F32, false, true, 3, false, new int[] {9, 66, 13}, 1f, 0.5f);
        check(EmuOps.emu(), DType.F32, DType.F32, true, false, 2, true, new int[] {70, 5, 19}, -0.75f, 0f);
        check(EmuOps.emu(), DType.F32, DType.F32, true, true, 2, false, new int[] {4, 4, 100}, 1f, 2f);
    }

    @Test
    void bf16TensorCores() {
        for (int[] s : new int[][] {{3, 5, 7}, {65, 17, 33}, {20, 70, 40}}) {
            for (int tr = 0; tr < 4; tr++) {
                check(EmuOps.emu(), DType.BF16, DType.F32, (tr & 1) != 0, (tr & 2) != 0, 0, false, s, 1f, 0f);
            }
        }
        check(EmuOps.emu(), DType.BF16, DType.BF16, false, true, 2, true, new int[] {33, 17, 40}, 0.5f, 0f);
        check(EmuOps.emu(), DType.BF16, DType.F32, true, false, 3, false, new int[] {17, 9, 35}, 1f, 1f);
    }

    @Test
    void bf16Tiled() {
        check(EmuOps.emuTiled(), DType.BF16, DType.F32, false, false, 0, false, new int[] {65, 17, 33}, 1f, 0f);
        check(EmuOps.emuTiled(), DType.BF16, DType.BF16, true, true, 2, false, new int[] {7, 70, 20}, 1f, 0.25f);
        check(EmuOps.emuTiled(), DType.BF16, DType.F32, false, true, 2, true, new int[] {9, 5, 3}, 2f, 0f);
    }

    /**
     * The grid swap for more than 65535 row tiles, at a size the emulator runs quickly: the kernels launched
     * directly on a swapped grid (row tiles along x) compute the same tiles, so the same bits, as on the normal
     * grid {@link ai.mode.runtime.device.LaunchGeometry#gemm} gives for this shape.
     */
    @Test
    void swappedGridComputesTheSameBits() {
        int m = 200, n = 70, k = 33; // 4 row tiles, 2 column tiles: the kernels tell the grids apart
        for (String entry : new String[] {"mode_gemm_tiled_f32", "mode_gemm_wmma_bf16f32", "mode_gemm_tiled_bf16"}) {
            DeviceBackend be = EmuOps.emu();
            DType ab = entry.contains("f32") && !entry.contains("bf16") ? DType.F32 : DType.BF16;
            DType ct = entry.endsWith("_bf16") ? DType.BF16 : DType.F32;
            for (int tr = 0; tr < 4; tr++) {
                boolean transA = (tr & 1) != 0, transB = (tr & 2) != 0;
                Tensor a = tensor(be, ab, round(ab, TestData.normal(tr + 1, m * k)), transA ? k : m, transA ? m : k);
                Tensor b = tensor(be, ab, round(ab, TestData.normal(tr + 9, k * n)), transB ? n : k, transB ? k : n);
                LaunchGeometry.Grid normal = LaunchGeometry.gemm(m, n, 1);
                assertEquals(new LaunchGeometry.Grid(2, 4, 1), normal);
                float[][] got = new float[2][];
                for (int swapped = 0; swapped < 2; swapped++) {
                    Tensor c = poisoned(be, ct, m, n);
                    Device dev = be.device();
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
                        int threads = entry.contains("wmma") ? 128 : 256;
                        if (swapped == 0) dev.launch(f, normal.x(), normal.y(), 1, threads, 1, 1, 0, args.build());
                        else dev.launch(f, normal.y(), normal.x(), 1, threads, 1, 1, 0, args.build());
                    }
                    got[swapped] = host(be, c);
                }
                for (float v : got[1])
                    assertTrue(Float.isFinite(v), entry + ": every tile written on the swapped grid");
                assertArrayEquals(got[0], got[1], entry + " transA=" + transA + " transB=" + transB);
            }
        }
    }

    /**
     * One GEMM of op(a) [m,k] by op(b) [k,n] into c [m,n] (per batch when batch > 0; b shared when
     * broadcastB). c starts as NaN when beta == 0, random otherwise.
     */
    private static void check(
            DeviceBackend be,
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
        float[] a = round(ab, TestData.normal(seed, bt * m * k));
        float[] b = round(ab, TestData.normal(seed + 1, bCount * k * n));
        float[] c0 = round(ct, TestData.normal(seed + 2, bt * m * n));
        int[] aShape = transA ? new int[] {k, m} : new int[] {m, k};
        int[] bShape = transB ? new int[] {n, k} : new int[] {k, n};
        int[] cShape = {m, n};
        if (batch > 0) {
            aShape = prepend(batch, aShape);
            if (!broadcastB) bShape = prepend(batch, bShape);
            cShape = prepend(batch, cShape);
        }
        Tensor ta = tensor(be, ab, a, aShape), tb = tensor(be, ab, b, bShape);
        Tensor tc = beta == 0 ? poisoned(be, ct, cShape) : tensor(be, ct, c0, cShape);
        be.gemm(transA, transB, alpha, ta, tb, beta, tc);
        float[] got = host(be, tc);

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
        String what =
                "gemm " + ab + "->" + ct + " " + (transA ? "T" : "N") + (transB ? "T" : "N") + " m=" + m + " n=" + n
                        + " k=" + k + " batch=" + batch + (broadcastB ? " (b broadcast)" : "") + " alpha=" + alpha
                        + " beta=" + beta
                        + " on " + be.name();
        assertKernel(what, ct, got, naive, ref);
        if (ab == DType.F32) {
            Backend cpu = EmuOps.cpu();
            Tensor cc = beta == 0 ? poisoned(cpu, DType.F32, cShape) : EmuOps.f32(cpu, c0, cShape);
            cpu.gemm(transA, transB, alpha, EmuOps.f32(cpu, a, aShape), EmuOps.f32(cpu, b, bShape), beta, cc);
            assertMatchesCpu(what + " vs cpu", got, host(cpu, cc), ref);
        }
    }

    private static int[] prepend(int d, int[] shape) {
        int[] out = new int[shape.length + 1];
        out[0] = d;
        System.arraycopy(shape, 0, out, 1, shape.length);
        return out;
    }
}
