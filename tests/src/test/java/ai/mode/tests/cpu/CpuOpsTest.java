package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.hostInts;
import static ai.mode.tests.cpu.CpuVariants.poisoned;
import static ai.mode.tests.cpu.CpuVariants.t;
import static ai.mode.tests.cpu.CpuVariants.ti;
import static ai.mode.tests.reference.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every non-GEMM, non-attention op of the cpu backend, forward and backward, against {@link Ref} on random
 * inputs of awkward sizes (1, odd, not multiples of the vector width, larger than one task). Outputs that
 * must be overwritten start as NaN.
 */
class CpuOpsTest {

    /** Row widths exercised: 1, odd, vector width +- 1, more than one 128-column task. */
    private static final int[] WIDTHS = {1, 7, 15, 16, 17, 33, 130, 301};

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void elementwiseAndReductions(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int n : new int[] {1, 17, 1000, 70_001}) {
            float[] a = TestData.normal(n, n), b = TestData.normal(n + 1, n);
            Tensor out = poisoned(be, n);
            be.add(t(be, a, n), t(be, b, n), out);
            double[] sum = new double[n], axpy = new double[n], scaled = new double[n];
            double sq = 0;
            for (int i = 0; i < n; i++) {
                sum[i] = (double) a[i] + b[i];
                axpy[i] = b[i] + 0.75 * (double) a[i];
                scaled[i] = a[i] * -1.25;
                sq += (double) a[i] * a[i];
            }
            Tolerance.assertClose("add n=" + n, host(be, out), sum, 0, 1e-7);
            Tensor y = t(be, b, n);
            be.axpy(0.75f, t(be, a, n), y);
            Tolerance.assertClose("axpy n=" + n, host(be, y), axpy, 1e-6, 1e-6);
            Tensor x = t(be, a, n);
            be.scale(x, -1.25f);
            Tolerance.assertClose("scale n=" + n, host(be, x), scaled, 0, 1e-7);
            assertEquals(sq, be.sumSquares(t(be, a, n)), 1e-12 * Math.max(1, sq), "sumSquares n=" + n);
            Tensor alias = t(be, a, n);
            be.add(alias, alias, alias);
            float[] doubled = host(be, alias);
            for (int i = 0; i < n; i++) assertEquals(2 * a[i], doubled[i], "add in place doubles");
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void sumRowsAccumulates(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int d : WIDTHS) {
            int rows = 37;
            float[] x = TestData.normal(d, rows * d), base = TestData.normal(d + 5, d);
            Tensor out = t(be, base, d);
            be.sumRowsAccumulate(t(be, x, 1, rows, d), out);
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
            Tolerance.assertWithinNaiveBound("sumRows d=" + d, host(be, out), naive, ref);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void memoryOps(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        float[] data = TestData.normal(3, 24);
        Tensor x = t(be, data, 4, 6);
        assertArrayEquals(data, host(be, x));
        Tensor s = be.slice(x, 1, 2);
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 6, 18), host(be, s));
        Tensor v = be.view(s, 3, 4);
        be.fill(v, 2f);
        float[] after = host(be, x);
        for (int i = 0; i < 24; i++)
            assertEquals(i >= 6 && i < 18 ? 2f : data[i], after[i], "fill through a view of a slice");
        Tensor y = be.zeros(2, 12);
        be.copy(x, y);
        assertArrayEquals(after, host(be, y));
        be.copyFromHost(data, y);
        assertArrayEquals(data, host(be, y));
        int[] ids = {3, -1, 7};
        assertArrayEquals(ids, hostInts(be, ti(be, ids, 3)));
        Tensor z = be.allocate(ai.mode.runtime.DType.F32, 5);
        assertArrayEquals(new float[5], host(be, z));
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void embedding(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int d : WIDTHS) {
            int vocab = 11, n = 29;
            float[] table = TestData.normal(d, vocab * d);
            int[] ids = TestData.ints(d + 1, n, vocab);
            ids[0] = ids[n - 1]; // a repeated id must accumulate
            Tensor out = poisoned(be, 1, n, d);
            be.embeddingForward(t(be, table, vocab, d), ti(be, ids, 1, n), out);
            Tolerance.assertClose(
                    "embedding forward d=" + d, host(be, out), Ref.F64.embeddingForward(toDouble(table), ids, d), 0, 0);
            float[] dOut = TestData.normal(d + 2, n * d), base = TestData.normal(d + 3, vocab * d);
            Tensor dTable = t(be, base, vocab, d);
            be.embeddingBackward(t(be, dOut, n, d), ti(be, ids, n), dTable);
            double[] g = Ref.F64.embeddingBackward(toDouble(dOut), ids, vocab, d);
            double[] gn = Ref.F32.embeddingBackward(toDouble(dOut), ids, vocab, d);
            double[] ref = new double[vocab * d], naive = new double[vocab * d];
            for (int i = 0; i < ref.length; i++) {
                ref[i] = base[i] + g[i];
                naive[i] = (float) (base[i] + (float) gn[i]);
            }
            Tolerance.assertWithinNaiveBound("embedding backward d=" + d, host(be, dTable), naive, ref);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void rmsNorm(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int d : WIDTHS) {
            int rows = 70; // more than one 32-row partial of the weight gradient
            float eps = 1e-5f;
            float[] x = TestData.normal(d, rows * d),
                    w = TestData.normal(d + 1, d),
                    dOut = TestData.normal(d + 2, rows * d);
            float[] dwBase = TestData.normal(d + 3, d);
            Tensor out = poisoned(be, rows, d), rstd = poisoned(be, rows);
            Tensor xt = t(be, x, rows, d), wt = t(be, w, d);
            be.rmsNormForward(xt, wt, eps, out, rstd);
            Tolerance.assertWithinNaiveBound(
                    "rmsnorm forward d=" + d,
                    host(be, out),
                    Ref.F32.rmsNormForward(toDouble(x), toDouble(w), rows, d, eps),
                    Ref.F64.rmsNormForward(toDouble(x), toDouble(w), rows, d, eps));
            Tolerance.assertWithinNaiveBound(
                    "rmsnorm rstd d=" + d,
                    host(be, rstd),
                    Ref.F32.rmsNormRstd(toDouble(x), rows, d, eps),
                    Ref.F64.rmsNormRstd(toDouble(x), rows, d, eps));
            Tensor dx = poisoned(be, rows, d), dw = t(be, dwBase, d);
            be.rmsNormBackward(t(be, dOut, rows, d), xt, wt, rstd, dx, dw);
            double[][] ref = Ref.F64.rmsNormBackward(toDouble(dOut), toDouble(x), toDouble(w), rows, d, eps);
            double[][] naive = Ref.F32.rmsNormBackward(toDouble(dOut), toDouble(x), toDouble(w), rows, d, eps);
            Tolerance.assertWithinNaiveBound("rmsnorm dx d=" + d, host(be, dx), naive[0], ref[0]);
            double[] dwRef = new double[d], dwNaive = new double[d];
            for (int j = 0; j < d; j++) {
                dwRef[j] = dwBase[j] + ref[1][j];
                dwNaive[j] = (float) (dwBase[j] + (float) naive[1][j]);
            }
            Tolerance.assertWithinNaiveBound("rmsnorm dWeight d=" + d, host(be, dw), dwNaive, dwRef);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void rope(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        int[][] shapes = {{1, 1, 1, 2}, {2, 5, 3, 8}, {1, 9, 2, 34}, {2, 3, 1, 64}};
        for (int[] s : shapes) {
            int b = s[0], t = s[1], h = s[2], hd = s[3], n = b * t * h * hd;
            for (int offset : new int[] {0, 17}) {
                float theta = 10000f;
                float[] x = TestData.normal(n + offset, n);
                Tensor out = poisoned(be, b, t, h, hd);
                be.ropeForward(t(be, x, b, t, h, hd), theta, offset, out);
                String what = "rope " + java.util.Arrays.toString(s) + " offset " + offset;
                Tolerance.assertWithinNaiveBound(
                        what + " forward",
                        host(be, out),
                        Ref.F32.ropeForward(toDouble(x), b, t, h, hd, theta, offset),
                        Ref.F64.ropeForward(toDouble(x), b, t, h, hd, theta, offset));
                Tensor dx = poisoned(be, b, t, h, hd);
                be.ropeBackward(t(be, x, b, t, h, hd), theta, offset, dx);
                Tolerance.assertWithinNaiveBound(
                        what + " backward",
                        host(be, dx),
                        Ref.F32.ropeBackward(toDouble(x), b, t, h, hd, theta, offset),
                        Ref.F64.ropeBackward(toDouble(x), b, t, h, hd, theta, offset));
                Tensor inPlace = t(be, x, b, t, h, hd);
                be.ropeForward(inPlace, theta, offset, inPlace);
                assertArrayEquals(host(be, out), host(be, inPlace), what + " in place");
                // the same operations per element on both paths: vector and scalar agree bit for bit
                Tensor scalar = poisoned(CpuVariants.SCALAR, b, t, h, hd);
                CpuVariants.SCALAR.ropeForward(t(CpuVariants.SCALAR, x, b, t, h, hd), theta, offset, scalar);
                assertArrayEquals(host(CpuVariants.SCALAR, scalar), host(be, out), what + " vs scalar");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void swiGlu(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int n : new int[] {1, 17, 301, 40_000}) {
            float[] g = TestData.normal(n, n, 3), u = TestData.normal(n + 1, n), d = TestData.normal(n + 2, n);
            Tensor out = poisoned(be, n);
            be.swiGluForward(t(be, g, n), t(be, u, n), out);
            Tolerance.assertWithinNaiveBound(
                    "swiglu forward n=" + n,
                    host(be, out),
                    Ref.F32.swiGluForward(toDouble(g), toDouble(u)),
                    Ref.F64.swiGluForward(toDouble(g), toDouble(u)));
            Tensor dg = poisoned(be, n), du = poisoned(be, n);
            be.swiGluBackward(t(be, d, n), t(be, g, n), t(be, u, n), dg, du);
            double[][] ref = Ref.F64.swiGluBackward(toDouble(d), toDouble(g), toDouble(u));
            double[][] naive = Ref.F32.swiGluBackward(toDouble(d), toDouble(g), toDouble(u));
            Tolerance.assertWithinNaiveBound("swiglu dGate n=" + n, host(be, dg), naive[0], ref[0]);
            Tolerance.assertWithinNaiveBound("swiglu dUp n=" + n, host(be, du), naive[1], ref[1]);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void crossEntropy(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int vocab : new int[] {1, 2, 17, 300, 1001}) {
            int rows = 45;
            float[] logits = TestData.normal(vocab, rows * vocab, 2);
            int[] targets = TestData.ints(vocab + 1, rows, vocab);
            targets[3] = Backend.IGNORE_INDEX;
            targets[rows - 1] = Backend.IGNORE_INDEX;
            // Row 5: a tie for the maximum resolves to the lower index, which is the target.
            if (vocab >= 2) {
                logits[5 * vocab] = 9f;
                logits[5 * vocab + 1] = 9f;
                targets[5] = 0;
            }
            float scale = 1f / 43;
            Tensor dl = poisoned(be, rows, vocab);
            LossStats st = be.crossEntropy(t(be, logits, rows, vocab), ti(be, targets, rows), dl, scale);
            Ref.CrossEntropy ref = Ref.F64.crossEntropy(toDouble(logits), targets, rows, vocab, scale);
            Ref.CrossEntropy naive = Ref.F32.crossEntropy(toDouble(logits), targets, rows, vocab, scale);
            assertEquals(ref.count(), st.count(), "count");
            assertEquals(ref.correct(), st.correct(), "correct (vocab " + vocab + ")");
            assertEquals(
                    ref.lossSum(),
                    st.lossSum(),
                    Math.max(2 * Math.abs(naive.lossSum() - ref.lossSum()), 1e-5),
                    "loss sum");
            Tolerance.assertWithinNaiveBound(
                    "cross-entropy dLogits V=" + vocab, host(be, dl), naive.dLogits(), ref.dLogits());
            // Aliased gradient (written over the logits) and the no-gradient pass give the same statistics.
            Tensor alias = t(be, logits, rows, vocab);
            LossStats st2 = be.crossEntropy(alias, ti(be, targets, rows), alias, scale);
            assertArrayEquals(host(be, dl), host(be, alias), "aliased dLogits");
            LossStats st3 = be.crossEntropy(t(be, logits, rows, vocab), ti(be, targets, rows), null, 0f);
            assertEquals(st, st2);
            assertEquals(st, st3);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void adamW(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int n : new int[] {1, 17, 50_001}) {
            float[] p = TestData.normal(n, n), g = TestData.normal(n + 1, n), m = TestData.normal(n + 2, n, 0.1);
            float[] v = TestData.uniform(n + 3, n, 0.001, 0.1);
            AdamWStep step = new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 7, 0.5f);
            Tensor pt = t(be, p, n), mt = t(be, m, n), vt = t(be, v, n);
            be.adamW(pt, t(be, g, n), mt, vt, step);
            double[][] ref = Ref.F64.adamW(
                    toDouble(p), toDouble(g), toDouble(m), toDouble(v), 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 7, 0.5f);
            double[][] naive = Ref.F32.adamW(
                    toDouble(p), toDouble(g), toDouble(m), toDouble(v), 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 7, 0.5f);
            Tolerance.assertWithinNaiveBound("adamW param n=" + n, host(be, pt), naive[0], ref[0]);
            Tolerance.assertWithinNaiveBound("adamW m n=" + n, host(be, mt), naive[1], ref[1]);
            Tolerance.assertWithinNaiveBound("adamW v n=" + n, host(be, vt), naive[2], ref[2]);
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void softmaxForwardBackward(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int e : new int[] {1, 2, 3, 17, 40}) {
            int rows = 23;
            float[] logits = TestData.normal(e, rows * e, 2), dp = TestData.normal(e + 1, rows * e);
            Tensor probs = poisoned(be, rows, e);
            be.softmaxForward(t(be, logits, rows, e), probs);
            Tolerance.assertWithinNaiveBound(
                    "softmax E=" + e,
                    host(be, probs),
                    Ref.F32.softmax(toDouble(logits), rows, e),
                    Ref.F64.softmax(toDouble(logits), rows, e));
            Tensor inPlace = t(be, logits, rows, e);
            be.softmaxForward(inPlace, inPlace);
            assertArrayEquals(host(be, probs), host(be, inPlace), "softmax in place");
            float[] p = host(be, probs);
            Tensor dl = poisoned(be, rows, e);
            be.softmaxBackward(t(be, dp, rows, e), probs, dl);
            Tolerance.assertWithinNaiveBound(
                    "softmax backward E=" + e,
                    host(be, dl),
                    Ref.F32.softmaxBackward(toDouble(dp), toDouble(p), rows, e),
                    Ref.F64.softmaxBackward(toDouble(dp), toDouble(p), rows, e));
            Tensor dAlias = t(be, dp, rows, e);
            be.softmaxBackward(dAlias, probs, dAlias);
            assertArrayEquals(host(be, dl), host(be, dAlias), "softmax backward in place");
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void weightedMerge(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        for (int d : WIDTHS) {
            int e = 3, n = 13;
            float[] br = TestData.normal(d, e * n * d),
                    p = TestData.probabilities(d + 1, n, e),
                    dOut = TestData.normal(d + 2, n * d);
            Tensor out = poisoned(be, n, d);
            be.weightedMergeForward(t(be, br, e, n, d), t(be, p, n, e), out);
            Tolerance.assertWithinNaiveBound(
                    "merge forward d=" + d,
                    host(be, out),
                    Ref.F32.weightedMergeForward(toDouble(br), toDouble(p), e, n, d),
                    Ref.F64.weightedMergeForward(toDouble(br), toDouble(p), e, n, d));
            Tensor db = poisoned(be, e, n, d), dp = poisoned(be, n, e);
            be.weightedMergeBackward(t(be, dOut, n, d), t(be, br, e, n, d), t(be, p, n, e), db, dp);
            double[][] ref = Ref.F64.weightedMergeBackward(toDouble(dOut), toDouble(br), toDouble(p), e, n, d);
            double[][] naive = Ref.F32.weightedMergeBackward(toDouble(dOut), toDouble(br), toDouble(p), e, n, d);
            Tolerance.assertWithinNaiveBound("merge dBranches d=" + d, host(be, db), naive[0], ref[0]);
            Tolerance.assertWithinNaiveBound("merge dProbs d=" + d, host(be, dp), naive[1], ref[1]);
            Tensor dp2 = poisoned(be, n, e);
            be.weightedMergeBackward(t(be, dOut, n, d), t(be, br, e, n, d), t(be, p, n, e), null, dp2);
            assertArrayEquals(host(be, dp), host(be, dp2), "dBranches = null leaves dProbs unchanged");
        }
    }

    @ParameterizedTest
    @MethodSource("ai.mode.tests.cpu.CpuVariants#both")
    void topKGatherScatter(CpuVariants.Variant variant) {
        CpuBackend be = variant.be();
        int n = 19, e = 6;
        float[] p = TestData.probabilities(5, n, e);
        p[2 * e + 1] = p[2 * e + 4] = 0.9f; // a tie: index 1 must come before index 4
        for (int k = 1; k <= e; k++) {
            Tensor idx = be.allocate(ai.mode.runtime.DType.I32, n, k), w = poisoned(be, n, k);
            be.topK(t(be, p, n, e), k, idx, w);
            Ref.TopK ref = Ref.F64.topK(toDouble(p), n, e, k);
            assertArrayEquals(ref.indices(), hostInts(be, idx), "topK indices k=" + k);
            Tolerance.assertClose("topK weights k=" + k, host(be, w), ref.weights(), 1e-7, 1e-6);
        }
        for (int d : WIDTHS) {
            int rows = 9, m = 14;
            float[] src = TestData.normal(d, rows * d);
            int[] index = TestData.ints(d + 1, m, rows);
            index[0] = index[m - 1];
            Tensor out = poisoned(be, m, d);
            be.gatherRows(t(be, src, rows, d), ti(be, index, m), out);
            Tolerance.assertClose("gather d=" + d, host(be, out), Ref.F64.gatherRows(toDouble(src), index, d), 0, 0);
            float[] add = TestData.normal(d + 2, m * d);
            Tensor acc = t(be, src, rows, d);
            be.scatterAddRows(t(be, add, m, d), ti(be, index, m), acc);
            Tolerance.assertWithinNaiveBound(
                    "scatterAdd d=" + d,
                    host(be, acc),
                    Ref.F32.scatterAddRows(toDouble(add), index, toDouble(src), d),
                    Ref.F64.scatterAddRows(toDouble(add), index, toDouble(src), d));
        }
    }
}
