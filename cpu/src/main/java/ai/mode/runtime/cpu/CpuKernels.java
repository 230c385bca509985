package ai.mode.runtime.cpu;

import ai.mode.runtime.BackendSpec;

/**
 * The inner loops of the cpu backend, one row or one register tile at a time. Two implementations:
 * {@link VectorKernels} (jdk.incubator.vector, FloatVector of the preferred species) and
 * {@link ScalarKernels} (plain loops), chosen by {@link #select}. {@link CpuBackend} does the
 * shape checks, the partitioning and the threading; these only do arithmetic on array ranges.
 *
 * <p>All methods are pure functions of their arguments and of the implementation (fixed reduction order),
 * so results never depend on the thread that runs them.
 */
abstract class CpuKernels {
    /** Whether the Vector API module is in the boot layer (needs {@code --add-modules jdk.incubator.vector}). */
    static boolean vectorModulePresent() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The vector kernels when wanted and available, else the scalar ones. */
    static CpuKernels select(boolean wantVector) {
        if (!wantVector) return new ScalarKernels();
        if (!vectorModulePresent()) {
            CpuBackend.sayOnce("scalar kernels, since the jdk.incubator.vector module is not in the boot layer"
                    + " (run java with --add-modules jdk.incubator.vector for the Vector API kernels)");
            return new ScalarKernels();
        }
        try {
            return new VectorKernels();
        } catch (LinkageError e) {
            CpuBackend.sayOnce("scalar kernels, since the Vector API is present but unusable (" + e + ")");
            return new ScalarKernels();
        }
    }

    /** The {@value BackendSpec#CPU_VECTOR} option of {@code spec}: {@code true} (the default) or {@code false}. */
    static boolean vectorWanted(BackendSpec spec) {
        String v = spec.option(BackendSpec.CPU_VECTOR).orElse("true").strip();
        if (v.equalsIgnoreCase("true")) return true;
        if (v.equalsIgnoreCase("false")) return false;
        throw new IllegalArgumentException(
                "cpu option " + BackendSpec.CPU_VECTOR + "=" + v + " is not a boolean; give true or false");
    }

    /** True for the Vector API implementation. */
    abstract boolean vectorized();

    /** Human-readable description, e.g. {@code vector (16 x float32)}. */
    abstract String describe();

    // ------------------------------------------------------------------ GEMM register tile

    /** Rows of the GEMM register tile. */
    abstract int mr();

    /** Columns of the GEMM register tile. */
    abstract int nr();

    /**
     * Row stride of an A panel packed row by row: the largest K block. A constant, so the tile's broadcast
     * addresses are fixed offsets.
     */
    static final int KC = 256;

    /**
     * One full mr x nr tile: {@code C = Ap Bp}, or {@code C += Ap Bp} when load (C read first; otherwise never
     * read). The A panel is either k by k, mr consecutive values per k ({@code ap[apo + p*mr + r]}; rowsA false),
     * or row by row with row stride {@link #KC} ({@code ap[apo + r*KC + p]}; rowsA true): whichever layout copies
     * straight from op(A). Bp is packed with nr values per k ({@code bp[bpo + p*nr + j]}). Each element is one
     * chain of multiply-adds in k order, starting from zero or from C, whatever the layout.
     */
    abstract void gemmTile(
            int kc, float[] ap, int apo, boolean rowsA, float[] bp, int bpo, float[] c, int co, int ldc, boolean load);

    /**
     * One row of A times one or two packed B panels (panel q at {@code bpo + q*bPanel}, nr values per k as in
     * {@link #gemmTile}): {@code c[co + q*nr + j] = sum_p a[ao + p] * panel_q[p*nr + j]}, or {@code +=} when load,
     * for j < nr. The tile's arithmetic for one of its rows (each element one chain of multiply-adds in k order,
     * from zero or from C), so the bits are those the tile gives that row.
     */
    abstract void gemmRow(
            int kc,
            float[] a,
            int ao,
            float[] bp,
            int bpo,
            int bPanel,
            boolean twoPanels,
            float[] c,
            int co,
            boolean load);

    // ------------------------------------------------------------------ row primitives (n elements)

    /** sum x*y. */
    abstract float dot(float[] x, int xo, float[] y, int yo, int n);

    /** sum x*y in float64: every product is exact, the sum runs in a fixed order. */
    abstract double dotF64(float[] x, int xo, float[] y, int yo, int n);

    /** g = p * (g - delta) * scale, in place: a softmax row's input gradient from its output gradient g. */
    abstract void softmaxBackwardRow(float[] p, int po, float[] g, int go, int n, float delta, float scale);

    /** y += a * x. */
    abstract void axpy(float a, float[] x, int xo, float[] y, int yo, int n);

    /** out = a + b (out may alias either). */
    abstract void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n);

    /** x *= s. */
    abstract void scale(float[] x, int xo, int n, float s);

    /**
     * A rows x cols block, scaled: {@code out[oo + r*ldo + c] = s * x[xo + r*ldx + c]} (s == 1 copies the bits);
     * for packing GEMM operands.
     */
    abstract void copyScaled(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s);

    /**
     * {@link #copyScaled}, except that each row may be copied as whole vectors of {@link #vectorLength} floats:
     * up to {@code vectorLength - 1} values past cols (read from x where it has them) are written after each out
     * row. For packing many narrow rows where the caller writes the overrun again later or has padding for it.
     */
    abstract void copyScaledPadded(
            float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s);

    /** Floats per vector of these kernels (1 for scalar code). */
    abstract int vectorLength();

    /**
     * Transposes a rows x cols block: {@code out[oo + c*ldo + r] = x[xo + r*ldx + c]} for r < rows, c < cols
     * (for packing the K-contiguous operand of a GEMM into K-major panels).
     */
    abstract void transpose(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols);

    /** max x (n >= 1; NaN propagates). */
    abstract float max(float[] x, int xo, int n);

    /** The lowest index i with x[i] == max (max from {@link #max}); 0 when none matches (a NaN row). */
    abstract int indexOf(float[] x, int xo, int n, float max);

    /** out = exp(x - shift), returns the float sum of out (out may alias x). */
    abstract float expShifted(float[] x, int xo, float[] out, int oo, int n, float shift);

    /** sum exp(x - shift) without storing. */
    abstract float expShiftedSum(float[] x, int xo, int n, float shift);

    /** out = exp(x - shift) * mul (out may alias x). */
    abstract void expShiftedScaled(float[] x, int xo, float[] out, int oo, int n, float shift, float mul);

    /**
     * RoPE on one head: each pair (x[i], x[i + half]) rotated by the angle with cosine cos[to + i] and sine
     * direction * sin[to + i] (direction 1 forward, -1 backward); out may alias x.
     */
    abstract void rotatePairs(
            float[] x, int xo, float[] out, int oo, float[] cos, float[] sin, int to, int half, float direction);

    /** out = x * s * w (out may alias x). */
    abstract void mulScaled(float[] x, int xo, float[] w, int wo, float[] out, int oo, int n, float s);

    /** sum g * w * x. */
    abstract float dot3(float[] g, int go, float[] w, int wo, float[] x, int xo, int n);

    /** dx = r * (w*g - c * x) (dx may alias g). */
    abstract void rmsNormBackwardRow(
            float[] g, int go, float[] w, int wo, float[] x, int xo, float r, float c, float[] dx, int dxo, int n);

    /** acc += g * x * r. */
    abstract void accumulateScaledProduct(float[] g, int go, float[] x, int xo, float r, float[] acc, int ao, int n);

    /** out = silu(gate) * up. */
    abstract void swiGluForward(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n);

    /** dUp = dOut * silu(gate); dGate = dOut * up * sig * (1 + gate * (1 - sig)). */
    abstract void swiGluBackward(
            float[] dOut,
            int dooff,
            float[] gate,
            int go,
            float[] up,
            int uo,
            float[] dGate,
            int dgo,
            float[] dUp,
            int duo,
            int n);

    /**
     * AdamW on n elements: g = grad*gradScale; m,v updated; p -= lr*((m/bc1)/(sqrt(v/bc2)+eps) + wd*p).
     * bc1 = 1 - beta1^step and bc2 = 1 - beta2^step are passed precomputed.
     */
    abstract void adamW(
            float[] p,
            int po,
            float[] g,
            int go,
            float[] m,
            int mo,
            float[] v,
            int vo,
            int n,
            float lr,
            float beta1,
            float beta2,
            float eps,
            float wd,
            float gradScale,
            float bc1,
            float bc2);
}
