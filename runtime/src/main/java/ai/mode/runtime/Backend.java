package ai.mode.runtime;

import java.lang.foreign.MemorySegment;

/**
 * The compute contract every backend ({@code cpu}, {@code cuda}, {@code emu}) implements.
 *
 * <p>The model and trainer only talk to this interface and never branch on the backend. All tensors are
 * contiguous and row-major; all float math accumulates in float32 (or wider). Outputs are written, never
 * read, unless the method says it accumulates. Shapes in comments use: B batch, T sequence, H query heads,
 * Hkv key/value heads, hd head dimension, D model width, F ffn width, V vocabulary, N rows (= B*T tokens),
 * E branches (backbone + experts).
 *
 * <p>Implementations must be deterministic: the same inputs give the same bits on every call, whatever
 * the thread count schedule (no float atomics, fixed reduction order).
 */
public interface Backend extends AutoCloseable {

    /** Target id that {@link #crossEntropy} skips (no loss, no gradient, not counted). */
    int IGNORE_INDEX = -100;

    /** {@code cpu}, {@code emu} or {@code cuda}. */
    String name();

    /**
     * What decides the bits of this backend's results beyond the inputs: its kernels, GEMM provider and its mode,
     * and the processor, e.g. {@code cpu: vector (16 x float32, 12 x 32 GEMM tile) kernels, gemm vector, on AMD EPYC
     * (AuthenticAMD, AVX-512)}. Two runs whose backends report the same text compute the same bits; checkpoints
     * record it so a resume elsewhere is told it will not continue bit for bit.
     */
    default String numerics() {
        return name();
    }

    // ---------------------------------------------------------------- memory

    /** A new zero-filled tensor. */
    Tensor allocate(DType dtype, int... shape);

    default Tensor zeros(int... shape) {
        return allocate(DType.F32, shape);
    }

    /** A new F32 tensor holding a copy of {@code data} (length must equal the shape's element count). */
    Tensor fromHost(float[] data, int... shape);

    /** A new I32 tensor holding a copy of {@code data}. */
    Tensor fromHost(int[] data, int... shape);

    /**
     * A tensor over the caller's memory {@code memory} (exactly {@code numel * dtype.bytes()} bytes, row-major), without
     * a copy: ops read and write that memory in place. The caller keeps it alive (its arena open, its array
     * reachable) while the tensor is in use; closing the tensor does not free it. Which memory a backend can use in
     * place is its own: {@code cpu} wraps heap segments over a {@code float[]} (F32) or {@code int[]} (I32); a backend
     * that cannot use {@code memory} throws {@link IllegalArgumentException} saying why (copy with {@code fromHost}
     * then), and one that wraps nothing throws {@link UnsupportedOperationException}, as this default does.
     */
    default Tensor wrap(MemorySegment memory, DType dtype, int... shape) {
        throw new UnsupportedOperationException(
                "backend '" + name() + "' cannot wrap caller memory; copy it in with fromHost instead");
    }

    /** Copies an F32 (or BF16, widened) tensor into {@code dst}, whose length must equal numel. */
    void toHost(Tensor src, float[] dst);

    /** Copies an I32 tensor into {@code dst}. */
    void toHost(Tensor src, int[] dst);

    default float[] toHostFloats(Tensor src) {
        float[] out = new float[Math.toIntExact(src.numel())];
        toHost(src, out);
        return out;
    }

    /** Overwrites {@code dst} with F32 host data (length must equal numel). */
    void copyFromHost(float[] src, Tensor dst);

    /** {@code dst = src}; same element count and dtype. */
    void copy(Tensor src, Tensor dst);

    /** Sets every element of an F32 tensor to {@code value}. */
    void fill(Tensor t, float value);

    /** A view with another shape of the same element count, sharing storage. */
    Tensor view(Tensor t, int... shape);

    /** A view of rows {@code [start, start+length)} along dimension 0, sharing storage. */
    Tensor slice(Tensor t, int start, int length);

    /** Waits until all queued work is done (no-op on synchronous backends). */
    default void synchronize() {}

    @Override
    default void close() {}

    // ---------------------------------------------------------------- dense linear algebra

    /**
     * {@code c = alpha * op(a) @ op(b) + beta * c}, op = transpose when the flag is set.
     * 2-D: a [M,K] (or [K,M] if transA), b [K,N] (or [N,K] if transB), c [M,N].
     * 3-D: the same per batch index, a leading dimension shared by all three ([Bt,M,K] etc.);
     * a 2-D {@code b} with 3-D {@code a} and {@code c} is broadcast over the batch.
     * With beta == 0, c is not read (NaN in c does not propagate).
     */
    void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /** {@code out = a + b} elementwise (same shapes; out may alias a or b). */
    void add(Tensor a, Tensor b, Tensor out);

    /** {@code y += alpha * x} elementwise. */
    void axpy(float alpha, Tensor x, Tensor y);

    /** {@code x *= s} elementwise. */
    void scale(Tensor x, float s);

    /** Sum of squares of all elements, accumulated in float64 (for gradient-norm clipping). */
    double sumSquares(Tensor x);

    /** {@code out[j] = sum over rows of x[r, j]}: x [N,D] viewed by its last dim, out [D] accumulated into. */
    void sumRowsAccumulate(Tensor x, Tensor out);

    // ---------------------------------------------------------------- embedding

    /** out[n, :] = table[ids[n], :]. table [V,D], ids I32 [N], out [N,D]. Ids outside [0,V) are an error. */
    void embeddingForward(Tensor table, Tensor ids, Tensor out);

    /** dTable[ids[n], :] += dOut[n, :] (accumulates; deterministic order). */
    void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable);

    // ---------------------------------------------------------------- RMSNorm over the last dimension

    /** out = x * rstd * weight, rstd = 1/sqrt(mean(x^2) + eps). x, out [N,D]; weight [D]; rstd [N] (saved). */
    void rmsNormForward(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd);

    /** dx (overwritten) and dWeight (accumulated) from dOut, using the saved rstd. */
    void rmsNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight);

    // ---------------------------------------------------------------- rotary position embedding

    /**
     * Rotary embedding, Hugging Face Llama convention (rotate_half: element i pairs with i + hd/2).
     * x, out [B,T,H,hd] (out may alias x); position of token t is {@code positionOffset + t}; pair i turns by
     * {@code position * frequencies.inverse(i)} radians (frequencies has hd/2 pairs: plain RoPE is
     * {@link RopeFrequencies#plain}, scaled variants come from the model's config).
     */
    void ropeForward(Tensor x, RopeFrequencies frequencies, int positionOffset, Tensor out);

    /** Gradient of {@link #ropeForward}: the inverse rotation applied to dOut (dx may alias dOut). */
    void ropeBackward(Tensor dOut, RopeFrequencies frequencies, int positionOffset, Tensor dx);

    // ---------------------------------------------------------------- attention

    /**
     * Causal scaled-dot-product attention, fused (online softmax; no T×T matrix is stored).
     * q [B,T,H,hd], k and v [B,T,Hkv,hd] with H % Hkv == 0 (grouped-query: head h reads kv head h / (H/Hkv)),
     * out [B,T,H,hd], lse [B,H,T] the saved log-sum-exp of the scaled scores. Scale 1/sqrt(hd).
     */
    void attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse);

    /** Gradients of {@link #attentionForward} (recomputing the probabilities from lse); dq, dk, dv overwritten. */
    void attentionBackward(
            Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv);

    /**
     * Attention of new queries over a key/value cache, for generation: q [B,t,H,hd] holds the queries of positions
     * {@code [length - t, length)}, kCache and vCache [B,C,Hkv,hd] (C >= length, the cache capacity) hold the keys
     * and values of positions {@code [0, length)} in their first rows (later rows are not read); query i attends the
     * keys {@code [0, length - t + i]}. out [B,t,H,hd]. Scale 1/sqrt(hd), grouped-query as {@link #attentionForward};
     * no lse (inference only). With {@code length == t} it equals {@link #attentionForward} on the first t rows.
     */
    void attentionCachedForward(Tensor q, Tensor kCache, Tensor vCache, int length, Tensor out);

    // ---------------------------------------------------------------- SwiGLU

    /** out = silu(gate) * up, all [N,F]. */
    void swiGluForward(Tensor gate, Tensor up, Tensor out);

    /** dGate, dUp (overwritten) from dOut. */
    void swiGluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp);

    // ---------------------------------------------------------------- loss

    /**
     * Fused softmax cross-entropy with next-token accuracy. logits [N,V], targets I32 [N]
     * (IGNORE_INDEX rows skipped). If {@code dLogits} is not null it receives
     * {@code (softmax(logits) - onehot(target)) * gradScale} (zero on ignored rows); it may alias logits.
     * Arg-max ties resolve to the lowest index.
     */
    LossStats crossEntropy(Tensor logits, Tensor targets, Tensor dLogits, float gradScale);

    // ---------------------------------------------------------------- optimizer

    /** One AdamW update of {@code param} in place; m and v are the moment buffers, updated in place. */
    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step);

    // ---------------------------------------------------------------- MoDE gate and merge

    /** Row softmax: probs [N,E] from logits [N,E] (may alias). */
    void softmaxForward(Tensor logits, Tensor probs);

    /** dLogits = probs * (dProbs - sum(dProbs * probs)) per row; overwritten (may alias dProbs). */
    void softmaxBackward(Tensor dProbs, Tensor probs, Tensor dLogits);

    /** out[n,:] = sum_e probs[n,e] * branches[e,n,:]. branches [E,N,D], probs [N,E], out [N,D]. */
    void weightedMergeForward(Tensor branches, Tensor probs, Tensor out);

    /**
     * Gradients of {@link #weightedMergeForward}: dBranches[e,n,:] = probs[n,e] * dOut[n,:] (overwritten;
     * may be null when no branch needs it) and dProbs[n,e] = dot(dOut[n,:], branches[e,n,:]) (overwritten).
     */
    void weightedMergeBackward(Tensor dOut, Tensor branches, Tensor probs, Tensor dBranches, Tensor dProbs);

    // ---------------------------------------------------------------- grouped expert GEMM

    /*
     * One call computes a projection for every expert (group) of a block. The R operand rows form G contiguous
     * groups: group g is rows [offsets[g], offsets[g+1]) (offsets I32 [G+1]: 0, non-decreasing, R) and uses weight
     * w[g] (F32 [G, N, K], torch.nn.Linear's [out, in] layout); offsets null means G equal groups of R/G rows (dense
     * routing). rows (I32 [R] or null) is a token list: operand row r is x's row rows[r] (the top-k gather, read in
     * place; no permuted copy), or x's row r when null. Bad offsets or row indices are an error ("groupedGemm: ...").
     * Precision: devices with tensor cores round the operands to bf16 and accumulate in float32 (cpu computes in
     * float32), so results agree with a float64 reference within the naive-bf16 error rule. The defaults compose the
     * other ops (GroupedGemms); backends override them with one launch.
     */

    /**
     * Whether the grouped ops read a {@code rows} token list in place for activations of {@code dtype} (one fused
     * launch, no gathered copy of x written). False (the default) where they are composed from the other ops, which
     * gather a copy first ({@link GroupedGemms}): callers that can either pack their rows themselves or hand the
     * grouped ops a token list take the token list only where this is true.
     */
    default boolean fusedGroupedGather(DType dtype) {
        return false;
    }

    /**
     * {@code y[r,:] = x[rows[r],:] @ w[g]^T + beta * y[r,:]} for the rows r of each group g. x [S,K], y [R,N] of one
     * float dtype; with beta == 0, y is not read.
     */
    default void groupedGemmForward(Tensor x, Tensor rows, Tensor w, Tensor offsets, float beta, Tensor y) {
        GroupedGemms.forward(this, x, rows, w, offsets, beta, y);
    }

    /**
     * The gate and up projections of a SwiGLU FFN with the activation fused: {@code out = silu(x_r @ wGate[g]^T) *
     * (x_r @ wUp[g]^T)} with x_r as in {@link #groupedGemmForward}; the two products are also written to gate and up
     * (each [R,F], or null when not needed). wGate, wUp F32 [G,F,K]; out [R,F].
     */
    default void groupedSwiGluForward(
            Tensor x, Tensor rows, Tensor wGate, Tensor wUp, Tensor offsets, Tensor gate, Tensor up, Tensor out) {
        GroupedGemms.swiGluForward(this, x, rows, wGate, wUp, offsets, gate, up, out);
    }

    /**
     * Input gradient of {@link #groupedGemmForward}, in operand-row order: {@code dx[r,:] = dy[r,:] @ w[g] + beta *
     * dx[r,:]}. dy [R,N], dx [R,K] of one float dtype (scatter dx back to tokens with {@link #scatterAddRows}).
     */
    default void groupedGemmBackwardData(Tensor dy, Tensor w, Tensor offsets, float beta, Tensor dx) {
        GroupedGemms.backwardData(this, dy, w, offsets, beta, dx);
    }

    /**
     * Weight gradient of {@link #groupedGemmForward}: {@code dw[g] = sum over the rows r of group g of dy[r,:]^T
     * x[rows[r],:] + beta * dw[g]}. dy [R,N] and x [S,K] of one float dtype, dw F32 [G,N,K] (an empty group gives
     * {@code beta * dw[g]}).
     */
    default void groupedGemmBackwardWeight(Tensor dy, Tensor x, Tensor rows, Tensor offsets, float beta, Tensor dw) {
        GroupedGemms.backwardWeight(this, dy, x, rows, offsets, beta, dw);
    }

    // ---------------------------------------------------------------- sparse routing and data movement

    /**
     * Top-k routing: for each row of probs [N,E], the k largest entries (ties to the lower index), in
     * descending order, into indices I32 [N,k], and their probabilities renormalised to sum to 1 into weights [N,k].
     */
    void topK(Tensor probs, int k, Tensor indices, Tensor weights);

    /** out[m,:] = src[index[m],:]. src [N,D], index I32 [M], out [M,D]. */
    void gatherRows(Tensor src, Tensor index, Tensor out);

    /** out[index[m],:] += src[m,:] (accumulates; deterministic). src [M,D], index I32 [M], out [N,D]. */
    void scatterAddRows(Tensor src, Tensor index, Tensor out);
}
