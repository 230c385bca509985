package ai.mode.model.mode;

import ai.mode.model.nn.BufferPool;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;

/**
 * A block's {@link Gate} as seen by its tokens, at either {@link Routing.Level}: the routing half of a MoDE
 * block shared by {@link ModeBlock} (one device) and the multi-device scheduler, so both route with the same
 * operations in the same order.
 *
 * <p>Token level: the routing rows are the tokens, {@code probs [B·T, N+1] = gate(x [B·T, D])}. Sequence level:
 * the routing rows are the sequences, the gate reads the mean over T of the block input, {@code [B, D]}, and
 * every token gets its sequence's row. Backward maps the gradients back the same way (the mean's gradient is
 * spread over the T tokens with weight 1/T).
 */
public final class GateRouter {
    private final Backend backend;
    private final Gate gate;
    private final Routing.Level level;
    private final BufferPool own;
    private final int[] seqIndexShape = {-1, -1};
    private int batch, seq;
    private boolean[] kept; // branches the gate may route to (domain opt-out); null = all

    /** @param gate the block's gate (not owned) */
    public GateRouter(Backend backend, Gate gate, Routing.Level level) {
        this.backend = backend;
        this.gate = gate;
        this.level = level;
        this.own = new BufferPool(backend);
    }

    public Gate gate() {
        return gate;
    }

    /**
     * Routes only to the branches with {@code kept[b]} true: the gate's softmax is renormalised over them and the
     * others get weight exactly 0 (see {@link Gate#keepBranches}); null or all true is the full gate.
     */
    public void keepBranches(boolean[] kept) {
        gate.keepBranches(kept);
        this.kept = kept == null ? null : kept.clone();
    }

    /** Whether branch b may be routed to. */
    public boolean kept(int branch) {
        return kept == null || kept[branch];
    }

    /**
     * The routing this router can carry out: {@code routing} itself, or for top-k with fewer kept branches than k,
     * top-(kept branches), so no removed branch is ever chosen.
     */
    public Routing effective(Routing routing) {
        if (kept == null || routing.dense()) return routing;
        int n = 0;
        for (boolean b : kept) if (b) n++;
        return n >= routing.topK() ? routing : new Routing(routing.level(), n);
    }

    /** Gate probabilities per token {@code [B·T, N+1]} for x {@code [B,T,D]} (a buffer of the gate or of this router). */
    public Tensor forward(Tensor x) {
        batch = x.dim(0);
        seq = x.dim(1);
        int m = batch * seq, d = x.dim(2);
        if (level == Routing.Level.TOKEN) return gate.forward(backend.view(x, m, d));
        Tensor mean = own.get("seq_mean", batch, d); // [B,D]
        backend.fill(mean, 0f);
        backend.scatterAddRows(backend.view(x, m, d), sequenceIndex(), mean);
        backend.scale(mean, 1f / seq);
        Tensor probsSeq = gate.forward(mean); // [B, N+1]
        Tensor probs = own.get("probs_tok", m, gate.branches());
        backend.gatherRows(probsSeq, sequenceIndex(), probs); // every token gets its sequence's row
        return probs;
    }

    /** The probabilities per routing row of the last forward: {@code [B·T, N+1]} (token level) or {@code [B, N+1]}. */
    public Tensor routingRows(Tensor tokenProbs) {
        return level == Routing.Level.SEQUENCE ? gate.probs() : tokenProbs;
    }

    /**
     * Backward from the per-token probability gradient {@code [B·T, N+1]}: accumulates the gate's gradients and
     * returns dx {@code [B·T, D]} (a buffer of the gate or of this router), or null when {@code inputGradient} is
     * false.
     */
    public Tensor backward(Tensor dProbsTokens, boolean inputGradient) {
        int m = batch * seq;
        if (level == Routing.Level.TOKEN) {
            Tensor dxr = gate.backward(dProbsTokens);
            return inputGradient ? dxr : null;
        }
        Tensor dProbsSeq = own.get("dprobs_seq", batch, gate.branches());
        backend.fill(dProbsSeq, 0f);
        backend.scatterAddRows(dProbsTokens, sequenceIndex(), dProbsSeq);
        Tensor dMean = gate.backward(dProbsSeq);
        if (!inputGradient) return null;
        Tensor dx = own.get("dx_gate", m, dMean.dim(1));
        backend.gatherRows(dMean, sequenceIndex(), dx);
        backend.scale(dx, 1f / seq);
        return dx;
    }

    /**
     * Backward from the gradient per routing row {@code [R, N+1]}: accumulates the gate's gradients and, when
     * {@code inputGradient}, adds the input gradient into {@code dx2 [B·T, D]}.
     */
    public void backwardRows(Tensor dProbsRows, Tensor dx2, boolean inputGradient) {
        Tensor dxr = gate.backward(dProbsRows);
        if (!inputGradient) return;
        if (level == Routing.Level.SEQUENCE) {
            Tensor spread = own.get("dmean_spread", batch * seq, dxr.dim(1));
            backend.gatherRows(dxr, sequenceIndex(), spread);
            backend.axpy(1f / seq, spread, dx2);
        } else {
            backend.add(dx2, dxr, dx2);
        }
    }

    /** I32 [B·T]: token n → its sequence n / T (rebuilt when the shape changes). */
    private Tensor sequenceIndex() {
        Tensor idx = own.get("seq_index", DType.I32, batch * seq);
        if (seqIndexShape[0] != batch || seqIndexShape[1] != seq) {
            int[] v = new int[batch * seq];
            for (int i = 0; i < v.length; i++) v[i] = i / seq;
            try (Tensor host = backend.fromHost(v, v.length)) {
                backend.copy(host, idx);
            }
            seqIndexShape[0] = batch;
            seqIndexShape[1] = seq;
        }
        return idx;
    }

    public void releaseBuffers() {
        own.release();
        seqIndexShape[0] = seqIndexShape[1] = -1;
        gate.releaseBuffers();
    }
}
