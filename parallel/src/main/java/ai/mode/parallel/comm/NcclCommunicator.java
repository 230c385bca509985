package ai.mode.parallel.comm;

import ai.mode.bindings.CudaStream;
import ai.mode.bindings.NativeCallException;
import ai.mode.bindings.Nccl;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.device.DeviceTensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Communicator over NCCL (through the project's FFM bindings) for cuda devices: one ncclComm per rank and group,
 * collectives queued on the device's stream so they are ordered with the compute around them.
 *
 * <p>A {@link Communicator} for a {@code cuda} backend. Every operation is queued on the device's single stream
 * (the one its kernels run on), so later kernels see the result without a host wait and
 * {@link CommHandle#await()} returns at once; host reads of the output synchronise the stream as usual. Groups
 * of point-to-point operations, uneven all-gathers (one broadcast per rank) and all-to-all (paired send/recv)
 * are issued inside {@code ncclGroupStart/End}. Reductions follow NCCL's order (ring or tree), so unlike the hub
 * communicators the bits may depend on the number of ranks.
 *
 * <p>Communication does not overlap compute on one GPU: both share the device's stream. Creation
 * ({@link #initRank}) blocks until every member has joined; call it from each rank's own thread. Several ranks in
 * one process must all have returned from {@link #initRank} before any of them calls a collective or a split
 * (the parallel model holds its lanes at a barrier there): a collective's kernel waiting for a sibling still
 * inside {@code ncclCommInitRank} can hang both. {@link #split(int[])} uses {@code ncclCommSplit}: no unique id is
 * exchanged and nothing is read back. Every NCCL call runs through {@link CudaDevice#withContext}; the small
 * reads back to the host ({@link #allReduce(double[], ReduceOp)}, the colors of {@link #split(int)}) go through
 * page-locked memory.
 */
public final class NcclCommunicator implements Communicator {
    private final Nccl nccl;
    private final Nccl.Comm comm;
    private final DeviceBackend backend;
    private final CudaDevice device;
    private final CudaStream stream;
    private final int rank;
    private final List<Integer> worldRanks;
    private final String name;
    private MemorySegment pinned = MemorySegment.NULL;

    private NcclCommunicator(
            Nccl nccl, Nccl.Comm comm, DeviceBackend backend, int rank, List<Integer> worldRanks, String name) {
        this.nccl = nccl;
        this.comm = comm;
        this.backend = backend;
        this.device = (CudaDevice) backend.device();
        this.stream = device.stream();
        this.rank = rank;
        this.worldRanks = List.copyOf(worldRanks);
        this.name = name;
    }

    /** The CUDA device under a backend, or a one-line error naming the fix. */
    static DeviceBackend cudaBackend(Backend b) {
        if (b instanceof DeviceBackend db && db.device() instanceof CudaDevice) return db;
        throw new IllegalArgumentException("the NCCL communicator needs a cuda backend, not '" + b.name()
                + "'; use --comm hub for cpu and emu devices");
    }

    /**
     * Joins the communicator named by {@code id} as {@code rank} of {@code worldRanks.size()} on the backend's GPU
     * ({@code ncclCommInitRank}; blocks until all members have joined).
     */
    public static NcclCommunicator initRank(
            Backend backend, Nccl.UniqueId id, int rank, List<Integer> worldRanks, String name) {
        DeviceBackend db = cudaBackend(backend);
        Nccl nccl = Nccl.get();
        try {
            Nccl.Comm comm = ((CudaDevice) db.device()).withContext(() -> nccl.initRank(worldRanks.size(), id, rank));
            return new NcclCommunicator(nccl, comm, db, rank, worldRanks, name);
        } catch (NativeCallException e) {
            throw new CommunicatorException(
                    "could not create NCCL communicator " + name + " (rank " + rank + " of " + worldRanks.size() + "): "
                            + e.getMessage(),
                    e);
        }
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
        return name;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    private static int type(String op, Tensor t, boolean reduction) {
        return switch (t.dtype()) {
            case F32 -> Nccl.FLOAT32;
            case BF16 -> Nccl.BFLOAT16;
            case I32 -> {
                if (reduction)
                    throw new IllegalArgumentException(
                            op + ": reductions take f32 or bf16 tensors, not " + t.describe());
                yield Nccl.INT32;
            }
        };
    }

    private static int ncclOp(ReduceOp op) {
        return switch (op) {
            case SUM -> Nccl.SUM;
            case AVG -> Nccl.AVG;
            case MAX -> Nccl.MAX;
        };
    }

    private static long ptr(Tensor t) {
        if (!(t instanceof DeviceTensor d))
            throw new IllegalArgumentException("NCCL needs device tensors, got " + t.describe() + " of backend "
                    + t.backend().name());
        return t.numel() == 0 ? 0 : d.pointer();
    }

    private static long offset(Tensor t, long elements) {
        return ptr(t) + elements * t.dtype().bytes();
    }

    private <T> T call(String what, java.util.function.Supplier<T> body) {
        try {
            return device.withContext(body);
        } catch (NativeCallException e) {
            throw new CommunicatorException(what + " on " + name + " failed: " + e.getMessage(), e);
        }
    }

    private void grouped(String what, Runnable body) {
        call(what, () -> {
            nccl.groupStart();
            try {
                body.run();
            } finally {
                nccl.groupEnd();
            }
            return null;
        });
    }

    @Override
    public CommHandle allReduce(Tensor t, ReduceOp op) {
        int dt = type("all-reduce", t, true);
        call("all-reduce", () -> {
            comm.allReduce(ptr(t), ptr(t), t.numel(), dt, ncclOp(op), stream);
            return null;
        });
        return CommHandle.done();
    }

    @Override
    public CommHandle allGather(Tensor send, Tensor recv, int[] counts) {
        int dt = type("all-gather", send, false);
        check(counts, "all-gather");
        boolean even = Arrays.stream(counts).allMatch(c -> c == counts[0]);
        if (send.numel() != counts[rank]
                || recv.numel() != Arrays.stream(counts).asLongStream().sum()) {
            throw new IllegalArgumentException("all-gather: send " + send.describe() + " / recv " + recv.describe()
                    + " do not fit counts " + Arrays.toString(counts));
        }
        if (even) {
            call("all-gather", () -> {
                comm.allGather(ptr(send), ptr(recv), counts[0], dt, stream);
                return null;
            });
        } else {
            grouped("uneven all-gather", () -> {
                long off = 0;
                for (int r = 0; r < size(); r++) {
                    comm.broadcast(r == rank ? ptr(send) : 0, offset(recv, off), counts[r], dt, r, stream);
                    off += counts[r];
                }
            });
        }
        return CommHandle.done();
    }

    @Override
    public CommHandle reduceScatter(Tensor send, Tensor recv, int[] counts, ReduceOp op) {
        int dt = type("reduce-scatter", send, true);
        check(counts, "reduce-scatter");
        long total = Arrays.stream(counts).asLongStream().sum();
        if (recv.numel() != counts[rank] || send.numel() != total) {
            throw new IllegalArgumentException("reduce-scatter: send " + send.describe() + " / recv " + recv.describe()
                    + " do not fit counts " + Arrays.toString(counts));
        }
        if (Arrays.stream(counts).allMatch(c -> c == counts[0])) {
            call("reduce-scatter", () -> {
                comm.reduceScatter(ptr(send), ptr(recv), counts[0], dt, ncclOp(op), stream);
                return null;
            });
        } else {
            long before = 0;
            for (int r = 0; r < rank; r++) before += counts[r];
            long from = before;
            try (Tensor tmp = backend.allocate(send.dtype(), Math.toIntExact(total))) {
                call("uneven reduce-scatter", () -> {
                    comm.allReduce(ptr(send), ptr(tmp), total, dt, ncclOp(op), stream);
                    return null;
                });
                backend.copy(backend.slice(tmp, Math.toIntExact(from), counts[rank]), backend.view(recv, counts[rank]));
            }
        }
        return CommHandle.done();
    }

    private void check(int[] counts, String op) {
        if (counts.length != size())
            throw new IllegalArgumentException(op + ": needs " + size() + " counts, got " + counts.length);
    }

    @Override
    public CommHandle broadcast(Tensor t, int root) {
        int dt = type("broadcast", t, false);
        call("broadcast", () -> {
            comm.broadcast(ptr(t), ptr(t), t.numel(), dt, root, stream);
            return null;
        });
        return CommHandle.done();
    }

    @Override
    public CommHandle exchange(List<Transfer> transfers) {
        grouped("send/recv", () -> {
            for (Transfer tr : transfers) {
                Tensor t = tr.tensor();
                int dt = type(tr.isSend() ? "send" : "recv", t, false);
                if (tr.isSend()) comm.send(ptr(t), t.numel(), dt, tr.peer(), stream);
                else comm.recv(ptr(t), t.numel(), dt, tr.peer(), stream);
            }
        });
        return CommHandle.done();
    }

    @Override
    public CommHandle allToAll(Tensor send, int[] sendCounts, Tensor recv, int[] recvCounts) {
        int dt = type("all-to-all", send, false);
        check(sendCounts, "all-to-all");
        check(recvCounts, "all-to-all");
        grouped("all-to-all", () -> {
            long so = 0, ro = 0;
            for (int p = 0; p < size(); p++) {
                if (sendCounts[p] > 0) comm.send(offset(send, so), sendCounts[p], dt, p, stream);
                if (recvCounts[p] > 0) comm.recv(offset(recv, ro), recvCounts[p], dt, p, stream);
                so += sendCounts[p];
                ro += recvCounts[p];
            }
        });
        return CommHandle.done();
    }

    @Override
    public void barrier() {
        try (Tensor one = backend.zeros(1)) {
            allReduce(one, ReduceOp.SUM);
            backend.synchronize();
        }
    }

    /** Page-locked host scratch of at least {@code bytes}, kept for the communicator's life. */
    private MemorySegment pinned(long bytes) {
        if (pinned.byteSize() < bytes) {
            if (pinned.byteSize() > 0) device.freePinned(pinned);
            pinned = MemorySegment.NULL;
            pinned = device.allocatePinned(Math.max(4096, bytes));
        }
        return pinned;
    }

    @Override
    public double[] allReduce(double[] values, ReduceOp op) {
        long bytes = 8L * values.length;
        if (values.length == 0) return values.clone();
        try (Tensor buf = backend.allocate(DType.F32, values.length * 2)) {
            MemorySegment host = pinned(bytes);
            MemorySegment.copy(values, 0, host, ValueLayout.JAVA_DOUBLE, 0, values.length);
            device.copyHostToDevice(host, ptr(buf), bytes);
            call("all-reduce of host values", () -> {
                comm.allReduce(ptr(buf), ptr(buf), values.length, Nccl.FLOAT64, ncclOp(op), stream);
                return null;
            });
            device.copyDeviceToHost(ptr(buf), host, bytes);
            return host.asSlice(0, bytes).toArray(ValueLayout.JAVA_DOUBLE);
        }
    }

    /** Gathers every member's color (an all-gather read back through page-locked memory), then splits. */
    @Override
    public Communicator split(int color) {
        try (Tensor mine = backend.fromHost(new int[] {color}, 1);
                Tensor all = backend.allocate(DType.I32, size())) {
            allGather(mine, all);
            MemorySegment host = pinned(4L * size());
            device.copyDeviceToHost(ptr(all), host, 4L * size());
            return split(host.asSlice(0, 4L * size()).toArray(ValueLayout.JAVA_INT));
        }
    }

    /**
     * {@code ncclCommSplit} with this member's color (a negative one joins none and gets null) and its rank as
     * the key, so the new group is ordered by rank here; the members' world ranks come from {@code colors}.
     */
    @Override
    public Communicator split(int[] colors) {
        if (colors.length != size()) {
            throw new IllegalArgumentException(
                    "split: " + colors.length + " colors given for the " + size() + " members of " + name);
        }
        int color = colors[rank];
        List<Integer> members = new ArrayList<>();
        int myIndex = -1;
        for (int r = 0; r < colors.length; r++) {
            if (color < 0 || colors[r] != color) continue;
            if (r == rank) myIndex = members.size();
            members.add(worldRanks.get(r));
        }
        Nccl.Comm sub = call("split", () -> comm.split(color < 0 ? Nccl.SPLIT_NOCOLOR : color, rank));
        if (sub == null) return null;
        String groupName = name + "/split" + members;
        int index = myIndex;
        int reported = call("split", sub::rank);
        if (reported != index) {
            device.withContext(() -> {
                sub.close();
                return null;
            });
            throw new CommunicatorException("split " + groupName + ": NCCL placed rank " + rank + " at " + reported
                    + " but the colors " + Arrays.toString(colors) + " place it at " + index
                    + "; every member must pass the same colors");
        }
        return new NcclCommunicator(nccl, sub, backend, index, members, groupName);
    }

    @Override
    public void abort(String reason) {
        device.withContext(() -> {
            comm.abort();
            return null;
        });
    }

    @Override
    public void close() {
        device.withContext(() -> {
            comm.close();
            return null;
        });
        if (pinned.byteSize() > 0) device.freePinned(pinned);
        pinned = MemorySegment.NULL;
    }

    @Override
    public String toString() {
        return "NcclCommunicator[" + name + " rank " + rank + "/" + size() + "]";
    }
}
