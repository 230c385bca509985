package ai.mode.runtime;

/**
 * The grouped expert GEMM ops ({@link Backend#groupedGemmForward} and the rest) written with a backend's other ops:
 * a gather of the routed rows when a rows list is given, then one batched {@code gemm} for equal groups or one
 * {@code gemm} per group, and {@code swiGluForward} for the fused activation. This is what the {@code cpu} backend
 * runs (equal groups make exactly the batched GEMM calls the experts made before these ops existed, so the bits are
 * unchanged) and the device backend's fallback where its tensor-core kernel does not apply.
 *
 * <p>Ragged groups read the offsets on the host, which synchronises a device backend.
 */
public final class GroupedGemms {
    private GroupedGemms() {}

    /** {@link Backend#groupedGemmForward} over {@code be}'s gemm (and gatherRows for a rows list). */
    public static void forward(Backend be, Tensor x, Tensor rows, Tensor w, Tensor offsets, float beta, Tensor y) {
        OpShapes.GroupedDims g = OpShapes.groupedGemmForward(x, rows, w, offsets, y);
        if (g.rows() == 0 || g.n() == 0) return;
        try (Tensor gathered = gathered(be, x, rows, g);
                Tensor wCast = castWeights(be, w, g)) {
            Tensor src = gathered != null ? gathered : be.view(x, g.rows(), g.k());
            products(be, false, src, wCast != null ? wCast : w, offsets, g, beta, be.view(y, g.rows(), g.n()));
        }
    }

    /** {@link Backend#groupedSwiGluForward}: the gate and up products, then {@code swiGluForward}. */
    public static void swiGluForward(
            Backend be,
            Tensor x,
            Tensor rows,
            Tensor wGate,
            Tensor wUp,
            Tensor offsets,
            Tensor gate,
            Tensor up,
            Tensor out) {
        OpShapes.GroupedDims g = OpShapes.groupedSwiGluForward(x, rows, wGate, wUp, offsets, gate, up, out);
        if (g.rows() == 0 || g.n() == 0) return;
        try (Tensor gathered = gathered(be, x, rows, g);
                Tensor wgCast = castWeights(be, wGate, g);
                Tensor wuCast = castWeights(be, wUp, g);
                Tensor gTemp = gate == null ? be.allocate(g.dtype(), g.rows(), g.n()) : null;
                Tensor uTemp = up == null ? be.allocate(g.dtype(), g.rows(), g.n()) : null) {
            Tensor src = gathered != null ? gathered : be.view(x, g.rows(), g.k());
            Tensor g2 = be.view(gate == null ? gTemp : gate, g.rows(), g.n());
            Tensor u2 = be.view(up == null ? uTemp : up, g.rows(), g.n());
            products(be, false, src, wgCast != null ? wgCast : wGate, offsets, g, 0f, g2);
            products(be, false, src, wuCast != null ? wuCast : wUp, offsets, g, 0f, u2);
            be.swiGluForward(g2, u2, be.view(out, g.rows(), g.n()));
        }
    }

    /** {@link Backend#groupedGemmBackwardData}: {@code dx = dy @ w_g} per group. */
    public static void backwardData(Backend be, Tensor dy, Tensor w, Tensor offsets, float beta, Tensor dx) {
        OpShapes.GroupedDims g = OpShapes.groupedGemmBackwardData(dy, w, offsets, dx);
        if (g.rows() == 0 || g.k() == 0) return;
        try (Tensor wCast = castWeights(be, w, g)) {
            Tensor wd = wCast != null ? wCast : w;
            products(be, true, be.view(dy, g.rows(), g.n()), wd, offsets, g, beta, be.view(dx, g.rows(), g.k()));
        }
    }

    /** {@link Backend#groupedGemmBackwardWeight}: {@code dw[g] = dy_g^T @ x_g} per group. */
    public static void backwardWeight(
            Backend be, Tensor dy, Tensor x, Tensor rows, Tensor offsets, float beta, Tensor dw) {
        OpShapes.GroupedDims g = OpShapes.groupedGemmBackwardWeight(dy, x, rows, offsets, dw);
        if (g.n() == 0 || g.k() == 0) return;
        Tensor dy2 = be.view(dy, g.rows(), g.n());
        try (Tensor gathered = gathered(be, x, rows, g)) {
            Tensor src = gathered != null ? gathered : be.view(x, g.rows(), g.k());
            if (g.uniform() && g.rows() > 0) {
                int m = g.rows() / g.groups();
                be.gemm(
                        true,
                        false,
                        1f,
                        be.view(dy2, g.groups(), m, g.n()),
                        be.view(src, g.groups(), m, g.k()),
                        beta,
                        dw); // [G,N,K]
                return;
            }
            int[] off = hostOffsets(be, offsets, g);
            for (int i = 0; i < g.groups(); i++) {
                int s = off[i], len = off[i + 1] - s;
                Tensor dwi = be.view(be.slice(dw, i, 1), g.n(), g.k());
                if (len > 0) be.gemm(true, false, 1f, be.slice(dy2, s, len), be.slice(src, s, len), beta, dwi);
                else if (beta == 0f) be.fill(dwi, 0f);
                else be.scale(dwi, beta);
            }
        }
    }

    /**
     * out {@code [R, cols]} = src {@code [R, inner]} times each group's weight: {@code w_g^T} (forward, w [G, cols,
     * inner]) or {@code w_g} ({@code data}: w [G, inner, cols]).
     */
    private static void products(
            Backend be,
            boolean data,
            Tensor src,
            Tensor w,
            Tensor offsets,
            OpShapes.GroupedDims g,
            float beta,
            Tensor out) {
        int inner = src.dim(1), cols = out.dim(1);
        if (g.uniform()) {
            int m = g.rows() / g.groups();
            be.gemm(
                    false,
                    !data,
                    1f,
                    be.view(src, g.groups(), m, inner),
                    w,
                    beta,
                    be.view(out, g.groups(), m, cols)); // [G,M,cols]
            return;
        }
        int[] off = hostOffsets(be, offsets, g);
        for (int i = 0; i < g.groups(); i++) {
            int s = off[i], len = off[i + 1] - s;
            if (len == 0) continue;
            Tensor wi = be.view(be.slice(w, i, 1), w.dim(1), w.dim(2));
            be.gemm(false, !data, 1f, be.slice(src, s, len), wi, beta, be.slice(out, s, len));
        }
    }

    /**
     * The float32 weights as a copy in the activations' dtype when that is BF16 ({@code gemm} takes a and b of one
     * dtype; rounding them to bf16 is what the tensor-core kernels do too), else null (use them as they are). The
     * copy goes through the host: this is the fallback path.
     */
    private static Tensor castWeights(Backend be, Tensor w, OpShapes.GroupedDims g) {
        if (g.dtype() == DType.F32) return null;
        Tensor out = be.allocate(g.dtype(), w.shape());
        be.copyFromHost(be.toHostFloats(w), out);
        return out;
    }

    /**
     * x's rows gathered through {@code rows} into a new {@code [R, K]} tensor, or null without a rows list. The list
     * is checked on the host first, so a bad entry is reported as the device kernels report it.
     */
    private static Tensor gathered(Backend be, Tensor x, Tensor rows, OpShapes.GroupedDims g) {
        if (rows == null) return null;
        int[] host = new int[g.rows()];
        be.toHost(rows, host);
        for (int r = 0; r < host.length; r++) {
            if (host[r] < 0 || host[r] >= g.sourceRows())
                throw new IllegalArgumentException(
                        OpShapes.indexOutOfRange(OpShapes.GROUPED_OP, "row index", host[r], r, "x's rows"));
        }
        Tensor out = be.allocate(g.dtype(), g.rows(), g.k());
        be.gatherRows(be.view(x, g.sourceRows(), g.k()), rows, out);
        return out;
    }

    private static int[] hostOffsets(Backend be, Tensor offsets, OpShapes.GroupedDims g) {
        if (offsets == null) return OpShapes.groupedOffsets(null, g);
        int[] host = new int[g.groups() + 1];
        be.toHost(offsets, host);
        return OpShapes.groupedOffsets(host, g);
    }
}
