package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.t;
import static ai.mode.tests.cpu.CpuVariants.ti;
import static ai.mode.tests.reference.TestData.toDouble;

import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.tests.reference.FiniteDifference;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import org.junit.jupiter.api.Test;

/**
 * Finite-difference gradient checks. For each op the float64 reference backward is checked against central
 * differences of the float64 reference forward (loss = sum(out * R) for a random R), then the cpu backend's
 * float32 backward is checked against the same numerical gradient.
 */
class CpuGradientCheckTest {
    private static final double H = 1e-6;
    /** float64 analytic vs float64 finite differences. */
    private static final double REF_TOL = 1e-6;
    /** cpu float32 backward vs float64 finite differences (relative to the gradient's scale). */
    private static final double CPU_TOL = 2e-5;

    private final CpuBackend be = CpuVariants.VECTOR;

    private static void check(String what, double[] refAnalytic, double[] numeric, float[] cpu) {
        FiniteDifference.assertGradient(what + " (float64 reference)", refAnalytic, numeric, REF_TOL);
        FiniteDifference.assertGradient(what + " (cpu float32)", toDouble(cpu), numeric, CPU_TOL);
    }

    @Test
    void attention() {
        int b = 1, t = 6, h = 4, hkv = 2, hd = 4;
        double[] q = toDouble(TestData.normal(1, b * t * h * hd)), k = toDouble(TestData.normal(2, b * t * hkv * hd));
        double[] v = toDouble(TestData.normal(3, b * t * hkv * hd)), r = toDouble(TestData.normal(4, b * t * h * hd));
        double[][] g = Ref.F64.attentionBackward(r, q, k, v, b, t, h, hkv, hd);
        double[] nq = FiniteDifference.gradient(
                x -> FiniteDifference.dot(Ref.F64.attentionForward(x, k, v, b, t, h, hkv, hd)[0], r), q, H);
        double[] nk = FiniteDifference.gradient(
                x -> FiniteDifference.dot(Ref.F64.attentionForward(q, x, v, b, t, h, hkv, hd)[0], r), k, H);
        double[] nv = FiniteDifference.gradient(
                x -> FiniteDifference.dot(Ref.F64.attentionForward(q, k, x, b, t, h, hkv, hd)[0], r), v, H);

        Tensor qt = t(be, TestData.toFloat(q), b, t, h, hd), kt = t(be, TestData.toFloat(k), b, t, hkv, hd);
        Tensor vt = t(be, TestData.toFloat(v), b, t, hkv, hd);
        Tensor out = be.zeros(b, t, h, hd), lse = be.zeros(b, h, t);
        be.attentionForward(qt, kt, vt, out, lse);
        Tensor dq = be.zeros(b, t, h, hd), dk = be.zeros(b, t, hkv, hd), dv = be.zeros(b, t, hkv, hd);
        be.attentionBackward(t(be, TestData.toFloat(r), b, t, h, hd), qt, kt, vt, out, lse, dq, dk, dv);
        check("attention dq", g[0], nq, host(be, dq));
        check("attention dk", g[1], nk, host(be, dk));
        check("attention dv", g[2], nv, host(be, dv));
    }

    @Test
    void rmsNorm() {
        int rows = 3, d = 19;
        double eps = 1e-5;
        double[] x = toDouble(TestData.normal(5, rows * d)),
                w = toDouble(TestData.normal(6, d)),
                r = toDouble(TestData.normal(7, rows * d));
        double[][] g = Ref.F64.rmsNormBackward(r, x, w, rows, d, eps);
        double[] nx = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.rmsNormForward(z, w, rows, d, eps), r), x, H);
        double[] nw = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.rmsNormForward(x, z, rows, d, eps), r), w, H);
        Tensor xt = t(be, TestData.toFloat(x), rows, d), wt = t(be, TestData.toFloat(w), d);
        Tensor out = be.zeros(rows, d), rstd = be.zeros(rows);
        be.rmsNormForward(xt, wt, (float) eps, out, rstd);
        Tensor dx = be.zeros(rows, d), dw = be.zeros(d);
        be.rmsNormBackward(t(be, TestData.toFloat(r), rows, d), xt, wt, rstd, dx, dw);
        check("rmsnorm dx", g[0], nx, host(be, dx));
        check("rmsnorm dWeight", g[1], nw, host(be, dw));
    }

    @Test
    void rope() {
        int b = 2, t = 3, h = 2, hd = 6, offset = 5;
        double[] invFreq = {0.7, 0.002, 0.05}; // not a power series, as scaled RoPE makes
        double[] x = toDouble(TestData.normal(8, b * t * h * hd)), r = toDouble(TestData.normal(9, b * t * h * hd));
        double[] g = Ref.F64.ropeBackward(r, b, t, h, hd, invFreq, offset);
        double[] nx = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.ropeForward(z, b, t, h, hd, invFreq, offset), r), x, H);
        Tensor dx = be.zeros(b, t, h, hd);
        be.ropeBackward(t(be, TestData.toFloat(r), b, t, h, hd), RopeFrequencies.of(invFreq), offset, dx);
        check("rope dx", g, nx, host(be, dx));
    }

    @Test
    void swiGlu() {
        int n = 23;
        double[] gate = toDouble(TestData.normal(10, n, 2)),
                up = toDouble(TestData.normal(11, n)),
                r = toDouble(TestData.normal(12, n));
        double[][] g = Ref.F64.swiGluBackward(r, gate, up);
        double[] ng = FiniteDifference.gradient(z -> FiniteDifference.dot(Ref.F64.swiGluForward(z, up), r), gate, H);
        double[] nu = FiniteDifference.gradient(z -> FiniteDifference.dot(Ref.F64.swiGluForward(gate, z), r), up, H);
        Tensor dg = be.zeros(n), du = be.zeros(n);
        be.swiGluBackward(
                t(be, TestData.toFloat(r), n),
                t(be, TestData.toFloat(gate), n),
                t(be, TestData.toFloat(up), n),
                dg,
                du);
        check("swiglu dGate", g[0], ng, host(be, dg));
        check("swiglu dUp", g[1], nu, host(be, du));
    }

    @Test
    void crossEntropy() {
        int rows = 4, vocab = 9;
        double scale = 0.25;
        double[] logits = toDouble(TestData.normal(13, rows * vocab, 2));
        int[] targets = {3, Ref.IGNORE_INDEX, 0, 8};
        double[] g = Ref.F64.crossEntropy(logits, targets, rows, vocab, scale).dLogits();
        double[] nl = FiniteDifference.gradient(
                z -> Ref.F64.crossEntropy(z, targets, rows, vocab, scale).lossSum() * scale, logits, H);
        Tensor dl = be.zeros(rows, vocab);
        be.crossEntropy(t(be, TestData.toFloat(logits), rows, vocab), ti(be, targets, rows), dl, (float) scale);
        check("cross-entropy dLogits", g, nl, host(be, dl));
    }

    @Test
    void softmaxAndMerge() {
        int n = 3, e = 4, d = 5;
        double[] logits = toDouble(TestData.normal(14, n * e)), r = toDouble(TestData.normal(15, n * e));
        double[] p = Ref.F64.softmax(logits, n, e);
        double[] g = Ref.F64.softmaxBackward(r, p, n, e);
        double[] nl = FiniteDifference.gradient(z -> FiniteDifference.dot(Ref.F64.softmax(z, n, e), r), logits, H);
        Tensor dl = be.zeros(n, e);
        be.softmaxBackward(t(be, TestData.toFloat(r), n, e), t(be, TestData.toFloat(p), n, e), dl);
        check("softmax dLogits", g, nl, host(be, dl));

        double[] br = toDouble(TestData.normal(16, e * n * d)), ro = toDouble(TestData.normal(17, n * d));
        double[][] gm = Ref.F64.weightedMergeBackward(ro, br, p, e, n, d);
        double[] nb = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.weightedMergeForward(z, p, e, n, d), ro), br, H);
        double[] np = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.weightedMergeForward(br, z, e, n, d), ro), p.clone(), H);
        Tensor db = be.zeros(e, n, d), dp = be.zeros(n, e);
        be.weightedMergeBackward(
                t(be, TestData.toFloat(ro), n, d),
                t(be, TestData.toFloat(br), e, n, d),
                t(be, TestData.toFloat(p), n, e),
                db,
                dp);
        check("merge dBranches", gm[0], nb, host(be, db));
        check("merge dProbs", gm[1], np, host(be, dp));
    }

    @Test
    void gemmBothOperands() {
        int m = 4, n = 5, k = 3;
        double[] a = toDouble(TestData.normal(18, m * k)),
                b = toDouble(TestData.normal(19, k * n)),
                r = toDouble(TestData.normal(20, m * n));
        // dA = R B^T and dB = A^T R, computed by the backend's GEMM with transposes.
        double[] na = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.gemm(false, false, m, n, k, 1, z, b, 0, null), r), a, H);
        double[] nb = FiniteDifference.gradient(
                z -> FiniteDifference.dot(Ref.F64.gemm(false, false, m, n, k, 1, a, z, 0, null), r), b, H);
        Tensor rt = t(be, TestData.toFloat(r), m, n),
                at = t(be, TestData.toFloat(a), m, k),
                bt = t(be, TestData.toFloat(b), k, n);
        Tensor da = be.zeros(m, k), db = be.zeros(k, n);
        be.gemm(false, true, 1f, rt, bt, 0f, da);
        be.gemm(true, false, 1f, at, rt, 0f, db);
        FiniteDifference.assertGradient("gemm dA", toDouble(host(be, da)), na, CPU_TOL);
        FiniteDifference.assertGradient("gemm dB", toDouble(host(be, db)), nb, CPU_TOL);
        Tolerance.assertClose(
                "gemm dA vs reference", host(be, da), Ref.F64.gemm(false, true, m, k, n, 1, r, b, 0, null), 1e-5, 1e-5);
    }
}
