package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.GateStatistics;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.Routing;
import ai.mode.model.mode.TopKPlan;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
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
 * <p>Per block i with producer group P (block i-1's merge group) and merge group M, P sends the block input to M
 * and, under dense routing, to every expert group G (row ranges re-split when group sizes differ, by
 * {@link RowExchange}); the block then runs as a {@link DenseBlockStep} or a {@link SparseBlockStep}, both built
 * on the routing parts of the single-device {@link ai.mode.model.mode.ModeBlock}. Backward mirrors it, and M
 * passes the input gradient to P.
 *
 * <p>Gradients of trainable parameters are all-reduced over their group (data parallelism) as soon as a part's
 * backward is done, overlapping the rest of the backward pass; {@link #awaitGradients()} completes them.
 */
final class RankShard implements AutoCloseable {
    private final Placement pl;
    private final int rank;
    private final Backend be;
    private final LlamaConfig cfg;
    private final ModeConfig mode;
    private final Routing routing;
    private final BufferPool scratch;
    private final BufferPool own;
    private final ShardParameters parts;
    private final RowExchange ex;
    private final GradientReduction grads;
    private final DenseBlockStep dense;
    private final SparseBlockStep sparse;
    private final AdamW optimizer;
    private Tensor idsT, targetsT;
    private GateStatistics gates; // router statistics of the gates held here; null = not watched

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
        this.be = be;
        this.cfg = snap.config();
        this.mode = snap.mode();
        this.routing = mode.routing();
        this.scratch = new BufferPool(be);
        this.own = new BufferPool(be);
        this.parts = new ShardParameters(pl, rank, be, snap, scratch);
        this.ex = new RowExchange(pl, rank, be, world);
        this.grads = new GradientReduction(group);
        this.dense = new DenseBlockStep(ex, own, grads, cfg.hiddenSize());
        this.sparse = new SparseBlockStep(ex, cfg, routing, own, scratch, grads);
        AdamW.Config noClip = new AdamW.Config(adamw.beta1(), adamw.beta2(), adamw.eps(), adamw.weightDecay(), 0);
        this.optimizer = new AdamW(be, noClip);
    }

    int rank() {
        return rank;
    }

    Backend backend() {
        return be;
    }

    /** Every parameter held here, in construction order. */
    List<Parameter> parameters() {
        return parts.all();
    }

    /** Whether this rank is replica 0 of its group (the copy that counts for norms and exports). */
    boolean primary() {
        return ex.replica == 0;
    }

    List<Parameter> trainableParameters() {
        return parts.all().stream().filter(Parameter::trainable).toList();
    }

    void zeroGrad() {
        for (Parameter p : parts.all()) p.zeroGrad();
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
        for (int g = 0; g < pl.groups().size(); g++) {
            if (batch < pl.groupSize(g)) {
                throw new IllegalArgumentException("batch of " + batch + " sequences is smaller than the "
                        + pl.groupSize(g) + " devices of group '"
                        + pl.groups().get(g).name() + "', which split it; use --batch >= " + pl.groupSize(g));
            }
        }
        ex.begin(batch, seq);
        int nb = mode.numBlocks(), lowest = parts.lowest;
        Tensor x = null;
        if (parts.stem != null) {
            closeInputs();
            idsT = myRows(ids, seq);
            x = parts.stem.forward(idsT);
        }
        for (int i = 0; i < nb; i++) x = forwardBlock(parts.blocks[i], x);
        LossStats stats = LossStats.ZERO;
        boolean grads = backward && lowest <= nb + 1;
        this.grads.beginPass();
        Tensor dy = null;
        if (parts.head != null) {
            if (targetsT != null) targetsT.close();
            targetsT = myRows(targets, seq);
            Tensor h = parts.finalNorm.forward(x);
            stats = parts.head.loss(h, targetsT, gradScale, grads, grads && lowest <= nb);
            if (grads && lowest <= nb) dy = parts.finalNorm.backward(parts.head.inputGradient());
            if (grads && reduce) {
                this.grads.reduce(parts.finalNorm.parameters());
                if (!cfg.tieEmbeddings())
                    this.grads.reduce(parts.head.parameters()); // a tied table waits for the embedding's part
            }
        }
        if (grads && lowest < nb) {
            for (int i = nb - 1; i >= Math.max(0, lowest); i--)
                dy = backwardBlock(parts.blocks[i], dy, lowest < i, reduce);
            if (lowest < 0 && parts.stem != null) parts.stem.backward(dy);
        }
        if (grads && reduce) this.grads.reduce(parts.all()); // the rest (embedding, tied head), in a fixed order
        return stats;
    }

    /** I32 [rows, seq]: this rank's rows of a whole-batch token array. */
    private Tensor myRows(int[] tokens, int seq) {
        int first = ex.rowStart(ex.group, ex.replica), rows = ex.myRows();
        return be.fromHost(Arrays.copyOfRange(tokens, first * seq, (first + rows) * seq), rows, seq);
    }

    private void closeInputs() {
        if (idsT != null) idsT.close();
        idsT = null;
    }

    /** This rank's part of block p's forward; {@code x} is its rows of the block input when it is in the producer group. */
    private Tensor forwardBlock(BlockPart p, Tensor x) {
        int i = p.index, d = cfg.hiddenSize(), seq = ex.seq();
        int prod = pl.producerGroup(i), merge = pl.mergeGroup(i);
        // the block input to every group that reads it (experts read it only under dense routing)
        List<Integer> consumers = new ArrayList<>(List.of(merge));
        if (routing.dense()) for (int g : pl.expertGroups(i)) if (!consumers.contains(g)) consumers.add(g);
        Tensor in = ex.group == prod ? x : null;
        List<CommHandle> moves = new ArrayList<>();
        for (int g : consumers) {
            if (g == prod) continue;
            Tensor dst = ex.group == g ? own.get("x." + i, ex.myRows(), seq, d) : null;
            moves.add(ex.reshard(ex.group == prod ? x : null, prod, dst, g, seq * d));
            if (dst != null) in = dst;
        }
        CommHandle.all(moves).await();
        p.x = consumers.contains(ex.group) ? in : null;
        Tensor y = routing.dense() ? dense.forward(p) : sparse.forward(p);
        if (p.merge && gates != null) { // the merge group holds the gate; its rows start at rowStart
            TopKPlan plan = routing.dense() ? null : p.sparse.plan;
            gates.observe(i, be, p.probs, plan, ex.rowStart(ex.group, ex.replica), seq);
        }
        return y;
    }

    /**
     * This rank's part of block p's backward. {@code dy}: the output gradient on merge-group ranks. Returns the
     * input gradient on producer-group ranks when {@code needInput}, else null.
     */
    private Tensor backwardBlock(BlockPart p, Tensor dy, boolean needInput, boolean reduce) {
        int i = p.index, d = cfg.hiddenSize(), seq = ex.seq();
        Tensor dx =
                routing.dense() ? dense.backward(p, dy, needInput, reduce) : sparse.backward(p, dy, needInput, reduce);
        if (!needInput) return null;
        int prod = pl.producerGroup(i), merge = pl.mergeGroup(i);
        if (prod == merge) return dx;
        Tensor to = ex.group == prod ? own.get("dy." + (i - 1), ex.myRows(), seq, d) : null;
        ex.reshard(p.merge ? dx : null, merge, to, prod, seq * d).await();
        return to;
    }

    // ================================================================== router statistics

    /** Starts counting the gates held here into fresh sums (null: stops); rows labelled by these domain names. */
    void watchGates(List<String> domains) {
        gates = domains == null ? null : new GateStatistics(mode.numBlocks(), mode.numBranches(), domains);
    }

    /** The router statistics of the gates held here (null when not watched). */
    GateStatistics gates() {
        return gates;
    }

    // ================================================================== data parallelism and the optimizer

    /** Completes the gradient all-reduces started during backward. */
    void awaitGradients() {
        grads.await();
    }

    /** Sum of squares of this rank's trainable gradients when it is its group's primary copy, else 0. */
    double gradSumSquares() {
        if (!primary()) return 0;
        double ss = 0;
        Set<Parameter> seen = new LinkedHashSet<>();
        for (Parameter p : parts.all()) if (p.trainable() && seen.add(p)) ss += be.sumSquares(p.grad());
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
        parts.releaseBuffers();
    }

    @Override
    public void close() {
        releaseBuffers();
        closeInputs();
        if (targetsT != null) targetsT.close();
        optimizer.close();
        parts.close();
    }
}
