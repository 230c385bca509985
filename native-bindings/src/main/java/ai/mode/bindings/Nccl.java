package ai.mode.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;

/**
 * FFM bindings for NCCL: version, unique ids, communicator creation ({@code ncclCommInitRank},
 * {@code ncclCommInitAll}, {@code ncclCommSplit} from NCCL 2.18 on), the collectives MoDE-J uses (all-reduce, all-gather, reduce-scatter, broadcast,
 * send/recv), group calls and error strings. {@link #version()} and {@link #uniqueId()} need no GPU.
 * Buffers are device addresses; every collective is queued on a {@link CudaStream}.
 */
public final class Nccl {
    /** {@code ncclDataType_t}. */
    public static final int INT8 = 0;

    public static final int UINT8 = 1;
    public static final int INT32 = 2;
    public static final int UINT32 = 3;
    public static final int INT64 = 4;
    public static final int UINT64 = 5;
    public static final int FLOAT16 = 6;
    public static final int FLOAT32 = 7;
    public static final int FLOAT64 = 8;
    public static final int BFLOAT16 = 9;
    /** {@code ncclRedOp_t}. */
    public static final int SUM = 0;

    public static final int PROD = 1;
    public static final int MAX = 2;
    public static final int MIN = 3;
    public static final int AVG = 4;

    /** {@code NCCL_SPLIT_NOCOLOR}: the color of a rank that joins no communicator in {@link Comm#split}. */
    public static final int SPLIT_NOCOLOR = -1;

    /** Size of {@code ncclUniqueId} ({@code char internal[128]}). */
    public static final int UNIQUE_ID_BYTES = 128;

    private static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE).withName("internal"));

    private static final Map<Integer, String> NAMES = Map.of(
            0, "ncclSuccess",
            1, "ncclUnhandledCudaError",
            2, "ncclSystemError",
            3, "ncclInternalError",
            4, "ncclInvalidArgument",
            5, "ncclInvalidUsage",
            6, "ncclRemoteError",
            7, "ncclInProgress");

    private static final Native.Once<Nccl> INSTANCE =
            new Native.Once<>(() -> new Nccl(NativeLibraries.system().load(NativeLibraries.Library.NCCL)));

    private final String origin;
    private final MethodHandle getVersion, getUniqueId, getErrorString, getLastError;
    private final MethodHandle commInitRank, commInitAll, commDestroy, commAbort, commCount, commCuDevice, commUserRank;
    private final MethodHandle allReduce, allGather, reduceScatter, broadcast, send, recv, groupStart, groupEnd;
    private final Optional<MethodHandle> commSplit;

    private Nccl(NativeLibraries.Loaded lib) {
        this.origin = lib.origin();
        SymbolLookup l = lib.lookup();
        String n = lib.soname();
        getVersion = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "ncclGetVersion");
        getUniqueId = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "ncclGetUniqueId");
        getErrorString = Native.function(l, n, FunctionDescriptor.of(ADDRESS, JAVA_INT), "ncclGetErrorString");
        getLastError = Native.function(l, n, FunctionDescriptor.of(ADDRESS, ADDRESS), "ncclGetLastError");
        commInitRank = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT), "ncclCommInitRank");
        commInitAll =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "ncclCommInitAll");
        commDestroy = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "ncclCommDestroy");
        commAbort = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "ncclCommAbort");
        commCount = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "ncclCommCount");
        commCuDevice = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "ncclCommCuDevice");
        commUserRank = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "ncclCommUserRank");
        allReduce = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS),
                "ncclAllReduce");
        allGather = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS),
                "ncclAllGather");
        reduceScatter = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS),
                "ncclReduceScatter");
        broadcast = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS),
                "ncclBroadcast");
        send = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS),
                "ncclSend");
        recv = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS),
                "ncclRecv");
        groupStart = Native.function(l, n, FunctionDescriptor.of(JAVA_INT), "ncclGroupStart");
        groupEnd = Native.function(l, n, FunctionDescriptor.of(JAVA_INT), "ncclGroupEnd");
        commSplit = Native.optionalFunction(
                l, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), "ncclCommSplit");
    }

    /** NCCL, loaded once per JVM; throws {@link NativeLibraryException} (one line) when it is missing. */
    public static Nccl get() {
        return INSTANCE.get();
    }

    /** Empty when NCCL loads, else the one-line reason. */
    public static Optional<String> unavailableReason() {
        return NativeLibraries.system().problem(NativeLibraries.Library.NCCL);
    }

    /** Our name for an {@code ncclResult_t} (works without the library). */
    public static String resultName(int code) {
        return NAMES.getOrDefault(code, "ncclResult(" + code + ")");
    }

    /** Every result code the built-in table knows. */
    public static Map<Integer, String> resultNames() {
        return NAMES;
    }

    /** Where the library was loaded from. */
    public String origin() {
        return origin;
    }

    /** {@code ncclGetErrorString}: the library's description of a result code. */
    public String errorString(int code) {
        try {
            return Native.string((MemorySegment) getErrorString.invokeExact(code));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private void check(int rc, String call, MemorySegment comm) {
        if (rc == 0) return;
        String desc = errorString(rc);
        // a local, not a conditional expression in the call: invokeExact would see the conditional as Object
        MemorySegment handle = comm == null ? MemorySegment.NULL : comm;
        try {
            String last = Native.string((MemorySegment) getLastError.invokeExact(handle));
            if (last != null && !last.isBlank()) desc = desc + "; last error: " + last.strip();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        throw new NcclException(call, rc, resultName(rc), desc);
    }

    /** {@code ncclGetVersion}: e.g. 22304 for 2.23.4. */
    public int version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) getVersion.invokeExact(out), "ncclGetVersion()", null);
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@link #version()} as {@code major.minor.patch}. */
    public static String versionString(int code) {
        return code / 10000 + "." + code / 100 % 100 + "." + code % 100;
    }

    /** An {@code ncclUniqueId}: 128 opaque bytes that rank 0 creates and sends to every other rank. */
    public record UniqueId(byte[] bytes) {
        public UniqueId {
            if (bytes.length != UNIQUE_ID_BYTES) {
                throw new IllegalArgumentException(
                        "an NCCL unique id has " + UNIQUE_ID_BYTES + " bytes, got " + bytes.length);
            }
            bytes = bytes.clone();
        }

        @Override
        public byte[] bytes() {
            return bytes.clone();
        }

        /** Hex form, for passing through environment variables or files. */
        public String toHex() {
            return HexFormat.of().formatHex(bytes);
        }

        public static UniqueId fromHex(String hex) {
            return new UniqueId(HexFormat.of().parseHex(hex.strip()));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof UniqueId u && Arrays.equals(bytes, u.bytes);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(bytes);
        }

        @Override
        public String toString() {
            return "UniqueId[" + toHex().substring(0, 16) + "...]";
        }
    }

    /** {@code ncclGetUniqueId} (needs no GPU; opens the bootstrap socket). */
    public UniqueId uniqueId() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(UNIQUE_ID);
            check((int) getUniqueId.invokeExact(out), "ncclGetUniqueId()", null);
            return new UniqueId(out.toArray(JAVA_BYTE));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * {@code ncclCommInitRank}: joins the communicator of {@code nranks} ranks named by {@code id} as
     * {@code rank}, on the calling thread's current CUDA device. Blocks until every rank has joined.
     */
    public Comm initRank(int nranks, UniqueId id, int rank) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            MemorySegment idSeg = arena.allocate(UNIQUE_ID);
            idSeg.copyFrom(MemorySegment.ofArray(id.bytes()));
            check(
                    (int) commInitRank.invokeExact(out, nranks, idSeg, rank),
                    "ncclCommInitRank(nranks=" + nranks + ", rank=" + rank + ")",
                    null);
            return new Comm(out.get(ADDRESS, 0), "rank " + rank + "/" + nranks);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code ncclCommInitAll}: one communicator per listed device, all in this process. */
    public Comm[] initAll(int... devices) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS, devices.length);
            check(
                    (int) commInitAll.invokeExact(out, devices.length, arena.allocateFrom(JAVA_INT, devices)),
                    "ncclCommInitAll(devices=" + Arrays.toString(devices) + ")",
                    null);
            Comm[] comms = new Comm[devices.length];
            for (int i = 0; i < devices.length; i++) {
                comms[i] = new Comm(out.getAtIndex(ADDRESS, i), "rank " + i + "/" + devices.length);
            }
            return comms;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Whether this NCCL exports {@code ncclCommSplit} (2.18 and newer). */
    public boolean canSplit() {
        return commSplit.isPresent();
    }

    /** {@code ncclGroupStart}: batches the following calls (needed for send/recv pairs and multi-device loops). */
    public void groupStart() {
        try {
            check((int) groupStart.invokeExact(), "ncclGroupStart()", null);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code ncclGroupEnd}. */
    public void groupEnd() {
        try {
            check((int) groupEnd.invokeExact(), "ncclGroupEnd()", null);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** An {@code ncclComm_t}; {@link #close()} destroys it ({@code ncclCommDestroy}). */
    public final class Comm implements AutoCloseable {
        private final MemorySegment handle;
        private final String label;
        private boolean closed;

        private Comm(MemorySegment handle, String label) {
            this.handle = handle;
            this.label = label;
        }

        public MemorySegment handle() {
            return handle;
        }

        private int intQuery(MethodHandle h, String call) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(JAVA_INT);
                check((int) h.invokeExact(handle, out), call + "(" + label + ")", handle);
                return out.get(JAVA_INT, 0);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclCommCount}: number of ranks. */
        public int size() {
            return intQuery(commCount, "ncclCommCount");
        }

        /** {@code ncclCommUserRank}: this rank. */
        public int rank() {
            return intQuery(commUserRank, "ncclCommUserRank");
        }

        /** {@code ncclCommCuDevice}: the CUDA device of this rank. */
        public int cudaDevice() {
            return intQuery(commCuDevice, "ncclCommCuDevice");
        }

        /** {@code ncclAllReduce} of {@code count} elements (in place when {@code send == recv}). */
        public void allReduce(long send, long recv, long count, int dataType, int op, CudaStream stream) {
            try {
                check(
                        (int) allReduce.invokeExact(send, recv, count, dataType, op, handle, stream.handle()),
                        "ncclAllReduce(" + label + ", count=" + count + ", type=" + dataType + ", op=" + op + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclAllGather}: each rank contributes {@code sendCount} elements; recv holds size() * sendCount. */
        public void allGather(long send, long recv, long sendCount, int dataType, CudaStream stream) {
            try {
                check(
                        (int) allGather.invokeExact(send, recv, sendCount, dataType, handle, stream.handle()),
                        "ncclAllGather(" + label + ", sendCount=" + sendCount + ", type=" + dataType + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclReduceScatter}: send holds size() * recvCount elements; each rank gets its reduced block. */
        public void reduceScatter(long send, long recv, long recvCount, int dataType, int op, CudaStream stream) {
            try {
                check(
                        (int) reduceScatter.invokeExact(send, recv, recvCount, dataType, op, handle, stream.handle()),
                        "ncclReduceScatter(" + label + ", recvCount=" + recvCount + ", type=" + dataType + ", op=" + op
                                + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclBroadcast} of {@code count} elements from {@code root}. */
        public void broadcast(long send, long recv, long count, int dataType, int root, CudaStream stream) {
            try {
                check(
                        (int) broadcast.invokeExact(send, recv, count, dataType, root, handle, stream.handle()),
                        "ncclBroadcast(" + label + ", count=" + count + ", type=" + dataType + ", root=" + root + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclSend} to {@code peer} (pair with the peer's {@link #recv} inside a group). */
        public void send(long buffer, long count, int dataType, int peer, CudaStream stream) {
            try {
                check(
                        (int) send.invokeExact(buffer, count, dataType, peer, handle, stream.handle()),
                        "ncclSend(" + label + ", count=" + count + ", type=" + dataType + ", peer=" + peer + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclRecv} from {@code peer}. */
        public void recv(long buffer, long count, int dataType, int peer, CudaStream stream) {
            try {
                check(
                        (int) recv.invokeExact(buffer, count, dataType, peer, handle, stream.handle()),
                        "ncclRecv(" + label + ", count=" + count + ", type=" + dataType + ", peer=" + peer + ")",
                        handle);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /**
         * {@code ncclCommSplit} (default config): collective over this communicator's ranks; ranks with the same
         * {@code color} form a new communicator, ordered by {@code key}. {@link #SPLIT_NOCOLOR} joins none and
         * returns null. No unique id is exchanged and nothing is read back to the host.
         */
        public Comm split(int color, int key) {
            MethodHandle h = commSplit.orElseThrow(() -> new NativeLibraryException("ncclCommSplit not found in "
                    + origin + " (NCCL " + versionString(version()) + "): splitting needs NCCL 2.18 or newer; "
                    + "install a newer NCCL"));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ADDRESS);
                check(
                        (int) h.invokeExact(handle, color, key, out, MemorySegment.NULL),
                        "ncclCommSplit(" + label + ", color=" + color + ", key=" + key + ")",
                        handle);
                MemorySegment comm = out.get(ADDRESS, 0);
                return comm.equals(MemorySegment.NULL) ? null : new Comm(comm, "split of " + label + " color " + color);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclCommAbort}: frees the communicator without waiting for pending work (after an error). */
        public void abort() {
            if (closed) return;
            closed = true;
            try {
                check((int) commAbort.invokeExact(handle), "ncclCommAbort(" + label + ")", null);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }

        /** {@code ncclCommDestroy}; idempotent. */
        @Override
        public void close() {
            if (closed) return;
            closed = true;
            try {
                check((int) commDestroy.invokeExact(handle), "ncclCommDestroy(" + label + ")", null);
            } catch (Throwable t) {
                throw Native.rethrow(t);
            }
        }
    }
}
