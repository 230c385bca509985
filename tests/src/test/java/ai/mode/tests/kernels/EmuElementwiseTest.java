package ai.mode.tests.kernels;

import static ai.mode.tests.kernels.EmuOps.assertKernel;
import static ai.mode.tests.kernels.EmuOps.assertMatchesCpu;
import static ai.mode.tests.kernels.EmuOps.f32;
import static ai.mode.tests.kernels.EmuOps.host;
import static ai.mode.tests.kernels.EmuOps.poisoned;
import static ai.mode.tests.kernels.EmuOps.round;
import static ai.mode.tests.kernels.EmuOps.tensor;
import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import org.junit.jupiter.api.Test;

/**
 * Elementwise kernels on the emulator (add, axpy, scale, fill, SwiGLU forward/backward, AdamW) and the
 * reductions (float64 sum of squares, column sums), float32 and bf16 storage, against float64 and the cpu
 * backend. Sizes: 1, odd, one more than a block, more than one block.
 */
class EmuElementwiseTest {
    private static final int[] SIZES = {1, 7, 257, 1000};
    private static final DType[] TYPES = {DType.F32, DType.BF16};

    @Test
    void addAxpyScale() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int n : SIZES) {
                float[] a = round(dt, TestData.normal(n, n)), b = round(dt, TestData.normal(n + 1, n));
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
                Tensor out = poisoned(be, dt, n);
                be.add(tensor(be, dt, a, n), tensor(be, dt, b, n), out);
                assertKernel("add" + sz, dt, host(be, out), sum32, sum);
                Tensor y = tensor(be, dt, b, n);
                be.axpy(0.75f, tensor(be, dt, a, n), y);
                assertKernel("axpy" + sz, dt, host(be, y), axpy32, axpy);
                Tensor x = tensor(be, dt, a, n);
                be.scale(x, -1.25f);
                assertKernel("scale" + sz, dt, host(be, x), scaled32, scaled);
                Tensor alias = tensor(be, dt, a, n);
                be.add(alias, alias, alias);
                float[] doubled = host(be, alias);
                for (int i = 0; i < n; i++) assertEquals(2 * a[i], doubled[i], "add in place" + sz);
                if (dt == DType.F32) {
                    Tensor co = poisoned(cpu, dt, n);
                    cpu.add(f32(cpu, a, n), f32(cpu, b, n), co);
                    assertMatchesCpu("add vs cpu" + sz, host(be, out), host(cpu, co), sum);
                }
            }
        }
    }

    @Test
    void fillWritesEveryElement() {
        Backend be = EmuOps.emu();
        for (int n : SIZES) {
            Tensor t = poisoned(be, DType.F32, n);
            be.fill(t, -3.5f);
            for (float v : host(be, t)) assertEquals(-3.5f, v);
        }
    }

    @Test
    void sumSquaresInFloat64() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int n : new int[] {1, 7, 257, 20_000}) {
                float[] x = round(dt, TestData.normal(3L * n, n, 3.0));
                double ref = 0;
                for (float v : x) ref += (double) v * v;
                double got = be.sumSquares(tensor(be, dt, x, n));
                assertEquals(ref, got, 1e-12 * ref, "sumSquares " + dt + " n=" + n);
                assertEquals(got, be.sumSquares(tensor(be, dt, x, n)), "sumSquares is deterministic");
                if (dt == DType.F32)
                    assertEquals(cpu.sumSquares(f32(cpu, x, n)), got, 1e-12 * ref, "sumSquares vs cpu n=" + n);
            }
        }
    }

    @Test
    void sumRowsAccumulates() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            // 1001 x 33 and 700 x 5: several row chunks (the last one short) of the two-stage column sum
            for (int[] rc : new int[][] {{1, 1}, {37, 7}, {9, 33}, {20, 130}, {1001, 33}, {700, 5}}) {
                int rows = rc[0], d = rc[1];
                float[] x = round(dt, TestData.normal(rows * 131L + d, rows * d)), base = TestData.normal(d + 5, d);
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
                Tensor out = f32(be, base, d);
                be.sumRowsAccumulate(tensor(be, dt, x, 1, rows, d), out);
                String what = "sumRowsAccumulate " + dt + " rows=" + rows + " d=" + d;
                assertKernel(what, DType.F32, host(be, out), naive, ref);
                Tensor again = f32(be, base, d);
                be.sumRowsAccumulate(tensor(be, dt, x, 1, rows, d), again);
                assertArrayEquals(host(be, out), host(be, again), what + " is deterministic");
                if (dt == DType.F32) {
                    Tensor co = f32(cpu, base, d);
                    cpu.sumRowsAccumulate(f32(cpu, x, 1, rows, d), co);
                    assertMatchesCpu(what + " vs cpu", host(be, out), host(cpu, co), ref);
                }
            }
        }
    }

    @Test
    void swiGluForwardBackward() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : TYPES) {
            for (int n : SIZES) {
                float[] g = round(dt, TestData.normal(n, n, 2)),
                        u = round(dt, TestData.normal(n + 1, n)),
                        dy = round(dt, TestData.normal(n + 2, n));
                String sz = " " + dt + " n=" + n;
                Tensor out = poisoned(be, dt, n);
                be.swiGluForward(tensor(be, dt, g, n), tensor(be, dt, u, n), out);
                double[] ref = Ref.F64.swiGluForward(toDouble(g), toDouble(u));
                assertKernel(
                        "swiGluForward" + sz, dt, host(be, out), Ref.F32.swiGluForward(toDouble(g), toDouble(u)), ref);
                Tensor dg = poisoned(be, dt, n), du = poisoned(be, dt, n);
                be.swiGluBackward(tensor(be, dt, dy, n), tensor(be, dt, g, n), tensor(be, dt, u, n), dg, du);
                double[][] r64 = Ref.F64.swiGluBackward(toDouble(dy), toDouble(g), toDouble(u));
                double[][] r32 = Ref.F32.swiGluBackward(toDouble(dy), toDouble(g), toDouble(u));
                assertKernel("swiGluBackward dGate" + sz, dt, host(be, dg), r32[0], r64[0]);
                assertKernel("swiGluBackward dUp" + sz, dt, host(be, du), r32[1], r64[1]);
                if (dt == DType.F32) {
                    Tensor co = poisoned(cpu, dt, n);
                    cpu.swiGluForward(f32(cpu, g, n), f32(cpu, u, n), co);
                    assertMatchesCpu("swiGluForward vs cpu" + sz, host(be, out), host(cpu, co), ref);
                }
            }
        }
    }

    @Test
    void adamWStep() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (int n : SIZES) {
            for (int step : new int[] {1, 10}) {
                float[] p = TestData.normal(n, n), g = TestData.normal(n + 1, n), m = TestData.normal(n + 2, n, 0.1f);
                float[] v = TestData.uniform(n + 3, n, 0.01, 0.5);
                AdamWStep s = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
                Tensor tp = f32(be, p, n), tm = f32(be, m, n), tv = f32(be, v, n);
                be.adamW(tp, f32(be, g, n), tm, tv, s);
                double[][] r64 = Ref.F64.adamW(
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
                double[][] r32 = Ref.F32.adamW(
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
                String sz = " n=" + n + " step=" + step;
                assertKernel("adamW param" + sz, DType.F32, host(be, tp), r32[0], r64[0]);
                assertKernel("adamW m" + sz, DType.F32, host(be, tm), r32[1], r64[1]);
                assertKernel("adamW v" + sz, DType.F32, host(be, tv), r32[2], r64[2]);
                Tensor cp = f32(cpu, p, n);
                cpu.adamW(cp, f32(cpu, g, n), f32(cpu, m, n), f32(cpu, v, n), s);
                assertMatchesCpu("adamW vs cpu" + sz, host(be, tp), host(cpu, cp), r64[0]);
            }
        }
    }
}
