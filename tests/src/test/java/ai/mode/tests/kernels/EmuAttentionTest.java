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
 * The fused causal attention kernels on the emulator: forward (online softmax, lse) and backward (delta,
 * dq, dk/dv recomputed from lse), float32 and bf16 storage, grouped-query heads, every head-dimension tile
 * (32, 64, 128, with head dims that pad them) and sequence lengths that span several query and key tiles.
 * Against the float64 reference (which materialises the score matrix) and the cpu backend.
 */
class EmuAttentionTest {
    /** {B, T, H, Hkv, hd}. */
    private static final int[][] SHAPES = {
        {1, 1, 1, 1, 2}, // one token
        {2, 5, 2, 1, 8}, // GQA, tile 32 padded
        {1, 33, 4, 2, 16}, // two query tiles of 32, two key tiles
        {1, 17, 2, 2, 40}, // tile 64 padded
        {1, 18, 2, 1, 72}, // tile 128 padded, backward tiles of 16
    };

    @Test
    void float32ForwardBackward() {
        for (int[] s : SHAPES) check(DType.F32, s);
    }

    @Test
    void bf16ForwardBackward() {
        check(DType.BF16, SHAPES[1]);
        check(DType.BF16, SHAPES[2]);
        check(DType.BF16, SHAPES[4]);
    }

    private static void check(DType dt, int[] s) {
        Backend be = EmuOps.emu();
        int b = s[0], t = s[1], h = s[2], hkv = s[3], hd = s[4];
        long seed = 1000L * t + 10L * h + hd;
        int nq = b * t * h * hd, nk = b * t * hkv * hd;
        float[] q = round(dt, TestData.normal(seed, nq)), k = round(dt, TestData.normal(seed + 1, nk));
        float[] v = round(dt, TestData.normal(seed + 2, nk)), dy = round(dt, TestData.normal(seed + 3, nq));
        String what = " " + dt + " B=" + b + " T=" + t + " H=" + h + " Hkv=" + hkv + " hd=" + hd;

        Tensor tq = tensor(be, dt, q, b, t, h, hd),
                tk = tensor(be, dt, k, b, t, hkv, hd),
                tv = tensor(be, dt, v, b, t, hkv, hd);
        Tensor out = poisoned(be, dt, b, t, h, hd), lse = poisoned(be, DType.F32, b, h, t);
        be.attentionForward(tq, tk, tv, out, lse);
        double[][] f64 = Ref.F64.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        double[][] f32 = Ref.F32.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        float[] gotOut = host(be, out), gotLse = host(be, lse);
        assertKernel("attentionForward out" + what, dt, gotOut, f32[0], f64[0]);
        assertKernel("attentionForward lse" + what, DType.F32, gotLse, f32[1], f64[1]);

        Tensor dq = poisoned(be, dt, b, t, h, hd),
                dk = poisoned(be, dt, b, t, hkv, hd),
                dv = poisoned(be, dt, b, t, hkv, hd);
        be.attentionBackward(tensor(be, dt, dy, b, t, h, hd), tq, tk, tv, out, lse, dq, dk, dv);
        double[][] g64 =
                Ref.F64.attentionBackward(toDouble(dy), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        double[][] g32 =
                Ref.F32.attentionBackward(toDouble(dy), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
        // bf16 keeps out itself in bf16, which the backward reads (delta): allow the naive error of that too.
        float[] gotDq = host(be, dq), gotDk = host(be, dk), gotDv = host(be, dv);
        assertKernel("attentionBackward dq" + what, dt, gotDq, g32[0], g64[0]);
        assertKernel("attentionBackward dk" + what, dt, gotDk, g32[1], g64[1]);
        assertKernel("attentionBackward dv" + what, dt, gotDv, g32[2], g64[2]);

        if (dt == DType.F32) {
            Backend cpu = EmuOps.cpu();
            Tensor cq = f32(cpu, q, b, t, h, hd), ck = f32(cpu, k, b, t, hkv, hd), cv = f32(cpu, v, b, t, hkv, hd);
            Tensor co = poisoned(cpu, dt, b, t, h, hd), cl = poisoned(cpu, DType.F32, b, h, t);
            cpu.attentionForward(cq, ck, cv, co, cl);
            assertMatchesCpu("attentionForward vs cpu" + what, gotOut, host(cpu, co), f64[0]);
            Tensor cdq = poisoned(cpu, dt, b, t, h, hd),
                    cdk = poisoned(cpu, dt, b, t, hkv, hd),
                    cdv = poisoned(cpu, dt, b, t, hkv, hd);
            cpu.attentionBackward(f32(cpu, dy, b, t, h, hd), cq, ck, cv, co, cl, cdq, cdk, cdv);
            assertMatchesCpu("attentionBackward dq vs cpu" + what, gotDq, host(cpu, cdq), g64[0]);
            assertMatchesCpu("attentionBackward dk vs cpu" + what, gotDk, host(cpu, cdk), g64[1]);
            assertMatchesCpu("attentionBackward dv vs cpu" + what, gotDv, host(cpu, cdv), g64[2]);
        }
    }
}
