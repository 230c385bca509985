package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.Layer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * E same-shaped Llama decoder layers (the experts of one MoDE block at one depth) computed together: every projection
 * of all E layers is ONE batched GEMM over stacked weights [E,out,in], attention and RoPE run on the experts folded
 * into the batch dimension, and only the per-expert RMSNorm gains are applied slice by slice. With E = 1 over a
 * backbone layer's own weights it is a plain decoder layer that can carry LoRA adapters.
 *
 * <p>The math of {@link ai.mode.model.nn.DecoderLayer}, for E layers at once:
 * <pre>
 *   input  x [E·B, T, D]: rows [e·B, (e+1)·B) are layer e's batch
 *   h = x + o_proj_e( Attn( RoPE(q_proj_e(n1)), RoPE(k_proj_e(n1)), v_proj_e(n1) ) ),  n1 = RMSNorm_e(x)
 *   y = h + down_proj_e( silu(gate_proj_e(n2)) * up_proj_e(n2) ),                      n2 = RMSNorm_e(h)
 * </pre>
 * A projection {@code y_e = x_e W_e^T} for all e is {@code gemm(x [E,M,in], W [E,out,in]^T) -> [E,M,out]}
 * (M = B·T); weight gradients likewise come from one batched GEMM (into a scratch stack when E > 1, then added
 * to each layer's gradient buffer). Optional {@link LoraAdapter}s (E = 1 only) add {@code scale · (x A^T) B^T}
 * to a projection.
 */
public final class BatchedDecoderLayer implements Layer {
    private final Backend backend;
    private final LlamaConfig cfg;
    private final StackedLayerWeights w;
    private final Map<LayerTensor, LoraAdapter> lora;
    private final BufferPool own;
    private final BufferPool scratch;
    private final int count;
    private Tensor x;
    private int batch, seq;

    /**
     * @param weights the E layers' stacked weights (not owned)
     * @param lora    adapters by projection (empty for none; only allowed with E = 1)
     * @param scratch shared pool for backward temporaries
     */
    public BatchedDecoderLayer(
            Backend backend,
            LlamaConfig cfg,
            StackedLayerWeights weights,
            Map<LayerTensor, LoraAdapter> lora,
            BufferPool scratch) {
        this.backend = backend;
        this.cfg = cfg;
        this.w = weights;
        this.count = weights.count();
        this.lora = lora.isEmpty() ? Map.of() : new EnumMap<>(lora);
        this.own = new BufferPool(backend);
        this.scratch = scratch;
        if (!lora.isEmpty() && count != 1)
            throw new IllegalArgumentException("LoRA adapters need a single layer (E = 1), got E = " + count);
        for (Map.Entry<LayerTensor, LoraAdapter> e : this.lora.entrySet()) {
            int[] s = e.getKey().shape(cfg);
            if (s.length != 2
                    || e.getValue().a().shape()[1] != s[1]
                    || e.getValue().b().shape()[0] != s[0]) {
                throw new IllegalArgumentException(
                        "LoRA adapter " + e.getValue().a().name() + " does not fit "
                                + e.getKey().suffix());
            }
        }
        for (LayerTensor t : LayerTensor.values()) {
            int[] expect = t.shape(cfg);
            int[] got = weights.stacked(t).shape();
            if (got.length != expect.length + 1
                    || got[0] != count
                    || !java.util.Arrays.equals(java.util.Arrays.copyOfRange(got, 1, got.length), expect)) {
                throw new IllegalArgumentException("stacked weight " + t.suffix() + " must be [" + count + ", "
                        + java.util.Arrays.toString(expect).replaceAll("[\\[\\]]", "") + "] but is "
                        + java.util.Arrays.toString(got));
            }
        }
    }

    /** E, the number of layers computed together. */
    public int count() {
        return count;
    }

    public StackedLayerWeights weights() {
        return w;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(w.parameters());
        for (LoraAdapter a : lora.values()) out.addAll(a.parameters());
        return out;
    }

    /** x [E·B, T, D] → y [E·B, T, D] (owned buffer). */
    @Override
    public Tensor forward(Tensor x) {
        int d = cfg.hiddenSize(),
                kvd = cfg.kvDim(),
                f = cfg.intermediateSize(),
                h = cfg.numHeads(),
                hkv = cfg.numKvHeads(),
                hd = cfg.headDim();
        if (x.rank() != 3 || x.dim(2) != d || x.dim(0) % count != 0) {
            throw new IllegalArgumentException("batched decoder layer: input must be f32[E·B, T, " + d + "] with E = "
                    + count + " but is " + x.describe());
        }
        if (x.dim(1) > cfg.maxSeqLen()) {
            throw new IllegalArgumentException(
                    "sequence length " + x.dim(1) + " exceeds max_position_embeddings " + cfg.maxSeqLen());
        }
        this.x = x;
        int eb = x.dim(0);
        batch = eb / count;
        seq = x.dim(1);
        int n = eb * seq;
        Tensor x2 = backend.view(x, n, d);
        Tensor n1 = own.get("n1", n, d), rstd1 = own.get("rstd1", n);
        normForward(LayerTensor.INPUT_NORM, x2, n1, rstd1);
        Tensor qt = own.get("q", n, d), kt = own.get("k", n, kvd), vt = own.get("v", n, kvd);
        project(LayerTensor.Q_PROJ, n1, qt, false);
        project(LayerTensor.K_PROJ, n1, kt, false);
        project(LayerTensor.V_PROJ, n1, vt, false);
        Tensor q4 = backend.view(qt, eb, seq, h, hd), k4 = backend.view(kt, eb, seq, hkv, hd);
        backend.ropeForward(q4, cfg.ropeTheta(), 0, q4);
        backend.ropeForward(k4, cfg.ropeTheta(), 0, k4);
        Tensor att = own.get("att", n, d);
        backend.attentionForward(
                q4,
                k4,
                backend.view(vt, eb, seq, hkv, hd),
                backend.view(att, eb, seq, h, hd),
                own.get("lse", eb, h, seq));
        Tensor hs = own.get("h", n, d);
        backend.copy(x2, hs);
        project(LayerTensor.O_PROJ, att, hs, true); // h = x + o(att)
        Tensor n2 = own.get("n2", n, d), rstd2 = own.get("rstd2", n);
        normForward(LayerTensor.POST_ATTENTION_NORM, hs, n2, rstd2);
        Tensor g = own.get("g", n, f), u = own.get("u", n, f), a = own.get("a", n, f);
        project(LayerTensor.GATE_PROJ, n2, g, false);
        project(LayerTensor.UP_PROJ, n2, u, false);
        backend.swiGluForward(g, u, a); // [n,F]
        Tensor y = own.get("y", eb, seq, d);
        Tensor y2 = backend.view(y, n, d);
        backend.copy(hs, y2);
        project(LayerTensor.DOWN_PROJ, a, y2, true); // y = h + down(a)
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("batched decoder layer: backward before forward");
        int d = cfg.hiddenSize(),
                kvd = cfg.kvDim(),
                f = cfg.intermediateSize(),
                h = cfg.numHeads(),
                hkv = cfg.numKvHeads(),
                hd = cfg.headDim();
        int eb = batch * count, n = eb * seq;
        if (dy.numel() != (long) n * d) {
            throw new IllegalArgumentException("batched decoder layer: output gradient " + dy.describe()
                    + " does not match the forward output [" + eb + ", " + seq + ", " + d + "]");
        }
        Tensor dy2 = backend.view(dy, n, d);
        Tensor dx = own.get("dx", eb, seq, d);
        Tensor dx2 = backend.view(dx, n, d);
        Tensor dN = scratch.get("blayer.dnorm_out", n, d), dNormIn = scratch.get("blayer.dnorm_in", n, d);
        Tensor dA = scratch.get("blayer.da", n, f),
                dG = scratch.get("blayer.dg", n, f),
                dU = scratch.get("blayer.du", n, f);
        projectBackward(LayerTensor.DOWN_PROJ, dy2, own.get("a", n, f), dA, false);
        backend.swiGluBackward(dA, own.get("g", n, f), own.get("u", n, f), dG, dU);
        Tensor n2 = own.get("n2", n, d);
        projectBackward(LayerTensor.GATE_PROJ, dG, n2, dN, false);
        projectBackward(LayerTensor.UP_PROJ, dU, n2, dN, true);
        normBackward(LayerTensor.POST_ATTENTION_NORM, dN, own.get("h", n, d), own.get("rstd2", n), dNormIn);
        backend.add(dy2, dNormIn, dx2); // dx holds dh
        Tensor dAtt = scratch.get("blayer.datt", n, d);
        projectBackward(LayerTensor.O_PROJ, dx2, own.get("att", n, d), dAtt, false);
        Tensor dq = scratch.get("blayer.dq", n, d),
                dk = scratch.get("blayer.dk", n, kvd),
                dv = scratch.get("blayer.dv", n, kvd);
        Tensor dq4 = backend.view(dq, eb, seq, h, hd), dk4 = backend.view(dk, eb, seq, hkv, hd);
        backend.attentionBackward(
                backend.view(dAtt, eb, seq, h, hd),
                backend.view(own.get("q", n, d), eb, seq, h, hd),
                backend.view(own.get("k", n, kvd), eb, seq, hkv, hd),
                backend.view(own.get("v", n, kvd), eb, seq, hkv, hd),
                backend.view(own.get("att", n, d), eb, seq, h, hd),
                own.get("lse", eb, h, seq),
                dq4,
                dk4,
                backend.view(dv, eb, seq, hkv, hd));
        backend.ropeBackward(dq4, cfg.ropeTheta(), 0, dq4);
        backend.ropeBackward(dk4, cfg.ropeTheta(), 0, dk4);
        Tensor n1 = own.get("n1", n, d);
        projectBackward(LayerTensor.Q_PROJ, dq, n1, dN, false);
        projectBackward(LayerTensor.K_PROJ, dk, n1, dN, true);
        projectBackward(LayerTensor.V_PROJ, dv, n1, dN, true);
        normBackward(LayerTensor.INPUT_NORM, dN, backend.view(x, n, d), own.get("rstd1", n), dNormIn);
        backend.add(dx2, dNormIn, dx2);
        return dx;
    }

    // ---------------------------------------------------------------- per-expert RMSNorm

    /** out_e = RMSNorm(x_e) * gain_e for each layer's row slice; x, out [E·M, D], rstd [E·M]. */
    private void normForward(LayerTensor t, Tensor x2, Tensor out, Tensor rstd) {
        int m = batch * seq;
        for (int e = 0; e < count; e++) {
            backend.rmsNormForward(
                    backend.slice(x2, e * m, m),
                    w.parameter(e, t).value(),
                    cfg.rmsNormEps(),
                    backend.slice(out, e * m, m),
                    backend.slice(rstd, e * m, m));
        }
    }

    private void normBackward(LayerTensor t, Tensor dOut, Tensor x2, Tensor rstd, Tensor dx) {
        int m = batch * seq;
        for (int e = 0; e < count; e++) {
            Parameter p = w.parameter(e, t);
            Tensor dw = p.trainable() ? p.grad() : scratch.get("norm.dweight.discard", p.shape());
            backend.rmsNormBackward(
                    backend.slice(dOut, e * m, m),
                    backend.slice(x2, e * m, m),
                    p.value(),
                    backend.slice(rstd, e * m, m),
                    backend.slice(dx, e * m, m),
                    dw);
        }
    }

    // ---------------------------------------------------------------- batched projections

    /** [E·M, cols] as [E, M, cols]. */
    private Tensor per(Tensor t) {
        return backend.view(t, count, batch * seq, t.dim(-1));
    }

    /** y (=|+=) x W^T for every layer, plus the LoRA term: x [E·M, in], y [E·M, out]. */
    private void project(LayerTensor t, Tensor x2, Tensor y2, boolean accumulate) {
        Tensor x3 = per(x2), y3 = per(y2);
        backend.gemm(false, true, 1f, x3, w.stacked(t), accumulate ? 1f : 0f, y3); // [E,M,out]
        LoraAdapter ad = lora.get(t);
        if (ad != null) {
            Tensor low = own.get("lora." + t.name(), 1, batch * seq, ad.rank());
            backend.gemm(
                    false, true, 1f, x3, backend.view(ad.a().value(), 1, ad.rank(), x3.dim(2)), 0f, low); // [1,M,r]
            backend.gemm(false, true, ad.scale(), low, backend.view(ad.b().value(), 1, y3.dim(2), ad.rank()), 1f, y3);
        }
    }

    /**
     * Backward of {@link #project}: {@code dx (=|+=) dy W} when dx is not null, weight gradients (accumulated)
     * for trainable layers, and the LoRA factors' gradients.
     */
    private void projectBackward(LayerTensor t, Tensor dy2, Tensor x2, Tensor dx2, boolean accumulate) {
        Tensor dy3 = per(dy2), x3 = per(x2);
        if (dx2 != null) backend.gemm(false, false, 1f, dy3, w.stacked(t), accumulate ? 1f : 0f, per(dx2)); // [E,M,in]
        if (w.anyTrainable(t)) {
            if (count == 1) {
                Parameter p = w.parameter(0, t);
                backend.gemm(
                        true,
                        false,
                        1f,
                        dy3,
                        x3,
                        1f,
                        backend.view(p.grad(), w.stacked(t).shape()));
            } else {
                Tensor stack = scratch.get("blayer.dw." + t.name(), w.stacked(t).shape());
                backend.gemm(true, false, 1f, dy3, x3, 0f, stack); // [E,out,in]
                for (int e = 0; e < count; e++) {
                    Parameter p = w.parameter(e, t);
                    if (p.trainable()) backend.axpy(1f, backend.view(backend.slice(stack, e, 1), p.shape()), p.grad());
                }
            }
        }
        LoraAdapter ad = lora.get(t);
        if (ad != null) {
            int r = ad.rank(), out = dy3.dim(2), in = x3.dim(2);
            Tensor low = own.get("lora." + t.name(), 1, batch * seq, r);
            Tensor bMat = backend.view(ad.b().value(), 1, out, r),
                    aMat = backend.view(ad.a().value(), 1, r, in);
            if (ad.b().trainable())
                backend.gemm(
                        true,
                        false,
                        ad.scale(),
                        dy3,
                        low,
                        1f,
                        backend.view(ad.b().grad(), 1, out, r));
            Tensor dLow = scratch.get("blayer.lora.dlow", 1, batch * seq, r);
            backend.gemm(false, false, ad.scale(), dy3, bMat, 0f, dLow); // [1,M,r]
            if (ad.a().trainable())
                backend.gemm(true, false, 1f, dLow, x3, 1f, backend.view(ad.a().grad(), 1, r, in));
            if (dx2 != null) backend.gemm(false, false, 1f, dLow, aMat, 1f, per(dx2));
        }
    }

    @Override
    public void releaseBuffers() {
        own.release();
        x = null;
    }
}
