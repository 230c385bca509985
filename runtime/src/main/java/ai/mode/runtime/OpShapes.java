package ai.mode.runtime;

import java.util.Arrays;

/**
 * The shape-and-dtype contract of every {@link Backend} op, written once: each method checks an op's arguments
 * and returns the dimensions it resolved, so every backend accepts the same calls, rejects the same calls with
 * the same message, and reads its loop bounds from one place.
 *
 * <p>Every rejection is an {@link IllegalArgumentException} whose one-line message names the op, the offending
 * argument with its dtype and shape, and what would be accepted. What the contract leaves to a backend: whether
 * a tensor belongs to it, which float dtypes it stores ({@code cpu} keeps F32 only), launch limits of its
 * kernels (grid sizes, the attention head-dimension tiles), aliasing of its storage, and the values inside
 * index tensors (token ids, row indices, targets), which a device checks where the data lives.
 *
 * <p>The dtype rules: the activations of one op share one float dtype (F32, or BF16 storage with float32
 * math); parameters, parameter gradients and saved statistics (RMSNorm weight, dWeight and rstd, attention
 * lse, the embedding-table gradient, the {@code sumRowsAccumulate} output, every AdamW tensor) are F32; ids,
 * targets and row indices are I32. GEMM: a and b share F32 or BF16; F32 operands give an F32 c, BF16 operands a
 * BF16 or F32 c.
 */
public final class OpShapes {
    private OpShapes() {}

    // ================================================================== resolved dimensions

    /**
     * A GEMM's dimensions: {@code c[batch, m, n] = op(a)[batch, m, k] @ op(b)[batch or 1, k, n]}; {@code batch} is 1
     * for 2-D operands, {@code broadcastB} says a 2-D b serves every batch item of a 3-D a and c.
     */
    public record MatmulDims(int m, int n, int k, int batch, boolean broadcastB, DType operands, DType result) {}

    /** An elementwise op over {@code count} elements of one float dtype. */
    public record ElementwiseDims(long count, DType dtype) {}

    /** An op over a tensor read as {@code [rows, cols]} by its last dimension. */
    public record RowDims(int rows, int cols, DType dtype) {}

    /** Embedding: a {@code [vocab, dim]} table and {@code tokens} ids. */
    public record EmbeddingDims(int vocab, int dim, int tokens, DType dtype) {}

    /** RoPE over {@code [batch, seq, heads, headDim]}. */
    public record RopeDims(int batch, int seq, int heads, int headDim, DType dtype) {}

    /** Attention: q {@code [batch, seq, heads, headDim]}, k and v {@code [batch, seq, kvHeads, headDim]}. */
    public record AttentionDims(int batch, int seq, int heads, int kvHeads, int headDim, DType dtype) {}

    /** The MoDE merge: branches {@code [branches, rows, width]}, probs {@code [rows, branches]}. */
    public record MergeDims(int branches, int rows, int width, DType dtype) {}

    /** Top-k routing: probs {@code [rows, experts]}, indices and weights {@code [rows, k]}. */
    public record TopKDims(int rows, int experts, int k, DType dtype) {}

    /**
     * Row movement: {@code moved} rows of {@code width} between a {@code [moved, width]} tensor and a
     * {@code [tableRows, width]} one, by an I32 index of {@code moved} entries.
     */
    public record RowMoveDims(int moved, int width, int tableRows, DType dtype) {}

    /**
     * A grouped expert GEMM: {@code rows} operand rows in {@code groups} contiguous groups ({@code uniform}: equal
     * groups, no offsets tensor), read from {@code sourceRows} rows of x (through an index list, or x's own rows), with
     * weights {@code [groups, n, k]}.
     */
    public record GroupedDims(int groups, int rows, int sourceRows, int n, int k, boolean uniform, DType dtype) {}

    // ================================================================== memory

    /** {@code fromHost}: the host array fills the shape exactly. */
    public static void fromHost(int[] shape, int length, String elements) {
        long n = Shapes.numel(shape);
        if (n != length) {
            throw new IllegalArgumentException("fromHost: " + length + " " + elements + " do not fill shape "
                    + Arrays.toString(shape) + " (" + n + " elements); pass an array of exactly " + n);
        }
    }

    /** {@code toHost}, {@code copyFromHost}: the host array has one element per tensor element. */
    public static void hostLength(String op, Tensor t, int length) {
        if (t.numel() != length) {
            throw new IllegalArgumentException(op + ": host array has " + length + " elements but " + t.describe()
                    + " has " + t.numel() + "; pass an array of exactly " + t.numel());
        }
    }

    /** {@code toHost(Tensor, float[])} and {@code copyFromHost}: a float tensor. */
    public static DType hostFloats(String op, String name, Tensor t, int length) {
        DType dt = requireFloat(op, name, t);
        hostLength(op, t, length);
        return dt;
    }

    /** {@code toHost(Tensor, int[])}: an I32 tensor. */
    public static void hostInts(String op, String name, Tensor t, int length) {
        requireDType(op, name, t, DType.I32);
        hostLength(op, t, length);
    }

    /** {@code copy}: same dtype and element count. */
    public static void copy(Tensor src, Tensor dst) {
        if (src.dtype() != dst.dtype() || src.numel() != dst.numel()) {
            throw new IllegalArgumentException("copy: " + src.describe() + " -> " + dst.describe()
                    + " differ in dtype or element count; copy between tensors of one dtype and size");
        }
    }

    /** {@code fill}: an F32 tensor. */
    public static long fill(Tensor t) {
        requireDType("fill", "t", t, DType.F32);
        return t.numel();
    }

    /** {@code view}: the new shape has the tensor's element count. */
    public static void view(Tensor t, int... shape) {
        long n = Shapes.numel(shape);
        if (n != t.numel()) {
            throw new IllegalArgumentException("view: cannot view " + t.describe() + " as " + Arrays.toString(shape)
                    + " (" + n + " elements); a view keeps the element count " + t.numel());
        }
    }

    /** {@code slice}: rows {@code [start, start + length)} of dimension 0; returns the elements per row. */
    public static long slice(Tensor t, int start, int length) {
        if (t.rank() == 0) throw new IllegalArgumentException("slice: cannot slice a rank-0 tensor " + t.describe());
        if (start < 0 || length < 0 || (long) start + length > t.dim(0)) {
            throw new IllegalArgumentException("slice: rows [" + start + ", " + ((long) start + length)
                    + ") are outside dimension 0 of " + t.describe() + "; use 0 <= start <= start + length <= "
                    + t.dim(0));
        }
        return t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
    }

    // ================================================================== dense linear algebra

    /**
     * Most multiply-adds (m n k, per matrix of a batch) of a GEMM that every backend computes with float64 sums: each
     * output is the sum of its k products in k order in float64 (each product exact), then {@code alpha * sum}, then
     * {@code + beta * c} in one fused step, rounded once to the output type. With so few outputs the largest error
     * is over a handful of values, where a float32 FMA chain misses 2x the naive float32 error by chance in about
     * 4% of random 5 x 1 x 9 products (and still 0.3% at 130 outputs); one rounding never does. Such a GEMM costs
     * a few microseconds whatever the method, and every backend gives the same bits for it. The kernels module
     * states the same number as {@code kLaunchGemmSmallWork} (include/mode_launch.cuh).
     */
    public static final int SMALL_GEMM_WORK = 4096;

    /** Whether a GEMM of m x n outputs over k is computed with float64 sums ({@link #SMALL_GEMM_WORK}); k > 0. */
    public static boolean smallGemm(int m, int n, int k) {
        return k > 0 && (long) m * n * k <= SMALL_GEMM_WORK;
    }

    /** {@link Backend#gemm}: ranks, the inner and outer dimensions, the batch and the dtype combination. */
    public static MatmulDims gemm(boolean transA, boolean transB, Tensor a, Tensor b, Tensor c) {
        int rank = a.rank();
        if (rank != 2 && rank != 3)
            throw new IllegalArgumentException(
                    "gemm: a must be 2-D or 3-D but is " + a.describe() + "; view it as [M, K] or [batch, M, K]");
        if (c.rank() != rank)
            throw new IllegalArgumentException(
                    "gemm: c must have the rank of a (" + rank + ") but is " + c.describe() + " for a " + a.describe());
        if (b.rank() != 2 && b.rank() != rank)
            throw new IllegalArgumentException("gemm: b must be 2-D or have the rank of a (" + rank + ") but is "
                    + b.describe() + " for a " + a.describe());
        int batch = rank == 3 ? a.dim(0) : 1;
        if (rank == 3 && c.dim(0) != batch)
            throw new IllegalArgumentException("gemm: batch of c " + c.describe() + " differs from a " + a.describe()
                    + "; give c [" + batch + ", M, N]");
        if (rank == 3 && b.rank() == 3 && b.dim(0) != batch)
            throw new IllegalArgumentException("gemm: batch of b " + b.describe() + " differs from a " + a.describe()
                    + "; give b " + batch + " items or a 2-D b to broadcast");
        int m = transA ? a.dim(-1) : a.dim(-2);
        int k = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2);
        int n = transB ? b.dim(-2) : b.dim(-1);
        if (k != kb)
            throw new IllegalArgumentException("gemm: inner dimensions differ: op(a) of " + a.describe() + " (transA="
                    + transA + ") has K=" + k + " but op(b) of " + b.describe() + " (transB=" + transB + ") has K="
                    + kb + "; check the operands and transpose flags");
        if (c.dim(-2) != m || c.dim(-1) != n)
            throw new IllegalArgumentException("gemm: c must be [" + (rank == 3 ? batch + ", " : "") + m + ", " + n
                    + "] for a " + a.describe() + " (transA=" + transA + ") and b " + b.describe() + " (transB="
                    + transB + ") but is " + c.describe());
        DType ab = a.dtype(), cd = c.dtype();
        boolean dtypesOk = ab == b.dtype()
                && ((ab == DType.F32 && cd == DType.F32)
                        || (ab == DType.BF16 && (cd == DType.BF16 || cd == DType.F32)));
        if (!dtypesOk)
            throw new IllegalArgumentException(
                    "gemm: supported dtypes are a, b F32 with c F32, or a, b BF16 with c BF16 or F32; got a "
                            + a.describe() + ", b " + b.describe() + ", c " + c.describe());
        return new MatmulDims(m, n, k, batch, rank == 3 && b.rank() == 2, ab, cd);
    }

    /** {@link Backend#add}: three tensors of one shape and float dtype. */
    public static ElementwiseDims add(Tensor a, Tensor b, Tensor out) {
        return elementwise("add", new String[] {"a", "b", "out"}, a, b, out);
    }

    /** {@link Backend#axpy}: x and y of one shape and float dtype. */
    public static ElementwiseDims axpy(Tensor x, Tensor y) {
        return elementwise("axpy", new String[] {"x", "y"}, x, y);
    }

    /** {@link Backend#scale}: a float tensor. */
    public static ElementwiseDims scale(Tensor x) {
        return elementwise("scale", new String[] {"x"}, x);
    }

    /** {@link Backend#sumSquares}: a float tensor. */
    public static ElementwiseDims sumSquares(Tensor x) {
        return elementwise("sumSquares", new String[] {"x"}, x);
    }

    /** {@link Backend#sumRowsAccumulate}: x of rank >= 1 read as [rows, cols]; out F32 with cols elements. */
    public static RowDims sumRowsAccumulate(Tensor x, Tensor out) {
        String op = "sumRowsAccumulate";
        DType dt = requireFloat(op, "x", x);
        requireRankAtLeast1(op, "x", x);
        requireF32Vector(op, "out", out, x.dim(-1));
        return new RowDims(Shapes.rows(x), x.dim(-1), dt);
    }

    // ================================================================== embedding

    /** {@link Backend#embeddingForward}: table [V, D], ids I32 [N], out [N, D] (read by rows). */
    public static EmbeddingDims embeddingForward(Tensor table, Tensor ids, Tensor out) {
        String op = "embeddingForward";
        requireRank(op, "table", table, 2);
        requireDType(op, "ids", ids, DType.I32);
        int v = table.dim(0), d = table.dim(1), n = Math.toIntExact(ids.numel());
        requireRowsOf(op, "out", out, n, d);
        DType dt = sameFloat(op, new String[] {"table", "out"}, table, out);
        return new EmbeddingDims(v, d, n, dt);
    }

    /** {@link Backend#embeddingBackward}: dOut [N, D] (read by rows), ids I32 [N], dTable F32 [V, D]. */
    public static EmbeddingDims embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        String op = "embeddingBackward";
        requireRank(op, "dTable", dTable, 2);
        requireDType(op, "ids", ids, DType.I32);
        requireDType(op, "dTable", dTable, DType.F32);
        int v = dTable.dim(0), d = dTable.dim(1), n = Math.toIntExact(ids.numel());
        requireRowsOf(op, "dOut", dOut, n, d);
        DType dt = requireFloat(op, "dOut", dOut);
        return new EmbeddingDims(v, d, n, dt);
    }

    // ================================================================== RMSNorm

    /** {@link Backend#rmsNormForward}: x and out [N, D]; weight F32 [D]; rstd F32 [N]; eps finite, >= 0. */
    public static RowDims rmsNormForward(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        String op = "rmsNormForward";
        requireRankAtLeast1(op, "x", x);
        int d = x.dim(-1), rows = Shapes.rows(x);
        requireSameShape(op, x, out);
        requireF32Vector(op, "weight", weight, d);
        requireF32Vector(op, "rstd", rstd, rows);
        if (!(eps >= 0 && Float.isFinite(eps)))
            throw new IllegalArgumentException(op + ": eps must be a finite non-negative number, got " + eps);
        DType dt = sameFloat(op, new String[] {"x", "out"}, x, out);
        return new RowDims(rows, d, dt);
    }

    /** {@link Backend#rmsNormBackward}: dOut, x and dx [N, D]; weight, dWeight F32 [D]; rstd F32 [N]. */
    public static RowDims rmsNormBackward(
            Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        String op = "rmsNormBackward";
        requireRankAtLeast1(op, "x", x);
        int d = x.dim(-1), rows = Shapes.rows(x);
        requireSameShape(op, x, dOut);
        requireSameShape(op, x, dx);
        requireF32Vector(op, "weight", weight, d);
        requireF32Vector(op, "dWeight", dWeight, d);
        requireF32Vector(op, "rstd", rstd, rows);
        DType dt = sameFloat(op, new String[] {"dOut", "x", "dx"}, dOut, x, dx);
        return new RowDims(rows, d, dt);
    }

    // ================================================================== RoPE

    /**
     * {@link Backend#ropeForward} and {@link Backend#ropeBackward} ({@code op} names which): input and output
     * [B, T, H, hd] with an even hd; a frequency table of hd/2 pairs; positionOffset >= 0.
     */
    public static RopeDims rope(
            String op, Tensor input, RopeFrequencies frequencies, int positionOffset, Tensor output) {
        requireRank(op, "input", input, 4);
        requireSameShape(op, input, output);
        int hd = input.dim(3);
        if (hd % 2 != 0)
            throw new IllegalArgumentException(
                    op + ": head dimension " + hd + " of " + input.describe() + " must be even (RoPE rotates pairs)");
        if (frequencies == null) throw new IllegalArgumentException(op + ": the RoPE frequency table must be non-null");
        if (frequencies.headDim() != hd)
            throw new IllegalArgumentException(op + ": the RoPE frequency table has " + frequencies.pairs()
                    + " pairs but head dimension " + hd + " of " + input.describe() + " needs " + hd / 2);
        if (positionOffset < 0)
            throw new IllegalArgumentException(op + ": positionOffset must be >= 0, got " + positionOffset);
        DType dt = sameFloat(op, new String[] {"input", "output"}, input, output);
        return new RopeDims(input.dim(0), input.dim(1), input.dim(2), hd, dt);
    }

    // ================================================================== attention

    /** {@link Backend#attentionForward}: q and out [B, T, H, hd], k and v [B, T, Hkv, hd], lse F32 [B, H, T]. */
    public static AttentionDims attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        String op = "attentionForward";
        AttentionDims a = attention(op, q, k, v, out, lse);
        sameFloat(op, new String[] {"q", "k", "v", "out"}, q, k, v, out);
        return a;
    }

    /** {@link Backend#attentionBackward}: as the forward, plus dOut and dq like q, dk like k, dv like v. */
    public static AttentionDims attentionBackward(
            Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv) {
        String op = "attentionBackward";
        AttentionDims a = attention(op, q, k, v, out, lse);
        requireSameShape(op, q, dOut);
        requireSameShape(op, q, dq);
        requireSameShape(op, k, dk);
        requireSameShape(op, v, dv);
        sameFloat(op, new String[] {"dOut", "q", "k", "v", "out", "dq", "dk", "dv"}, dOut, q, k, v, out, dq, dk, dv);
        return a;
    }

    /**
     * {@link Backend#attentionCachedForward}: q and out [B, t, H, hd], kCache and vCache [B, C, Hkv, hd] with
     * {@code t <= length <= C}; the returned seq is t.
     */
    public static AttentionDims attentionCachedForward(Tensor q, Tensor kCache, Tensor vCache, int length, Tensor out) {
        String op = "attentionCachedForward";
        requireRank(op, "q", q, 4);
        requireRank(op, "kCache", kCache, 4);
        int b = q.dim(0), t = q.dim(1), h = q.dim(2), hd = q.dim(3), cap = kCache.dim(1), hkv = kCache.dim(2);
        if (kCache.dim(0) != b || kCache.dim(3) != hd)
            throw new IllegalArgumentException(op + ": kCache " + kCache.describe() + " must be [" + b + ", C, Hkv, "
                    + hd + "] to match q " + q.describe());
        requireSameShape(op, kCache, vCache);
        requireSameShape(op, q, out);
        if (length < t || length > cap)
            throw new IllegalArgumentException(op + ": cached length " + length + " must be at least the " + t
                    + " new queries and at most the cache capacity " + cap + " (kCache " + kCache.describe() + ")");
        if (hkv <= 0 || h % hkv != 0)
            throw new IllegalArgumentException(op + ": query heads " + h + " must be a multiple of key/value heads "
                    + hkv + " (q " + q.describe() + ", kCache " + kCache.describe() + ")");
        sameFloat(op, new String[] {"q", "kCache", "vCache", "out"}, q, kCache, vCache, out);
        return new AttentionDims(b, t, h, hkv, hd, q.dtype());
    }

    private static AttentionDims attention(String op, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        requireRank(op, "q", q, 4);
        requireRank(op, "k", k, 4);
        int b = q.dim(0), t = q.dim(1), h = q.dim(2), hd = q.dim(3), hkv = k.dim(2);
        if (k.dim(0) != b || k.dim(1) != t || k.dim(3) != hd)
            throw new IllegalArgumentException(op + ": k " + k.describe() + " must be [" + b + ", " + t + ", Hkv, " + hd
                    + "] to match q " + q.describe());
        requireSameShape(op, k, v);
        requireSameShape(op, q, out);
        requireShape(op, "lse", lse, b, h, t);
        requireDType(op, "lse", lse, DType.F32);
        if (hkv <= 0 || h % hkv != 0)
            throw new IllegalArgumentException(op + ": query heads " + h + " must be a multiple of key/value heads "
                    + hkv + " (q " + q.describe() + ", k " + k.describe() + ")");
        return new AttentionDims(b, t, h, hkv, hd, q.dtype());
    }

    // ================================================================== SwiGLU

    /** {@link Backend#swiGluForward}: gate, up and out of one shape and float dtype. */
    public static ElementwiseDims swiGluForward(Tensor gate, Tensor up, Tensor out) {
        return elementwise("swiGluForward", new String[] {"gate", "up", "out"}, gate, up, out);
    }

    /** {@link Backend#swiGluBackward}: dOut, gate, up, dGate and dUp of one shape and float dtype. */
    public static ElementwiseDims swiGluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        return elementwise(
                "swiGluBackward", new String[] {"gate", "dOut", "up", "dGate", "dUp"}, gate, dOut, up, dGate, dUp);
    }

    // ================================================================== loss

    /**
     * {@link Backend#crossEntropy}: logits [N, V] with V >= 1, targets I32 with N elements, dLogits (when not
     * null) like logits.
     */
    public static RowDims crossEntropy(Tensor logits, Tensor targets, Tensor dLogits) {
        String op = "crossEntropy";
        requireRankAtLeast1(op, "logits", logits);
        int vocab = logits.dim(-1), rows = Shapes.rows(logits);
        if (vocab < 1)
            throw new IllegalArgumentException(
                    op + ": logits " + logits.describe() + " has an empty last dimension; give at least one class");
        requireDType(op, "targets", targets, DType.I32);
        requireNumel(op, "targets", targets, rows);
        DType dt;
        if (dLogits != null) {
            requireSameShape(op, logits, dLogits);
            dt = sameFloat(op, new String[] {"logits", "dLogits"}, logits, dLogits);
        } else {
            dt = requireFloat(op, "logits", logits);
        }
        return new RowDims(rows, vocab, dt);
    }

    // ================================================================== optimizer

    /** {@link Backend#adamW}: param, grad, m and v F32 of one shape; a step. */
    public static long adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        String op = "adamW";
        if (step == null) throw new IllegalArgumentException(op + ": step must not be null");
        String[] names = {"param", "grad", "m", "v"};
        Tensor[] ts = {param, grad, m, v};
        for (int i = 0; i < ts.length; i++) {
            requireDType(op, names[i], ts[i], DType.F32);
            requireSameShape(op, param, ts[i]);
        }
        return param.numel();
    }

    // ================================================================== MoDE gate and merge

    /** {@link Backend#softmaxForward}: logits and probs of one shape with a non-empty last dimension. */
    public static RowDims softmaxForward(Tensor logits, Tensor probs) {
        String op = "softmaxForward";
        requireSameShape(op, logits, probs);
        if (logits.rank() < 1 || logits.dim(-1) < 1)
            throw new IllegalArgumentException(
                    op + ": logits " + logits.describe() + " needs a non-empty last dimension (the branches)");
        DType dt = sameFloat(op, new String[] {"logits", "probs"}, logits, probs);
        return new RowDims(Shapes.rows(logits), logits.dim(-1), dt);
    }

    /** {@link Backend#softmaxBackward}: dProbs, probs and dLogits of one shape, rank >= 1. */
    public static RowDims softmaxBackward(Tensor dProbs, Tensor probs, Tensor dLogits) {
        String op = "softmaxBackward";
        requireSameShape(op, probs, dProbs);
        requireSameShape(op, probs, dLogits);
        requireRankAtLeast1(op, "probs", probs);
        DType dt = sameFloat(op, new String[] {"dProbs", "probs", "dLogits"}, dProbs, probs, dLogits);
        return new RowDims(Shapes.rows(probs), probs.dim(-1), dt);
    }

    /** {@link Backend#weightedMergeForward}: branches [E, N, D], probs [N, E] and out [N, D] (read by rows). */
    public static MergeDims weightedMergeForward(Tensor branches, Tensor probs, Tensor out) {
        String op = "weightedMergeForward";
        MergeDims dims = merge(op, branches, probs, out, "out");
        sameFloat(op, new String[] {"branches", "probs", "out"}, branches, probs, out);
        return dims;
    }

    /**
     * {@link Backend#weightedMergeBackward}: dOut [N, D], branches [E, N, D], probs and dProbs [N, E] (read by
     * rows; dProbs like probs), dBranches (when not null) like branches.
     */
    public static MergeDims weightedMergeBackward(
            Tensor dOut, Tensor branches, Tensor probs, Tensor dBranches, Tensor dProbs) {
        String op = "weightedMergeBackward";
        MergeDims dims = merge(op, branches, probs, dOut, "dOut");
        requireSameShape(op, probs, dProbs);
        if (dBranches != null) {
            requireSameShape(op, branches, dBranches);
            sameFloat(op, new String[] {"branches", "dBranches"}, branches, dBranches);
        }
        sameFloat(op, new String[] {"dOut", "branches", "probs", "dProbs"}, dOut, branches, probs, dProbs);
        return dims;
    }

    private static MergeDims merge(String op, Tensor branches, Tensor probs, Tensor rows, String rowsName) {
        requireRank(op, "branches", branches, 3);
        int e = branches.dim(0), n = branches.dim(1), d = branches.dim(2);
        if (!(probs.rank() >= 1 && probs.dim(-1) == e && Shapes.rows(probs) == n))
            throw new IllegalArgumentException(op + ": probs must be [" + n + ", " + e + "] to match branches "
                    + branches.describe() + " but is " + probs.describe());
        requireRowsOf(op, rowsName, rows, n, d);
        return new MergeDims(e, n, d, branches.dtype());
    }

    // ================================================================== sparse routing and data movement

    /** {@link Backend#topK}: probs [N, E], 1 <= k <= E, indices I32 [N, k], weights [N, k] like probs. */
    public static TopKDims topK(Tensor probs, int k, Tensor indices, Tensor weights) {
        String op = "topK";
        requireRankAtLeast1(op, "probs", probs);
        int e = probs.dim(-1), rows = Shapes.rows(probs);
        if (k < 1 || k > e)
            throw new IllegalArgumentException(
                    op + ": k must be in [1, " + e + "] for probs " + probs.describe() + ", got " + k);
        requireDType(op, "indices", indices, DType.I32);
        requireRowsOf(op, "indices", indices, rows, k);
        requireRowsOf(op, "weights", weights, rows, k);
        DType dt = sameFloat(op, new String[] {"probs", "weights"}, probs, weights);
        return new TopKDims(rows, e, k, dt);
    }

    /** {@link Backend#gatherRows}: src [N, D], index I32 [M], out [M, D] (read by rows). */
    public static RowMoveDims gatherRows(Tensor src, Tensor index, Tensor out) {
        return rowMove("gatherRows", src, index, out, true);
    }

    /** {@link Backend#scatterAddRows}: src [M, D] (read by rows), index I32 [M], out [N, D]. */
    public static RowMoveDims scatterAddRows(Tensor src, Tensor index, Tensor out) {
        return rowMove("scatterAddRows", src, index, out, false);
    }

    /** Rows of a [N, D] table (src when gathering, out when scattering) moved to or from [M, D] by an I32 index. */
    private static RowMoveDims rowMove(String op, Tensor src, Tensor index, Tensor out, boolean gather) {
        Tensor table = gather ? src : out, moved = gather ? out : src;
        requireRankAtLeast1(op, gather ? "src" : "out", table);
        requireDType(op, "index", index, DType.I32);
        int d = table.dim(-1), m = Math.toIntExact(index.numel());
        requireRowsOf(op, gather ? "out" : "src", moved, m, d);
        DType dt = sameFloat(op, new String[] {"src", "out"}, src, out);
        return new RowMoveDims(m, d, Shapes.rows(table), dt);
    }

    // ================================================================== grouped expert GEMM

    /**
     * {@link Backend#groupedGemmForward}: x [S, K] (read by rows), w F32 [G, N, K], y [R, N] of x's dtype; rows I32
     * [R] or null (then S = R); offsets (see {@link #groupedOffsets}).
     */
    public static GroupedDims groupedGemmForward(Tensor x, Tensor rows, Tensor w, Tensor offsets, Tensor y) {
        String op = "groupedGemmForward";
        requireRankAtLeast1(op, "y", y);
        GroupedDims g = groupedInput(op, x, rows, w, offsets, Shapes.rows(y));
        requireRowsOf(op, "y", y, g.rows(), g.n());
        sameFloat(op, new String[] {"x", "y"}, x, y);
        return g;
    }

    /**
     * {@link Backend#groupedSwiGluForward}: as {@link #groupedGemmForward} with wGate and wUp F32 [G, F, K]; out [R,
     * F], and gate and up (each [R, F] or null), of x's dtype.
     */
    public static GroupedDims groupedSwiGluForward(
            Tensor x, Tensor rows, Tensor wGate, Tensor wUp, Tensor offsets, Tensor gate, Tensor up, Tensor out) {
        String op = "groupedSwiGluForward";
        requireRankAtLeast1(op, "out", out);
        GroupedDims g = groupedInput(op, x, rows, wGate, offsets, Shapes.rows(out), "x", "wGate");
        requireDType(op, "wUp", wUp, DType.F32);
        requireSameShape(op, wGate, wUp);
        requireRowsOf(op, "out", out, g.rows(), g.n());
        sameFloat(op, new String[] {"x", "out"}, x, out);
        Tensor[] saved = {gate, up};
        String[] names = {"gate", "up"};
        for (int i = 0; i < 2; i++) {
            if (saved[i] == null) continue;
            requireRowsOf(op, names[i], saved[i], g.rows(), g.n());
            sameFloat(op, new String[] {"x", names[i]}, x, saved[i]);
        }
        return g;
    }

    /**
     * {@link Backend#groupedGemmBackwardData}: dy [R, N] (read by rows), w F32 [G, N, K], dx [R, K] of dy's dtype;
     * offsets as for the forward.
     */
    public static GroupedDims groupedGemmBackwardData(Tensor dy, Tensor w, Tensor offsets, Tensor dx) {
        String op = "groupedGemmBackwardData";
        requireRankAtLeast1(op, "dy", dy);
        int r = Shapes.rows(dy);
        GroupedDims g = groupedInput(op, dx, null, w, offsets, r, "dx", "w");
        requireRowsOf(op, "dy", dy, r, g.n());
        sameFloat(op, new String[] {"dy", "dx"}, dy, dx);
        return g;
    }

    /**
     * {@link Backend#groupedGemmBackwardWeight}: dy [R, N] (read by rows), x [S, K] and rows as for the forward, dw F32
     * [G, N, K].
     */
    public static GroupedDims groupedGemmBackwardWeight(Tensor dy, Tensor x, Tensor rows, Tensor offsets, Tensor dw) {
        String op = "groupedGemmBackwardWeight";
        requireRankAtLeast1(op, "dy", dy);
        GroupedDims g = groupedInput(op, x, rows, dw, offsets, Shapes.rows(dy), "x", "dw");
        requireRowsOf(op, "dy", dy, g.rows(), g.n());
        sameFloat(op, new String[] {"x", "dy"}, x, dy);
        return g;
    }

    /**
     * The group offsets of a grouped GEMM read on the host: {@code offsets[0] = 0}, non-decreasing, {@code
     * offsets[G] = R}; null means G equal groups. Returns the G + 1 row boundaries.
     */
    public static int[] groupedOffsets(int[] offsets, GroupedDims g) {
        int[] out = new int[g.groups() + 1];
        for (int i = 0; i <= g.groups(); i++) {
            int v = offsets == null ? g.rows() / g.groups() * i : offsets[i];
            int prev = i == 0 ? 0 : out[i - 1];
            if ((i == 0 && v != 0) || v < prev || v > g.rows() || (i == g.groups() && v != g.rows()))
                throw new IllegalArgumentException(groupOffsetError(v, i));
            out[i] = v;
        }
        return out;
    }

    /**
     * The op name in the messages about a grouped GEMM's index data (row index lists and group offsets), which a
     * device finds while a kernel runs and reports at the next synchronisation.
     */
    public static final String GROUPED_OP = "groupedGemm";

    /** The message for a bad group offset (value {@code v} at position {@code i}); every backend reports it. */
    public static String groupOffsetError(int v, int i) {
        return GROUPED_OP + ": group offset " + v + " at position " + i + " is out of order; offsets must start at 0,"
                + " never decrease and end at the number of operand rows";
    }

    private static GroupedDims groupedInput(String op, Tensor x, Tensor rows, Tensor w, Tensor offsets, int r) {
        return groupedInput(op, x, rows, w, offsets, r, "x", "w");
    }

    /**
     * Checks x (named {@code xName}) [S, K], the weights (named {@code wName}) F32 [G, N, K], rows I32 [r] or null,
     * offsets I32 [G + 1] or null.
     */
    private static GroupedDims groupedInput(
            String op, Tensor x, Tensor rows, Tensor w, Tensor offsets, int r, String xName, String wName) {
        requireRank(op, wName, w, 3);
        requireDType(op, wName, w, DType.F32);
        int groups = w.dim(0), n = w.dim(1), k = w.dim(2);
        if (groups < 1)
            throw new IllegalArgumentException(
                    op + ": " + wName + " " + w.describe() + " has no groups; give [G >= 1, N, K]");
        requireRankAtLeast1(op, xName, x);
        requireFloat(op, xName, x);
        if (x.dim(-1) != k)
            throw new IllegalArgumentException(op + ": " + xName + " " + x.describe() + " must have " + k
                    + " columns, the K of " + wName + " " + w.describe());
        int s = Shapes.rows(x);
        if (rows != null) {
            requireDType(op, "rows", rows, DType.I32);
            requireNumel(op, "rows", rows, r);
        } else if (s != r) {
            throw new IllegalArgumentException(op + ": " + xName + " " + x.describe() + " has " + s + " rows but the"
                    + " output has " + r + "; give one row per output row or a rows index list");
        }
        if (offsets != null) {
            requireDType(op, "offsets", offsets, DType.I32);
            requireNumel(op, "offsets", offsets, groups + 1L);
        } else if (r % groups != 0) {
            throw new IllegalArgumentException(op + ": " + r + " rows do not split into " + groups
                    + " equal groups; pass offsets I32 [" + (groups + 1) + "] for ragged groups");
        }
        return new GroupedDims(groups, r, s, n, k, offsets == null, x.dtype());
    }

    /**
     * The message for an index outside its range found in the data ({@code what} is e.g. {@code token id},
     * {@code row index}); every backend reports index errors with it.
     */
    public static String indexOutOfRange(String op, String what, int value, int position, String range) {
        return op + ": " + what + " " + value + " at position " + position + " is outside " + range;
    }

    // ================================================================== checks

    /** Elementwise ops: every tensor has the first one's shape and float dtype. */
    private static ElementwiseDims elementwise(String op, String[] names, Tensor... ts) {
        for (int i = 1; i < ts.length; i++) requireSameShape(op, ts[0], ts[i]);
        return new ElementwiseDims(ts[0].numel(), sameFloat(op, names, ts));
    }

    /** The float dtype the tensors share (F32 or BF16). */
    private static DType sameFloat(String op, String[] names, Tensor... ts) {
        DType dt = requireFloat(op, names[0], ts[0]);
        for (int i = 1; i < ts.length; i++) {
            if (ts[i].dtype() != dt)
                throw new IllegalArgumentException(
                        op + ": " + names[i] + " " + ts[i].describe() + " must have the dtype" + " of " + names[0] + " "
                                + ts[0].describe() + "; the tensors of one op share one float dtype");
        }
        return dt;
    }

    private static DType requireFloat(String op, String name, Tensor t) {
        if (t.dtype() == DType.I32)
            throw new IllegalArgumentException(op + ": " + name + " must be F32 or BF16 but is " + t.describe());
        return t.dtype();
    }

    private static void requireSameShape(String op, Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape()))
            throw new IllegalArgumentException(op + ": shape mismatch " + a.describe() + " vs " + b.describe()
                    + "; these tensors must have one shape");
    }

    private static void requireShape(String op, String name, Tensor t, int... expected) {
        if (!Arrays.equals(t.shape(), expected))
            throw new IllegalArgumentException(
                    op + ": " + name + " must be " + Arrays.toString(expected) + " but is " + t.describe());
    }

    private static void requireNumel(String op, String name, Tensor t, long expected) {
        if (t.numel() != expected)
            throw new IllegalArgumentException(
                    op + ": " + name + " must have " + expected + " elements but is " + t.describe());
    }

    private static void requireDType(String op, String name, Tensor t, DType dtype) {
        if (t.dtype() != dtype)
            throw new IllegalArgumentException(op + ": " + name + " must be " + dtype + " but is " + t.describe());
    }

    private static void requireRank(String op, String name, Tensor t, int rank) {
        if (t.rank() != rank)
            throw new IllegalArgumentException(
                    op + ": " + name + " must have rank " + rank + " but is " + t.describe());
    }

    private static void requireRankAtLeast1(String op, String name, Tensor t) {
        if (t.rank() < 1)
            throw new IllegalArgumentException(op + ": " + name + " must have rank >= 1 but is " + t.describe());
    }

    private static void requireF32Vector(String op, String name, Tensor t, int length) {
        requireDType(op, name, t, DType.F32);
        requireNumel(op, name, t, length);
    }

    /** t read by its last dimension is [rows, cols]: last dimension cols and rows * cols elements. */
    private static void requireRowsOf(String op, String name, Tensor t, int rows, int cols) {
        if (!(t.rank() >= 1 && t.dim(-1) == cols && t.numel() == (long) rows * cols))
            throw new IllegalArgumentException(op + ": " + name + " must be [" + rows + ", " + cols
                    + "] (any leading dimensions with " + rows + " rows) but is " + t.describe());
    }
}
