package ai.mode.tests.model;

import ai.mode.model.LlamaConfig;
import java.util.Map;

/**
 * Naive float64 reference of the Llama forward pass (decoder layer, embedding, final norm, head, loss), written
 * directly from the formulas so it shares no code with the float32 layers it checks. Straight-line float64
 * implementation; parameters by HF name, linear weights [out,in].
 */
final class LlamaRef64 {
    private final LlamaConfig cfg;
    private final Map<String, double[]> p;

    LlamaRef64(LlamaConfig cfg, Map<String, double[]> params) {
        this.cfg = cfg;
        this.p = params;
    }

    /** One decoder layer on x [B*T*D] (batch-major), parameters under {@code prefix}. */
    double[] layer(String prefix, double[] x, int b, int t) {
        int d = cfg.hiddenSize(), n = b * t, f = cfg.intermediateSize(), kvd = cfg.kvDim();
        double[] n1 = rmsNorm(x, p.get(prefix + "input_layernorm.weight"), n, d);
        double[] q = linear(n1, p.get(prefix + "self_attn.q_proj.weight"), n, d, d);
        double[] k = linear(n1, p.get(prefix + "self_attn.k_proj.weight"), n, d, kvd);
        double[] v = linear(n1, p.get(prefix + "self_attn.v_proj.weight"), n, d, kvd);
        rope(q, b, t, cfg.numHeads());
        rope(k, b, t, cfg.numKvHeads());
        double[] att = attention(q, k, v, b, t);
        double[] h = add(x, linear(att, p.get(prefix + "self_attn.o_proj.weight"), n, d, d));
        double[] n2 = rmsNorm(h, p.get(prefix + "post_attention_layernorm.weight"), n, d);
        double[] g = linear(n2, p.get(prefix + "mlp.gate_proj.weight"), n, d, f);
        double[] u = linear(n2, p.get(prefix + "mlp.up_proj.weight"), n, d, f);
        double[] a = new double[n * f];
        for (int i = 0; i < a.length; i++) a[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        return add(h, linear(a, p.get(prefix + "mlp.down_proj.weight"), n, f, d));
    }

    /** Mean next-token cross-entropy of the whole model; ids and targets [B*T]. */
    double loss(int[] ids, int[] targets, int b, int t) {
        int d = cfg.hiddenSize(), n = b * t, vocab = cfg.vocabSize();
        double[] emb = p.get("model.embed_tokens.weight");
        double[] x = new double[n * d];
        for (int i = 0; i < n; i++) System.arraycopy(emb, ids[i] * d, x, i * d, d);
        for (int l = 0; l < cfg.numLayers(); l++) x = layer("model.layers." + l + ".", x, b, t);
        double[] hn = rmsNorm(x, p.get("model.norm.weight"), n, d);
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

    private double[] rmsNorm(double[] x, double[] w, int n, int d) {
        double[] out = new double[n * d];
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int j = 0; j < d; j++) ss += x[i * d + j] * x[i * d + j];
            double r = 1 / Math.sqrt(ss / d + cfg.rmsNormEps());
            for (int j = 0; j < d; j++) out[i * d + j] = x[i * d + j] * r * w[j];
        }
        return out;
    }

    /** y [n,out] = x [n,in] @ W^T, W [out,in]. */
    static double[] linear(double[] x, double[] w, int n, int in, int out) {
        double[] y = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int j = 0; j < in; j++) s += x[i * in + j] * w[o * in + j];
                y[i * out + o] = s;
            }
        }
        return y;
    }

    private static double[] add(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    /** In-place rotate_half RoPE on [B,T,heads,hd], position = t. */
    private void rope(double[] x, int b, int t, int heads) {
        int hd = cfg.headDim(), half = hd / 2;
        for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
                for (int h = 0; h < heads; h++) {
                    int base = ((bi * t + ti) * heads + h) * hd;
                    for (int i = 0; i < half; i++) {
                        double ang = ti * Math.pow(cfg.ropeTheta(), -2.0 * i / hd);
                        double c = Math.cos(ang), s = Math.sin(ang);
                        double x1 = x[base + i], x2 = x[base + i + half];
                        x[base + i] = x1 * c - x2 * s;
                        x[base + i + half] = x2 * c + x1 * s;
                    }
                }
            }
        }
    }

    /** Causal GQA softmax attention; q [B,T,H,hd], k/v [B,T,Hkv,hd]. */
    private double[] attention(double[] q, double[] k, double[] v, int b, int t) {
        int h = cfg.numHeads(), hkv = cfg.numKvHeads(), hd = cfg.headDim(), group = h / hkv;
        double scale = 1 / Math.sqrt(hd);
        double[] out = new double[b * t * h * hd];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int kh = hi / group;
                for (int i = 0; i < t; i++) {
                    double[] s = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int e = 0; e < hd; e++) {
                            dot += q[((bi * t + i) * h + hi) * hd + e] * k[((bi * t + j) * hkv + kh) * hd + e];
                        }
                        s[j] = dot * scale;
                        max = Math.max(max, s[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= i; j++) {
                        s[j] = Math.exp(s[j] - max);
                        z += s[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < hd; e++) {
                            out[((bi * t + i) * h + hi) * hd + e] += s[j] / z * v[((bi * t + j) * hkv + kh) * hd + e];
                        }
                    }
                }
            }
        }
        return out;
    }
}
