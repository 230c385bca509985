package ai.mode.tests.kernels;

import static ai.mode.tests.kernels.EmuOps.assertKernel;
import static ai.mode.tests.kernels.EmuOps.assertMatchesCpu;
import static ai.mode.tests.kernels.EmuOps.f32;
import static ai.mode.tests.kernels.EmuOps.host;
import static ai.mode.tests.kernels.EmuOps.poisoned;
import static ai.mode.tests.kernels.EmuOps.round;
import static ai.mode.tests.kernels.EmuOps.tensor;
import static ai.mode.tests.reference.TestData.toDouble;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import org.junit.jupiter.api.Test;

/**
 * RMSNorm (forward, backward with accumulated weight gradient) and RoPE (forward, backward, in place,
 * position offsets) kernels on the emulator, float32 and bf16 storage, against float64 and the cpu backend.
 */
class EmuNormRopeTest {
    private static final DType[] TYPES = {DType.F32, DType.BF16};

    @Test
    void rmsNormForwardBackward() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        float eps = 1e-5f;
        for (DType dt : TYPES) {
            // 777 x 40: several row chunks of the two-stage dWeight column sum
            for (int[] nd : new int[][] {{1, 1}, {3, 7}, {5, 130}, {2, 300}, {777, 40}}) {
                int n = nd[0], d = nd[1];
                long seed = 100L * n + d;
                float[] x = round(dt, TestData.normal(seed, n * d, 2)), w = TestData.normal(seed + 1, d);
                float[] dy = round(dt, TestData.normal(seed + 2, n * d)), dw0 = TestData.normal(seed + 3, d);
                String sz = " " + dt + " n=" + n + " d=" + d;
                Tensor out = poisoned(be, dt, n, d), rstd = poisoned(be, DType.F32, n);
                be.rmsNormForward(tensor(be, dt, x, n, d), f32(be, w, d), eps, out, rstd);
                double[] ref = Ref.F64.rmsNormForward(toDouble(x), toDouble(w), n, d, eps);
                assertKernel(
                        "rmsNormForward" + sz,
                        dt,
                        host(be, out),
                        Ref.F32.rmsNormForward(toDouble(x), toDouble(w), n, d, eps),
                        ref);
                assertKernel(
                        "rmsNorm rstd" + sz,
                        DType.F32,
                        host(be, rstd),
                        Ref.F32.rmsNormRstd(toDouble(x), n, d, eps),
                        Ref.F64.rmsNormRstd(toDouble(x), n, d, eps));
                Tensor dx = poisoned(be, dt, n, d), dw = f32(be, dw0, d);
                be.rmsNormBackward(tensor(be, dt, dy, n, d), tensor(be, dt, x, n, d), f32(be, w, d), rstd, dx, dw);
                double[][] r64 = Ref.F64.rmsNormBackward(toDouble(dy), toDouble(x), toDouble(w), n, d, eps);
                double[][] r32 = Ref.F32.rmsNormBackward(toDouble(dy), toDouble(x), toDouble(w), n, d, eps);
                assertKernel("rmsNormBackward dx" + sz, dt, host(be, dx), r32[0], r64[0]);
                double[] dwRef = r64[1].clone(), dwNaive = r32[1].clone();
                for (int j = 0; j < d; j++) {
                    dwRef[j] += dw0[j];
                    dwNaive[j] = (float) (dwNaive[j] + dw0[j]);
                }
                assertKernel("rmsNormBackward dWeight (accumulated)" + sz, DType.F32, host(be, dw), dwNaive, dwRef);
                if (dt == DType.F32) {
                    Tensor co = poisoned(cpu, dt, n, d), cr = poisoned(cpu, DType.F32, n);
                    cpu.rmsNormForward(f32(cpu, x, n, d), f32(cpu, w, d), eps, co, cr);
                    assertMatchesCpu("rmsNormForward vs cpu" + sz, host(be, out), host(cpu, co), ref);
                    Tensor cdx = poisoned(cpu, dt, n, d), cdw = f32(cpu, dw0, d);
                    cpu.rmsNormBackward(f32(cpu, dy, n, d), f32(cpu, x, n, d), f32(cpu, w, d), cr, cdx, cdw);
                    assertMatchesCpu("rmsNormBackward dx vs cpu" + sz, host(be, dx), host(cpu, cdx), r64[0]);
                    assertMatchesCpu("rmsNormBackward dWeight vs cpu" + sz, host(be, dw), host(cpu, cdw), dwRef);
                }
            }
        }
    }

    @Test
    void ropeForwardBackwardAndInPlace() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        float theta = 10000f;
        for (DType dt : TYPES) {
            for (int[] s : new int[][] {{1, 1, 1, 2}, {2, 5, 3, 8}, {1, 9, 2, 64}}) {
                int b = s[0], t = s[1], h = s[2], hd = s[3], n = b * t * h * hd;
                for (int offset : new int[] {0, 4093}) {
                    float[] x = round(dt, TestData.normal(n + offset, n));
                    String sz = " " + dt + " shape=" + b + "x" + t + "x" + h + "x" + hd + " offset=" + offset;
                    Tensor out = poisoned(be, dt, b, t, h, hd);
                    be.ropeForward(tensor(be, dt, x, b, t, h, hd), theta, offset, out);
                    double[] ref = Ref.F64.ropeForward(toDouble(x), b, t, h, hd, theta, offset);
                    double[] naive = Ref.F32.ropeForward(toDouble(x), b, t, h, hd, theta, offset);
                    assertKernel("ropeForward" + sz, dt, host(be, out), naive, ref);
                    Tensor inPlace = tensor(be, dt, x, b, t, h, hd);
                    be.ropeBackward(inPlace, theta, offset, inPlace);
                    double[] back = Ref.F64.ropeBackward(toDouble(x), b, t, h, hd, theta, offset);
                    assertKernel(
                            "ropeBackward in place" + sz,
                            dt,
                            host(be, inPlace),
                            Ref.F32.ropeBackward(toDouble(x), b, t, h, hd, theta, offset),
                            back);
                    if (dt == DType.F32) {
                        Tensor co = poisoned(cpu, dt, b, t, h, hd);
                        cpu.ropeForward(f32(cpu, x, b, t, h, hd), theta, offset, co);
                        assertMatchesCpu("ropeForward vs cpu" + sz, host(be, out), host(cpu, co), ref);
                    }
                }
            }
        }
    }
}
