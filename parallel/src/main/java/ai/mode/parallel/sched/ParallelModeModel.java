package ai.mode.parallel.sched;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.GateStatistics;
import ai.mode.model.mode.GateWatch;
import ai.mode.model.mode.RouterStatistics;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.InProcessWorld;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Phaser;
import java.util.function.BiFunction;

/**
 * A MoDE model spread over the devices of a placement, as seen by one process: one RankShard per local device, each
 * driven by its own lane thread, plus the communicators. The process-level calls (forward/backward, step, gather) run
 * every local rank's side of the SPMD program; with several processes each calls the same sequence.
 *
 * <p>The local ranks of a parallel MoDE model. Create with {@link #inProcess} (every rank a thread of this JVM) or
 * {@link #create} (this process hosts a contiguous range of world ranks; the others live in other processes).
 * Not thread-safe: one driver thread calls it.
 */
public final class ParallelModeModel implements AutoCloseable, GateWatch {
    private final Placement placement;
    private final int firstRank;
    private final List<Backend> backends;
    private final List<Communicator> worlds;
    private final List<Communicator> groups;
    private final List<RankShard> shards;
    private final RankLanes lanes;
    private final boolean ownBackends;
    /** Holds the local lanes together while communicators are created; terminated when a lane fails. */
    private final Phaser creation;

    private ParallelModeModel(
            Placement placement,
            int firstRank,
            List<Backend> backends,
            boolean ownBackends,
            BiFunction<Integer, Backend, Communicator> worldComm,
            ModelSnapshot snap,
            AdamW.Config adamw) {
        this.placement = placement;
        this.firstRank = firstRank;
        this.backends = List.copyOf(backends);
        this.ownBackends = ownBackends;
        int n = backends.size();
        if (firstRank < 0 || firstRank + n > placement.worldSize()) {
            throw new IllegalArgumentException("local ranks " + firstRank + ".." + (firstRank + n - 1)
                    + " fall outside the placement's " + placement.worldSize() + " devices");
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < n; i++) names.add("mode-rank-" + (firstRank + i));
        Communicator[] w = new Communicator[n], g = new Communicator[n];
        RankShard[] s = new RankShard[n];
        int[] colors = new int[placement.worldSize()];
        for (int r = 0; r < colors.length; r++) colors[r] = placement.groupOf(r);
        this.creation = new Phaser(n);
        this.lanes = new RankLanes(names, this::abortAll);
        this.worlds = java.util.Arrays.asList(w);
        this.groups = java.util.Arrays.asList(g);
        try {
            lanes.run(i -> {
                int rank = firstRank + i;
                w[i] = worldComm.apply(rank, backends.get(i));
                if (w[i].rank() != rank || w[i].size() != placement.worldSize()) {
                    throw new IllegalStateException("world communicator of rank " + rank + " reports rank "
                            + w[i].rank() + " of " + w[i].size());
                }
                // every local lane has finished creating its communicator before any lane runs a collective or a
                // split on it (with NCCL, a collective racing a sibling's ncclCommInitRank can hang both); the
                // group colors come from the placement, the same on every rank, so nothing is exchanged for them
                awaitLocalLanes();
                Communicator grp = w[i].split(colors);
                awaitLocalLanes();
                if (placement.groupSize(placement.groupOf(rank)) > 1) g[i] = grp;
                else grp.close();
                s[i] = new RankShard(placement, rank, backends.get(i), w[i], g[i], snap, adamw);
                return null;
            });
        } catch (RuntimeException e) {
            for (RankShard r : s) if (r != null) r.close();
            lanes.close();
            if (ownBackends) for (Backend b : backends) b.close();
            throw e;
        }
        this.shards = List.of(s);
    }

    /**
     * Every rank of the placement in this process, talking through one in-process hub. Takes ownership of the
     * backends (closed with the model).
     *
     * @param backends one per device of the placement, in rank order
     * @param timeout  how long any rank waits for its peers before the run fails with a message naming them
     */
    public static ParallelModeModel inProcess(
            Placement placement, List<Backend> backends, ModelSnapshot snap, AdamW.Config adamw, Duration timeout) {
        if (backends.size() != placement.worldSize()) {
            throw new IllegalArgumentException("the placement has " + placement.worldSize() + " devices but "
                    + backends.size() + " backends were given");
        }
        List<Communicator> comms = InProcessWorld.create(backends, timeout);
        return new ParallelModeModel(placement, 0, backends, true, (rank, be) -> comms.get(rank), snap, adamw);
    }

    /**
     * The ranks {@code firstRank ..} of a placement whose other ranks run in other processes. {@code worldComm}
     * is called on each local rank's own thread with its world rank and backend (NCCL joins there). Takes
     * ownership of the backends.
     */
    public static ParallelModeModel create(
            Placement placement,
            int firstRank,
            List<Backend> backends,
            BiFunction<Integer, Backend, Communicator> worldComm,
            ModelSnapshot snap,
            AdamW.Config adamw) {
        return new ParallelModeModel(placement, firstRank, backends, true, worldComm, snap, adamw);
    }

    private void awaitLocalLanes() {
        if (creation.arriveAndAwaitAdvance() < 0) {
            throw new IllegalStateException("another local rank failed while the communicators were created");
        }
    }

    private void abortAll(String reason) {
        creation.forceTermination();
        for (Communicator c : worlds) {
            if (c == null) continue;
            try {
                c.abort(reason);
            } catch (RuntimeException ignored) {
                // the reason is reported by the failing rank; a communicator that cannot abort adds nothing
            }
        }
    }

    public Placement placement() {
        return placement;
    }

    /** Whether this process hosts world rank 0 (the one that reports and writes files). */
    public boolean isLeader() {
        return firstRank == 0;
    }

    /**
     * One micro-batch on every local rank: forward, loss and (when {@code backward}) backward; with
     * {@code reduce} the trainable gradients are all-reduced over each group afterwards (the last micro-batch of
     * an optimizer step). Returns the loss statistics of the whole batch (the same in every process).
     *
     * @param ids     I32 [batch·seq] input tokens, the whole batch (every process passes the same)
     * @param targets I32 [batch·seq] next tokens
     */
    public LossStats forwardBackward(
            int[] ids, int[] targets, int batch, int seq, float gradScale, boolean backward, boolean reduce) {
        if (ids.length != batch * seq || targets.length != batch * seq) {
            throw new IllegalArgumentException("ids and targets must hold batch*seq = " + batch * seq + " tokens, got "
                    + ids.length + " and " + targets.length);
        }
        List<LossStats> out = lanes.run(i -> {
            RankShard s = shards.get(i);
            LossStats local = s.forwardBackward(ids, targets, batch, seq, gradScale, backward, reduce);
            if (backward && reduce) s.awaitGradients();
            double[] sum = worlds.get(i)
                    .allReduce(new double[] {local.lossSum(), local.correct(), local.count()}, ReduceOp.SUM);
            return new LossStats(sum[0], Math.round(sum[1]), Math.round(sum[2]));
        });
        return out.get(0);
    }

    /** Loss statistics of a batch without gradients. */
    public LossStats evaluate(int[] ids, int[] targets, int batch, int seq) {
        return forwardBackward(ids, targets, batch, seq, 0f, false, false);
    }

    /** Zeroes every local trainable gradient. */
    public void zeroGrad() {
        lanes.run(i -> {
            shards.get(i).zeroGrad();
            return null;
        });
    }

    /**
     * One optimizer step on every rank: the global gradient norm (each parameter counted once), clipping to
     * {@code maxGradNorm} (disabled when <= 0), AdamW at {@code lr}. Returns the norm before clipping; when it is
     * not finite nothing is updated.
     */
    public double step(double lr, double maxGradNorm) {
        List<Double> norms = lanes.run(i -> {
            RankShard s = shards.get(i);
            s.awaitGradients();
            double norm = Math.sqrt(worlds.get(i).allReduce(new double[] {s.gradSumSquares()}, ReduceOp.SUM)[0]);
            if (!Double.isFinite(norm)) return norm;
            double clip = maxGradNorm > 0 && norm > maxGradNorm ? maxGradNorm / norm : 1.0;
            s.step(lr, clip);
            return norm;
        });
        return norms.get(0);
    }

    /**
     * Collective: the parameter values ({@code gradients} false) or the trainable parameters' gradients (true),
     * each from its group's first replica, gathered on world rank 0. The leader process gets every tensor; the
     * others get an empty set.
     */
    public NamedTensors gather(boolean gradients) {
        List<NamedTensors> got = lanes.run(i -> gatherOnRank(i, gradients));
        return got.get(0);
    }

    private NamedTensors gatherOnRank(int lane, boolean gradients) {
        RankShard s = shards.get(lane);
        Communicator w = worlds.get(lane);
        Backend be = s.backend();
        List<Parameter> mine = new ArrayList<>();
        if (s.primary()) for (Parameter p : s.parameters()) if (!gradients || p.trainable()) mine.add(p);
        NamedTensors out = new NamedTensors();
        if (s.rank() != 0) {
            StringBuilder names = new StringBuilder();
            List<Integer> shapeInts = new ArrayList<>();
            for (Parameter p : mine) {
                names.append(p.name()).append('\n');
                shapeInts.add(p.shape().length);
                for (int dd : p.shape()) shapeInts.add(dd);
            }
            int[] header = encode(names.toString(), shapeInts);
            try (Tensor len = be.fromHost(new int[] {header.length}, 1);
                    Tensor h = be.fromHost(header.length == 0 ? new int[1] : header, Math.max(1, header.length))) {
                w.send(len, 0).await();
                if (header.length > 0) w.send(h, 0).await();
            }
            for (Parameter p : mine) w.send(gradients ? p.grad() : p.value(), 0).await();
            return out;
        }
        for (Parameter p : mine) out.put(p.name(), p.shape(), be.toHostFloats(gradients ? p.grad() : p.value()));
        for (int r = 1; r < w.size(); r++) {
            int[] header;
            try (Tensor len = be.allocate(DType.I32, 1)) {
                w.recv(len, r).await();
                int[] l = new int[1];
                be.toHost(len, l);
                header = new int[l[0]];
            }
            if (header.length > 0) {
                try (Tensor h = be.allocate(DType.I32, header.length)) {
                    w.recv(h, r).await();
                    be.toHost(h, header);
                }
            }
            for (Object[] entry : decode(header)) {
                String name = (String) entry[0];
                int[] shape = (int[]) entry[1];
                try (Tensor t = be.zeros(shape)) {
                    w.recv(t, r).await();
                    if (!out.contains(name)) out.put(name, shape, be.toHostFloats(t));
                }
            }
        }
        return out;
    }

    /** [name bytes length, name bytes as ints..., shape ints...]. */
    private static int[] encode(String names, List<Integer> shapes) {
        byte[] b = names.getBytes(StandardCharsets.UTF_8);
        int[] out = new int[1 + b.length + shapes.size()];
        out[0] = b.length;
        for (int i = 0; i < b.length; i++) out[1 + i] = b[i];
        for (int i = 0; i < shapes.size(); i++) out[1 + b.length + i] = shapes.get(i);
        return out;
    }

    private static List<Object[]> decode(int[] header) {
        List<Object[]> out = new ArrayList<>();
        if (header.length == 0) return out;
        int nb = header[0];
        byte[] b = new byte[nb];
        for (int i = 0; i < nb; i++) b[i] = (byte) header[1 + i];
        String[] names = new String(b, StandardCharsets.UTF_8).split("\n");
        int pos = 1 + nb;
        for (String n : names) {
            if (n.isEmpty()) continue;
            int rank = header[pos++];
            int[] shape = new int[rank];
            for (int k = 0; k < rank; k++) shape[k] = header[pos++];
            out.add(new Object[] {n, shape});
        }
        return out;
    }

    // ================================================================== router statistics

    /** Every rank starts counting the gates it holds (those of the blocks whose merge group it is in). */
    @Override
    public void watchGates(List<String> domains) {
        List<String> names = List.copyOf(domains);
        lanes.run(i -> {
            shards.get(i).watchGates(names);
            return null;
        });
    }

    @Override
    public void gateRows(int[] rowDomain) {
        lanes.run(i -> {
            watched(i).open(rowDomain);
            return null;
        });
    }

    /**
     * Collective (every process calls it): each rank's sums, added over the world, so every process gets the
     * statistics of the whole batch; each rank's sums are then zeroed.
     */
    @Override
    public Map<String, List<RouterStatistics.Summary>> takeGateStatistics() {
        List<Map<String, List<RouterStatistics.Summary>>> got = lanes.run(i -> {
            GateStatistics mine = watched(i);
            double[] total = worlds.get(i).allReduce(mine.toArray(), ReduceOp.SUM);
            mine.reset();
            mine.pause();
            mine.add(total);
            Map<String, List<RouterStatistics.Summary>> out = mine.summaries();
            mine.reset();
            return out;
        });
        return got.get(0);
    }

    @Override
    public void unwatchGates() {
        lanes.run(i -> {
            shards.get(i).watchGates(null);
            return null;
        });
    }

    private GateStatistics watched(int lane) {
        GateStatistics g = shards.get(lane).gates();
        if (g == null) throw new IllegalStateException("router statistics used before watchGates");
        return g;
    }

    /** Names of every parameter held in this process (for tests and reports). */
    public Set<String> localParameterNames() {
        Set<String> out = new LinkedHashSet<>();
        for (RankShard s : shards) for (Parameter p : s.parameters()) out.add(p.name());
        return out;
    }

    /** Frees activation buffers on every rank. */
    public void releaseBuffers() {
        lanes.run(i -> {
            shards.get(i).releaseBuffers();
            return null;
        });
    }

    @Override
    public void close() {
        try {
            lanes.run(i -> {
                worlds.get(i).barrier(); // nobody tears down a transport a peer still uses
                shards.get(i).close();
                if (groups.get(i) != null) groups.get(i).close();
                worlds.get(i).close();
                return null;
            });
        } catch (RuntimeException ignored) {
            // closing after a failure: the lanes refuse work; resources go with the backends below
        } finally {
            lanes.close();
            if (ownBackends) for (Backend b : backends) b.close();
        }
    }
}
