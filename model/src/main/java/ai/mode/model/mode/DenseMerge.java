package ai.mode.model.mode;

import ai.mode.model.nn.BufferPool;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;

/**
 * The dense routing plan of a MoDE block: every branch runs on every token and the outputs are combined under the
 * gate as one {@code weightedMergeForward} over the branch outputs stacked {@code [N+1, B·T, D]} (row 0 the
 * backbone, row j+1 expert j). Shared by {@link ModeBlock} and the multi-device scheduler, which fills the stack with
 * outputs that come from several devices.
 *
 * <p>{@link ModeConfig.Merge#MIXTURE}: {@code y = α_bb f_bb(x) + Σ_j α_j f_e^j(x)}, merge weights = the gate's
 * probabilities. {@link ModeConfig.Merge#RESIDUAL}: {@code y = f_bb(x) + Σ_j α_j (f_e^j(x) - x)}: the expert rows
 * become their updates {@code f_e^j(x) - x} and the merge weights are the probabilities with column 0 set to 1
 * ({@code probs · diag(0,1,..,1) + 1·e_0^T}, two small GEMMs, exact); backward drops the backbone column of the
 * probability gradient and adds {@code -Σ_j dBranches[j+1]} to the input gradient.
 *
 * <p>Use per micro-batch: write each branch into {@link #branches}, call {@link #forward}; in backward,
 * {@link #backward} gives the branch gradients, {@link #probabilityGradient()} the gate's and
 * {@link #addInputGradient} adds the merge's own term of the input gradient.
 */
public final class DenseMerge {
    private final Backend backend;
    private final int branchCount;
    private final ModeConfig.Merge merge;
    private final BufferPool own;
    private Tensor weights;
    private int rows, width;
    private boolean constantsWritten; // expert_columns and backbone_column hold their values

    /** @param branches N+1; the paper's mixture */
    public DenseMerge(Backend backend, int branches) {
        this(backend, branches, ModeConfig.Merge.MIXTURE);
    }

    /** @param branches N+1 */
    public DenseMerge(Backend backend, int branches, ModeConfig.Merge merge) {
        this.backend = backend;
        this.branchCount = branches;
        this.merge = merge;
        this.own = new BufferPool(backend);
    }

    /** The branch outputs of the current micro-batch, {@code [N+1, m, D]} (owned buffer, written by the caller). */
    public Tensor branches(int m, int d) {
        rows = m;
        width = d;
        return own.get("branches", branchCount, m, d);
    }

    /**
     * y2 {@code [m, D]} = the merge of the branches under {@code probs [m, N+1]} (kept for backward); x2
     * {@code [m, D]} is the block input (read by the residual merge only).
     */
    public void forward(Tensor probs, Tensor x2, Tensor y2) {
        Tensor stacked = own.get("branches", branchCount, rows, width);
        if (merge == ModeConfig.Merge.RESIDUAL) {
            for (int b = 1; b < branchCount; b++) backend.axpy(-1f, x2, branchRows(stacked, b)); // f_e(x) - x
            Tensor w = own.get("weights", rows, branchCount);
            backend.gemm(false, false, 1f, probs, expertColumns(), 0f, w); // [m,E], column 0 zero
            Tensor ones = own.get("ones", rows, 1);
            backend.fill(ones, 1f);
            backend.gemm(false, false, 1f, ones, backboneColumn(), 1f, w); // column 0 = 1
            weights = w;
        } else {
            weights = probs;
        }
        backend.weightedMergeForward(stacked, weights, y2);
    }

    /** Gradients of {@link #forward}: returns dBranches {@code [N+1, m, D]} (owned); dy2 is {@code [m, D]}. */
    public Tensor backward(Tensor dy2) {
        if (weights == null) throw new IllegalStateException("dense merge: backward before forward");
        Tensor dBranches = own.get("dbranches", branchCount, rows, width);
        Tensor stacked = own.get("branches", branchCount, rows, width);
        if (merge == ModeConfig.Merge.RESIDUAL) {
            Tensor dw = own.get("dweights", rows, branchCount);
            backend.weightedMergeBackward(dy2, stacked, weights, dBranches, dw);
            backend.gemm(false, false, 1f, dw, expertColumns(), 0f, probabilityGradient()); // α_bb unused: 0
        } else {
            backend.weightedMergeBackward(dy2, stacked, weights, dBranches, probabilityGradient());
        }
        return dBranches;
    }

    /** The gradient of the gate probabilities {@code [m, N+1]} from the last {@link #backward} (owned). */
    public Tensor probabilityGradient() {
        return own.get("dprobs", rows, branchCount);
    }

    /**
     * Adds the merge's own term of the input gradient to dx2 {@code [m, D]}: {@code -Σ_j dBranches[j+1]} for the
     * residual merge (from the {@code - x} of each expert update), nothing for the mixture.
     */
    public void addInputGradient(Tensor dx2) {
        if (merge != ModeConfig.Merge.RESIDUAL) return;
        Tensor dBranches = own.get("dbranches", branchCount, rows, width);
        for (int b = 1; b < branchCount; b++) backend.axpy(-1f, branchRows(dBranches, b), dx2);
    }

    private Tensor branchRows(Tensor stacked, int b) {
        return backend.view(backend.slice(stacked, b, 1), rows, width);
    }

    /** diag(0, 1, .., 1) {@code [E, E]}. */
    private Tensor expertColumns() {
        writeConstants();
        return own.get("expert_columns", branchCount, branchCount);
    }

    /** e_0^T {@code [1, E]}. */
    private Tensor backboneColumn() {
        writeConstants();
        return own.get("backbone_column", 1, branchCount);
    }

    private void writeConstants() {
        if (constantsWritten) return;
        float[] diag = new float[branchCount * branchCount], e0 = new float[branchCount];
        for (int b = 1; b < branchCount; b++) diag[b * branchCount + b] = 1f;
        e0[0] = 1f;
        backend.copyFromHost(diag, own.get("expert_columns", branchCount, branchCount));
        backend.copyFromHost(e0, own.get("backbone_column", 1, branchCount));
        constantsWritten = true;
    }

    public void releaseBuffers() {
        own.release();
        weights = null;
        constantsWritten = false;
    }
}
