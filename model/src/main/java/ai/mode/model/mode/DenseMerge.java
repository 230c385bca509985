package ai.mode.model.mode;

import ai.mode.model.nn.BufferPool;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;

/**
 * The dense routing plan of a MoDE block: every branch runs on every token and the outputs are mixed by the gate,
 * {@code y = α_bb f_bb(x) + Σ_j α_j f_e^j(x)}, as one {@code weightedMergeForward} over the branch outputs stacked
 * {@code [N+1, B·T, D]} (row 0 the backbone, row j+1 expert j). Shared by {@link ModeBlock} and the multi-device
 * scheduler, which fills the stack with outputs that come from several devices.
 *
 * <p>Use per micro-batch: write each branch into {@link #branches}, call {@link #forward}; in backward,
 * {@link #backward} gives the branch gradients and {@link #probabilityGradient()} the gate's.
 */
public final class DenseMerge {
    private final Backend backend;
    private final int branchCount;
    private final BufferPool own;
    private Tensor probs;
    private int rows, width;

    /** @param branches N+1 */
    public DenseMerge(Backend backend, int branches) {
        this.backend = backend;
        this.branchCount = branches;
        this.own = new BufferPool(backend);
    }

    /** The branch outputs of the current micro-batch, {@code [N+1, m, D]} (owned buffer, written by the caller). */
    public Tensor branches(int m, int d) {
        rows = m;
        width = d;
        return own.get("branches", branchCount, m, d);
    }

    /** y2 {@code [m, D]} = Σ_b probs[:, b] · branches[b]; {@code probs [m, N+1]} is kept for backward. */
    public void forward(Tensor probs, Tensor y2) {
        this.probs = probs;
        backend.weightedMergeForward(own.get("branches", branchCount, rows, width), probs, y2);
    }

    /** Gradients of {@link #forward}: returns dBranches {@code [N+1, m, D]} (owned); dy2 is {@code [m, D]}. */
    public Tensor backward(Tensor dy2) {
        if (probs == null) throw new IllegalStateException("dense merge: backward before forward");
        Tensor dBranches = own.get("dbranches", branchCount, rows, width);
        backend.weightedMergeBackward(
                dy2, own.get("branches", branchCount, rows, width), probs, dBranches, probabilityGradient());
        return dBranches;
    }

    /** The gradient of the gate probabilities {@code [m, N+1]} from the last {@link #backward} (owned). */
    public Tensor probabilityGradient() {
        return own.get("dprobs", rows, branchCount);
    }

    public void releaseBuffers() {
        own.release();
        probs = null;
    }
}
