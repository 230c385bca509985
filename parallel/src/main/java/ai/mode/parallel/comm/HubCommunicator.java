package ai.mode.parallel.comm;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * Communicator over a Transport (exchange hub): copies tensors to host arrays when an operation is issued and writes
 * results back when it is awaited, so the issuing thread keeps computing while peers catch up. The same class serves
 * threads in one JVM (LocalHub) and processes on several nodes (TcpTransport).
 *
 * <p>A {@link Communicator} whose data passes through host memory and a {@link Transport}. Inputs are copied
 * when an operation is issued (so they may be modified right after); outputs are written by
 * {@link CommHandle#await()} on the issuing thread. Reductions are computed once for all members in member
 * order (see {@link Collectives}): every member gets the same bits, and runs are reproducible.
 */
public final class HubCommunicator implements Communicator {
    private final Transport transport;
    private final String group;
    private final int rank;
    private final List<Integer> worldRanks;
    private final Backend backend;
    private final Duration timeout;
    private long seq;
    private int splits;

    /**
     * @param group      a name unique among the transport's groups, the same on every member
     * @param worldRanks the members' world ranks, in member order
     * @param timeout    how long an operation may wait for its peers before the group is aborted
     */
    public HubCommunicator(
            Transport transport, String group, int rank, List<Integer> worldRanks, Backend backend, Duration timeout) {
        if (rank < 0 || rank >= worldRanks.size())
            throw new IllegalArgumentException("rank " + rank + " outside a group of " + worldRanks.size());
        if (timeout.isNegative() || timeout.isZero())
            throw new IllegalArgumentException("communicator timeout must be positive, got " + timeout);
        this.transport = transport;
        this.group = group;
        this.rank = rank;
        this.worldRanks = List.copyOf(worldRanks);
        this.backend = backend;
        this.timeout = timeout;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return worldRanks.size();
    }

    @Override
    public List<Integer> worldRanks() {
        return worldRanks;
    }

    @Override
    public String name() {
        return group;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    /** The timeout of every wait. */
    public Duration timeout() {
        return timeout;
    }

    // ------------------------------------------------------------------ tensors <-> host

    private static void checkType(String op, Tensor t, boolean reduction) {
        if (t.dtype() == DType.F32) return;
        if (t.dtype() == DType.I32 && !reduction) return;
        throw new IllegalArgumentException(
                op + ": the communicator " + (reduction ? "reduces f32" : "moves f32 and i32") + " tensors, not "
                        + t.describe() + (t.dtype() == DType.BF16 ? "; keep communicated tensors in f32" : ""));
    }

    private HostBuffer read(Tensor t) {
        int n = Math.toIntExact(t.numel());
        if (t.dtype() == DType.I32) {
            int[] a = new int[n];
            if (n > 0) backend.toHost(t, a);
            return HostBuffer.of(a);
        }
        float[] a = new float[n];
        if (n > 0) backend.toHost(t, a);
        return HostBuffer.of(a);
    }

    private void write(String op, HostBuffer src, int from, Tensor dst) {
        int n = Math.toIntExact(dst.numel());
        if (src.length() - from < n)
            throw new CommunicatorException(
                    op + " on " + group + ": got " + (src.length() - from) + " elements for " + dst.describe());
        if (n == 0) return;
        if (dst.dtype() == DType.I32) {
            int[] a = from == 0 && src.length() == n ? src.ints() : Arrays.copyOfRange(src.ints(), from, from + n);
            try (Tensor tmp = backend.fromHost(a, dst.shape())) {
                backend.copy(tmp, dst);
            }
        } else {
            float[] a =
                    from == 0 && src.length() == n ? src.floats() : Arrays.copyOfRange(src.floats(), from, from + n);
            backend.copyFromHost(a, dst);
        }
    }

    private static HostBuffer.Kind kindOf(Tensor t) {
        return t.dtype() == DType.I32 ? HostBuffer.Kind.I32 : HostBuffer.Kind.F32;
    }

    // ------------------------------------------------------------------ waiting

    private String where(long s) {
        return "collective #" + s + " on group " + group + " " + worldRanks;
    }

    private HostBuffer await(CompletableFuture<HostBuffer> f, String what, long s, int peer) {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            String missing;
            if (s >= 0) {
                List<Integer> m = new ArrayList<>();
                for (int i : transport.missing(group, s)) m.add(worldRanks.get(i));
                missing = m.isEmpty() ? "" : "; rank(s) " + m + " did not arrive";
            } else {
                missing = "; rank " + worldRanks.get(peer) + " sent nothing";
            }
            String reason = String.format(
                    Locale.ROOT,
                    "rank %d timed out after %.1f s in %s (%s)%s",
                    worldRanks.get(rank),
                    timeout.toMillis() / 1000.0,
                    what,
                    s >= 0 ? where(s) : "group " + group,
                    missing);
            transport.abort(reason);
            throw new CommunicatorException(reason);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw new CommunicatorException(c.getMessage(), c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            String reason = "rank " + worldRanks.get(rank) + " was interrupted in " + what;
            transport.abort(reason);
            throw new CommunicatorException(reason);
        }
    }

    private CommHandle handle(
            CompletableFuture<HostBuffer> f, String what, long s, int peer, Consumer<HostBuffer> onResult) {
        return new CommHandle() {
            private boolean done;

            @Override
            public void await() {
                if (done) return;
                HostBuffer r = HubCommunicator.this.await(f, what, s, peer);
                onResult.accept(r);
                done = true;
            }

            @Override
            public boolean isDone() {
                return done || f.isDone();
            }
        };
    }

    private CompletableFuture<HostBuffer> issue(CollectiveSpec spec, HostBuffer mine) {
        return transport.collective(group, size(), seq, rank, spec, mine);
    }

    // ------------------------------------------------------------------ collectives

    @Override
    public CommHandle allReduce(Tensor t, ReduceOp op) {
        checkType("all-reduce", t, true);
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.allReduce(op), read(t));
        seq++;
        return handle(f, "all-reduce", s, -1, r -> write("all-reduce", r, 0, t));
    }

    @Override
    public CommHandle allGather(Tensor send, Tensor recv, int[] counts) {
        checkType("all-gather", send, false);
        checkCount(
                "all-gather", counts, send.numel(), counts.length == size() ? counts[rank] : -1, "this rank's count");
        checkCount(
                "all-gather",
                counts,
                recv.numel(),
                Arrays.stream(counts).asLongStream().sum(),
                "the sum of the counts");
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.allGather(counts), read(send));
        seq++;
        return handle(f, "all-gather", s, -1, r -> write("all-gather", r, 0, recv));
    }

    @Override
    public CommHandle reduceScatter(Tensor send, Tensor recv, int[] counts, ReduceOp op) {
        checkType("reduce-scatter", send, true);
        checkCount(
                "reduce-scatter",
                counts,
                recv.numel(),
                counts.length == size() ? counts[rank] : -1,
                "this rank's count");
        checkCount(
                "reduce-scatter",
                counts,
                send.numel(),
                Arrays.stream(counts).asLongStream().sum(),
                "the sum of the counts");
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.reduceScatter(counts, op), read(send));
        seq++;
        return handle(f, "reduce-scatter", s, -1, r -> write("reduce-scatter", r, 0, recv));
    }

    private void checkCount(String op, int[] counts, long have, long want, String what) {
        if (counts.length != size())
            throw new IllegalArgumentException(
                    op + ": needs " + size() + " counts (one per rank), got " + counts.length);
        if (have != want)
            throw new IllegalArgumentException(op + ": tensor has " + have + " elements but " + what + " is " + want
                    + " (counts " + Arrays.toString(counts) + ")");
    }

    @Override
    public CommHandle broadcast(Tensor t, int root) {
        checkType("broadcast", t, false);
        if (root < 0 || root >= size())
            throw new IllegalArgumentException("broadcast: root " + root + " is not a rank of a group of " + size());
        long s = seq;
        HostBuffer mine = rank == root ? read(t) : HostBuffer.empty(kindOf(t));
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.broadcast(root, Math.toIntExact(t.numel())), mine);
        seq++;
        return handle(f, "broadcast", s, -1, r -> {
            if (rank != root) write("broadcast", r, 0, t);
        });
    }

    @Override
    public CommHandle exchange(List<Transfer> transfers) {
        List<CommHandle> recvs = new ArrayList<>();
        for (Transfer tr : transfers) {
            checkType(tr.isSend() ? "send" : "recv", tr.tensor(), false);
            if (tr.peer() < 0 || tr.peer() >= size())
                throw new IllegalArgumentException((tr.isSend() ? "send to " : "recv from ") + "rank " + tr.peer()
                        + " outside a group of " + size());
        }
        for (Transfer tr : transfers) {
            if (tr.isSend()) {
                transport.send(group, rank, tr.peer(), read(tr.tensor()));
            } else {
                Tensor dst = tr.tensor();
                int peer = tr.peer();
                CompletableFuture<HostBuffer> f = transport.receive(group, peer, rank);
                recvs.add(handle(f, "recv from rank " + worldRanks.get(peer), -1, peer, r -> {
                    if (r.length() != dst.numel() || r.kind() != kindOf(dst)) {
                        String reason = "recv on " + group + ": rank " + worldRanks.get(peer) + " sent " + r
                                + " but rank " + worldRanks.get(rank) + " expected " + dst.describe();
                        transport.abort(reason);
                        throw new CommunicatorException(reason);
                    }
                    write("recv", r, 0, dst);
                }));
            }
        }
        return recvs.isEmpty() ? CommHandle.done() : CommHandle.all(recvs);
    }

    @Override
    public CommHandle allToAll(Tensor send, int[] sendCounts, Tensor recv, int[] recvCounts) {
        checkType("all-to-all", send, false);
        checkCount(
                "all-to-all",
                sendCounts,
                send.numel(),
                Arrays.stream(sendCounts).asLongStream().sum(),
                "the sum of the send counts");
        checkCount(
                "all-to-all",
                recvCounts,
                recv.numel(),
                Arrays.stream(recvCounts).asLongStream().sum(),
                "the sum of the receive counts");
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.allToAll(sendCounts, recvCounts), read(send));
        seq++;
        return handle(f, "all-to-all", s, -1, r -> write("all-to-all", r, 0, recv));
    }

    @Override
    public void barrier() {
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.barrier(), HostBuffer.empty(HostBuffer.Kind.F32));
        seq++;
        await(f, "barrier", s, -1);
    }

    @Override
    public double[] allReduce(double[] values, ReduceOp op) {
        long s = seq;
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.allReduce(op), HostBuffer.of(values.clone()));
        seq++;
        return await(f, "all-reduce of host values", s, -1).doubles().clone();
    }

    @Override
    public Communicator split(int color) {
        long s = seq;
        int[] counts = new int[size()];
        Arrays.fill(counts, 1);
        CompletableFuture<HostBuffer> f = issue(CollectiveSpec.allGather(counts), HostBuffer.of(new int[] {color}));
        seq++;
        int[] colors = await(f, "split", s, -1).ints();
        int index = splits++;
        if (color < 0) return null;
        List<Integer> members = new ArrayList<>();
        int myIndex = -1;
        for (int r = 0; r < colors.length; r++) {
            if (colors[r] != color) continue;
            if (r == rank) myIndex = members.size();
            members.add(worldRanks.get(r));
        }
        return new HubCommunicator(transport, group + "/" + index + "." + color, myIndex, members, backend, timeout);
    }

    @Override
    public void abort(String reason) {
        transport.abort(reason);
    }

    /** Nothing to release: the transport belongs to whoever created the world. */
    @Override
    public void close() {}

    @Override
    public String toString() {
        return "HubCommunicator[" + group + " rank " + rank + "/" + size() + "]";
    }
}
