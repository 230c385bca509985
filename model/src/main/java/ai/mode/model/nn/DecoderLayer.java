package ai.mode.model.nn;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * One pre-norm Llama decoder layer with a hand-written backward: the building block of the backbone and of MoDE experts
 * (which are stacks of these under another name prefix).
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
 * <p>Buffers: this layer owns its saved activations (n1, rstd, roped q/k, v, attention output, lse, h, n2,
 * gate/up/SwiGLU outputs, y) and its input-gradient buffer; backward temporaries come from the scratch pool
 * shared with the other layers of the model. Per layer and token that is about {@code 6D + 2·kvDim + 3F}
 * floats of saved state; the scratch pool holds one layer's temporaries for the whole model.
 */
public final class DecoderLayer implements Layer {
    private final Backend backend;
    private final LlamaConfig cfg;
    private final String prefix;
    private final BufferPool own;
    private final BufferPool scratch;
    private final Parameter inputNorm, q, k, v, o, postNorm, gate, up, down;
    private Tensor x;
    private int batch, seq;

    /** A layer with new zero-filled, frozen parameters named under {@code prefix}; initialise them with {@link Init}. */
    public DecoderLayer(Backend backend, LlamaConfig cfg, String prefix, BufferPool scratch) {
        this(backend, cfg, prefix, scratch, newParameters(backend, cfg, prefix));
    }

    /** A layer over existing parameters, in the order of {@link #parameters()}. */
    public DecoderLayer(Backend backend, LlamaConfig cfg, String prefix, BufferPool scratch, List<Parameter> params) {
        this.backend = backend;
        this.cfg = cfg;
        this.prefix = prefix;
        this.own = new BufferPool(backend);
        this.scratch = scratch;
        if (params.size() != 9)
            throw new IllegalArgumentException("decoder layer " + prefix + " needs 9 parameters, got " + params.size());
        inputNorm = params.get(0);
        q = params.get(1);
        k = params.get(2);
        v = params.get(3);
        o = params.get(4);
        postNorm = params.get(5);
        gate = params.get(6);
        up = params.get(7);
        down = params.get(8);
        int d = cfg.hiddenSize(), kv = cfg.kvDim(), f = cfg.intermediateSize();
        check(inputNorm, d);
        check(q, d, d);
        check(k, kv, d);
        check(v, kv, d);
        check(o, d, d);
        check(postNorm, d);
        check(gate, f, d);
        check(up, f, d);
        check(down, d, f);
    }

    /** The HF names of a layer's parameters under {@code prefix}, in {@link #parameters()} order. */
    public static List<String> parameterNames(String prefix) {
        return List.of(
                prefix + "input_layernorm.weight",
                prefix + "self_attn.q_proj.weight",
                prefix + "self_attn.k_proj.weight",
                prefix + "self_attn.v_proj.weight",
                prefix + "self_attn.o_proj.weight",
                prefix + "post_attention_layernorm.weight",
                prefix + "mlp.gate_proj.weight",
                prefix + "mlp.up_proj.weight",
                prefix + "mlp.down_proj.weight");
    }

    private static List<Parameter> newParameters(Backend b, LlamaConfig cfg, String prefix) {
        int d = cfg.hiddenSize(), kv = cfg.kvDim(), f = cfg.intermediateSize();
        int[][] shapes = {{d}, {d, d}, {kv, d}, {kv, d}, {d, d}, {d}, {f, d}, {f, d}, {d, f}};
        List<String> names = parameterNames(prefix);
        Parameter[] ps = new Parameter[9];
        for (int i = 0; i < 9; i++) ps[i] = Parameter.zeros(b, names.get(i), shapes[i]);
        return List.of(ps);
    }

    private static void check(Parameter p, int... shape) {
        if (!java.util.Arrays.equals(p.shape(), shape)) {
            throw new IllegalArgumentException("parameter " + p.name() + " must have shape "
                    + java.util.Arrays.toString(shape) + " but has " + java.util.Arrays.toString(p.shape()));
        }
    }

    public String prefix() {
        return prefix;
    }

    public LlamaConfig config() {
        return cfg;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(inputNorm, q, k, v, o, postNorm, gate, up, down);
    }

    @Override
    public Tensor forward(Tensor x) {
        int d = cfg.hiddenSize(),
                kvd = cfg.kvDim(),
                f = cfg.intermediateSize(),
                h = cfg.numHeads(),
                hkv = cfg.numKvHeads(),
                hd = cfg.headDim();
        if (x.rank() != 3 || x.dim(2) != d) {
            throw new IllegalArgumentException(
                    "decoder layer " + prefix + ": input must be f32[B, T, " + d + "] but is " + x.describe());
        }
        if (x.dim(1) > cfg.maxSeqLen()) {
            throw new IllegalArgumentException("decoder layer " + prefix + ": sequence length " + x.dim(1)
                    + " exceeds max_position_embeddings " + cfg.maxSeqLen());
        }
        this.x = x;
        batch = x.dim(0);
        seq = x.dim(1);
        int n = batch * seq;
        Tensor x2 = backend.view(x, n, d);
        // attention block
        Tensor n1 = own.get("n1", n, d), rstd1 = own.get("rstd1", n);
        backend.rmsNormForward(x2, inputNorm.value(), cfg.rmsNormEps(), n1, rstd1);
        Tensor qt = own.get("q", n, d), kt = own.get("k", n, kvd), vt = own.get("v", n, kvd);
        Linear.forward(backend, n1, q, qt); // [N,D]
        Linear.forward(backend, n1, k, kt); // [N,Hkv*hd]
        Linear.forward(backend, n1, v, vt);
        Tensor q4 = backend.view(qt, batch, seq, h, hd), k4 = backend.view(kt, batch, seq, hkv, hd);
        backend.ropeForward(q4, cfg.ropeTheta(), 0, q4);
        backend.ropeForward(k4, cfg.ropeTheta(), 0, k4);
        Tensor att = own.get("att", n, d);
        backend.attentionForward(
                q4,
                k4,
                backend.view(vt, batch, seq, hkv, hd),
                backend.view(att, batch, seq, h, hd),
                own.get("lse", batch, h, seq));
        Tensor hs = own.get("h", n, d);
        backend.copy(x2, hs);
        backend.gemm(false, true, 1f, att, o.value(), 1f, hs); // h = x + att @ Wo^T
        // feed-forward block
        Tensor n2 = own.get("n2", n, d), rstd2 = own.get("rstd2", n);
        backend.rmsNormForward(hs, postNorm.value(), cfg.rmsNormEps(), n2, rstd2);
        Tensor g = own.get("g", n, f), u = own.get("u", n, f), a = own.get("a", n, f);
        Linear.forward(backend, n2, gate, g);
        Linear.forward(backend, n2, up, u);
        backend.swiGluForward(g, u, a); // a = silu(g) * u  [N,F]
        Tensor y = own.get("y", batch, seq, d);
        Tensor y2 = backend.view(y, n, d);
        backend.copy(hs, y2);
        backend.gemm(false, true, 1f, a, down.value(), 1f, y2); // y = h + a @ Wd^T
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("decoder layer " + prefix + ": backward before forward");
        int d = cfg.hiddenSize(),
                kvd = cfg.kvDim(),
                f = cfg.intermediateSize(),
                h = cfg.numHeads(),
                hkv = cfg.numKvHeads(),
                hd = cfg.headDim();
        int n = batch * seq;
        if (dy.numel() != (long) n * d) {
            throw new IllegalArgumentException("decoder layer " + prefix + ": output gradient " + dy.describe()
                    + " does not match the forward output [" + batch + ", " + seq + ", " + d + "]");
        }
        Tensor dy2 = backend.view(dy, n, d);
        Tensor dx = own.get("dx", batch, seq, d);
        Tensor dx2 = backend.view(dx, n, d);
        Tensor dN = scratch.get("layer.dnorm_out", n, d), dNormIn = scratch.get("layer.dnorm_in", n, d);
        // feed-forward block: y = h + down(a)
        Tensor dA = scratch.get("layer.da", n, f),
                dG = scratch.get("layer.dg", n, f),
                dU = scratch.get("layer.du", n, f);
        Linear.backward(backend, dy2, own.get("a", n, f), down, dA, false);
        backend.swiGluBackward(dA, own.get("g", n, f), own.get("u", n, f), dG, dU);
        Tensor n2 = own.get("n2", n, d);
        Linear.backward(backend, dG, n2, gate, dN, false);
        Linear.backward(backend, dU, n2, up, dN, true);
        backend.rmsNormBackward(
                dN, own.get("h", n, d), postNorm.value(), own.get("rstd2", n), dNormIn, normGrad(postNorm));
        backend.add(dy2, dNormIn, dx2); // dx holds dh
        // attention block: h = x + o(att)
        Tensor dAtt = scratch.get("layer.datt", n, d);
        Linear.backward(backend, dx2, own.get("att", n, d), o, dAtt, false);
        Tensor dq = scratch.get("layer.dq", n, d),
                dk = scratch.get("layer.dk", n, kvd),
                dv = scratch.get("layer.dv", n, kvd);
        Tensor dq4 = backend.view(dq, batch, seq, h, hd), dk4 = backend.view(dk, batch, seq, hkv, hd);
        backend.attentionBackward(
                backend.view(dAtt, batch, seq, h, hd),
                backend.view(own.get("q", n, d), batch, seq, h, hd),
                backend.view(own.get("k", n, kvd), batch, seq, hkv, hd),
                backend.view(own.get("v", n, kvd), batch, seq, hkv, hd),
                backend.view(own.get("att", n, d), batch, seq, h, hd),
                own.get("lse", batch, h, seq),
                dq4,
                dk4,
                backend.view(dv, batch, seq, hkv, hd));
        backend.ropeBackward(dq4, cfg.ropeTheta(), 0, dq4);
        backend.ropeBackward(dk4, cfg.ropeTheta(), 0, dk4);
        Tensor n1 = own.get("n1", n, d);
        Linear.backward(backend, dq, n1, q, dN, false);
        Linear.backward(backend, dk, n1, k, dN, true);
        Linear.backward(backend, dv, n1, v, dN, true);
        backend.rmsNormBackward(
                dN, backend.view(x, n, d), inputNorm.value(), own.get("rstd1", n), dNormIn, normGrad(inputNorm));
        backend.add(dx2, dNormIn, dx2);
        return dx;
    }

    private Tensor normGrad(Parameter p) {
        return p.trainable() ? p.grad() : scratch.get("norm.dweight.discard", p.shape());
    }

    @Override
    public void releaseBuffers() {
        own.release();
        x = null;
    }

    /** Bytes of saved activations and owned outputs currently held by this layer. */
    public long bufferBytes() {
        return own.bytes();
    }
}
