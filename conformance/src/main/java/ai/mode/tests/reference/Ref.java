package ai.mode.tests.reference;

import java.util.function.DoubleUnaryOperator;

/**
 * Naive reference implementations of every {@code Backend} op, written as plain loops over row-major
 * {@code double[]} arrays with explicit shape arguments. They materialise everything (attention builds the
 * full score matrix) and make no attempt at speed.
 *
 * <p>Three instances: {@link #F64} computes in float64 (the ground truth of the tolerance rule, docs/design.md),
 * {@link #F32} runs the very same loops with every arithmetic result rounded to float32 (the "naive same-precision
 * implementation" that fast paths are compared against, see {@link Tolerance#assertWithinNaiveBound}), and
 * {@link #BF16} is F32 with the operands of every matrix product rounded to bfloat16 first (the naive mixed-precision
 * implementation that bf16 tensor-core kernels are compared against: the naive-bf16 rule). Results are
 * fresh arrays; inputs are never modified. Shapes: B batch, T sequence, H heads, Hkv kv heads, hd head dim, N rows, D
 * width, V vocabulary, E branches.
 */
public final class Ref {
    /** Float64 arithmetic: the reference. */
    public static final Ref F64 = new Ref(DoubleUnaryOperator.identity(), DoubleUnaryOperator.identity());
    /** Float32 arithmetic (each operation rounded to float): a naive same-precision implementation. */
    public static final Ref F32 = new Ref(x -> (float) x, DoubleUnaryOperator.identity());
    /**
     * Float32 arithmetic with bfloat16 product operands (GEMM operands; in attention q, k, v, dOut, the probabilities
     * P before P V and P^T dOut, and dS before dS K and dS^T Q): a naive bf16 tensor-core implementation.
     */
    public static final Ref BF16 = new Ref(x -> (float) x, Ref::bf16);

    /** Target id that cross-entropy skips (mirrors {@code Backend.IGNORE_INDEX}). */
    public static final int IGNORE_INDEX = -100;

    private final DoubleUnaryOperator round;
    private final DoubleUnaryOperator operand;

    private Ref(DoubleUnaryOperator round, DoubleUnaryOperator operand) {
        this.round = round;
        this.operand = operand;
    }

    /** x as a float rounded to bfloat16 (to nearest, ties to even; x is finite). */
    private static double bf16(double x) {
        int bits = Float.floatToRawIntBits((float) x);
        bits += 0x7fff + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xffff0000);
    }

    /** One operand of a matrix product, in this instance's operand precision. */
    private double op(double x) {
        return operand.applyAsDouble(x);
    }

    /** Rounds one result to this instance's precision. */
    private double r(double x) {
        return round.applyAsDouble(x);
    }

    private double[] roundAll(double[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = r(x[i]);
        return out;
    }

    // ------------------------------------------------------------------ GEMM

    /**
     * {@code alpha * op(a) op(b) + beta * c} for one matrix pair. a is [M,K] ([K,M] if transA), b is [K,N]
     * ([N,K] if transB), c is [M,N] (ignored when beta == 0, may be null then). Returns the new c.
     */
    public double[] gemm(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            double alpha,
            double[] a,
            double[] b,
            double beta,
            double[] c) {
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double av = op(transA ? a[p * m + i] : a[i * k + p]);
                    double bv = op(transB ? b[j * k + p] : b[p * n + j]);
                    s = r(s + r(av * bv));
                }
                double v = r(alpha * s);
                out[i * n + j] = beta == 0 ? v : r(v + r(beta * c[i * n + j]));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ embedding

    /** out [N,D] = table [V,D] rows at ids [N]. */
    public double[] embeddingForward(double[] table, int[] ids, int d) {
        double[] out = new double[ids.length * d];
        for (int n = 0; n < ids.length; n++) {
            for (int j = 0; j < d; j++) out[n * d + j] = table[ids[n] * d + j];
        }
        return out;
    }

    /** The gradient of the table [V,D] (to be added to an existing one) from dOut [N,D]. */
    public double[] embeddingBackward(double[] dOut, int[] ids, int vocab, int d) {
        double[] g = new double[vocab * d];
        for (int n = 0; n < ids.length; n++) {
            for (int j = 0; j < d; j++) g[ids[n] * d + j] = r(g[ids[n] * d + j] + dOut[n * d + j]);
        }
        return g;
    }

    // ------------------------------------------------------------------ RMSNorm

    /** rstd [N] = 1/sqrt(mean(x^2) + eps) per row of x [N,D]. */
    public double[] rmsNormRstd(double[] x, int rows, int d, double eps) {
        double[] rstd = new double[rows];
        for (int n = 0; n < rows; n++) {
            double ss = 0;
            for (int j = 0; j < d; j++) ss = r(ss + r(x[n * d + j] * x[n * d + j]));
            rstd[n] = r(1.0 / r(Math.sqrt(r(r(ss / d) + eps))));
        }
        return rstd;
    }

    /** out [N,D] = x * rstd * w. */
    public double[] rmsNormForward(double[] x, double[] w, int rows, int d, double eps) {
        double[] rstd = rmsNormRstd(x, rows, d, eps);
        double[] out = new double[rows * d];
        for (int n = 0; n < rows; n++) {
            for (int j = 0; j < d; j++) out[n * d + j] = r(r(x[n * d + j] * rstd[n]) * w[j]);
        }
        return out;
    }

    /** {dx [N,D], dw [D]} of RMSNorm from dOut [N,D] (dw is the gradient alone, not accumulated). */
    public double[][] rmsNormBackward(double[] dOut, double[] x, double[] w, int rows, int d, double eps) {
        double[] rstd = rmsNormRstd(x, rows, d, eps);
        double[] dx = new double[rows * d];
        double[] dw = new double[d];
        for (int n = 0; n < rows; n++) {
            double rs = rstd[n];
            double dot = 0;
            for (int j = 0; j < d; j++) dot = r(dot + r(r(dOut[n * d + j] * w[j]) * x[n * d + j]));
            double c = r(r(r(rs * rs) * rs) * r(dot / d));
            for (int j = 0; j < d; j++) {
                dx[n * d + j] = r(r(rs * r(w[j] * dOut[n * d + j])) - r(c * x[n * d + j]));
                dw[j] = r(dw[j] + r(r(dOut[n * d + j] * x[n * d + j]) * rs));
            }
        }
        return new double[][] {dx, dw};
    }

    // ------------------------------------------------------------------ RoPE

    /**
     * Rotary embedding of x [B,T,H,hd] (rotate_half pairing i with i + hd/2), pair i turning by position * invFreq[i]
     * radians (invFreq [hd/2]); sign -1 applies the inverse.
     */
    private double[] rope(double[] x, int b, int t, int h, int hd, double[] invFreq, int offset, int sign) {
        if (invFreq.length != hd / 2)
            throw new IllegalArgumentException(invFreq.length + " frequencies for head dimension " + hd);
        double[] out = new double[x.length];
        int half = hd / 2;
        for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
                for (int hi = 0; hi < h; hi++) {
                    int base = ((bi * t + ti) * h + hi) * hd;
                    for (int i = 0; i < half; i++) {
                        double angle = (offset + ti) * invFreq[i];
                        double c = r(Math.cos(angle)), s = r(sign * Math.sin(angle));
                        double x1 = x[base + i], x2 = x[base + i + half];
                        out[base + i] = r(r(x1 * c) - r(x2 * s));
                        out[base + i + half] = r(r(x2 * c) + r(x1 * s));
                    }
                }
            }
        }
        return out;
    }

    public double[] ropeForward(double[] x, int b, int t, int h, int hd, double[] invFreq, int offset) {
        return rope(x, b, t, h, hd, invFreq, offset, 1);
    }

    /** The gradient of {@link #ropeForward}: the inverse rotation of dOut. */
    public double[] ropeBackward(double[] dOut, int b, int t, int h, int hd, double[] invFreq, int offset) {
        return rope(dOut, b, t, h, hd, invFreq, offset, -1);
    }

    /** Plain RoPE's inverse frequencies theta^(-2i/hd), i in [0, hd/2), computed independently of the runtime's. */
    public static double[] plainRopeFrequencies(double theta, int hd) {
        double[] inv = new double[hd / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / Math.pow(theta, 2.0 * i / hd);
        return inv;
    }

    // ------------------------------------------------------------------ attention

    /** Scaled causal scores of (b, h): s[i][j] for j <= i, -inf above the diagonal. */
    private double[][] scores(double[] q, double[] k, int bi, int hi, int t, int h, int hkv, int hd) {
        int hk = hi / (h / hkv);
        double scale = r(1.0 / Math.sqrt(hd));
        double[][] s = new double[t][t];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < t; j++) {
                if (j > i) {
                    s[i][j] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                double dot = 0;
                for (int d = 0; d < hd; d++) {
                    dot = r(dot
                            + r(op(q[((bi * t + i) * h + hi) * hd + d]) * op(k[((bi * t + j) * hkv + hk) * hd + d])));
                }
                s[i][j] = r(dot * scale);
            }
        }
        return s;
    }

    /** {out [B,T,H,hd], lse [B,H,T]} of causal attention, materialising the score matrix. */
    public double[][] attentionForward(double[] q, double[] k, double[] v, int b, int t, int h, int hkv, int hd) {
        double[] out = new double[b * t * h * hd];
        double[] lse = new double[b * h * t];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int hk = hi / (h / hkv);
                double[][] s = scores(q, k, bi, hi, t, h, hkv, hd);
                for (int i = 0; i < t; i++) {
                    double m = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) m = Math.max(m, s[i][j]);
                    double[] p = new double[i + 1];
                    double l = 0;
                    for (int j = 0; j <= i; j++) {
                        p[j] = r(Math.exp(r(s[i][j] - m)));
                        l = r(l + p[j]);
                    }
                    for (int d = 0; d < hd; d++) {
                        double acc = 0;
                        for (int j = 0; j <= i; j++)
                            acc = r(acc + r(op(p[j]) * op(v[((bi * t + j) * hkv + hk) * hd + d])));
                        out[((bi * t + i) * h + hi) * hd + d] = r(acc / l);
                    }
                    lse[(bi * h + hi) * t + i] = r(m + r(Math.log(l)));
                }
            }
        }
        return new double[][] {out, lse};
    }

    /**
     * Attention of t queries at positions [len - t, len) over the first len rows of a key/value cache [B,cap,Hkv,hd]:
     * the rows of {@link #attentionForward} over a sequence of len positions whose last t queries are q [B,t,H,hd].
     */
    public double[] attentionCached(
            double[] q, double[] kCache, double[] vCache, int b, int t, int cap, int len, int h, int hkv, int hd) {
        int qRow = h * hd, kRow = hkv * hd;
        double[] qFull = new double[b * len * qRow], k = new double[b * len * kRow], v = new double[b * len * kRow];
        for (int bi = 0; bi < b; bi++) {
            System.arraycopy(q, bi * t * qRow, qFull, (bi * len + len - t) * qRow, t * qRow);
            System.arraycopy(kCache, bi * cap * kRow, k, bi * len * kRow, len * kRow);
            System.arraycopy(vCache, bi * cap * kRow, v, bi * len * kRow, len * kRow);
        }
        double[] full = attentionForward(qFull, k, v, b, len, h, hkv, hd)[0];
        double[] out = new double[b * t * qRow];
        for (int bi = 0; bi < b; bi++)
            System.arraycopy(full, (bi * len + len - t) * qRow, out, bi * t * qRow, t * qRow);
        return out;
    }

    /** {dq, dk, dv} of causal attention for dOut [B,T,H,hd], recomputing everything from q, k, v. */
    public double[][] attentionBackward(
            double[] dOut, double[] q, double[] k, double[] v, int b, int t, int h, int hkv, int hd) {
        double[] lse = attentionForward(q, k, v, b, t, h, hkv, hd)[1];
        double scale = r(1.0 / Math.sqrt(hd));
        double[] dq = new double[q.length], dk = new double[k.length], dv = new double[v.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int hk = hi / (h / hkv);
                double[][] s = scores(q, k, bi, hi, t, h, hkv, hd);
                for (int i = 0; i < t; i++) {
                    int qi = ((bi * t + i) * h + hi) * hd;
                    double[] p = new double[i + 1], dp = new double[i + 1];
                    double delta = 0;
                    for (int j = 0; j <= i; j++) {
                        int vj = ((bi * t + j) * hkv + hk) * hd;
                        p[j] = r(Math.exp(r(s[i][j] - lse[(bi * h + hi) * t + i])));
                        double dot = 0;
                        for (int d = 0; d < hd; d++) dot = r(dot + r(op(dOut[qi + d]) * op(v[vj + d])));
                        dp[j] = dot;
                        delta = r(delta + r(p[j] * dp[j]));
                    }
                    for (int j = 0; j <= i; j++) {
                        int kj = ((bi * t + j) * hkv + hk) * hd;
                        double ds = op(r(r(p[j] * r(dp[j] - delta)) * scale)), pj = op(p[j]);
                        for (int d = 0; d < hd; d++) {
                            dq[qi + d] = r(dq[qi + d] + r(ds * op(k[kj + d])));
                            dk[kj + d] = r(dk[kj + d] + r(ds * op(q[qi + d])));
                            dv[kj + d] = r(dv[kj + d] + r(pj * op(dOut[qi + d])));
                        }
                    }
                }
            }
        }
        return new double[][] {dq, dk, dv};
    }

    // ------------------------------------------------------------------ SwiGLU

    private double sigmoid(double g) {
        return r(1.0 / r(1.0 + r(Math.exp(-g))));
    }

    /** silu(gate) * up elementwise. */
    public double[] swiGluForward(double[] gate, double[] up) {
        double[] out = new double[gate.length];
        for (int i = 0; i < gate.length; i++) out[i] = r(r(gate[i] * sigmoid(gate[i])) * up[i]);
        return out;
    }

    /** {dGate, dUp} of SwiGLU. */
    public double[][] swiGluBackward(double[] dOut, double[] gate, double[] up) {
        double[] dg = new double[gate.length], du = new double[gate.length];
        for (int i = 0; i < gate.length; i++) {
            double sg = sigmoid(gate[i]);
            double silu = r(gate[i] * sg);
            du[i] = r(dOut[i] * silu);
            double dsilu = r(sg * r(1.0 + r(gate[i] * r(1.0 - sg))));
            dg[i] = r(r(dOut[i] * up[i]) * dsilu);
        }
        return new double[][] {dg, du};
    }

    // ------------------------------------------------------------------ cross-entropy

    /** Loss sum, arg-max hits, counted rows and the logit gradient of a cross-entropy pass. */
    public record CrossEntropy(double lossSum, long correct, long count, double[] dLogits) {}

    /** Softmax cross-entropy of logits [N,V] against targets [N] (IGNORE_INDEX rows skipped). */
    public CrossEntropy crossEntropy(double[] logits, int[] targets, int rows, int vocab, double gradScale) {
        double loss = 0;
        long correct = 0, count = 0;
        double[] grad = new double[rows * vocab];
        for (int n = 0; n < rows; n++) {
            int y = targets[n];
            if (y == IGNORE_INDEX) continue;
            int base = n * vocab;
            double m = Double.NEGATIVE_INFINITY;
            int arg = -1;
            for (int j = 0; j < vocab; j++) {
                if (arg < 0 || logits[base + j] > m) {
                    m = logits[base + j];
                    arg = j;
                }
            }
            double sum = 0;
            for (int j = 0; j < vocab; j++) sum = r(sum + r(Math.exp(r(logits[base + j] - m))));
            double lse = r(m + r(Math.log(sum)));
            loss += lse - logits[base + y];
            count++;
            if (arg == y) correct++;
            for (int j = 0; j < vocab; j++) {
                double p = r(Math.exp(r(logits[base + j] - lse)));
                grad[base + j] = r(r(p - (j == y ? 1 : 0)) * gradScale);
            }
        }
        return new CrossEntropy(loss, correct, count, grad);
    }

    // ------------------------------------------------------------------ AdamW

    /** {param, m, v} after one AdamW step (see {@code AdamWStep}). */
    public double[][] adamW(
            double[] param,
            double[] grad,
            double[] m,
            double[] v,
            double lr,
            double beta1,
            double beta2,
            double eps,
            double weightDecay,
            int step,
            double gradScale) {
        double bc1 = r(1 - Math.pow(beta1, step)), bc2 = r(1 - Math.pow(beta2, step));
        double[] p2 = new double[param.length], m2 = new double[param.length], v2 = new double[param.length];
        for (int i = 0; i < param.length; i++) {
            double g = r(grad[i] * gradScale);
            m2[i] = r(r(beta1 * m[i]) + r(r(1 - beta1) * g));
            v2[i] = r(r(beta2 * v[i]) + r(r(r(1 - beta2) * g) * g));
            double mh = r(m2[i] / bc1), vh = r(v2[i] / bc2);
            double update = r(r(mh / r(r(Math.sqrt(vh)) + eps)) + r(weightDecay * param[i]));
            p2[i] = r(param[i] - r(lr * update));
        }
        return new double[][] {p2, m2, v2};
    }

    // ------------------------------------------------------------------ softmax, merge, routing

    /** Row softmax of logits [N,E]. */
    public double[] softmax(double[] logits, int rows, int e) {
        double[] out = new double[rows * e];
        for (int n = 0; n < rows; n++) {
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) m = Math.max(m, logits[n * e + j]);
            double sum = 0;
            for (int j = 0; j < e; j++) {
                out[n * e + j] = r(Math.exp(r(logits[n * e + j] - m)));
                sum = r(sum + out[n * e + j]);
            }
            for (int j = 0; j < e; j++) out[n * e + j] = r(out[n * e + j] / sum);
        }
        return out;
    }

    /** dLogits = probs * (dProbs - sum(dProbs * probs)) per row. */
    public double[] softmaxBackward(double[] dProbs, double[] probs, int rows, int e) {
        double[] out = new double[rows * e];
        for (int n = 0; n < rows; n++) {
            double dot = 0;
            for (int j = 0; j < e; j++) dot = r(dot + r(dProbs[n * e + j] * probs[n * e + j]));
            for (int j = 0; j < e; j++) out[n * e + j] = r(probs[n * e + j] * r(dProbs[n * e + j] - dot));
        }
        return out;
    }

    /** out [N,D] = sum_e probs[n,e] * branches[e,n,:]; branches [E,N,D], probs [N,E]. */
    public double[] weightedMergeForward(double[] branches, double[] probs, int e, int n, int d) {
        double[] out = new double[n * d];
        for (int r0 = 0; r0 < n; r0++) {
            for (int c = 0; c < d; c++) {
                double s = 0;
                for (int j = 0; j < e; j++) s = r(s + r(probs[r0 * e + j] * branches[(j * n + r0) * d + c]));
                out[r0 * d + c] = s;
            }
        }
        return out;
    }

    /** {dBranches [E,N,D], dProbs [N,E]} of the weighted merge. */
    public double[][] weightedMergeBackward(double[] dOut, double[] branches, double[] probs, int e, int n, int d) {
        double[] db = new double[e * n * d], dp = new double[n * e];
        for (int r0 = 0; r0 < n; r0++) {
            for (int j = 0; j < e; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) {
                    db[(j * n + r0) * d + c] = r(probs[r0 * e + j] * dOut[r0 * d + c]);
                    dot = r(dot + r(dOut[r0 * d + c] * branches[(j * n + r0) * d + c]));
                }
                dp[r0 * e + j] = dot;
            }
        }
        return new double[][] {db, dp};
    }

    /** Top-k of each row: indices (descending, ties to the lower index) and renormalised weights. */
    public record TopK(int[] indices, double[] weights) {}

    public TopK topK(double[] probs, int rows, int e, int k) {
        int[] idx = new int[rows * k];
        double[] w = new double[rows * k];
        for (int n = 0; n < rows; n++) {
            Integer[] order = new Integer[e];
            for (int j = 0; j < e; j++) order[j] = j;
            int base = n * e;
            // Stable sort by descending probability keeps the lower index first among equals.
            java.util.Arrays.sort(order, (x, y) -> Double.compare(probs[base + y], probs[base + x]));
            double sum = 0;
            for (int s = 0; s < k; s++) sum = r(sum + probs[base + order[s]]);
            for (int s = 0; s < k; s++) {
                idx[n * k + s] = order[s];
                w[n * k + s] = r(probs[base + order[s]] / sum);
            }
        }
        return new TopK(idx, w);
    }

    /** out [M,D] = src [N,D] rows at index [M]. */
    public double[] gatherRows(double[] src, int[] index, int d) {
        double[] out = new double[index.length * d];
        for (int m = 0; m < index.length; m++) {
            for (int c = 0; c < d; c++) out[m * d + c] = src[index[m] * d + c];
        }
        return out;
    }

    /** out [N,D] with src [M,D] rows added at index [M] to a copy of {@code base}. */
    public double[] scatterAddRows(double[] src, int[] index, double[] base, int d) {
        double[] out = roundAll(base);
        for (int m = 0; m < index.length; m++) {
            for (int c = 0; c < d; c++) out[index[m] * d + c] = r(out[index[m] * d + c] + src[m * d + c]);
        }
        return out;
    }
}
