package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.KvCache;
import ai.mode.model.nn.Layer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * One MoDE block (docs/design.md, "The method"): a frozen backbone slice, N experts of k layers and a gate, merged
 * as y = α_bb f_bb(x) + Σ_j α_j f_e^j(x). Dense soft routing runs every branch on every token; top-k sparse routing runs
 * each branch only on the tokens (or sequences) routed to it. The routing itself ({@link GateRouter},
 * {@link DenseMerge}, {@link TopKPlan}) is shared with the multi-device scheduler, which places the same parts apart.
 *
 * <p>A MoDE block as a {@link Layer}: {@code x [B,T,D] → y [B,T,D]}.
 *
 * <p>The gate ({@link GateRouter}), the backbone slice and the experts are independent given x. <b>Dense
 * routing</b> (default) combines them with a {@link DenseMerge} over the stacked branches {@code [N+1, B·T, D]};
 * backward mirrors it: the merge gives the branch and gate-probability gradients, then backbone, experts and gate
 * run backward independently and their input gradients add up (backbone, experts, gate, in this order).
 *
 * <p><b>Top-k sparse routing</b> follows a {@link TopKPlan}: the gate's top-k branches per routing row get weights renormalised to 1; for
 * each branch the tokens routed to it are gathered per sequence, in order, into a packed batch (rows padded at
 * the end by repeating a routed token; causal attention keeps padding from affecting routed tokens, and its
 * outputs are dropped), the branch runs on the packed batch, and the weighted outputs are scatter-added back. A
 * token routed to a branch therefore attends only to earlier tokens of its sequence routed to the same branch,
 * at packed positions (as in Mixture-of-Depths); with k = N+1 every branch sees the full sequence and the result
 * equals dense routing. Where the backend's grouped GEMM reads token lists in place ({@link
 * Backend#fusedGroupedGather}), an expert's first layer reads the block input through the packed token list instead
 * of the packed copy ({@link ExpertStack#forwardGathered}); the backbone branch, and every branch elsewhere, runs on
 * the copy.
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
    private final GateRouter router;
    private final DenseMerge dense;
    private final Routing routing;
    private final BufferPool own;
    private final BufferPool scratch;
    private final int numExperts;
    private ExpertStack[] singleExperts; // sparse path: one stack per expert, made on first use
    private boolean inputGradient = true;
    private Tensor x;
    private int batch, seq;
    // sparse routing state of the last forward: the plan, and per branch its selection and packed batch
    private TopKPlan plan;
    private TopKPlan.Branch[] routed;
    private TopKPlan.Packed[] packed;
    private boolean[] gathered; // per branch: its expert read the block input through the token list
    private GateStatistics gates; // router statistics, counted while collecting; null = none

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
            ModeConfig.Merge merge,
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
        this.router = new GateRouter(backend, gate, routing.level());
        if (merge == ModeConfig.Merge.RESIDUAL && !routing.dense())
            throw new IllegalArgumentException("block " + index + ": the residual merge needs dense routing");
        this.dense = new DenseMerge(backend, numExperts + 1, merge);
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

    /**
     * Domain opt-out: routes only to the backbone and the experts with {@code keptExperts[j]} true; the gate is
     * renormalised over those branches and, for top-k, k shrinks to the kept branches when it exceeds them. Null
     * (or all true) restores every expert, with today's forward bit for bit.
     */
    public void keepExperts(boolean[] keptExperts) {
        if (keptExperts == null) {
            router.keepBranches(null);
            return;
        }
        if (keptExperts.length != numExperts)
            throw new IllegalArgumentException("block " + index + ": expert mask has " + keptExperts.length
                    + " entries but the block has " + numExperts + " experts");
        boolean[] branches = new boolean[numExperts + 1];
        branches[0] = true; // the backbone always stays
        System.arraycopy(keptExperts, 0, branches, 1, numExperts);
        router.keepBranches(branches);
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
        Tensor probs = router.forward(x); // [B·T, N+1]
        if (!routing.dense()) return sparseForward(probs);
        if (gates != null) gates.observe(index, backend, probs, null, 0, seq);
        return denseForward(probs);
    }

    /** Dense token-level routing only: every other routing makes a token's output depend on more than its past. */
    @Override
    public boolean supportsCache() {
        return routing.dense() && routing.level() == Routing.Level.TOKEN;
    }

    /**
     * Generation: the gate on the t new positions, the backbone slice and the N experts each on them with their own
     * key/value caches, merged as in {@link #forward}. Dense token-level routing only ({@link #supportsCache()}).
     */
    @Override
    public Tensor forwardCached(Tensor x, KvCache cache) {
        if (!supportsCache())
            throw new UnsupportedOperationException("MoDE block " + index + ": routing " + routing
                    + " has no key/value cache (only dense token-level routing does)");
        int d = cfg.hiddenSize();
        if (x.rank() != 3 || x.dim(2) != d)
            throw new IllegalArgumentException(
                    "MoDE block " + index + ": input must be f32[B, T, " + d + "] but is " + x.describe());
        this.x = null; // no backward after a cached forward
        batch = x.dim(0);
        seq = x.dim(1);
        Tensor probs = router.forward(x); // [B·t, N+1]
        if (gates != null) gates.observe(index, backend, probs, null, 0, seq);
        Tensor h = x;
        for (DecoderLayer l : backbone) h = l.forwardCached(h, cache);
        return merge(probs, x, h, experts.forwardCached(x, cache));
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("MoDE block " + index + ": backward before forward");
        int m = batch * seq, d = cfg.hiddenSize();
        if (dy.numel() != (long) m * d)
            throw new IllegalArgumentException("MoDE block " + index + ": output gradient " + dy.describe()
                    + " does not match [" + batch + ", " + seq + ", " + d + "]");
        return routing.dense() ? denseBackward(dy) : sparseBackward(dy);
    }

    // ================================================================= dense routing

    /** y [B,T,D] = the {@link DenseMerge} of backbone(x) and expert_j(x) under probs [B·T, N+1]. */
    private Tensor denseForward(Tensor probs) {
        Tensor backboneOut = runBackbone(x);
        return merge(probs, x, backboneOut, experts.forward(x));
    }

    /**
     * y [B,T,D] = the {@link DenseMerge} of the block input in [B,T,D], the backbone's [B,T,D] and the experts' [N,
     * B·T, D] outputs under probs [B·T, N+1].
     */
    private Tensor merge(Tensor probs, Tensor in, Tensor backboneOut, Tensor expertsOut) {
        int m = batch * seq, d = cfg.hiddenSize();
        Tensor branches = dense.branches(m, d);
        backend.copy(backboneOut, backend.slice(branches, 0, 1));
        backend.copy(expertsOut, backend.slice(branches, 1, numExperts));
        Tensor y = own.get("y", batch, seq, d);
        dense.forward(probs, backend.view(in, m, d), backend.view(y, m, d));
        return y;
    }

    private Tensor denseBackward(Tensor dy) {
        int m = batch * seq, d = cfg.hiddenSize();
        Tensor dBranches = dense.backward(backend.view(dy, m, d)); // [N+1, B·T, D]
        Tensor dx = inputGradient ? own.get("dx", batch, seq, d) : null;
        Tensor dxB = inputGradient || anyTrainable(backbone)
                ? backboneBackward(backend.view(backend.slice(dBranches, 0, 1), batch, seq, d))
                : null;
        Tensor dxE = experts.backward(backend.slice(dBranches, 1, numExperts), inputGradient);
        Tensor dxG = router.backward(dense.probabilityGradient(), inputGradient);
        if (dx == null) return null;
        Tensor dx2 = backend.view(dx, m, d);
        backend.copy(dxB, dx);
        backend.add(dx2, backend.view(dxE, m, d), dx2);
        backend.add(dx2, dxG, dx2);
        dense.addInputGradient(dx2);
        return dx;
    }

    private Tensor runBackbone(Tensor h) {
        for (DecoderLayer l : backbone) h = l.forward(h);
        return h;
    }

    private Tensor backboneBackward(Tensor g) {
        for (int i = backbone.size() - 1; i >= 0; i--) g = backbone.get(i).backward(g);
        return g;
    }

    private static boolean anyTrainable(List<? extends Layer> layers) {
        for (Layer l : layers) for (Parameter p : l.parameters()) if (p.trainable()) return true;
        return false;
    }

    // ================================================================= sparse routing

    private Tensor sparseForward(Tensor probsTok) {
        int m = batch * seq, d = cfg.hiddenSize(), e = numExperts + 1;
        closePlan();
        plan = new TopKPlan(backend, router.routingRows(probsTok), router.effective(routing), batch, seq, own, "topk");
        if (gates != null) gates.observe(index, backend, probsTok, plan, 0, seq);
        routed = new TopKPlan.Branch[e];
        packed = new TopKPlan.Packed[e];
        gathered = new boolean[e];
        Tensor y = own.get("y", batch, seq, d);
        Tensor y2 = backend.view(y, m, d);
        backend.fill(y2, 0f);
        for (int br = 0; br < e; br++) {
            if (!router.kept(br)) continue; // an opted-out branch has weight 0 and never runs
            TopKPlan.Selection s = plan.select(br);
            if (s.size() == 0) continue;
            TopKPlan.Packed p = packed[br] = plan.pack(s.tokens(), s.perSequence());
            TopKPlan.Branch r = routed[br] = plan.branch(s, "sparse." + br);
            Tensor ye = br == 0 ? runBackbone(packedInput(p, br)) : expertForward(br - 1, p);
            p.selectOutputs(backend, ye, backend.view(r.outputs(own, d), r.selected(), d));
            r.mergeForward(backend, own, scratch, plan.weights(), y2);
        }
        return y;
    }

    /** The block input packed for branch br, {@code [rows, len, D]} (a copy; the fallback of the experts too). */
    private Tensor packedInput(TopKPlan.Packed p, int br) {
        int m = batch * seq, d = cfg.hiddenSize();
        return p.gatherInput(backend, backend.view(x, m, d), own.get("sparse.x." + br, p.rows(), p.len(), d));
    }

    /**
     * Expert j on its packed batch: its first layer reads the block input through the packed token list (the grouped
     * GEMM's fused gather, no permuted copy) where the backend's grouped ops read token lists in place for the
     * activations' dtype; else (cpu, float32 activations) on the packed copy.
     */
    private Tensor expertForward(int j, TopKPlan.Packed p) {
        ExpertStack ex = singleExpert(j);
        if (!backend.fusedGroupedGather(x.dtype()) || !ex.readsRows()) return ex.forward(packedInput(p, j + 1));
        gathered[j + 1] = true;
        return ex.forwardGathered(backend.view(x, batch * seq, cfg.hiddenSize()), p.gather(), p.rows(), p.len());
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
        int m = batch * seq, d = cfg.hiddenSize(), e = numExperts + 1;
        Tensor dy2 = backend.view(dy, m, d);
        Tensor dx = own.get("dx", batch, seq, d);
        Tensor dx2 = backend.view(dx, m, d);
        backend.fill(dx2, 0f);
        Tensor dw = own.get("sparse.dw", plan.routingRows() * plan.k(), 1);
        backend.fill(dw, 0f);
        for (int br = 0; br < e; br++) {
            TopKPlan.Branch r = routed[br];
            if (r == null) continue;
            Tensor dysel = r.mergeBackward(backend, own, scratch, dy2, dw);
            boolean needBranch = inputGradient || br > 0 || anyTrainable(backbone);
            if (!needBranch) continue;
            TopKPlan.Packed p = packed[br];
            Tensor dye3 = p.scatterGradient(
                    backend,
                    backend.view(dysel, r.selected(), d),
                    scratch.get("block.sparse.dye", p.rows() * p.len(), d));
            Tensor dxe = br == 0
                    ? backboneBackward(dye3)
                    : singleExpert(br - 1).backward(backend.view(dye3, 1, p.rows() * p.len(), d), true);
            if (!inputGradient) continue;
            if (gathered[br]) {
                backend.add(dx2, dxe, dx2); // the expert's gradient of the block input [B·T, D]
                continue;
            }
            Tensor dxsel = scratch.get("block.sparse.dxsel", r.selected(), d);
            p.selectOutputs(backend, dxe, dxsel);
            r.addInputGradient(backend, dxsel, dx2);
        }
        Tensor dProbs = own.get("sparse.dprobs", plan.routingRows(), e);
        backend.copyFromHost(plan.probabilityGradient(backend.toHostFloats(dw)), dProbs);
        router.backwardRows(dProbs, dx2, inputGradient);
        return inputGradient ? dx : null;
    }

    private void closePlan() {
        if (plan != null) plan.close();
        plan = null;
        routed = null;
        packed = null;
        gathered = null;
    }

    // ================================================================= router statistics

    /**
     * Counts what this block's gate does into {@code g} while it is collecting ({@link GateStatistics#open}), from the
     * probabilities and top-k plan of each forward pass; null stops.
     */
    public void watchGates(GateStatistics g) {
        gates = g;
    }

    @Override
    public void releaseBuffers() {
        own.release();
        closePlan();
        for (DecoderLayer l : backbone) l.releaseBuffers();
        experts.releaseBuffers();
        if (singleExperts != null) for (ExpertStack s : singleExperts) if (s != null) s.releaseBuffers();
        router.releaseBuffers();
        dense.releaseBuffers();
        x = null;
    }
}
