package ai.mode.tests.kernels;

import static ai.mode.tests.kernels.EmuOps.assertKernel;
import static ai.mode.tests.kernels.EmuOps.assertMatchesCpu;
import static ai.mode.tests.kernels.EmuOps.f32;
import static ai.mode.tests.kernels.EmuOps.host;
import static ai.mode.tests.kernels.EmuOps.i32;
import static ai.mode.tests.kernels.EmuOps.poisoned;
import static ai.mode.tests.kernels.EmuOps.round;
import static ai.mode.tests.kernels.EmuOps.tensor;
import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import org.junit.jupiter.api.Test;

/**
 * The fused softmax cross-entropy kernel on the emulator: loss sum, arg-max accuracy (ties to the lowest
 * index), ignored rows, the logits gradient into a separate tensor, in place over the logits, or not at all;
 * float32 and bf16 storage; an out-of-range target is an error.
 */
class EmuLossTest {
    @Test
    void lossAccuracyAndGradient() {
        Backend be = EmuOps.emu(), cpu = EmuOps.cpu();
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int[] nv : new int[][] {{1, 1}, {5, 7}, {9, 300}, {3, 1000}}) {
                int n = nv[0], v = nv[1];
                float[] logits = round(dt, TestData.normal(17L * n + v, n * v, 3));
                int[] targets = TestData.ints(n + v, n, v);
                if (n > 2) targets[1] = Backend.IGNORE_INDEX;
                if (n > 3) {
                    // a tie at the maximum: the lower index wins the arg-max
                    int r = 3;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < v; j++) max = Math.max(max, logits[r * v + j]);
                    logits[r * v + 0] = max;
                    logits[r * v + v - 1] = max;
                    targets[r] = 0;
                }
                float scale = 0.25f;
                String what = " " + dt + " n=" + n + " v=" + v;
                Ref.CrossEntropy ref = Ref.F64.crossEntropy(toDouble(logits), targets, n, v, scale);
                Ref.CrossEntropy naive = Ref.F32.crossEntropy(toDouble(logits), targets, n, v, scale);

                Tensor grad = poisoned(be, dt, n, v);
                LossStats s = be.crossEntropy(tensor(be, dt, logits, n, v), i32(be, targets, n), grad, scale);
                assertEquals(ref.count(), s.count(), "count" + what);
                assertEquals(ref.correct(), s.correct(), "correct" + what);
                double lossBound = Math.max(
                        2 * Math.abs(naive.lossSum() - ref.lossSum()), 1e-6 * Math.max(1, Math.abs(ref.lossSum())));
                assertEquals(ref.lossSum(), s.lossSum(), lossBound, "lossSum" + what);
                assertKernel("crossEntropy dLogits" + what, dt, host(be, grad), naive.dLogits(), ref.dLogits());

                Tensor inPlace = tensor(be, dt, logits, n, v);
                LossStats s2 = be.crossEntropy(inPlace, i32(be, targets, n), inPlace, scale);
                assertEquals(s.lossSum(), s2.lossSum(), "in-place loss equals separate loss" + what);
                assertKernel(
                        "crossEntropy dLogits in place" + what, dt, host(be, inPlace), naive.dLogits(), ref.dLogits());

                LossStats s3 = be.crossEntropy(tensor(be, dt, logits, n, v), i32(be, targets, n), null, scale);
                assertEquals(s.lossSum(), s3.lossSum(), "loss without gradient" + what);
                assertEquals(s.correct(), s3.correct());

                if (dt == DType.F32) {
                    Tensor cg = poisoned(cpu, dt, n, v);
                    LossStats c = cpu.crossEntropy(f32(cpu, logits, n, v), i32(cpu, targets, n), cg, scale);
                    assertEquals(c.correct(), s.correct(), "correct vs cpu" + what);
                    assertEquals(
                            c.lossSum(),
                            s.lossSum(),
                            lossBound + Math.abs(c.lossSum() - ref.lossSum()),
                            "loss vs cpu" + what);
                    assertMatchesCpu("dLogits vs cpu" + what, host(be, grad), host(cpu, cg), ref.dLogits());
                }
            }
        }
    }

    @Test
    void allRowsIgnored() {
        Backend be = EmuOps.emu();
        Tensor grad = poisoned(be, DType.F32, 2, 3);
        LossStats s =
                be.crossEntropy(f32(be, TestData.normal(1, 6), 2, 3), i32(be, new int[] {-100, -100}, 2), grad, 1f);
        assertEquals(0, s.count());
        assertEquals(0.0, s.lossSum());
        for (float g : host(be, grad)) assertEquals(0f, g, "ignored rows get a zero gradient");
    }

    @Test
    void targetOutOfRangeIsAnError() {
        Backend be = EmuOps.emu();
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> be.crossEntropy(f32(be, TestData.normal(1, 6), 2, 3), i32(be, new int[] {1, 3}, 2), null, 1f));
        assertTrue(e.getMessage().contains("target 3"), e.getMessage());
        // the error word was cleared: the next call is fine
        assertEquals(
                2,
                be.crossEntropy(f32(be, TestData.normal(1, 6), 2, 3), i32(be, new int[] {1, 2}, 2), null, 1f)
                        .count());
    }
}
