package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.poisoned;
import static ai.mode.tests.cpu.CpuVariants.t;
import static ai.mode.tests.reference.TestData.toDouble;

import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Fused causal attention (forward, backward, grouped-query) against the materialising float64 reference. */
class CpuAttentionTest {

    /**
     * {B, T, H, Hkv, hd} past the cpu attention's blocking (small shapes, GQA, padding, large scores and bad shapes
     * are the conformance suite's, {@link CpuConformanceTest}): odd head dims with GQA group 3, T and H x hd of
     * exactly 256 (score blocks and dO read in place by the GEMMs), T past 256 (V and K packed per block instead
     * of once per head) and past 1024 (the online softmax across key chunks).
     */
    private static final int[][] SHAPES = {
        {1, 130, 3, 3, 17}, {2, 33, 4, 1, 64}, {2, 256, 4, 2, 64}, {1, 300, 2, 1, 16}, {1, 1100, 1, 1, 8},
    };

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void forwardAndBackwardMatchReference(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        long seed = 100;
        for (int[] s : SHAPES) {
            int b = s[0], t = s[1], h = s[2], hkv = s[3], hd = s[4];
            String what = variant + " attention " + java.util.Arrays.toString(s);
            float[] q = TestData.normal(seed++, b * t * h * hd), k = TestData.normal(seed++, b * t * hkv * hd);
            float[] v = TestData.normal(seed++, b * t * hkv * hd), dOut = TestData.normal(seed++, b * t * h * hd);
            Tensor qt = t(be, q, b, t, h, hd), kt = t(be, k, b, t, hkv, hd), vt = t(be, v, b, t, hkv, hd);
            Tensor out = poisoned(be, b, t, h, hd), lse = poisoned(be, b, h, t);
            be.attentionForward(qt, kt, vt, out, lse);
            double[][] ref = Ref.F64.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
            double[][] naive = Ref.F32.attentionForward(toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
            Tolerance.assertWithinNaiveBound(what + " out", host(be, out), naive[0], ref[0]);
            Tolerance.assertWithinNaiveBound(what + " lse", host(be, lse), naive[1], ref[1]);

            Tensor dq = poisoned(be, b, t, h, hd), dk = poisoned(be, b, t, hkv, hd), dv = poisoned(be, b, t, hkv, hd);
            be.attentionBackward(t(be, dOut, b, t, h, hd), qt, kt, vt, out, lse, dq, dk, dv);
            double[][] gRef =
                    Ref.F64.attentionBackward(toDouble(dOut), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
            double[][] gNaive =
                    Ref.F32.attentionBackward(toDouble(dOut), toDouble(q), toDouble(k), toDouble(v), b, t, h, hkv, hd);
            Tolerance.assertWithinNaiveBound(what + " dq", host(be, dq), gNaive[0], gRef[0]);
            Tolerance.assertWithinNaiveBound(what + " dk", host(be, dk), gNaive[1], gRef[1]);
            Tolerance.assertWithinNaiveBound(what + " dv", host(be, dv), gNaive[2], gRef[2]);
        }
    }
}
