package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.mode.ExpertStack;
import ai.mode.model.mode.Gate;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.mode.StackedLayerWeights;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Embedding;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.LmHead;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.RMSNorm;
import ai.mode.model.train.AdamW;
import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.Communicator.Transfer;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One rank's part of a MoDE model placed on several devices, and the SPMD program every rank runs for a micro-batch:
 * activations travel between device groups at block boundaries, the merge group combines the backbone and expert
 * outputs, and backward mirrors it. Every rank walks the same sequence of blocks and phases and takes part in the
 * transfers that concern its group, so point-to-point messages pair up in order.
 *
 * <p>The parts of a MoDE model that one world rank holds under a {@link Placement}, with their own copies of the
 * parameters on this rank's backend, and the rank's side of forward, backward, gradient reduction and the
 * optimizer step.
 *
 * <p>Dense routing, per block i with producer group P (block i-1's merge group), merge group M and expert
 * groups G: P sends the block input to M and to every G (row ranges re-split when group sizes differ); each G
 * runs its experts as one batched stack and sends their outputs to M, which meanwhile runs the gate and the
 * backbone slice, then merges. Backward: M computes the branch and gate gradients and sends each G its experts'
 * output gradients; G runs backward and returns its input-gradient sum; M adds, in a fixed order, backbone,
 * expert groups and gate, and passes the result to P.
 *
 * <p>Top-k routing: the experts see only their tokens: M dispatches each routed token to the replica of the
 * expert's group that owns its sequence with all-to-all (counts, then rows), the experts run on per-sequence
 * packed batches exactly as in {@link ai.mode.model.mode.ModeBlock}, and the outputs come back the same way.
 *
 * <p>Gradients of trainable parameters are all-reduced over their group (data parallelism) as soon as a part's
 * backward is done, overlapping the rest of the backward pass; {@link #awaitGradients()} completes them.
 */
final class RankShard implements AutoCloseable {
    private final Placement pl;
    private final int rank;
    private final int myGroup;
    private final int replica;
    private final Backend be;
    private final LlamaConfig cfg;
    private final ModeConfig mode;
    private final Routing routing;
    private final Communicator world;
    private final Communicator group;
    private final BufferPool scratch;
    private final BufferPool own;
    private final List<Parameter> params = new ArrayList<>();
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    private final List<StackedLayerWeights> storage = new ArrayList<>();
    private final List<Gate> gates = new ArrayList<>();
    private final Embedding stem;
    private final RMSNorm finalNorm;
    private final LmHead head;
    private final Part[] blocks;
    private final int lowest;
    private final boolean[] backboneTrainable, gateTrainable, expertsTrainable;
    private final AdamW optimizer;
    private final List<CommHandle> pendingGradients = new ArrayList<>();
    private final Set<Parameter> reducedThisPass =
            java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    private Tensor idsT, targetsT;
    private int batch, seq;

    /** One block's parts on this rank and the state of the last forward. */
    private final class Part {
        final int index;
        final boolean merge;
        final List<DecoderLayer> backbone = new ArrayList<>();
        Gate gate;
        final int[] experts;
        ExpertStack stack;
        ExpertStack[] singles;
        List<StackedLayerWeights> weights;
        Tensor x, probs, expertOut;
        Sparse sparse;

        Part(int index, int[] experts) {
            this.index = index;
            this.merge = pl.mergeGroup(index) == myGroup;
            this.experts = experts;
        }

        int localPosition(int expert) {
            for (int e = 0; e < experts.length; e++) if (experts[e] == expert) return e;
            return -1;
        }

        ExpertStack single(int e) {
            if (singles == null) singles = new ExpertStack[experts.length];
            if (singles[e] == null) {
                List<StackedLayerWeights> ws = new ArrayList<>();
                for (StackedLayerWeights w : weights) ws.add(w.range(e, 1));
                singles[e] = new ExpertStack(be, cfg, ws, scratch);
            }
            return singles[e];
        }

        List<Parameter> backboneParameters() {
            List<Parameter> out = new ArrayList<>();
            for (DecoderLayer l : backbone) out.addAll(l.parameters());
            return out;
        }

        List<Parameter> expertParameters() {
            return stack == null ? List.of() : stack.parameters();
        }
    }

    RankShard(
            Placement pl,
            int rank,
            Backend be,
            Communicator world,
            Communicator group,
            ModelSnapshot snap,
            AdamW.Config adamw) {
        this.pl = pl;
        this.rank = rank;
        this.myGroup = pl.groupOf(rank);
        this.replica = pl.replicaOf(rank);
        this.be = be;
        this.cfg = snap.config();
        this.mode = snap.mode();
        this.routing = mode.routing();
        this.world = world;
        this.group = group;
        this.scratch = new BufferPool(be);
        this.own = new BufferPool(be);
        int nb = mode.numBlocks(), ne = mode.numExperts();
        if (pl.numBlocks() != nb || pl.numExperts() != ne) {
            throw new IllegalArgumentException("the placement is for " + pl.numBlocks() + " blocks x " + pl.numExperts()
                    + " experts but the model has " + nb + " x " + ne);
        }
        Set<String> tr = snap.trainable();
        // embedding and head
        boolean stemHere = pl.stemGroup() == myGroup, headHere = pl.headGroup() == myGroup;
        int v = cfg.vocabSize(), d = cfg.hiddenSize();
        Parameter embed =
                stemHere || (headHere && cfg.tieEmbeddings()) ? param(snap, TensorNames.EMBED_TOKENS, v, d) : null;
        if (cfg.tieEmbeddings() && pl.stemGroup() != pl.headGroup() && tr.contains(TensorNames.EMBED_TOKENS)) {
            throw new IllegalArgumentException(
                    "tied embeddings can train only when the embedding and the LM head share a device group; "
                            + "put block 0's and the last block's backbone on one group, or freeze the embedding");
        }
        this.stem = stemHere ? new Embedding(be, embed) : null;
        this.finalNorm =
                headHere ? new RMSNorm(be, param(snap, TensorNames.FINAL_NORM, d), cfg.rmsNormEps(), scratch) : null;
        this.head =
                headHere ? new LmHead(be, cfg.tieEmbeddings() ? embed : param(snap, TensorNames.LM_HEAD, v, d)) : null;
        // blocks
        int slice = mode.sliceLayers(cfg);
        this.blocks = new Part[nb];
        this.backboneTrainable = new boolean[nb];
        this.gateTrainable = new boolean[nb];
        this.expertsTrainable = new boolean[nb];
        for (int i = 0; i < nb; i++) {
            Part p = new Part(i, pl.expertsOn(i, myGroup));
            blocks[i] = p;
            for (int l = i * slice; l < (i + 1) * slice; l++) {
                for (String n : DecoderLayer.parameterNames(LlamaModel.layerPrefix(l)))
                    backboneTrainable[i] |= tr.contains(n);
            }
            gateTrainable[i] = tr.contains(TensorNames.gateWeight(i)) || tr.contains(TensorNames.gateBias(i));
            for (int j = 0; j < ne; j++) {
                for (int l = 0; l < mode.layersPerExpert(); l++) {
                    for (LayerTensor t : LayerTensor.values())
                        expertsTrainable[i] |= tr.contains(TensorNames.expertLayer(i, j, l, t));
                }
            }
            if (p.merge) {
                for (int l = i * slice; l < (i + 1) * slice; l++) {
                    String prefix = LlamaModel.layerPrefix(l);
                    List<Parameter> lp = new ArrayList<>();
                    List<String> names = DecoderLayer.parameterNames(prefix);
                    for (int t = 0; t < names.size(); t++)
                        lp.add(param(snap, names.get(t), LayerTensor.values()[t].shape(cfg)));
                    p.backbone.add(new DecoderLayer(be, cfg, prefix, scratch, lp));
                }
                p.gate = new Gate(be, i, mode.numBranches(), d, scratch);
                gates.add(p.gate);
                adopt(snap, p.gate.weight());
                adopt(snap, p.gate.bias());
            }
            if (p.experts.length > 0) {
                p.weights = new ArrayList<>();
                for (int l = 0; l < mode.layersPerExpert(); l++) {
                    List<String> prefixes = new ArrayList<>();
                    for (int j : p.experts) prefixes.add(ModeModel.expertLayerPrefix(i, j, l));
                    StackedLayerWeights w = StackedLayerWeights.allocate(be, cfg, prefixes);
                    storage.add(w);
                    p.weights.add(w);
                }
                for (int e = 0; e < p.experts.length; e++) {
                    for (StackedLayerWeights w : p.weights) for (Parameter q : w.layerParameters(e)) adopt(snap, q);
                }
                p.stack = new ExpertStack(be, cfg, p.weights, scratch);
            }
        }
        this.lowest = lowestTrainable(tr);
        AdamW.Config noClip = new AdamW.Config(adamw.beta1(), adamw.beta2(), adamw.eps(), adamw.weightDecay(), 0);
        this.optimizer = new AdamW(be, noClip);
    }

    /** A new parameter on this backend with the snapshot's values (trainable as in the snapshot). */
    private Parameter param(ModelSnapshot snap, String name, int... shape) {
        Parameter existing = byName.get(name);
        if (existing != null) return existing;
        Parameter p = new Parameter(name, be.fromHost(snap.values(name, shape), shape), shape.length >= 2);
        if (snap.trainable().contains(name)) p.setTrainable(true);
        register(p);
        return p;
    }

    /** Fills a parameter created by a model class with the snapshot's values. */
    private void adopt(ModelSnapshot snap, Parameter p) {
        be.copyFromHost(snap.values(p.name(), p.shape()), p.value());
        if (snap.trainable().contains(p.name())) p.setTrainable(true);
        register(p);
    }

    private void register(Parameter p) {
        if (byName.put(p.name(), p) != null)
            throw new IllegalStateException("parameter " + p.name() + " registered twice on rank " + rank);
        params.add(p);
    }

    /** As {@code CausalLm}: -1 embedding trains; else the lowest block with a trainable part; B final norm; B+1 head; B+2 nothing. */
    private int lowestTrainable(Set<String> tr) {
        int nb = mode.numBlocks();
        if (tr.contains(TensorNames.EMBED_TOKENS)) return -1;
        for (int i = 0; i < nb; i++) if (backboneTrainable[i] || gateTrainable[i] || expertsTrainable[i]) return i;
        if (tr.contains(TensorNames.FINAL_NORM)) return nb;
        if (tr.contains(TensorNames.LM_HEAD)) return nb + 1;
        return nb + 2;
    }

    int rank() {
        return rank;
    }

    Backend backend() {
        return be;
    }

    /** Every parameter held here, in construction order. */
    List<Parameter> parameters() {
        return params;
    }

    /** Whether this rank is replica 0 of its group (the copy that counts for norms and exports). */
    boolean primary() {
        return replica == 0;
    }

    List<Parameter> trainableParameters() {
        return params.stream().filter(Parameter::trainable).toList();
    }

    void zeroGrad() {
        for (Parameter p : params) p.zeroGrad();
    }

    // ================================================================== row ranges and transfers

    private int rowStart(int g, int r) {
        return Placement.rowStart(batch, pl.groupSize(g), r);
    }

    private int rowCount(int g, int r) {
        return Placement.rowCount(batch, pl.groupSize(g), r);
    }

    /** Rows of this rank's share when it works for group g's sharding (its own group). */
    private int myRows() {
        return rowCount(myGroup, replica);
    }

    /**
     * Moves a per-row activation ({@code rowElems} elements per batch row) from group {@code src}'s replicas to
     * group {@code dst}'s. {@code from}: this rank's rows when it is in src, else null; {@code to}: this rank's
     * destination when in dst, else null. Same group: a local copy. Returns this rank's handle.
     */
    private CommHandle reshard(Tensor from, int src, Tensor to, int dst, int rowElems) {
        if (src == dst) {
            if (myGroup == src && from != to) be.copy(from, to);
            return CommHandle.done();
        }
        List<Transfer> tr = new ArrayList<>();
        if (myGroup == src) {
            int a = rowStart(src, replica), n = rowCount(src, replica);
            Tensor f = be.view(from, n, rowElems);
            for (int q = 0; q < pl.groupSize(dst); q++) {
                int lo = Math.max(a, rowStart(dst, q)), hi = Math.min(a + n, rowStart(dst, q) + rowCount(dst, q));
                if (hi > lo) tr.add(Transfer.send(be.slice(f, lo - a, hi - lo), pl.rankOf(dst, q)));
            }
        }
        if (myGroup == dst) {
            int c = rowStart(dst, replica), n = rowCount(dst, replica);
            Tensor t = be.view(to, n, rowElems);
            for (int p = 0; p < pl.groupSize(src); p++) {
                int lo = Math.max(c, rowStart(src, p)), hi = Math.min(c + n, rowStart(src, p) + rowCount(src, p));
                if (hi > lo) tr.add(Transfer.recv(be.slice(t, lo - c, hi - lo), pl.rankOf(src, p)));
            }
        }
        return tr.isEmpty() ? CommHandle.done() : world.exchange(tr);
    }

    /** Expert j's slice of a stacked [E, m, D] tensor viewed as [rows, T·D]. */
    private Tensor branchRows(Tensor stacked, int e) {
        return be.view(be.slice(stacked, e, 1), myRows(), seq * cfg.hiddenSize());
    }

    // ================================================================== forward and backward

    /**
     * One micro-batch on this rank. {@code ids} and {@code targets} are the whole batch [batch·seq]; each rank
     * takes its rows. Returns this rank's share of the loss statistics (non-zero on the head group only).
     *
     * @param backward whether to run the backward pass (false: loss only)
     * @param reduce   whether to all-reduce trainable gradients over each group after this micro-batch
     */
    LossStats forwardBackward(
            int[] ids, int[] targets, int batch, int seq, float gradScale, boolean backward, boolean reduce) {
        this.batch = batch;
        this.seq = seq;
        for (int g = 0; g < pl.groups().size(); g++) {
            if (batch < pl.groupSize(g)) {
                throw new IllegalArgumentException("batch of " + batch + " sequences is smaller than the "
                        + pl.groupSize(g) + " devices of group '"
                        + pl.groups().get(g).name() + "', which split it; use --batch >= " + pl.groupSize(g));
            }
        }
        int nb = mode.numBlocks(), d = cfg.hiddenSize();
        int rows = myRows();
        Tensor x = null;
        if (stem != null) {
            closeInputs();
            idsT = be.fromHost(
                    Arrays.copyOfRange(
                            ids, rowStart(myGroup, replica) * seq, (rowStart(myGroup, replica) + rows) * seq),
                    rows,
                    seq);
            x = stem.forward(idsT);
        }
        for (int i = 0; i < nb; i++) x = forwardBlock(blocks[i], x);
        LossStats stats = LossStats.ZERO;
        boolean grads = backward && lowest <= nb + 1;
        reducedThisPass.clear();
        Tensor dy = null;
        if (head != null) {
            if (targetsT != null) targetsT.close();
            targetsT = be.fromHost(
                    Arrays.copyOfRange(
                            targets, rowStart(myGroup, replica) * seq, (rowStart(myGroup, replica) + rows) * seq),
                    rows,
                    seq);
            Tensor h = finalNorm.forward(x);
            stats = head.loss(h, targetsT, gradScale, grads, grads && lowest <= nb);
            if (grads && lowest <= nb) dy = finalNorm.backward(head.inputGradient());
            if (grads && reduce) {
                reduceGradients(finalNorm.parameters());
                if (!cfg.tieEmbeddings())
                    reduceGradients(head.parameters()); // a tied table waits for the embedding's part
            }
        }
        if (grads && lowest < nb) {
            for (int i = nb - 1; i >= Math.max(0, lowest); i--) dy = backwardBlock(blocks[i], dy, lowest < i, reduce);
            if (lowest < 0 && stem != null) stem.backward(dy);
        }
        if (grads && reduce) reduceGradients(params); // the rest (embedding, tied head), in a fixed order
        return stats;
    }

    private void closeInputs() {
        if (idsT != null) idsT.close();
        idsT = null;
    }

    /** This rank's part of block p's forward; {@code x} is its rows of the block input when it is in the producer group. */
    private Tensor forwardBlock(Part p, Tensor x) {
        int i = p.index, d = cfg.hiddenSize(), m = myRows() * seq;
        int prod = pl.producerGroup(i), merge = pl.mergeGroup(i);
        int rowElems = seq * d;
        // 1. the block input to every group that reads it (experts read it only under dense routing)
        List<Integer> consumers = new ArrayList<>(List.of(merge));
        if (routing.dense()) for (int g : pl.expertGroups(i)) if (!consumers.contains(g)) consumers.add(g);
        Tensor in = myGroup == prod ? x : null;
        List<CommHandle> moves = new ArrayList<>();
        for (int g : consumers) {
            if (g == prod) continue;
            Tensor dst = myGroup == g ? own.get("x." + i, myRows(), seq, d) : null;
            moves.add(reshard(myGroup == prod ? x : null, prod, dst, g, rowElems));
            if (dst != null) in = dst;
        }
        CommHandle.all(moves).await();
        p.x = consumers.contains(myGroup) ? in : null;
        if (!routing.dense()) return sparseForward(p);
        // 2. experts (batched per group) and their outputs to the merge group
        List<CommHandle> sends = new ArrayList<>();
        if (p.experts.length > 0) {
            p.expertOut = p.stack.forward(p.x); // [E_local, m, D]
            if (!p.merge)
                for (int e = 0; e < p.experts.length; e++)
                    sends.add(reshard(branchRows(p.expertOut, e), myGroup, null, merge, rowElems));
        }
        Tensor y = null;
        if (p.merge) {
            int ne = mode.numExperts();
            Tensor branches = own.get("branches." + i, ne + 1, m, d);
            List<CommHandle> recvs = new ArrayList<>();
            for (int g : pl.expertGroups(i)) {
                if (g == merge) continue;
                for (int j : pl.expertsOn(i, g))
                    recvs.add(reshard(null, g, branchRows(branches, j + 1), merge, rowElems));
            }
            p.probs = forwardGate(p, p.x); // [m, N+1]
            Tensor h = p.x;
            for (DecoderLayer l : p.backbone) h = l.forward(h);
            be.copy(h, be.slice(branches, 0, 1));
            for (int e = 0; e < p.experts.length; e++)
                be.copy(be.slice(p.expertOut, e, 1), be.slice(branches, p.experts[e] + 1, 1));
            CommHandle.all(recvs).await();
            y = own.get("y." + i, myRows(), seq, d);
            be.weightedMergeForward(branches, p.probs, be.view(y, m, d));
        }
        CommHandle.all(sends).await();
        return y;
    }

    /**
     * This rank's part of block p's backward. {@code dy}: the output gradient on merge-group ranks. Returns the
     * input gradient on producer-group ranks when {@code needInput}, else null.
     */
    private Tensor backwardBlock(Part p, Tensor dy, boolean needInput, boolean reduce) {
        int i = p.index;
        Tensor dx =
                routing.dense() ? denseBackward(p, dy, needInput, reduce) : sparseBackward(p, dy, needInput, reduce);
        if (!needInput) return null;
        int prod = pl.producerGroup(i), merge = pl.mergeGroup(i);
        if (prod == merge) return dx;
        Tensor to = myGroup == prod ? own.get("dy." + (i - 1), myRows(), seq, cfg.hiddenSize()) : null;
        reshard(p.merge ? dx : null, merge, to, prod, seq * cfg.hiddenSize()).await();
        return to;
    }

    private Tensor denseBackward(Part p, Tensor dy, boolean needInput, boolean reduce) {
        int i = p.index, d = cfg.hiddenSize(), m = myRows() * seq, ne = mode.numExperts();
        int merge = pl.mergeGroup(i), rowElems = seq * d;
        boolean expertsBackward = needInput || expertsTrainable[i];
        Tensor dBranches = null, dProbs = null;
        List<CommHandle> sends = new ArrayList<>();
        if (p.merge) {
            dBranches = own.get("dbranches." + i, ne + 1, m, d);
            dProbs = own.get("dprobs." + i, m, ne + 1);
            be.weightedMergeBackward(
                    be.view(dy, m, d), own.get("branches." + i, ne + 1, m, d), p.probs, dBranches, dProbs);
            if (expertsBackward) {
                for (int g : pl.expertGroups(i)) {
                    if (g == merge) continue;
                    for (int j : pl.expertsOn(i, g))
                        sends.add(reshard(branchRows(dBranches, j + 1), merge, null, g, rowElems));
                }
            }
        }
        Tensor dxExperts = null;
        if (p.experts.length > 0 && expertsBackward) {
            Tensor dOut = own.get("dexperts." + i, p.experts.length, m, d);
            if (p.merge) {
                for (int e = 0; e < p.experts.length; e++)
                    be.copy(be.slice(dBranches, p.experts[e] + 1, 1), be.slice(dOut, e, 1));
            } else {
                List<CommHandle> recvs = new ArrayList<>();
                for (int e = 0; e < p.experts.length; e++)
                    recvs.add(reshard(null, merge, branchRows(dOut, e), myGroup, rowElems));
                CommHandle.all(recvs).await();
            }
            dxExperts = p.stack.backward(dOut, needInput); // [rows, T, D] or null
            if (reduce) reduceGradients(p.expertParameters());
            if (needInput && !p.merge) sends.add(reshard(dxExperts, myGroup, null, merge, rowElems));
        }
        Tensor dx = null;
        if (p.merge) {
            Tensor dxB = null;
            if (needInput || backboneTrainable[i]) {
                Tensor g = be.view(be.slice(dBranches, 0, 1), myRows(), seq, d);
                for (int l = p.backbone.size() - 1; l >= 0; l--)
                    g = p.backbone.get(l).backward(g);
                dxB = g;
                if (reduce) reduceGradients(p.backboneParameters());
            }
            Tensor dxG = null;
            if (needInput || gateTrainable[i]) {
                dxG = backwardGate(p, dProbs, needInput);
                if (reduce) reduceGradients(p.gate.parameters());
            }
            if (needInput) {
                dx = own.get("dx." + i, myRows(), seq, d);
                Tensor dx2 = be.view(dx, m, d);
                be.copy(dxB, dx);
                for (int g : pl.expertGroups(i)) {
                    if (g == merge) {
                        be.add(dx2, be.view(dxExperts, m, d), dx2);
                    } else {
                        Tensor part = own.get("dxe." + i + "." + g, myRows(), seq, d);
                        reshard(null, g, part, merge, rowElems).await();
                        be.add(dx2, be.view(part, m, d), dx2);
                    }
                }
                be.add(dx2, dxG, dx2);
            }
        }
        CommHandle.all(sends).await();
        return dx;
    }

    // ================================================================== gate (token or sequence level)

    /** Gate probabilities per token [m, N+1]. */
    private Tensor forwardGate(Part p, Tensor x) {
        int b = x.dim(0), t = x.dim(1), m = b * t, d = cfg.hiddenSize();
        if (routing.level() == Routing.Level.TOKEN) return p.gate.forward(be.view(x, m, d));
        Tensor mean = own.get("seq_mean." + p.index, b, d);
        be.fill(mean, 0f);
        be.scatterAddRows(be.view(x, m, d), sequenceIndex(b, t), mean);
        be.scale(mean, 1f / t);
        Tensor probsSeq = p.gate.forward(mean);
        Tensor probs = own.get("probs_tok." + p.index, m, mode.numBranches());
        be.gatherRows(probsSeq, sequenceIndex(b, t), probs);
        return probs;
    }

    /** Backward of {@link #forwardGate} from the per-token probability gradient: dx [m, D], or null without input gradient. */
    private Tensor backwardGate(Part p, Tensor dProbsTokens, boolean needInput) {
        int b = myRows(), t = seq, m = b * t, d = cfg.hiddenSize();
        if (routing.level() == Routing.Level.TOKEN) {
            Tensor dxr = p.gate.backward(dProbsTokens);
            return needInput ? dxr : null;
        }
        Tensor dSeq = own.get("dprobs_seq." + p.index, b, mode.numBranches());
        be.fill(dSeq, 0f);
        be.scatterAddRows(dProbsTokens, sequenceIndex(b, t), dSeq);
        Tensor dMean = p.gate.backward(dSeq);
        if (!needInput) return null;
        Tensor dx = own.get("dx_gate." + p.index, m, d);
        be.gatherRows(dMean, sequenceIndex(b, t), dx);
        be.scale(dx, 1f / t);
        return dx;
    }

    /** I32 [b·t]: token n → its sequence n / t. */
    private Tensor sequenceIndex(int b, int t) {
        Tensor idx = own.get("seq_index", DType.I32, b * t);
        if (seqIndexShape[0] != b || seqIndexShape[1] != t) {
            int[] v = new int[b * t];
            for (int i = 0; i < v.length; i++) v[i] = i / t;
            try (Tensor host = be.fromHost(v, b * t)) {
                be.copy(host, idx);
            }
            seqIndexShape[0] = b;
            seqIndexShape[1] = t;
        }
        return idx;
    }

    private final int[] seqIndexShape = {-1, -1};

    // ================================================================== sparse (top-k) routing

    /** The routing of one block's last forward on a merge rank, and the dispatch layout on every rank. */
    private static final class Sparse {
        int[] routedIndex; // [R, k] chosen branches per routing row (merge ranks)
        float[] routedProbs; // [R, E] gate probabilities per routing row (merge ranks)
        final Map<Integer, Local> local = new LinkedHashMap<>(); // branch -> locally run plan (merge ranks)
        final Map<Integer, Remote> remote = new LinkedHashMap<>(); // expert -> dispatched selection (merge ranks)
        int[] sendCounts, recvCounts; // all-to-all row counts per world rank
        Tensor sendIndex; // I32 [rows sent]: token of every dispatched row (merge ranks)
        Tensor returned; // [rows sent, D]: expert outputs as they came back (merge ranks)
        final Map<Integer, Hosted> hosted =
                new LinkedHashMap<>(); // local expert position -> packed batch (expert ranks)
        int received; // rows received for hosted experts (expert ranks)
        final List<Tensor> temps = new ArrayList<>();
    }

    /** A branch run on the merge rank itself: rows × len packed batch of this rank's tokens. */
    private record Local(
            int rows, int len, int selected, Tensor gather, Tensor slot, Tensor token, Tensor weightIndex) {}

    /** An expert's tokens dispatched to other ranks: which tokens, their weights, and where they sit in the send buffer. */
    private record Remote(int selected, Tensor token, Tensor weightIndex, Tensor position) {}

    /** A hosted expert's packed batch on an expert rank: rows of the receive buffer gathered per sequence. */
    private record Hosted(int rows, int len, int selected, Tensor gather, Tensor slot, Tensor position) {}

    private Tensor intTensor(Sparse s, int[] v) {
        Tensor t = be.fromHost(v, v.length);
        s.temps.add(t);
        return t;
    }

    private void closeSparse(Part p) {
        if (p.sparse != null) for (Tensor t : p.sparse.temps) t.close();
        p.sparse = null;
    }

    /** Position of branch br among routing row r's top-k, or -1. */
    private static int slotOf(int[] idx, int r, int br, int k) {
        for (int j = 0; j < k; j++) if (idx[r * k + j] == br) return j;
        return -1;
    }

    private Tensor sparseForward(Part p) {
        closeSparse(p);
        Sparse s = new Sparse();
        p.sparse = s;
        int i = p.index, d = cfg.hiddenSize(), e = mode.numBranches(), k = routing.topK(), ne = mode.numExperts();
        int merge = pl.mergeGroup(i), n = world.size();
        boolean perSeq = routing.level() == Routing.Level.SEQUENCE;
        int rowsHere = myRows(), m = rowsHere * seq;
        s.sendCounts = new int[n];
        s.recvCounts = new int[n];
        int[] countSend = new int[n], countRecv = new int[n];
        // merge ranks: route, plan the local branches, lay out what each expert rank gets
        List<int[]> counts = new ArrayList<>(); // per destination rank: counts per (expert, sequence)
        Tensor y = null;
        if (p.merge) {
            p.probs = forwardGate(p, p.x);
            Tensor routedProbsDev = perSeq ? p.gate.probs() : p.probs;
            int r = routedProbsDev.dim(0);
            Tensor idx = own.get("topk_index." + i, DType.I32, r, k), w = own.get("topk_weight." + i, r, k);
            be.topK(routedProbsDev, k, idx, w);
            s.routedIndex = new int[r * k];
            be.toHost(idx, s.routedIndex);
            s.routedProbs = be.toHostFloats(routedProbsDev);
            int a = rowStart(merge, replica);
            // per expert: tokens routed to it in (sequence, position) order, with their weight indices
            int[][] tokens = new int[e][], widx = new int[e][];
            int[][] perSeqCount = new int[e][rowsHere];
            for (int br = 0; br < e; br++) {
                List<Integer> tok = new ArrayList<>(), wi = new ArrayList<>();
                for (int b = 0; b < rowsHere; b++) {
                    for (int t = 0; t < seq; t++) {
                        int routeRow = perSeq ? b : b * seq + t;
                        int kpos = slotOf(s.routedIndex, routeRow, br, k);
                        if (kpos < 0) continue;
                        tok.add(b * seq + t);
                        wi.add(routeRow * k + kpos);
                        perSeqCount[br][b]++;
                    }
                }
                tokens[br] = tok.stream().mapToInt(Integer::intValue).toArray();
                widx[br] = wi.stream().mapToInt(Integer::intValue).toArray();
            }
            // branches run here: the backbone and experts placed on the merge group
            for (int br = 0; br < e; br++) {
                if (br > 0 && p.localPosition(br - 1) < 0) continue;
                if (tokens[br].length == 0) continue;
                s.local.put(br, localPlan(s, tokens[br], widx[br], perSeqCount[br]));
            }
            // experts elsewhere: rows for each destination rank, expert-major then sequence order
            int[][] positions = new int[e][];
            int[][] firstOfSeq = new int[e][rowsHere + 1]; // tokens[br] index where sequence b starts
            for (int br = 1; br < e; br++) {
                positions[br] = new int[tokens[br].length];
                for (int b = 0; b < rowsHere; b++) firstOfSeq[br][b + 1] = firstOfSeq[br][b] + perSeqCount[br][b];
            }
            List<Integer> sendTokens = new ArrayList<>();
            for (int dst = 0; dst < n; dst++) {
                int g = pl.groupOf(dst);
                List<Integer> cnt = new ArrayList<>();
                if (g != merge && pl.expertsOn(i, g).length > 0) {
                    int q = pl.replicaOf(dst);
                    int lo = Math.max(a, rowStart(g, q)), hi = Math.min(a + rowsHere, rowStart(g, q) + rowCount(g, q));
                    for (int j : pl.expertsOn(i, g)) {
                        int br = j + 1;
                        for (int b = lo - a; b < hi - a; b++) {
                            cnt.add(perSeqCount[br][b]);
                            for (int u = firstOfSeq[br][b]; u < firstOfSeq[br][b + 1]; u++) {
                                positions[br][u] = sendTokens.size();
                                sendTokens.add(tokens[br][u]);
                            }
                            s.sendCounts[dst] += perSeqCount[br][b];
                        }
                    }
                }
                counts.add(cnt.stream().mapToInt(Integer::intValue).toArray());
                countSend[dst] = cnt.size();
            }
            for (int br = 1; br < e; br++) {
                int j = br - 1;
                if (pl.expertGroup(i, j) == merge || tokens[br].length == 0) continue;
                s.remote.put(
                        j,
                        new Remote(
                                tokens[br].length,
                                intTensor(s, tokens[br]),
                                intTensor(s, widx[br]),
                                intTensor(s, positions[br])));
            }
            s.sendIndex = sendTokens.isEmpty()
                    ? null
                    : intTensor(
                            s, sendTokens.stream().mapToInt(Integer::intValue).toArray());
            y = own.get("y." + i, rowsHere, seq, d);
        }
        // expert ranks: how many counts come from each merge replica
        if (myGroup != merge && p.experts.length > 0) {
            int c = rowStart(myGroup, replica);
            for (int q = 0; q < pl.groupSize(merge); q++) {
                int lo = Math.max(c, rowStart(merge, q)),
                        hi = Math.min(c + rowsHere, rowStart(merge, q) + rowCount(merge, q));
                countRecv[pl.rankOf(merge, q)] = Math.max(0, hi - lo) * p.experts.length;
            }
        }
        // all-to-all 1: counts per (expert, sequence)
        int[] flatCounts = counts.stream().flatMapToInt(Arrays::stream).toArray();
        int[] recvCountsFlat = new int[Arrays.stream(countRecv).sum()];
        try (Tensor cs = be.fromHost(
                        flatCounts.length == 0 ? new int[] {0} : flatCounts, Math.max(1, flatCounts.length));
                Tensor cr = be.allocate(DType.I32, Math.max(1, recvCountsFlat.length))) {
            world.allToAll(
                            flatCounts.length == 0 ? be.slice(cs, 0, 0) : cs,
                            countSend,
                            recvCountsFlat.length == 0 ? be.slice(cr, 0, 0) : cr,
                            countRecv)
                    .await();
            if (recvCountsFlat.length > 0) be.toHost(cr, recvCountsFlat);
        }
        // expert ranks: receive layout and packed batches
        if (myGroup != merge && p.experts.length > 0) {
            int c = rowStart(myGroup, replica);
            // per hosted expert and local sequence: list of received row positions
            List<List<List<Integer>>> rowsOf = new ArrayList<>();
            for (int e2 = 0; e2 < p.experts.length; e2++) {
                List<List<Integer>> perSeqRows = new ArrayList<>();
                for (int b = 0; b < rowsHere; b++) perSeqRows.add(new ArrayList<>());
                rowsOf.add(perSeqRows);
            }
            int pos = 0, ci = 0;
            for (int q = 0; q < pl.groupSize(merge); q++) {
                int src = pl.rankOf(merge, q);
                int lo = Math.max(c, rowStart(merge, q)),
                        hi = Math.min(c + rowsHere, rowStart(merge, q) + rowCount(merge, q));
                int rowsFromSrc = 0;
                for (int e2 = 0; e2 < p.experts.length; e2++) {
                    for (int b = lo; b < hi; b++) {
                        int cnt = recvCountsFlat[ci++];
                        for (int u = 0; u < cnt; u++) rowsOf.get(e2).get(b - c).add(pos++);
                        rowsFromSrc += cnt;
                    }
                }
                s.recvCounts[src] = rowsFromSrc;
            }
            s.received = pos;
            for (int e2 = 0; e2 < p.experts.length; e2++) {
                List<List<Integer>> perSeqRows = rowsOf.get(e2);
                int rows = 0, len = 0, selected = 0;
                for (List<Integer> l : perSeqRows)
                    if (!l.isEmpty()) {
                        rows++;
                        len = Math.max(len, l.size());
                        selected += l.size();
                    }
                if (selected == 0) continue;
                int[] gather = new int[rows * len], slot = new int[selected], position = new int[selected];
                int row = 0, u = 0;
                for (List<Integer> l : perSeqRows) {
                    if (l.isEmpty()) continue;
                    for (int t = 0; t < len; t++)
                        gather[row * len + t] = l.get(t < l.size() ? t : 0); // padding repeats the first token
                    for (int t = 0; t < l.size(); t++) {
                        slot[u] = row * len + t;
                        position[u] = l.get(t);
                        u++;
                    }
                    row++;
                }
                s.hosted.put(
                        e2,
                        new Hosted(
                                rows, len, selected, intTensor(s, gather), intTensor(s, slot), intTensor(s, position)));
            }
        }
        // all-to-all 2: the routed rows to the experts' ranks
        int sentRows = Arrays.stream(s.sendCounts).sum();
        Tensor sendBuf = own.get("sparse.send." + i, Math.max(1, sentRows), d);
        if (s.sendIndex != null) be.gatherRows(be.view(p.x, m, d), s.sendIndex, be.slice(sendBuf, 0, sentRows));
        Tensor recvBuf = own.get("sparse.recv." + i, Math.max(1, s.received), d);
        allToAllRows(sendBuf, s.sendCounts, recvBuf, s.recvCounts);
        // expert ranks: run each hosted expert on its packed batch, return its outputs in the received order
        Tensor outBuf = own.get("sparse.out." + i, Math.max(1, s.received), d);
        if (!s.hosted.isEmpty()) {
            be.fill(outBuf, 0f);
            for (Map.Entry<Integer, Hosted> en : s.hosted.entrySet()) {
                Hosted h = en.getValue();
                Tensor xe = own.get("sparse.hx." + i + "." + en.getKey(), h.rows(), h.len(), d);
                be.gatherRows(be.slice(recvBuf, 0, s.received), h.gather(), be.view(xe, h.rows() * h.len(), d));
                Tensor ye = p.single(en.getKey()).forward(xe); // [1, rows·len, D]
                Tensor sel = scratch.get("sparse.sel", h.selected(), d);
                be.gatherRows(be.view(ye, h.rows() * h.len(), d), h.slot(), sel);
                be.scatterAddRows(sel, h.position(), be.slice(outBuf, 0, s.received));
            }
        }
        // all-to-all 3: outputs back to the merge ranks
        s.returned = own.get("sparse.ret." + i, Math.max(1, sentRows), d);
        allToAllRows(outBuf, s.recvCounts, s.returned, s.sendCounts);
        if (!p.merge) return null;
        // merge: weighted outputs scatter-added in branch order
        Tensor y2 = be.view(y, m, d);
        be.fill(y2, 0f);
        Tensor wFlat = be.view(own.get("topk_weight." + i, s.routedIndex.length / k, k), s.routedIndex.length, 1);
        for (int br = 0; br < e; br++) {
            Tensor ysel, wsel;
            int selected;
            Local lp = s.local.get(br);
            Remote rp = br > 0 ? s.remote.get(br - 1) : null;
            if (lp != null) {
                selected = lp.selected();
                Tensor xe = own.get("sparse.lx." + i + "." + br, lp.rows(), lp.len(), d);
                be.gatherRows(be.view(p.x, m, d), lp.gather(), be.view(xe, lp.rows() * lp.len(), d));
                Tensor ye = br == 0
                        ? runBackbone(p, xe)
                        : p.single(p.localPosition(br - 1)).forward(xe);
                ysel = own.get("sparse.ysel." + i + "." + br, 1, selected, d);
                be.gatherRows(be.view(ye, lp.rows() * lp.len(), d), lp.slot(), be.view(ysel, selected, d));
                wsel = own.get("sparse.w." + i + "." + br, selected, 1);
                be.gatherRows(wFlat, lp.weightIndex(), wsel);
                Tensor contrib = scratch.get("sparse.contrib", selected, d);
                be.weightedMergeForward(ysel, wsel, contrib);
                be.scatterAddRows(contrib, lp.token(), y2);
            } else if (rp != null) {
                selected = rp.selected();
                ysel = own.get("sparse.ysel." + i + "." + br, 1, selected, d);
                be.gatherRows(be.slice(s.returned, 0, sentRows), rp.position(), be.view(ysel, selected, d));
                wsel = own.get("sparse.w." + i + "." + br, selected, 1);
                be.gatherRows(wFlat, rp.weightIndex(), wsel);
                Tensor contrib = scratch.get("sparse.contrib", selected, d);
                be.weightedMergeForward(ysel, wsel, contrib);
                be.scatterAddRows(contrib, rp.token(), y2);
            }
        }
        return y;
    }

    private Tensor runBackbone(Part p, Tensor x) {
        Tensor h = x;
        for (DecoderLayer l : p.backbone) h = l.forward(h);
        return h;
    }

    /** Plan of a branch run on this merge rank: per-sequence packed rows (padding repeats the first routed token). */
    private Local localPlan(Sparse s, int[] tokens, int[] widx, int[] perSeqCount) {
        int rows = 0, len = 0;
        for (int c : perSeqCount)
            if (c > 0) {
                rows++;
                len = Math.max(len, c);
            }
        int[] gather = new int[rows * len], slot = new int[tokens.length];
        int row = 0, u = 0;
        for (int b = 0; b < perSeqCount.length; b++) {
            if (perSeqCount[b] == 0) continue;
            int first = tokens[u];
            for (int t = 0; t < len; t++) gather[row * len + t] = t < perSeqCount[b] ? tokens[u + t] : first;
            for (int t = 0; t < perSeqCount[b]; t++) slot[u + t] = row * len + t;
            u += perSeqCount[b];
            row++;
        }
        return new Local(
                rows,
                len,
                tokens.length,
                intTensor(s, gather),
                intTensor(s, slot),
                intTensor(s, tokens),
                intTensor(s, widx));
    }

    /** All-to-all of [rows, D] buffers with per-rank row counts (the buffers may hold one spare row). */
    private void allToAllRows(Tensor send, int[] sendRows, Tensor recv, int[] recvRows) {
        int d = cfg.hiddenSize();
        int[] sc = Arrays.stream(sendRows).map(r -> r * d).toArray(),
                rc = Arrays.stream(recvRows).map(r -> r * d).toArray();
        int sn = Arrays.stream(sendRows).sum(), rn = Arrays.stream(recvRows).sum();
        world.allToAll(be.slice(send, 0, sn), sc, be.slice(recv, 0, rn), rc).await();
    }

    private Tensor sparseBackward(Part p, Tensor dy, boolean needInput, boolean reduce) {
        Sparse s = p.sparse;
        int i = p.index, d = cfg.hiddenSize(), e = mode.numBranches(), k = routing.topK();
        int m = myRows() * seq, sentRows = Arrays.stream(s.sendCounts).sum();
        boolean perSeq = routing.level() == Routing.Level.SEQUENCE;
        boolean expertsBackward = needInput || expertsTrainable[i];
        Tensor dx2 = null, dw = null;
        Tensor dSend = own.get("sparse.dsend." + i, Math.max(1, sentRows), d);
        if (p.merge) {
            Tensor dy2 = be.view(dy, m, d);
            Tensor dx = own.get("dx." + i, myRows(), seq, d);
            dx2 = be.view(dx, m, d);
            be.fill(dx2, 0f);
            int r = s.routedProbs.length / e;
            dw = own.get("sparse.dw." + i, r * k, 1);
            be.fill(dw, 0f);
            be.fill(dSend, 0f);
            // output gradients of every branch; remote experts' go into the dispatch buffer
            for (int br = 0; br < e; br++) {
                Local lp = s.local.get(br);
                Remote rp = br > 0 ? s.remote.get(br - 1) : null;
                if (lp == null && rp == null) continue;
                int selected = lp != null ? lp.selected() : rp.selected();
                Tensor token = lp != null ? lp.token() : rp.token(),
                        weightIndex = lp != null ? lp.weightIndex() : rp.weightIndex();
                Tensor dContrib = scratch.get("sparse.dcontrib", selected, d);
                be.gatherRows(dy2, token, dContrib);
                Tensor dysel = own.get("sparse.dysel." + i + "." + br, 1, selected, d);
                Tensor dwsel = scratch.get("sparse.dwsel", selected, 1);
                be.weightedMergeBackward(
                        dContrib,
                        own.get("sparse.ysel." + i + "." + br, 1, selected, d),
                        own.get("sparse.w." + i + "." + br, selected, 1),
                        dysel,
                        dwsel);
                be.scatterAddRows(dwsel, weightIndex, dw);
                if (rp != null)
                    be.scatterAddRows(be.view(dysel, selected, d), rp.position(), be.slice(dSend, 0, sentRows));
            }
        }
        // output gradients to the expert ranks, which run backward and return input gradients
        Tensor dRecv = own.get("sparse.drecv." + i, Math.max(1, s.received), d);
        Tensor dxBack = own.get("sparse.dxback." + i, Math.max(1, s.received), d);
        if (expertsBackward) {
            allToAllRows(dSend, s.sendCounts, dRecv, s.recvCounts);
            if (!s.hosted.isEmpty()) {
                be.fill(dxBack, 0f);
                for (Map.Entry<Integer, Hosted> en : s.hosted.entrySet()) {
                    Hosted h = en.getValue();
                    Tensor dye = scratch.get("sparse.dye", h.rows() * h.len(), d);
                    be.fill(dye, 0f);
                    Tensor sel = scratch.get("sparse.dsel", h.selected(), d);
                    be.gatherRows(be.slice(dRecv, 0, s.received), h.position(), sel);
                    be.scatterAddRows(sel, h.slot(), dye);
                    Tensor dxe = p.single(en.getKey()).backward(be.view(dye, 1, h.rows() * h.len(), d), true);
                    if (needInput) {
                        be.gatherRows(be.view(dxe, h.rows() * h.len(), d), h.slot(), sel);
                        be.scatterAddRows(sel, h.position(), be.slice(dxBack, 0, s.received));
                    }
                }
            }
            if (reduce && !p.merge) reduceGradients(p.expertParameters()); // every replica, routed tokens or not
        }
        Tensor dReturned = own.get("sparse.dret." + i, Math.max(1, sentRows), d);
        if (expertsBackward && needInput) allToAllRows(dxBack, s.recvCounts, dReturned, s.sendCounts);
        if (!p.merge) return null;
        // input gradients in branch order: local branches run here, remote ones came back
        for (int br = 0; br < e; br++) {
            Local lp = s.local.get(br);
            Remote rp = br > 0 ? s.remote.get(br - 1) : null;
            if (lp != null) {
                boolean need = needInput || (br == 0 ? backboneTrainable[i] : expertsTrainable[i]);
                if (!need) continue;
                Tensor dye = scratch.get("sparse.dye", lp.rows() * lp.len(), d);
                be.fill(dye, 0f);
                be.scatterAddRows(
                        be.view(own.get("sparse.dysel." + i + "." + br, 1, lp.selected(), d), lp.selected(), d),
                        lp.slot(),
                        dye);
                Tensor dye3 = be.view(dye, lp.rows(), lp.len(), d);
                Tensor dxe;
                if (br == 0) {
                    dxe = dye3;
                    for (int l = p.backbone.size() - 1; l >= 0; l--)
                        dxe = p.backbone.get(l).backward(dxe);
                } else {
                    dxe = p.single(p.localPosition(br - 1)).backward(be.view(dye3, 1, lp.rows() * lp.len(), d), true);
                }
                if (!needInput) continue;
                Tensor dxsel = scratch.get("sparse.dxsel", lp.selected(), d);
                be.gatherRows(be.view(dxe, lp.rows() * lp.len(), d), lp.slot(), dxsel);
                be.scatterAddRows(dxsel, lp.token(), dx2);
            } else if (rp != null && needInput) {
                Tensor dxsel = scratch.get("sparse.dxsel", rp.selected(), d);
                be.gatherRows(be.slice(dReturned, 0, sentRows), rp.position(), dxsel);
                be.scatterAddRows(dxsel, rp.token(), dx2);
            }
        }
        if (reduce && backboneTrainable[i]) reduceGradients(p.backboneParameters());
        if (reduce) reduceGradients(p.expertParameters());
        // renormalised top-k weights: w_i = p_i / S, so dp_i = (g_i - Σ_j g_j w_j) / S
        float[] g = be.toHostFloats(dw);
        int r = s.routedProbs.length / e;
        float[] dP = new float[r * e];
        for (int row = 0; row < r; row++) {
            double sum = 0, dot = 0;
            for (int j = 0; j < k; j++) sum += s.routedProbs[row * e + s.routedIndex[row * k + j]];
            for (int j = 0; j < k; j++)
                dot += g[row * k + j] * (s.routedProbs[row * e + s.routedIndex[row * k + j]] / sum);
            for (int j = 0; j < k; j++)
                dP[row * e + s.routedIndex[row * k + j]] = (float) ((g[row * k + j] - dot) / sum);
        }
        Tensor dProbs = own.get("sparse.dprobs." + i, r, e);
        be.copyFromHost(dP, dProbs);
        Tensor dxr = p.gate.backward(dProbs);
        if (reduce && gateTrainable[i]) reduceGradients(p.gate.parameters());
        if (!needInput) return null;
        if (perSeq) {
            Tensor spread = scratch.get("sparse.dmean", m, d);
            be.gatherRows(dxr, sequenceIndex(myRows(), seq), spread);
            be.axpy(1f / seq, spread, dx2);
        } else {
            be.add(dx2, dxr, dx2);
        }
        return own.get("dx." + i, myRows(), seq, d);
    }

    // ================================================================== data parallelism and the optimizer

    /** Starts the all-reduce (sum) of the trainable gradients among {@code ps} over this rank's group. */
    private void reduceGradients(List<Parameter> ps) {
        if (group == null) return;
        for (Parameter p : ps) {
            if (p.trainable() && reducedThisPass.add(p)) pendingGradients.add(group.allReduce(p.grad(), ReduceOp.SUM));
        }
    }

    /** Completes the gradient all-reduces started during backward. */
    void awaitGradients() {
        for (CommHandle h : pendingGradients) h.await();
        pendingGradients.clear();
    }

    /** Sum of squares of this rank's trainable gradients when it is its group's primary copy, else 0. */
    double gradSumSquares() {
        if (!primary()) return 0;
        double ss = 0;
        Set<Parameter> seen = new LinkedHashSet<>();
        for (Parameter p : params) if (p.trainable() && seen.add(p)) ss += be.sumSquares(p.grad());
        return ss;
    }

    /** Scales the gradients by {@code clip} (global-norm clipping) and applies AdamW at {@code lr}. */
    void step(double lr, double clip) {
        List<Parameter> t = trainableParameters();
        if (clip != 1.0) for (Parameter p : t) be.scale(p.grad(), (float) clip);
        optimizer.update(t, lr);
    }

    /** The AdamW state of this rank (moments of its trainable parameters). */
    AdamW optimizer() {
        return optimizer;
    }

    void releaseBuffers() {
        own.release();
        scratch.release();
        Arrays.fill(seqIndexShape, -1);
        for (Part p : blocks) {
            closeSparse(p);
            for (DecoderLayer l : p.backbone) l.releaseBuffers();
            if (p.gate != null) p.gate.releaseBuffers();
            if (p.stack != null) p.stack.releaseBuffers();
            if (p.singles != null) for (ExpertStack st : p.singles) if (st != null) st.releaseBuffers();
        }
        if (stem != null) stem.releaseBuffers();
        if (finalNorm != null) finalNorm.releaseBuffers();
        if (head != null) head.releaseBuffers();
    }

    @Override
    public void close() {
        releaseBuffers();
        closeInputs();
        if (targetsT != null) targetsT.close();
        optimizer.close();
        for (Gate g : gates) g.close();
        for (StackedLayerWeights w : storage) w.close();
        Set<String> owned = new LinkedHashSet<>();
        for (Gate g : gates) for (Parameter p : g.parameters()) owned.add(p.name());
        for (StackedLayerWeights w : storage) for (Parameter p : w.parameters()) owned.add(p.name());
        for (Parameter p : params) if (!owned.contains(p.name())) p.close();
    }
}
