package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LmHead;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The GEMM problems the model actually runs (forward, input-gradient and weight-gradient products of every projection
 * and of the chunked LM head), plus square sizes, so SGEMM results map onto training time. One SGEMM problem:
 * {@code C[m,n] = op(A)[m,k] op(B)[k,n]}, A stored [k,m] when transA, B stored [n,k] when transB.
 *
 * @param label where the model runs it, e.g. {@code ffn up fwd}
 */
public record GemmCase(String label, boolean transA, boolean transB, int m, int n, int k) {

    public GemmCase {
        if (m < 1 || n < 1 || k < 1)
            throw new IllegalArgumentException("GEMM sizes must be >= 1: " + m + "x" + n + "x" + k);
    }

    public long flops() {
        return Flops.gemm(m, n, k);
    }

    /** {@code MxNxK} and the transposes as BLAS letters, e.g. {@code 2048x688x256 NT}. */
    public String shape() {
        return String.format(Locale.ROOT, "%dx%dx%d %s%s", m, n, k, transA ? "T" : "N", transB ? "T" : "N");
    }

    /** {@code MxNxK:XY}, the form {@link #parse} reads, e.g. {@code 2048x688x256:NT}. */
    public String spec() {
        return shape().replace(' ', ':');
    }

    /** Stored dimensions of A. */
    public int[] aShape() {
        return transA ? new int[] {k, m} : new int[] {m, k};
    }

    /** Stored dimensions of B. */
    public int[] bShape() {
        return transB ? new int[] {n, k} : new int[] {k, n};
    }

    /**
     * The products of one training step of {@code cfg} with {@code tokens} rows: for each distinct projection
     * shape, forward {@code y = x W^T} (NT), input gradient {@code dx = dy W} (NN) and weight gradient
     * {@code dW = dy^T x} (TN); the LM head at its chunk height.
     */
    public static List<GemmCase> modelShapes(LlamaConfig cfg, int tokens) {
        int d = cfg.hiddenSize(), f = cfg.intermediateSize(), kv = cfg.kvDim(), v = cfg.vocabSize();
        List<GemmCase> out = new ArrayList<>();
        addProjection(out, "attn q/o", tokens, d, d);
        if (kv != d) addProjection(out, "attn k/v", tokens, d, kv);
        addProjection(out, "ffn gate/up", tokens, d, f);
        addProjection(out, "ffn down", tokens, f, d);
        int chunk = Math.max(1, Math.min(tokens, LmHead.CHUNK_ELEMENTS / v));
        addProjection(out, "lm head", chunk, d, v);
        return out;
    }

    /** Projection {@code in -> out} on {@code rows} rows, weight [out,in]. */
    private static void addProjection(List<GemmCase> out, String name, int rows, int in, int outDim) {
        out.add(new GemmCase(name + " fwd", false, true, rows, outDim, in));
        out.add(new GemmCase(name + " dx", false, false, rows, in, outDim));
        out.add(new GemmCase(name + " dW", true, false, outDim, in, rows));
    }

    /**
     * Parses {@code MxNxK:XY} (X, Y each {@code N} or {@code T} for transA, transB), e.g. {@code 2048x688x256:NT};
     * the inverse of {@link #shape()} with a colon.
     */
    public static GemmCase parse(String spec) {
        String[] parts = spec.trim().split(":");
        String[] dims = parts[0].split("x");
        String ops = parts.length > 1 ? parts[1] : "NN";
        if (parts.length > 2 || dims.length != 3 || !ops.matches("[NT]{2}")) {
            throw new IllegalArgumentException("GEMM shape '" + spec + "' must look like MxNxK:NT (transposes N or T)");
        }
        try {
            return new GemmCase(
                    spec,
                    ops.charAt(0) == 'T',
                    ops.charAt(1) == 'T',
                    Integer.parseInt(dims[0]),
                    Integer.parseInt(dims[1]),
                    Integer.parseInt(dims[2]));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("GEMM shape '" + spec + "' has a non-integer size", e);
        }
    }

    /** Square NN problems. */
    public static List<GemmCase> squares(int... sizes) {
        List<GemmCase> out = new ArrayList<>();
        for (int s : sizes) out.add(new GemmCase("square", false, false, s, s, s));
        return out;
    }
}
