package ai.mode.model.mode;

import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.RMSNorm;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * The per-block MoDE gate g(x) = softmax(W_g x + b_g) over the N+1 branches (row 0 = backbone), with its hand-written
 * backward; with {@link ModeConfig.GateInput#RMSNORM} it reads RMSNorm(x) (unit gain, not a parameter) instead of x,
 * so its logits move at the same rate in every block whatever the scale of the block input. It works on "routing
 * rows": tokens for token-level routing, sequence means for sequence-level routing; the block maps between rows and
 * tokens.
 *
 * <p>Gate of block i: {@code mode.blocks.{i}.gate.weight} [E, D] and {@code mode.blocks.{i}.gate.bias} [E], E = N+1.
 * {@code probs [R,E] = softmax(x [R,D] @ W^T + b)}, x replaced by {@code RMSNorm(x) [R,D]} for a normalised input.
 */
public final class Gate implements AutoCloseable {
    private final Backend backend;
    private final Parameter weight;
    private final Parameter bias;
    private final BufferPool own;
    private final BufferPool scratch;
    private final RMSNorm norm; // null: the gate reads x itself
    private Tensor x;
    private Tensor read; // what the last forward's logits read: x, or RMSNorm(x) (the norm's buffer)
    private Tensor logitMask; // [E]: 0 for kept branches, MASKED for removed ones; null = every branch kept

    /** A gate reading x itself, with zero-filled, frozen parameters for {@code branches} = N+1 outputs over width d. */
    public Gate(Backend backend, int block, int branches, int d, BufferPool scratch) {
        this(backend, block, branches, d, ModeConfig.GateInput.RAW, 0f, scratch);
    }

    /**
     * A gate with zero-filled, frozen parameters for {@code branches} = N+1 outputs over width d, reading {@code input}
     * (eps: the RMSNorm epsilon, the backbone's).
     */
    public Gate(
            Backend backend,
            int block,
            int branches,
            int d,
            ModeConfig.GateInput input,
            float eps,
            BufferPool scratch) {
        this.backend = backend;
        this.weight = new Parameter(TensorNames.gateWeight(block), backend.zeros(branches, d), true);
        this.bias = new Parameter(TensorNames.gateBias(block), backend.zeros(branches), false);
        this.own = new BufferPool(backend);
        this.scratch = scratch;
        this.norm = input == ModeConfig.GateInput.RMSNORM
                ? new RMSNorm(backend, unitGain(backend, block, d), eps, scratch)
                : null;
    }

    /** The frozen all-ones gain [D] of the input norm (not a model parameter: never trained or saved). */
    private static Parameter unitGain(Backend backend, int block, int d) {
        Tensor ones = backend.allocate(DType.F32, d);
        backend.fill(ones, 1f);
        return new Parameter("mode.blocks." + block + ".gate.input_norm", ones, false);
    }

    public Parameter weight() {
        return weight;
    }

    public Parameter bias() {
        return bias;
    }

    /** E = N+1. */
    public int branches() {
        return weight.shape()[0];
    }

    public List<Parameter> parameters() {
        return List.of(weight, bias);
    }

    /** W = 0 and b = [backboneBias, 0, ..., 0]: every row starts with the same weights, α_bb = e^b / (e^b + N). */
    public void initialize(double backboneBias) {
        backend.fill(weight.value(), 0f);
        float[] b = new float[branches()];
        b[0] = (float) backboneBias;
        backend.copyFromHost(b, bias.value());
    }

    /**
     * Forces every input onto one branch: W = 0 and a bias of 0 for {@code branch} and -1e4 for the others, so
     * softmax gives exactly 1 and 0 in float32 (e^-1e4 underflows to 0).
     */
    public void forceBranch(int branch) {
        if (branch < 0 || branch >= branches())
            throw new IllegalArgumentException("branch " + branch + " outside [0, " + branches() + ")");
        backend.fill(weight.value(), 0f);
        float[] b = new float[branches()];
        java.util.Arrays.fill(b, -1e4f);
        b[branch] = 0f;
        backend.copyFromHost(b, bias.value());
    }

    /** The logit offset of a removed branch: softmax gives it exactly 0 in float32 (e^-1e30 underflows). */
    static final float MASKED = -1e30f;

    /**
     * Restricts the softmax to the branches with {@code kept[b]} true (domain opt-out): their probabilities are
     * renormalised to sum to 1 and the others are exactly 0, as if the removed rows were not in the gate. All
     * true (or null) restores the full gate, whose forward is then the unmasked one, bit for bit.
     */
    public void keepBranches(boolean[] kept) {
        if (logitMask != null) logitMask.close();
        logitMask = null;
        if (kept == null) return;
        if (kept.length != branches())
            throw new IllegalArgumentException("gate " + weight.name() + ": branch mask has " + kept.length
                    + " entries but the gate has " + branches() + " branches");
        float[] offsets = new float[kept.length];
        boolean any = false, all = true;
        for (int b = 0; b < kept.length; b++) {
            offsets[b] = kept[b] ? 0f : MASKED;
            any |= kept[b];
            all &= kept[b];
        }
        if (!any) throw new IllegalArgumentException("gate " + weight.name() + ": keep at least one branch");
        if (all) return;
        logitMask = backend.fromHost(offsets, offsets.length);
    }

    /** probs [R,E] = softmax(x W^T + b) for x [R,D] (owned buffer; x must stay unchanged until backward). */
    public Tensor forward(Tensor xRows) {
        int e = branches(), d = weight.shape()[1];
        if (xRows.rank() != 2 || xRows.dim(1) != d)
            throw new IllegalArgumentException(
                    "gate " + weight.name() + ": input must be [R, " + d + "] but is " + xRows.describe());
        this.x = xRows;
        int r = xRows.dim(0);
        read = norm == null ? xRows : norm.forward(xRows); // [R,D]
        Tensor logits = own.get("logits", r, e);
        backend.gemm(false, true, 1f, read, weight.value(), 0f, logits); // [R,E]
        Tensor ones = own.get("ones", r, 1);
        backend.fill(ones, 1f);
        backend.gemm(false, false, 1f, ones, backend.view(bias.value(), 1, e), 1f, logits); // + b on every row
        if (logitMask != null) backend.gemm(false, false, 1f, ones, backend.view(logitMask, 1, e), 1f, logits);
        Tensor probs = own.get("probs", r, e);
        backend.softmaxForward(logits, probs);
        return probs;
    }

    /** The probabilities of the last forward. */
    public Tensor probs() {
        return own.get("probs", x.dim(0), branches());
    }

    /**
     * Backward of {@link #forward}: accumulates dW, db when trainable and returns dx [R,D] (owned buffer).
     *
     * @param dProbs [R,E] gradient of the loss with respect to the probabilities (not modified)
     */
    public Tensor backward(Tensor dProbs) {
        if (x == null) throw new IllegalStateException("gate " + weight.name() + ": backward before forward");
        int r = x.dim(0), e = branches(), d = weight.shape()[1];
        Tensor dLogits = scratch.get("gate.dlogits", r, e);
        backend.softmaxBackward(dProbs, own.get("probs", r, e), dLogits);
        if (weight.trainable()) backend.gemm(true, false, 1f, dLogits, read, 1f, weight.grad()); // [E,D]
        if (bias.trainable()) backend.sumRowsAccumulate(dLogits, bias.grad()); // [E]
        Tensor dRead = own.get("dx", r, d);
        backend.gemm(false, false, 1f, dLogits, weight.value(), 0f, dRead); // [R,D]
        return norm == null ? dRead : norm.backward(dRead);
    }

    public void releaseBuffers() {
        own.release();
        if (norm != null) norm.releaseBuffers();
        x = null;
        read = null;
    }

    @Override
    public void close() {
        releaseBuffers();
        keepBranches(null);
        weight.close();
        bias.close();
        if (norm != null) norm.weight().close();
    }
}
