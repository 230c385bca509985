package ai.mode.tests.mode;

import ai.mode.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Naive float64 reference of a MoDE model written straight from docs/design.md (backbone slices, experts, gate,
 * weighted merge; top-k and sequence-level routing as documented in ModeBlock). Shares no code with the float32
 * implementation it checks: its decoder layer is a direct transcription of the Llama formulas. Parameters by name
 * (linear weights [out,in]); activations row-major [B*T*D].
 */
final class ModeRef64 {
    /**
     * Routing of the reference: topK 0 = dense. {@code residual}: y = f_bb(x) + Σ_j α_j (f_j(x) - x) (dense only)
     * instead of the paper's Σ_e α_e f_e(x); {@code gateNorm}: the gate reads x / sqrt(mean(x²) + eps).
     */
    record Spec(
            int blocks,
            int expertLayers,
            int experts,
            boolean perSequence,
            int topK,
            boolean residual,
            boolean gateNorm) {
        /** The paper's mixture with a raw gate input. */
        Spec(int blocks, int expertLayers, int experts, boolean perSequence, int topK) {
            this(blocks, expertLayers, experts, perSequence, topK, false, false);
        }
    }

    private final LlamaConfig cfg;
    private final Map<String, double[]> p;
    private final Spec spec;

    ModeRef64(LlamaConfig cfg, Map<String, double[]> params, Spec spec) {
        this.cfg = cfg;
        this.p = params;
        this.spec = spec;
    }

    /** Mean next-token cross-entropy of the MoDE model. */
    double loss(int[] ids, int[] targets, int b, int t) {
        return loss(ids, targets, b, t, x -> {
            for (int i = 0; i < spec.blocks(); i++) x = block(i, x, b, t);
            return x;
        });
    }

    /** Mean next-token cross-entropy of a plain stack of decoder layers (by parameter prefix), e.g. an expanded model. */
    double lossThroughLayers(List<String> prefixes, int[] ids, int[] targets, int b, int t) {
        return loss(ids, targets, b, t, x -> {
            for (String prefix : prefixes) x = layer(prefix, x, b, t);
            return x;
        });
    }

    /** Embedding, {@code body}, final norm, head, mean cross-entropy. */
    private double loss(int[] ids, int[] targets, int b, int t, java.util.function.UnaryOperator<double[]> body) {
        int d = cfg.hiddenSize(), n = b * t, vocab = cfg.vocabSize();
        double[] emb = p.get("model.embed_tokens.weight");
        double[] x = new double[n * d];
        for (int i = 0; i < n; i++) System.arraycopy(emb, ids[i] * d, x, i * d, d);
        x = body.apply(x);
        double[] hn = rmsNorm(x, p.get("model.norm.weight"), n);
        double[] w = cfg.tieEmbeddings() ? emb : p.get("lm_head.weight");
        double[] logits = linear(hn, w, n, d, vocab);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < vocab; j++) max = Math.max(max, logits[i * vocab + j]);
            double z = 0;
            for (int j = 0; j < vocab; j++) z += Math.exp(logits[i * vocab + j] - max);
            sum += Math.log(z) + max - logits[i * vocab + targets[i]];
        }
        return sum / n;
    }

    /** Branch e of block i (0 = backbone slice, j+1 = expert j) on a [b, t, D] input. */
    double[] branch(int i, int e, double[] x, int b, int t) {
        int slice = cfg.numLayers() / spec.blocks();
        double[] h = x;
        if (e == 0) {
            for (int l = i * slice; l < (i + 1) * slice; l++) h = layer("model.layers." + l + ".", h, b, t);
        } else {
            for (int l = 0; l < spec.expertLayers(); l++)
                h = layer("mode.blocks." + i + ".experts." + (e - 1) + ".layers." + l + ".", h, b, t);
        }
        return h;
    }

    /** Gate probabilities of block i per routing row (token or sequence). */
    double[] gate(int i, double[] x, int b, int t) {
        int d = cfg.hiddenSize(), e = spec.experts() + 1;
        int rows = spec.perSequence() ? b : b * t;
        double[] in = x;
        if (spec.perSequence()) {
            in = new double[b * d];
            for (int s = 0; s < b; s++)
                for (int tt = 0; tt < t; tt++) for (int c = 0; c < d; c++) in[s * d + c] += x[(s * t + tt) * d + c] / t;
        }
        if (spec.gateNorm()) {
            double[] unit = new double[d];
            java.util.Arrays.fill(unit, 1.0);
            in = rmsNorm(in, unit, rows);
        }
        double[] w = p.get("mode.blocks." + i + ".gate.weight"), bias = p.get("mode.blocks." + i + ".gate.bias");
        double[] probs = linear(in, w, rows, d, e);
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) {
                probs[r * e + j] += bias[j];
                max = Math.max(max, probs[r * e + j]);
            }
            double z = 0;
            for (int j = 0; j < e; j++) {
                probs[r * e + j] = Math.exp(probs[r * e + j] - max);
                z += probs[r * e + j];
            }
            for (int j = 0; j < e; j++) probs[r * e + j] /= z;
        }
        return probs;
    }

    /** Block i: y = Σ_e weight_e · f_e(x), dense or top-k, per token or per sequence. */
    double[] block(int i, double[] x, int b, int t) {
        int d = cfg.hiddenSize(), n = b * t, e = spec.experts() + 1;
        double[] probs = gate(i, x, b, t);
        double[] y = new double[n * d];
        if (spec.topK() == 0) {
            for (int br = 0; br < e; br++) {
                double[] f = branch(i, br, x, b, t);
                for (int tok = 0; tok < n; tok++) {
                    double a = probs[routeRow(tok, t) * e + br];
                    for (int c = 0; c < d; c++) {
                        int at = tok * d + c;
                        if (!spec.residual()) y[at] += a * f[at];
                        else y[at] += br == 0 ? f[at] : a * (f[at] - x[at]);
                    }
                }
            }
            return y;
        }
        if (spec.residual()) throw new IllegalArgumentException("the residual merge is dense only");
        int rows = spec.perSequence() ? b : n;
        double[] weight = new double[rows * e]; // renormalised top-k weights, 0 where not chosen
        for (int r = 0; r < rows; r++) {
            boolean[] taken = new boolean[e];
            double s = 0;
            for (int k = 0; k < spec.topK(); k++) {
                int best = -1;
                for (int j = 0; j < e; j++)
                    if (!taken[j] && (best < 0 || probs[r * e + j] > probs[r * e + best])) best = j;
                taken[best] = true;
                s += probs[r * e + best];
            }
            for (int j = 0; j < e; j++) if (taken[j]) weight[r * e + j] = probs[r * e + j] / s;
        }
        for (int br = 0; br < e; br++) {
            for (int s = 0; s < b; s++) {
                List<Integer> routed = new ArrayList<>();
                for (int tt = 0; tt < t; tt++) if (weight[routeRow(s * t + tt, t) * e + br] > 0) routed.add(s * t + tt);
                if (routed.isEmpty()) continue;
                double[] sub = new double[routed.size() * d]; // the routed tokens as one shorter sequence
                for (int k = 0; k < routed.size(); k++) System.arraycopy(x, routed.get(k) * d, sub, k * d, d);
                double[] f = branch(i, br, sub, 1, routed.size());
                for (int k = 0; k < routed.size(); k++) {
                    int tok = routed.get(k);
                    double a = weight[routeRow(tok, t) * e + br];
                    for (int c = 0; c < d; c++) y[tok * d + c] += a * f[k * d + c];
                }
            }
        }
        return y;
    }

    private int routeRow(int token, int t) {
        return spec.perSequence() ? token / t : token;
    }

    // ---------------------------------------------------------------- Llama layer, float64

    double[] layer(String prefix, double[] x, int b, int t) {
        int d = cfg.hiddenSize(), n = b * t, f = cfg.intermediateSize(), kvd = cfg.kvDim();
        double[] n1 = rmsNorm(x, p.get(prefix + "input_layernorm.weight"), n);
        double[] q = linear(n1, p.get(prefix + "self_attn.q_proj.weight"), n, d, d);
        double[] k = linear(n1, p.get(prefix + "self_attn.k_proj.weight"), n, d, kvd);
        double[] v = linear(n1, p.get(prefix + "self_attn.v_proj.weight"), n, d, kvd);
        rotate(q, b, t, cfg.numHeads());
        rotate(k, b, t, cfg.numKvHeads());
        double[] att = causalAttention(q, k, v, b, t);
        double[] h = x.clone();
        double[] o = linear(att, p.get(prefix + "self_attn.o_proj.weight"), n, d, d);
        for (int i = 0; i < h.length; i++) h[i] += o[i];
        double[] n2 = rmsNorm(h, p.get(prefix + "post_attention_layernorm.weight"), n);
        double[] g = linear(n2, p.get(prefix + "mlp.gate_proj.weight"), n, d, f);
        double[] u = linear(n2, p.get(prefix + "mlp.up_proj.weight"), n, d, f);
        for (int i = 0; i < g.length; i++) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        double[] down = linear(g, p.get(prefix + "mlp.down_proj.weight"), n, f, d);
        for (int i = 0; i < h.length; i++) h[i] += down[i];
        return h;
    }

    private double[] rmsNorm(double[] x, double[] w, int n) {
        int d = w.length;
        double[] out = new double[n * d];
        for (int i = 0; i < n; i++) {
            double ms = 0;
            for (int c = 0; c < d; c++) ms += x[i * d + c] * x[i * d + c] / d;
            double r = 1 / Math.sqrt(ms + cfg.rmsNormEps());
            for (int c = 0; c < d; c++) out[i * d + c] = x[i * d + c] * r * w[c];
        }
        return out;
    }

    /** y [n,out] = x [n,in] W^T with W [out,in]. */
    static double[] linear(double[] x, double[] w, int n, int in, int out) {
        double[] y = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int c = 0; c < in; c++) s += x[i * in + c] * w[o * in + c];
                y[i * out + o] = s;
            }
        }
        return y;
    }

    /** Rotary embedding (rotate_half pairs i and i + hd/2), position = index within the sequence. */
    private void rotate(double[] x, int b, int t, int heads) {
        int hd = cfg.headDim(), half = hd / 2;
        for (int s = 0; s < b; s++) {
            for (int pos = 0; pos < t; pos++) {
                for (int h = 0; h < heads; h++) {
                    int base = ((s * t + pos) * heads + h) * hd;
                    for (int i = 0; i < half; i++) {
                        double angle = pos / Math.pow(cfg.ropeTheta(), 2.0 * i / hd);
                        double a = x[base + i], c = x[base + i + half];
                        x[base + i] = a * Math.cos(angle) - c * Math.sin(angle);
                        x[base + i + half] = c * Math.cos(angle) + a * Math.sin(angle);
                    }
                }
            }
        }
    }

    private double[] causalAttention(double[] q, double[] k, double[] v, int b, int t) {
        int h = cfg.numHeads(), hkv = cfg.numKvHeads(), hd = cfg.headDim(), group = h / hkv;
        double[] out = new double[b * t * h * hd];
        for (int s = 0; s < b; s++) {
            for (int head = 0; head < h; head++) {
                int kh = head / group;
                for (int i = 0; i < t; i++) {
                    double[] score = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int c = 0; c < hd; c++)
                            dot += q[((s * t + i) * h + head) * hd + c] * k[((s * t + j) * hkv + kh) * hd + c];
                        score[j] = dot / Math.sqrt(hd);
                        max = Math.max(max, score[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= i; j++) {
                        score[j] = Math.exp(score[j] - max);
                        z += score[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        for (int c = 0; c < hd; c++)
                            out[((s * t + i) * h + head) * hd + c] +=
                                    score[j] / z * v[((s * t + j) * hkv + kh) * hd + c];
                    }
                }
            }
        }
        return out;
    }
}
