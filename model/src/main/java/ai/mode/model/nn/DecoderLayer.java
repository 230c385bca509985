package ai.mode.model.nn;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.runtime.Backend;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * One pre-norm Llama decoder layer with a hand-written backward: the building block of the backbone and of MoDE experts,
 * written once over a weight layout (one layer's own weights, or E layers stacked).
 *
 * <p>Llama decoder layer:
 * <pre>
 *   h = x + o_proj( Attn( RoPE(q_proj(n1)), RoPE(k_proj(n1)), v_proj(n1) ) ),  n1 = RMSNorm_in(x)
 *   y = h + down_proj( silu(gate_proj(n2)) * up_proj(n2) ),                   n2 = RMSNorm_post(h)
 * </pre>
 * Causal grouped-query attention (H query heads, Hkv key/value heads), RoPE in the Hugging Face
 * rotate_half convention, SwiGLU FFN, no biases. Parameters, named {@code prefix + "self_attn.q_proj.weight"}
 * etc. (prefix e.g. {@code "model.layers.3."}), are HF-shaped: q/o [D,D], k/v [Hkv*hd, D], gate/up [F,D],
 * down [D,F], norms [D].
 *
 * <p>The graph is the same for every {@link WeightLayout}: over a {@link SingleLayout} it is one layer on
 * {@code x [B,T,D]}; over E stacked layers (MoDE experts) it computes them together on {@code x [E·B, T, D]},
 * rows {@code [e·B, (e+1)·B)} being layer e's batch, with attention and RoPE on the layers folded into the batch
 * dimension and every projection one batched GEMM.
 *
 * <p>Buffers: this layer owns its saved activations (n1, rstd, roped q/k, v, attention output, lse, h, n2,
 * gate/up/SwiGLU outputs, y) and its input-gradient buffer; backward temporaries come from the scratch pool
 * shared with the other layers of the model. Per layer and token that is about {@code 6D + 2·kvDim + 3F}
 * floats of saved state; the scratch pool holds one layer's temporaries for the whole model.
 */
public final class DecoderLayer implements Layer {
    private final Backend backend;
    private final LlamaConfig cfg;
    private final String prefix;
    private final WeightLayout w;
    private final int count;
    private final BufferPool own;
    private final BufferPool scratch;
    private final int d, kvd, f, h, hkv, hd; // width, key/value width, FFN width, heads, kv heads, head dim
    private final RopeFrequencies rope; // [hd/2], from the config once
    private Tensor x; // the input [E·B, T, D], or the source [S, D] of a gathered forward
    private Tensor inputRows; // I32 [E·B·T] token list of a gathered forward (rows of x), else null
    private int rows, seq; // rows = E·B

    /** A layer with new zero-filled, frozen parameters named under {@code prefix}; initialise them with {@link Init}. */
    public DecoderLayer(Backend backend, LlamaConfig cfg, String prefix, BufferPool scratch) {
        this(backend, cfg, prefix, scratch, SingleLayout.newParameters(backend, cfg, prefix));
    }

    /** A layer over existing parameters, in the order of {@link #parameters()}. */
    public DecoderLayer(Backend backend, LlamaConfig cfg, String prefix, BufferPool scratch, List<Parameter> params) {
        this(backend, cfg, prefix, new SingleLayout(backend, cfg, params, scratch), scratch);
    }

    /**
     * The layer graph over any weight layout.
     *
     * @param name    what error messages call the layer (a parameter prefix)
     * @param scratch shared pool for backward temporaries
     */
    public DecoderLayer(Backend backend, LlamaConfig cfg, String name, WeightLayout layout, BufferPool scratch) {
        this.backend = backend;
        this.cfg = cfg;
        this.prefix = name;
        this.w = layout;
        this.count = layout.count();
        this.own = new BufferPool(backend);
        this.scratch = scratch;
        this.d = cfg.hiddenSize();
        this.kvd = cfg.kvDim();
        this.f = cfg.intermediateSize();
        this.h = cfg.numHeads();
        this.hkv = cfg.numKvHeads();
        this.hd = cfg.headDim();
        this.rope = cfg.ropeFrequencies();
    }

    /** The HF names of a layer's parameters under {@code prefix}, in {@link #parameters()} order. */
    public static List<String> parameterNames(String prefix) {
        return Arrays.stream(LayerTensor.values()).map(t -> prefix + t.suffix()).toList();
    }

    public String prefix() {
        return prefix;
    }

    public LlamaConfig config() {
        return cfg;
    }

    /** E, the number of layers this graph computes together (1 for a plain layer). */
    public int count() {
        return count;
    }

    public WeightLayout layout() {
        return w;
    }

    @Override
    public List<Parameter> parameters() {
        return w.parameters();
    }

    /** x [E·B, T, D] → y [E·B, T, D] (owned buffer). */
    @Override
    public Tensor forward(Tensor x) {
        checkInput(x, 0);
        return forwardRows(x, null, x.dim(0), x.dim(1));
    }

    /**
     * {@link #forward} of the input {@code x[p] = src[tokens[p]]} at the {@code rows·seq} positions p of a batch
     * {@code [rows, seq]}, read in place: the input RMSNorm runs on the source rows, the q/k/v projections read its
     * output through the token list (the grouped GEMM's gather, {@link WeightLayout#projectRows}), and the residual
     * stream starts as the gathered rows, so no gathered copy of the input is written. src {@code [S, D]}, tokens I32
     * {@code [rows·seq]}; needs a layout that {@link WeightLayout#readsRows()}. Returns y {@code [rows, seq, D]};
     * {@link #backward} then returns the gradient of src, {@code [S, D]}.
     */
    public Tensor forwardGathered(Tensor src, Tensor tokens, int rows, int seq) {
        if (!w.readsRows())
            throw new UnsupportedOperationException("decoder layer " + prefix
                    + ": a gathered forward needs token-list projections (one expert layer without adapters)");
        if (src.rank() != 2 || src.dim(1) != d || tokens.numel() != (long) rows * seq)
            throw new IllegalArgumentException("decoder layer " + prefix + ": gathered input needs src f32[S, " + d
                    + "] and " + rows * seq + " token indices, got " + src.describe() + " and " + tokens.describe());
        if (seq > cfg.maxSeqLen())
            throw new IllegalArgumentException("decoder layer " + prefix + ": sequence length " + seq
                    + " exceeds max_position_embeddings " + cfg.maxSeqLen());
        return forwardRows(src, tokens, rows, seq);
    }

    /** The forward pass over x [rows, seq, D], or over src [S, D] read through tokens (see forwardGathered). */
    private Tensor forwardRows(Tensor in, Tensor tokens, int rows, int seq) {
        this.x = in;
        this.inputRows = tokens;
        this.rows = rows;
        this.seq = seq;
        int n = rows * seq;
        Tensor x2 = tokens == null ? backend.view(in, n, d) : in;
        Tensor[] qkv = queryKeyValue(x2, tokens, 0);
        Tensor att = own.get("att", n, d);
        backend.attentionForward(
                qkv[0], qkv[1], qkv[2], backend.view(att, rows, seq, h, hd), own.get("lse", rows, h, seq));
        return outputAndFeedForward(x2, tokens, att);
    }

    @Override
    public boolean supportsCache() {
        return true;
    }

    /**
     * Generation: x [E·B, t, D] holds t new positions after the {@code cache.length()} cached ones. Their keys and
     * values (roped at their positions) are written into this layer's cache rows, and their queries attend every
     * cached key: the first call (an empty cache, the prompt) with the fused causal attention, later ones with
     * {@link Backend#attentionCachedForward}. Returns y [E·B, t, D]; leaves nothing for {@link #backward}.
     */
    @Override
    public Tensor forwardCached(Tensor x, KvCache cache) {
        int pos = cache.length();
        checkInput(x, pos);
        int t = x.dim(1);
        cache.requireRoom("decoder layer " + prefix, t);
        this.x = null; // no backward after a cached forward
        rows = x.dim(0);
        seq = t;
        int n = rows * t;
        Tensor x2 = backend.view(x, n, d);
        Tensor[] qkv = queryKeyValue(x2, null, pos);
        Tensor[] kv = cache.buffers(this, rows, hkv, hd); // [E·B, C, Hkv, hd] each
        int cap = cache.capacity();
        for (int c = 0; c < 2; c++) {
            Tensor src = backend.view(qkv[c + 1], n, kvd), dst = backend.view(kv[c], rows * cap, kvd);
            for (int r = 0; r < rows; r++)
                backend.copy(backend.slice(src, r * t, t), backend.slice(dst, r * cap + pos, t));
        }
        Tensor att = own.get("att", n, d);
        Tensor att4 = backend.view(att, rows, t, h, hd);
        if (pos == 0) backend.attentionForward(qkv[0], qkv[1], qkv[2], att4, own.get("lse", rows, h, t));
        else backend.attentionCachedForward(qkv[0], kv[0], kv[1], pos + t, att4);
        return outputAndFeedForward(x2, null, att);
    }

    /** x must be [E·B, T, D], and its T positions after {@code before} earlier ones must fit the model's context. */
    private void checkInput(Tensor x, int before) {
        if (x.rank() != 3 || x.dim(2) != d || x.dim(0) % count != 0) {
            throw new IllegalArgumentException("decoder layer " + prefix + ": input must be f32["
                    + (count == 1 ? "B" : count + "·B") + ", T, " + d + "] but is " + x.describe());
        }
        int positions = before + x.dim(1);
        if (positions > cfg.maxSeqLen()) {
            throw new IllegalArgumentException("decoder layer " + prefix + ": sequence length " + positions
                    + " exceeds max_position_embeddings " + cfg.maxSeqLen());
        }
    }

    /**
     * n1 = RMSNorm_in(x) and the roped q [E·B,T,H,hd], roped k and v [E·B,T,Hkv,hd] of positions offset.. ; with
     * tokens, x2 is the source [S, D], n1 its normalised rows [S, D] and the projections read them through tokens.
     */
    private Tensor[] queryKeyValue(Tensor x2, Tensor tokens, int positionOffset) {
        int n = rows * seq, normRows = x2.dim(0);
        Tensor n1 = own.get("n1", normRows, d), rstd1 = own.get("rstd1", normRows);
        w.normForward(LayerTensor.INPUT_NORM, x2, n1, rstd1);
        Tensor qt = own.get("q", n, d), kt = own.get("k", n, kvd), vt = own.get("v", n, kvd);
        project(LayerTensor.Q_PROJ, n1, tokens, qt); // [N,D]
        project(LayerTensor.K_PROJ, n1, tokens, kt); // [N,Hkv*hd]
        project(LayerTensor.V_PROJ, n1, tokens, vt);
        Tensor q4 = backend.view(qt, rows, seq, h, hd), k4 = backend.view(kt, rows, seq, hkv, hd);
        backend.ropeForward(q4, rope, positionOffset, q4);
        backend.ropeForward(k4, rope, positionOffset, k4);
        return new Tensor[] {q4, k4, backend.view(vt, rows, seq, hkv, hd)};
    }

    /** y2 = x2 W^T, x2's rows read through tokens when not null. */
    private void project(LayerTensor t, Tensor x2, Tensor tokens, Tensor y2) {
        if (tokens == null) w.project(t, x2, y2, false);
        else w.projectRows(t, x2, tokens, y2);
    }

    /**
     * h = x + att @ Wo^T, then y = h + down(silu(gate(n2)) * up(n2)), n2 = RMSNorm_post(h); y [E·B,T,D] owned. With
     * tokens, x is x2's rows tokens (gathered straight into h).
     */
    private Tensor outputAndFeedForward(Tensor x2, Tensor tokens, Tensor att) {
        int n = rows * seq;
        Tensor hs = own.get("h", n, d);
        if (tokens == null) backend.copy(x2, hs);
        else backend.gatherRows(x2, tokens, hs);
        w.project(LayerTensor.O_PROJ, att, hs, true); // h = x + att @ Wo^T
        Tensor n2 = own.get("n2", n, d), rstd2 = own.get("rstd2", n);
        w.normForward(LayerTensor.POST_ATTENTION_NORM, hs, n2, rstd2);
        Tensor g = own.get("g", n, f), u = own.get("u", n, f), a = own.get("a", n, f);
        w.projectGateUp(n2, g, u, a); // a = silu(g) * u  [N,F]
        Tensor y = own.get("y", rows, seq, d);
        Tensor y2 = backend.view(y, n, d);
        backend.copy(hs, y2);
        w.project(LayerTensor.DOWN_PROJ, a, y2, true); // y = h + a @ Wd^T
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("decoder layer " + prefix + ": backward before forward");
        int n = rows * seq;
        if (dy.numel() != (long) n * d) {
            throw new IllegalArgumentException("decoder layer " + prefix + ": output gradient " + dy.describe()
                    + " does not match the forward output [" + rows + ", " + seq + ", " + d + "]");
        }
        Tensor dy2 = backend.view(dy, n, d);
        Tensor dx = own.get("dx", rows, seq, d);
        Tensor dx2 = backend.view(dx, n, d);
        Tensor dN = scratch.get("layer.dnorm_out", n, d), dNormIn = scratch.get("layer.dnorm_in", n, d);
        // feed-forward block: y = h + down(a)
        Tensor dA = scratch.get("layer.da", n, f),
                dG = scratch.get("layer.dg", n, f),
                dU = scratch.get("layer.du", n, f);
        w.projectBackward(LayerTensor.DOWN_PROJ, dy2, own.get("a", n, f), dA, false);
        backend.swiGluBackward(dA, own.get("g", n, f), own.get("u", n, f), dG, dU);
        Tensor n2 = own.get("n2", n, d);
        w.projectBackward(LayerTensor.GATE_PROJ, dG, n2, dN, false);
        w.projectBackward(LayerTensor.UP_PROJ, dU, n2, dN, true);
        w.normBackward(LayerTensor.POST_ATTENTION_NORM, dN, own.get("h", n, d), own.get("rstd2", n), dNormIn);
        backend.add(dy2, dNormIn, dx2); // dx holds dh
        // attention block: h = x + o(att)
        Tensor dAtt = scratch.get("layer.datt", n, d);
        w.projectBackward(LayerTensor.O_PROJ, dx2, own.get("att", n, d), dAtt, false);
        Tensor dq = scratch.get("layer.dq", n, d),
                dk = scratch.get("layer.dk", n, kvd),
                dv = scratch.get("layer.dv", n, kvd);
        Tensor dq4 = backend.view(dq, rows, seq, h, hd), dk4 = backend.view(dk, rows, seq, hkv, hd);
        backend.attentionBackward(
                backend.view(dAtt, rows, seq, h, hd),
                backend.view(own.get("q", n, d), rows, seq, h, hd),
                backend.view(own.get("k", n, kvd), rows, seq, hkv, hd),
                backend.view(own.get("v", n, kvd), rows, seq, hkv, hd),
                backend.view(own.get("att", n, d), rows, seq, h, hd),
                own.get("lse", rows, h, seq),
                dq4,
                dk4,
                backend.view(dv, rows, seq, hkv, hd));
        backend.ropeBackward(dq4, rope, 0, dq4);
        backend.ropeBackward(dk4, rope, 0, dk4);
        if (inputRows != null) return gatheredInputGradient(dq, dk, dv, dN, dx2);
        Tensor n1 = own.get("n1", n, d);
        w.projectBackward(LayerTensor.Q_PROJ, dq, n1, dN, false);
        w.projectBackward(LayerTensor.K_PROJ, dk, n1, dN, true);
        w.projectBackward(LayerTensor.V_PROJ, dv, n1, dN, true);
        w.normBackward(LayerTensor.INPUT_NORM, dN, backend.view(x, n, d), own.get("rstd1", n), dNormIn);
        backend.add(dx2, dNormIn, dx2);
        return dx;
    }

    /**
     * The end of {@link #backward} after a gathered forward: the q/k/v weight gradients read the normalised source
     * rows through the token list; dN and dh (in dx2, both [N, D] in position order) are summed into source rows
     * (scatter-add; positions that share a token add up) and the input RMSNorm runs backward on the source. Returns
     * the source gradient [S, D] (owned).
     */
    private Tensor gatheredInputGradient(Tensor dq, Tensor dk, Tensor dv, Tensor dN, Tensor dx2) {
        int s = x.dim(0);
        Tensor n1 = own.get("n1", s, d);
        w.projectRowsBackward(LayerTensor.Q_PROJ, dq, n1, inputRows, dN, false);
        w.projectRowsBackward(LayerTensor.K_PROJ, dk, n1, inputRows, dN, true);
        w.projectRowsBackward(LayerTensor.V_PROJ, dv, n1, inputRows, dN, true);
        Tensor dNs = scratch.get("layer.dnorm_out.source", s, d), dIns = scratch.get("layer.dnorm_in.source", s, d);
        backend.fill(dNs, 0f);
        backend.scatterAddRows(dN, inputRows, dNs);
        w.normBackward(LayerTensor.INPUT_NORM, dNs, x, own.get("rstd1", s), dIns);
        Tensor dsrc = own.get("dx.source", s, d);
        backend.fill(dsrc, 0f);
        backend.scatterAddRows(dx2, inputRows, dsrc); // dh
        backend.add(dsrc, dIns, dsrc);
        return dsrc;
    }

    @Override
    public void releaseBuffers() {
        own.release();
        w.releaseBuffers();
        x = null;
    }

    /** Bytes of saved activations and owned outputs currently held by this layer. */
    public long bufferBytes() {
        return own.bytes();
    }
}
