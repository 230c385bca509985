package ai.mode.bench;

import ai.mode.model.LlamaConfig;

/**
 * Work counts (floating-point operations and minimum bytes moved) of each benchmarked op, so timings become GFLOP/s or
 * GB/s. Conventions: a multiply-add is 2 FLOPs; bytes are the compulsory float32 traffic (each input read once, each
 * output written once), the floor a memory-bound op cannot beat.
 */
public final class Flops {
    private Flops() {}

    private static final long F = Float.BYTES;

    /** GEMM {@code [m,k] x [k,n]}: 2mnk. */
    public static long gemm(long m, long n, long k) {
        return 2 * m * n * k;
    }

    /** Query-key pairs a causal mask keeps in one sequence of length t: t(t+1)/2. */
    public static long causalPairs(long t) {
        return t * (t + 1) / 2;
    }

    /** Causal attention forward, [B,T,H,hd]: QK^T and PV over the kept pairs, 2 x 2 x hd FLOPs per pair. */
    public static long attentionForward(long b, long t, long h, long hd) {
        return 4 * b * h * causalPairs(t) * hd;
    }

    /**
     * Causal attention backward: recomputed QK^T, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q:
     * five products over the kept pairs, 2.5x the forward.
     */
    public static long attentionBackward(long b, long t, long h, long hd) {
        return 10 * b * h * causalPairs(t) * hd;
    }

    /** RMSNorm forward bytes, x and out [n,d] float32: read x and weight, write out and rstd. */
    public static long rmsNormForwardBytes(long n, long d) {
        return rmsNormForwardBytes(n, d, F);
    }

    /** The same with x and out of {@code elem} bytes each (weight and rstd stay float32). */
    public static long rmsNormForwardBytes(long n, long d, long elem) {
        return elem * 2 * n * d + F * (d + n);
    }

    /** RMSNorm backward bytes: read dOut, x, weight, rstd; write dx; read and write dWeight. */
    public static long rmsNormBackwardBytes(long n, long d) {
        return rmsNormBackwardBytes(n, d, F);
    }

    /** The same with dOut, x and dx of {@code elem} bytes each. */
    public static long rmsNormBackwardBytes(long n, long d, long elem) {
        return elem * 3 * n * d + F * (3 * d + n);
    }

    /** SwiGLU forward bytes, [n,f] float32: read gate and up, write out. */
    public static long swiGluForwardBytes(long n, long f) {
        return swiGluForwardBytes(n, f, F);
    }

    public static long swiGluForwardBytes(long n, long f, long elem) {
        return elem * 3 * n * f;
    }

    /** SwiGLU backward bytes: read dOut, gate, up; write dGate, dUp. */
    public static long swiGluBackwardBytes(long n, long f) {
        return swiGluBackwardBytes(n, f, F);
    }

    public static long swiGluBackwardBytes(long n, long f, long elem) {
        return elem * 5 * n * f;
    }

    /** Fused softmax cross-entropy with gradient, logits [n,v]: read logits, write dLogits, read targets. */
    public static long crossEntropyBytes(long n, long v) {
        return F * (2 * n * v + n);
    }

    /** AdamW over {@code count} elements: read param, grad, m, v; write param, m, v. */
    public static long adamWBytes(long count) {
        return F * 7 * count;
    }

    /** Parameters that take part in matrix products per token: every layer's projections and the LM head. */
    public static long matmulParameters(LlamaConfig c) {
        long d = c.hiddenSize(), f = c.intermediateSize(), kv = c.kvDim();
        return c.numLayers() * (2 * d * d + 2 * d * kv + 3 * d * f) + (long) c.vocabSize() * d;
    }

    /**
     * FLOPs of one training step (forward + backward) on {@code batch} sequences of {@code seq} tokens:
     * 6 per matmul parameter per token (2 forward, 4 backward) plus causal attention forward and backward
     * in every layer. Elementwise ops are not counted.
     */
    public static long trainStep(LlamaConfig c, long batch, long seq) {
        long tokens = batch * seq;
        long attention = attentionForward(batch, seq, c.numHeads(), c.headDim())
                + attentionBackward(batch, seq, c.numHeads(), c.headDim());
        return 6 * matmulParameters(c) * tokens + c.numLayers() * attention;
    }
}
