package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Layer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One MoDE block (docs/design.md, "The method"): a frozen backbone slice, N experts of k layers and a gate, merged
 * as y = α_bb f_bb(x) + Σ_j α_j f_e^j(x). Dense soft routing runs every branch on every token; top-k sparse routing runs
 * each branch only on the tokens (or sequences) routed to it. The dense forward and backward are exposed in their
 * independent parts (backbone / experts / gate / merge) so a scheduler can place them apart.
 *
 * <p>A MoDE block as a {@link Layer}: {@code x [B,T,D] → y [B,T,D]}.
 *
 * <p><b>Dense routing</b> (default): {@link #forwardGate}, {@link #forwardBackbone}, {@link #forwardExperts} are
 * independent given x; {@link #merge} combines them with {@code weightedMergeForward} on the stacked branches
 * {@code [N+1, B·T, D]}. Backward mirrors it: {@link #backwardMerge} gives the branch and gate-probability
 * gradients, then {@link #backwardBackbone}, {@link #backwardExperts} and {@link #backwardGate} are independent
 * and their input gradients add up.
 *
 * <p><b>Top-k sparse routing</b>: the gate's top-k branches per routing row get weights renormalised to 1; for
 * each branch the tokens routed to it are gathered per sequence, in order, into a packed batch (rows padded at
 * the end by repeating a routed token; causal attention keeps padding from affecting routed tokens, and its
 * outputs are dropped), the branch runs on the packed batch, and the weighted outputs are scatter-added back. A
 * token routed to a branch therefore attends only to earlier tokens of its sequence routed to the same branch,
 * at packed positions (as in Mixture-of-Depths); with k = N+1 every branch sees the full sequence and the result
 * equals dense routing.
 *
 * <p><b>Sequence-level routing</b>: the gate reads the mean over T of the block input, and all tokens of a
 * sequence share its weights (with top-k: whole sequences are routed).
 */
public final class ModeBlock implements Layer {
    private final Backend backend;
    private final LlamaConfig cfg;
    private final int index;
    private final List<DecoderLayer> backbone;
    private final List<StackedLayerWeights> expertWeights; // k depths, each N experts
    private final ExpertStack experts;
    private final Gate gate;
    private final Routing routing;
    private final BufferPool own;
    private final BufferPool scratch;
    private final int numExperts;
    private ExpertStack[] singleExperts; // sparse path: one stack per expert, made on first use
    private boolean inputGradient = true;
    private Tensor x;
    private int batch, seq;
    // sparse routing state of the last forward
    private BranchPlan[] plans;
    private float[] routedProbs;
    private int[] routedIndex;
    private final List<Tensor> stepTensors = new ArrayList<>();
    // gate statistics
    private boolean collectStats;
    private long statTokens;
    private Tensor mergeProbs;

    /**
     * @param backbone      this block's backbone slice (frozen parameters, shared with the backbone model)
     * @param expertWeights the experts' weights at each of the k depths (N experts each; owned by the caller)
     * @param gate          the gate over N+1 branches (owned by the caller)
     */
    public ModeBlock(
            Backend backend,
            LlamaConfig cfg,
            int index,
            List<DecoderLayer> backbone,
            List<StackedLayerWeights> expertWeights,
            Gate gate,
            Routing routing,
            BufferPool scratch) {
        this.backend = backend;
        this.cfg = cfg;
        this.index = index;
        this.backbone = List.copyOf(backbone);
        this.expertWeights = List.copyOf(expertWeights);
        this.numExperts = expertWeights.get(0).count();
        if (gate.branches() != numExperts + 1) {
            throw new IllegalArgumentException("block " + index + ": gate has " + gate.branches()
                    + " outputs but there are " + numExperts + " experts (need N+1 = " + (numExperts + 1) + ")");
        }
        if (routing.topK() > numExperts + 1) {
            throw new IllegalArgumentException(
                    "block " + index + ": top-k " + routing.topK() + " exceeds the " + (numExperts + 1) + " branches");
        }
        this.experts = new ExpertStack(backend, cfg, expertWeights, scratch);
        this.gate = gate;
        this.routing = routing;
        this.own = new BufferPool(backend);
        this.scratch = scratch;
    }

    public int index() {
        return index;
    }

    public List<DecoderLayer> backboneLayers() {
        return backbone;
    }

    public List<StackedLayerWeights> expertWeights() {
        return expertWeights;
    }

    public ExpertStack experts() {
        return experts;
    }

    public Gate gate() {
        return gate;
    }

    public Routing routing() {
        return routing;
    }

    public int numExperts() {
        return numExperts;
    }

    /**
     * Whether {@link #backward} must produce the input gradient (default true). The lowest block of a model
     * whose embedding is frozen sets this false: backward then skips the frozen backbone slice and returns null.
     */
    public void setInputGradient(boolean on) {
        this.inputGradient = on;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        for (DecoderLayer l : backbone) out.addAll(l.parameters());
        out.addAll(expertParameters());
        out.addAll(gate.parameters());
        return out;
    }

    /** The experts' parameters, expert by expert, layer by layer (the order of expert files). */
    public List<Parameter> expertParameters() {
        List<Parameter> out = new ArrayList<>();
        for (int j = 0; j < numExperts; j++)
            for (StackedLayerWeights w : expertWeights) out.addAll(w.layerParameters(j));
        return out;
    }

    // ================================================================= Layer

    @Override
    public Tensor forward(Tensor x) {
        int d = cfg.hiddenSize();
        if (x.rank() != 3 || x.dim(2) != d)
            throw new IllegalArgumentException(
                    "MoDE block " + index + ": input must be f32[B, T, " + d + "] but is " + x.describe());
        this.x = x;
        batch = x.dim(0);
        seq = x.dim(1);
        Tensor probs = forwardGate(x);
        Tensor y = routing.dense() ? merge(forwardBackbone(x), forwardExperts(x), probs) : sparseForward(probs);
        if (collectStats) {
            backend.sumRowsAccumulate(probs, own.get("stats", numExperts + 1));
            statTokens += (long) batch * seq;
        }
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("MoDE block " + index + ": backward before forward");
        int m = batch * seq, d = cfg.hiddenSize();
        if (dy.numel() != (long) m * d)
            throw new IllegalArgumentException("MoDE block " + index + ": output gradient " + dy.describe()
                    + " does not match [" + batch + ", " + seq + ", " + d + "]");
        if (!routing.dense()) return sparseBackward(dy);
        Tensor dBranches = backwardMerge(dy);
        Tensor dx = inputGradient ? own.get("dx", batch, seq, d) : null;
        Tensor dxB = backwardBackbone(backend.slice(dBranches, 0, 1));
        Tensor dxE = backwardExperts(backend.slice(dBranches, 1, numExperts));
        Tensor dxG = backwardGate(own.get("dprobs", m, numExperts + 1));
        if (dx == null) return null;
        Tensor dx2 = backend.view(dx, m, d);
        backend.copy(dxB, dx);
        backend.add(dx2, backend.view(dxE, m, d), dx2);
        backend.add(dx2, dxG, dx2);
        return dx;
    }

    // ================================================================= dense parts

    /** Gate probabilities per token [B·T, N+1] (owned buffer). */
    public Tensor forwardGate(Tensor x) {
        int m = x.dim(0) * x.dim(1), d = cfg.hiddenSize();
        if (routing.level() == Routing.Level.TOKEN) return gate.forward(backend.view(x, m, d));
        Tensor probsSeq = gate.forward(sequenceMean(x));
        Tensor probs = own.get("probs_tok", m, numExperts + 1);
        backend.gatherRows(probsSeq, sequenceIndex(x.dim(0), x.dim(1)), probs); // every token gets its sequence's row
        return probs;
    }

    /** The backbone slice on x: [B,T,D] (a buffer of the slice's last layer). */
    public Tensor forwardBackbone(Tensor x) {
        Tensor h = x;
        for (DecoderLayer l : backbone) h = l.forward(h);
        return h;
    }

    /** All N experts on x, as one batched stack: [N, B·T, D]. */
    public Tensor forwardExperts(Tensor x) {
        return experts.forward(x);
    }

    /** y [B,T,D] = α_bb · backboneOut + Σ_j α_j · expertsOut[j]; probs [B·T, N+1] per token (owned buffer). */
    public Tensor merge(Tensor backboneOut, Tensor expertsOut, Tensor probs) {
        int m = batch * seq, d = cfg.hiddenSize();
        Tensor branches = own.get("branches", numExperts + 1, m, d);
        backend.copy(backboneOut, backend.slice(branches, 0, 1));
        backend.copy(expertsOut, backend.slice(branches, 1, numExperts));
        Tensor y = own.get("y", batch, seq, d);
        backend.weightedMergeForward(branches, probs, backend.view(y, m, d));
        this.mergeProbs = probs;
        return y;
    }

    /** Gradients of {@link #merge}: returns dBranches [N+1, B·T, D]; the probability gradient goes to an owned buffer used by {@link #backwardGate}. */
    public Tensor backwardMerge(Tensor dy) {
        int m = batch * seq, d = cfg.hiddenSize(), e = numExperts + 1;
        Tensor dBranches = own.get("dbranches", e, m, d);
        Tensor dProbs = own.get("dprobs", m, e);
        backend.weightedMergeBackward(
                backend.view(dy, m, d), own.get("branches", e, m, d), mergeProbs, dBranches, dProbs);
        return dBranches;
    }

    /** Backward through the backbone slice: dBranch [1, B·T, D] → dx [B,T,D], or null when no input gradient is needed and the slice is frozen. */
    public Tensor backwardBackbone(Tensor dBranch) {
        if (!inputGradient && !anyTrainable(backbone)) return null;
        Tensor g = backend.view(dBranch, batch, seq, cfg.hiddenSize());
        for (int i = backbone.size() - 1; i >= 0; i--) g = backbone.get(i).backward(g);
        return g;
    }

    /** Backward through the experts: dBranches [N, B·T, D] → dx [B,T,D] summed over experts (null without input gradient). */
    public Tensor backwardExperts(Tensor dBranches) {
        return experts.backward(dBranches, inputGradient);
    }

    /** Backward through the gate from the per-token probability gradient [B·T, N+1]: dx [B·T, D] (null without input gradient). */
    public Tensor backwardGate(Tensor dProbsTokens) {
        int m = batch * seq, d = cfg.hiddenSize();
        if (routing.level() == Routing.Level.TOKEN) {
            Tensor dxr = gate.backward(dProbsTokens);
            return inputGradient ? dxr : null;
        }
        Tensor dProbsSeq = scratch.get("block.dprobs_seq", batch, numExperts + 1);
        backend.fill(dProbsSeq, 0f);
        backend.scatterAddRows(dProbsTokens, sequenceIndex(batch, seq), dProbsSeq);
        Tensor dMean = gate.backward(dProbsSeq);
        if (!inputGradient) return null;
        Tensor dx = own.get("dx_gate", m, d);
        backend.gatherRows(dMean, sequenceIndex(batch, seq), dx);
        backend.scale(dx, 1f / seq);
        return dx;
    }

    private static boolean anyTrainable(List<? extends Layer> layers) {
        for (Layer l : layers) for (Parameter p : l.parameters()) if (p.trainable()) return true;
        return false;
    }

    // ================================================================= sequence-level helpers

    /** I32 [B·T]: token n → its sequence n / T (cached per shape). */
    private Tensor sequenceIndex(int b, int t) {
        Tensor idx = own.get("seq_index", DType.I32, b * t);
        if (seqIndexShape[0] != b || seqIndexShape[1] != t) {
            int[] v = new int[b * t];
            for (int i = 0; i < v.length; i++) v[i] = i / t;
            try (Tensor host = backend.fromHost(v, b * t)) {
                backend.copy(host, idx);
            }
            seqIndexShape[0] = b;
            seqIndexShape[1] = t;
        }
        return idx;
    }

    private final int[] seqIndexShape = {-1, -1};

    /** [B,D]: the mean over T of x [B,T,D]. */
    private Tensor sequenceMean(Tensor x) {
        int b = x.dim(0), t = x.dim(1), d = cfg.hiddenSize();
        Tensor mean = own.get("seq_mean", b, d);
        backend.fill(mean, 0f);
        backend.scatterAddRows(backend.view(x, b * t, d), sequenceIndex(b, t), mean);
        backend.scale(mean, 1f / t);
        return mean;
    }

    // ================================================================= sparse routing

    /** Which tokens one branch processes in the last forward, and where they sit in its packed batch. */
    private record BranchPlan(
            int rows, int len, int selected, Tensor gather, Tensor slot, Tensor token, Tensor weightIndex) {}

    private Tensor sparseForward(Tensor probsTok) {
        int m = batch * seq, d = cfg.hiddenSize(), e = numExperts + 1, k = routing.topK();
        boolean perSeq = routing.level() == Routing.Level.SEQUENCE;
        closeStepTensors();
        Tensor routedProbsDev = perSeq ? gate.probs() : probsTok; // [R,E]
        int r = routedProbsDev.dim(0);
        Tensor idx = own.get("topk_index", DType.I32, r, k), w = own.get("topk_weight", r, k);
        backend.topK(routedProbsDev, k, idx, w);
        routedIndex = new int[r * k];
        backend.toHost(idx, routedIndex);
        routedProbs = backend.toHostFloats(routedProbsDev);
        Tensor wFlat = backend.view(w, r * k, 1);
        plans = new BranchPlan[e];
        Tensor y = own.get("y", batch, seq, d);
        Tensor y2 = backend.view(y, m, d);
        backend.fill(y2, 0f);
        for (int br = 0; br < e; br++) {
            BranchPlan p = plan(br, perSeq, k);
            plans[br] = p;
            if (p == null) continue;
            Tensor xe = own.get("sparse.x." + br, p.rows(), p.len(), d);
            backend.gatherRows(backend.view(x, m, d), p.gather(), backend.view(xe, p.rows() * p.len(), d));
            Tensor ye = runBranch(br, xe);
            Tensor ysel = own.get("sparse.ysel." + br, 1, p.selected(), d);
            backend.gatherRows(backend.view(ye, p.rows() * p.len(), d), p.slot(), backend.view(ysel, p.selected(), d));
            Tensor wsel = own.get("sparse.w." + br, p.selected(), 1);
            backend.gatherRows(wFlat, p.weightIndex(), wsel);
            Tensor contrib = scratch.get("block.sparse.contrib", p.selected(), d);
            backend.weightedMergeForward(ysel, wsel, contrib); // w_n · f(x)_n
            backend.scatterAddRows(contrib, p.token(), y2);
        }
        return y;
    }

    /** Builds branch br's plan from the host copy of the top-k indices; null when no token is routed to it. */
    private BranchPlan plan(int br, boolean perSeq, int k) {
        int[] count = new int[batch];
        int selected = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                if (slotOf(perSeq ? b : b * seq + t, br, k) >= 0) {
                    count[b]++;
                    selected++;
                }
            }
        }
        if (selected == 0) return null;
        int rows = 0, len = 0;
        for (int c : count)
            if (c > 0) {
                rows++;
                len = Math.max(len, c);
            }
        int[] gather = new int[rows * len],
                slot = new int[selected],
                token = new int[selected],
                widx = new int[selected];
        int row = 0, i = 0;
        for (int b = 0; b < batch; b++) {
            if (count[b] == 0) continue;
            int s = 0, first = -1;
            for (int t = 0; t < seq; t++) {
                int routeRow = perSeq ? b : b * seq + t;
                int kpos = slotOf(routeRow, br, k);
                if (kpos < 0) continue;
                int tok = b * seq + t;
                if (first < 0) first = tok;
                gather[row * len + s] = tok;
                slot[i] = row * len + s;
                token[i] = tok;
                widx[i] = routeRow * k + kpos;
                s++;
                i++;
            }
            for (; s < len; s++) gather[row * len + s] = first; // padding after the routed tokens
            row++;
        }
        return new BranchPlan(
                rows, len, selected, stepTensor(gather), stepTensor(slot), stepTensor(token), stepTensor(widx));
    }

    /** Position of branch br among routing row r's top-k, or -1. */
    private int slotOf(int r, int br, int k) {
        for (int j = 0; j < k; j++) if (routedIndex[r * k + j] == br) return j;
        return -1;
    }

    private Tensor stepTensor(int[] v) {
        Tensor t = backend.fromHost(v, v.length);
        stepTensors.add(t);
        return t;
    }

    private void closeStepTensors() {
        for (Tensor t : stepTensors) t.close();
        stepTensors.clear();
    }

    /** Branch br (0 = backbone, j+1 = expert j) on a packed batch xe [rows, len, D]. */
    private Tensor runBranch(int br, Tensor xe) {
        if (br == 0) return forwardBackbone(xe);
        return singleExpert(br - 1).forward(xe);
    }

    private ExpertStack singleExpert(int j) {
        if (singleExperts == null) singleExperts = new ExpertStack[numExperts];
        if (singleExperts[j] == null) {
            List<StackedLayerWeights> ws = new ArrayList<>();
            for (StackedLayerWeights w : expertWeights) ws.add(w.range(j, 1));
            singleExperts[j] = new ExpertStack(backend, cfg, ws, scratch);
        }
        return singleExperts[j];
    }

    private Tensor sparseBackward(Tensor dy) {
        int m = batch * seq, d = cfg.hiddenSize(), e = numExperts + 1, k = routing.topK();
        boolean perSeq = routing.level() == Routing.Level.SEQUENCE;
        int r = routedProbs.length / e;
        Tensor dy2 = backend.view(dy, m, d);
        Tensor dx = own.get("dx", batch, seq, d);
        Tensor dx2 = backend.view(dx, m, d);
        backend.fill(dx2, 0f);
        Tensor dw = own.get("sparse.dw", r * k, 1);
        backend.fill(dw, 0f);
        for (int br = 0; br < e; br++) {
            BranchPlan p = plans[br];
            if (p == null) continue;
            Tensor dContrib = scratch.get("block.sparse.dcontrib", p.selected(), d);
            backend.gatherRows(dy2, p.token(), dContrib);
            Tensor ysel = own.get("sparse.ysel." + br, 1, p.selected(), d);
            Tensor dysel = scratch.get("block.sparse.dysel", 1, p.selected(), d);
            Tensor dwsel = scratch.get("block.sparse.dwsel", p.selected(), 1);
            backend.weightedMergeBackward(dContrib, ysel, own.get("sparse.w." + br, p.selected(), 1), dysel, dwsel);
            backend.scatterAddRows(dwsel, p.weightIndex(), dw);
            boolean needBranch = inputGradient || (br == 0 ? anyTrainable(backbone) : true);
            if (!needBranch) continue;
            Tensor dye = scratch.get("block.sparse.dye", p.rows() * p.len(), d);
            backend.fill(dye, 0f);
            backend.scatterAddRows(backend.view(dysel, p.selected(), d), p.slot(), dye);
            Tensor dye3 = backend.view(dye, p.rows(), p.len(), d);
            Tensor dxe;
            if (br == 0) {
                dxe = dye3;
                for (int i = backbone.size() - 1; i >= 0; i--)
                    dxe = backbone.get(i).backward(dxe);
            } else {
                dxe = singleExpert(br - 1).backward(backend.view(dye3, 1, p.rows() * p.len(), d), true);
            }
            if (!inputGradient) continue;
            Tensor dxsel = scratch.get("block.sparse.dxsel", p.selected(), d);
            backend.gatherRows(backend.view(dxe, p.rows() * p.len(), d), p.slot(), dxsel);
            backend.scatterAddRows(dxsel, p.token(), dx2);
        }
        // Renormalisation w_i = p_i / S (S = sum of the chosen p) on the host: dp_i = (g_i - Σ_j g_j w_j) / S.
        float[] g = backend.toHostFloats(dw);
        float[] dP = new float[r * e];
        for (int row = 0; row < r; row++) {
            double s = 0, dot = 0;
            for (int j = 0; j < k; j++) s += routedProbs[row * e + routedIndex[row * k + j]];
            for (int j = 0; j < k; j++) dot += g[row * k + j] * (routedProbs[row * e + routedIndex[row * k + j]] / s);
            for (int j = 0; j < k; j++) dP[row * e + routedIndex[row * k + j]] = (float) ((g[row * k + j] - dot) / s);
        }
        Tensor dProbs = own.get("sparse.dprobs", r, e);
        backend.copyFromHost(dP, dProbs);
        Tensor dxr = gate.backward(dProbs);
        if (!inputGradient) return null;
        if (perSeq) {
            Tensor spread = scratch.get("block.sparse.dmean", m, d);
            backend.gatherRows(dxr, sequenceIndex(batch, seq), spread);
            backend.axpy(1f / seq, spread, dx2);
        } else {
            backend.add(dx2, dxr, dx2);
        }
        return dx;
    }

    // ================================================================= gate statistics

    /** Starts (true, clearing previous sums) or stops accumulating mean gate weights over forward passes. */
    public void collectGateStatistics(boolean on) {
        collectStats = on;
        if (on) {
            backend.fill(own.get("stats", numExperts + 1), 0f);
            statTokens = 0;
        }
    }

    /** Mean gate weight per branch [α_bb, α_1..α_N] over the tokens seen since statistics were switched on. */
    public double[] gateStatistics() {
        float[] s = backend.toHostFloats(own.get("stats", numExperts + 1));
        double[] out = new double[s.length];
        for (int i = 0; i < s.length; i++) out[i] = statTokens == 0 ? Double.NaN : s[i] / (double) statTokens;
        return out;
    }

    @Override
    public void releaseBuffers() {
        boolean keepStats = collectStats;
        float[] stats = keepStats ? backend.toHostFloats(own.get("stats", numExperts + 1)) : null;
        own.release();
        if (keepStats) backend.copyFromHost(stats, own.get("stats", numExperts + 1));
        Arrays.fill(seqIndexShape, -1);
        closeStepTensors();
        for (DecoderLayer l : backbone) l.releaseBuffers();
        experts.releaseBuffers();
        if (singleExperts != null) for (ExpertStack s : singleExperts) if (s != null) s.releaseBuffers();
        gate.releaseBuffers();
        x = null;
        mergeProbs = null;
        plans = null;
    }
}
