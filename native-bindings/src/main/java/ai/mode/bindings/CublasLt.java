package ai.mode.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;

/**
 * FFM bindings for cuBLASLt: handle, matmul descriptor, matrix layouts (with strided batches),
 * preferences, the algorithm heuristic and {@code cublasLtMatmul}; enough for float32 and bf16 GEMMs with
 * float32 accumulation and transposes. cuBLASLt matrices are column-major by default; callers with
 * row-major data swap the operands (see {@code CublasLtGemm} in the cuda backend).
 *
 * <p>{@link #version()} and the status names work without a GPU; {@link #create()} needs a current CUDA
 * context (without a driver it fails with {@code CUBLAS_STATUS_NOT_INITIALIZED}).
 */
public final class CublasLt {
    /** {@code cublasComputeType_t}. */
    public static final int COMPUTE_32F = 68;

    public static final int COMPUTE_32F_FAST_16BF = 75;
    public static final int COMPUTE_32F_FAST_TF32 = 77;
    /** {@code cudaDataType_t}. */
    public static final int R_32F = 0;

    public static final int R_16F = 2;
    public static final int R_16BF = 14;
    /** {@code cublasOperation_t}. */
    public static final int OP_N = 0;

    public static final int OP_T = 1;
    /** {@code cublasLtOrder_t}. */
    public static final int ORDER_COL = 0;

    public static final int ORDER_ROW = 1;

    private static final int DESC_TRANSA = 3;
    private static final int DESC_TRANSB = 4;
    private static final int LAYOUT_ORDER = 1;
    private static final int LAYOUT_BATCH_COUNT = 5;
    private static final int LAYOUT_STRIDED_BATCH_OFFSET = 6;
    private static final int PREF_MAX_WORKSPACE_BYTES = 1;
    private static final int PREF_MIN_ALIGNMENT_A_BYTES = 5;

    /** {@code cublasLtMatmulHeuristicResult_t}: algo (uint64_t[8]), workspaceSize, state, wavesCount, reserved[4]. */
    public static final StructLayout HEURISTIC_RESULT = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("algo"),
            JAVA_LONG.withName("workspaceSize"),
            JAVA_INT.withName("state"),
            JAVA_FLOAT.withName("wavesCount"),
            MemoryLayout.sequenceLayout(4, JAVA_INT).withName("reserved"));

    private static final long ALGO_BYTES = 64;
    private static final long WORKSPACE_OFFSET = offset("workspaceSize");
    private static final long STATE_OFFSET = offset("state");
    private static final long WAVES_OFFSET = offset("wavesCount");

    private static long offset(String field) {
        return HEURISTIC_RESULT.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(0, "CUBLAS_STATUS_SUCCESS"),
            Map.entry(1, "CUBLAS_STATUS_NOT_INITIALIZED"),
            Map.entry(3, "CUBLAS_STATUS_ALLOC_FAILED"),
            Map.entry(7, "CUBLAS_STATUS_INVALID_VALUE"),
            Map.entry(8, "CUBLAS_STATUS_ARCH_MISMATCH"),
            Map.entry(11, "CUBLAS_STATUS_MAPPING_ERROR"),
            Map.entry(13, "CUBLAS_STATUS_EXECUTION_FAILED"),
            Map.entry(14, "CUBLAS_STATUS_INTERNAL_ERROR"),
            Map.entry(15, "CUBLAS_STATUS_NOT_SUPPORTED"),
            Map.entry(16, "CUBLAS_STATUS_LICENSE_ERROR"));

    private static final Native.Once<CublasLt> INSTANCE =
            new Native.Once<>(() -> new CublasLt(NativeLibraries.system().load(NativeLibraries.Library.CUBLASLT)));

    private final String origin;
    private final MethodHandle getVersion, getStatusName, getStatusString, ltCreate, ltDestroy;
    private final MethodHandle descCreate, descDestroy, descSetAttribute;
    private final MethodHandle layoutCreate, layoutDestroy, layoutSetAttribute;
    private final MethodHandle prefCreate, prefDestroy, prefSetAttribute;
    private final MethodHandle algoGetHeuristic, matmul;

    private CublasLt(NativeLibraries.Loaded lib) {
        this.origin = lib.origin();
        SymbolLookup l = lib.lookup();
        String n = lib.soname();
        getVersion = Native.function(l, n, FunctionDescriptor.of(JAVA_LONG), "cublasLtGetVersion");
        getStatusName = Native.function(l, n, FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasLtGetStatusName");
        getStatusString = Native.function(l, n, FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasLtGetStatusString");
        ltCreate = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtCreate");
        ltDestroy = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtDestroy");
        descCreate = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cublasLtMatmulDescCreate");
        descDestroy = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtMatmulDescDestroy");
        descSetAttribute = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG),
                "cublasLtMatmulDescSetAttribute");
        layoutCreate = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                "cublasLtMatrixLayoutCreate");
        layoutDestroy = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtMatrixLayoutDestroy");
        layoutSetAttribute = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG),
                "cublasLtMatrixLayoutSetAttribute");
        prefCreate = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtMatmulPreferenceCreate");
        prefDestroy =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasLtMatmulPreferenceDestroy");
        prefSetAttribute = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG),
                "cublasLtMatmulPreferenceSetAttribute");
        algoGetHeuristic = Native.function(
                l,
                n,
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS,
                        ADDRESS),
                "cublasLtMatmulAlgoGetHeuristic");
        matmul = Native.function(
                l,
                n,
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                        ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS),
                "cublasLtMatmul");
    }

    /** cuBLASLt, loaded once per JVM; throws {@link NativeLibraryException} (one line) when it is missing. */
    public static CublasLt get() {
        return INSTANCE.get();
    }

    /**
     * Bindings over an explicitly loaded library (e.g. one found by a custom {@link NativeLibraries}); not
     * cached. {@link #get()} is the normal entry point.
     */
    public static CublasLt bind(NativeLibraries.Loaded library) {
        return new CublasLt(library);
    }

    /** Empty when cuBLASLt loads, else the one-line reason. */
    public static Optional<String> unavailableReason() {
        return NativeLibraries.system().problem(NativeLibraries.Library.CUBLASLT);
    }

    /** Our name for a {@code cublasStatus_t} (works without the library). */
    public static String statusName(int code) {
        return NAMES.getOrDefault(code, "cublasStatus(" + code + ")");
    }

    /** Every status the built-in table knows. */
    public static Map<Integer, String> statusNames() {
        return NAMES;
    }

    /** Where the library was loaded from. */
    public String origin() {
        return origin;
    }

    /** {@code cublasLtGetVersion}, e.g. 120603 for 12.6.3. */
    public long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cublasLtGetStatusName}: the library's name for a status. */
    public String libraryStatusName(int code) {
        try {
            return Native.string((MemorySegment) getStatusName.invokeExact(code));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cublasLtGetStatusString}: the library's description of a status. */
    public String statusString(int code) {
        try {
            return Native.string((MemorySegment) getStatusString.invokeExact(code));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void check(int rc, String call) {
        if (rc != 0) throw new CublasException(call, rc, statusName(rc), statusString(rc));
    }

    // ---------------------------------------------------------------- handles

    /** {@code cublasLtCreate}; needs a current CUDA context. */
    public Handle create() {
        return new Handle(createOpaque(ltCreate, "cublasLtCreate()"));
    }

    /** {@code cublasLtMatmulDescCreate} with {@code computeType} (e.g. {@link #COMPUTE_32F}) and alpha/beta type. */
    public MatmulDesc createMatmulDesc(int computeType, int scaleType) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(
                    (int) descCreate.invokeExact(out, computeType, scaleType),
                    "cublasLtMatmulDescCreate(computeType=" + computeType + ", scaleType=" + scaleType + ")");
            return new MatmulDesc(out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cublasLtMatrixLayoutCreate}: a {@code rows x cols} matrix of {@code dataType}, column-major, leading dimension {@code ld}. */
    public Layout createLayout(int dataType, long rows, long cols, long ld) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(
                    (int) layoutCreate.invokeExact(out, dataType, rows, cols, ld),
                    "cublasLtMatrixLayoutCreate(type=" + dataType + ", rows=" + rows + ", cols=" + cols + ", ld=" + ld
                            + ")");
            return new Layout(out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cublasLtMatmulPreferenceCreate}. */
    public Preference createPreference() {
        return new Preference(createOpaque(prefCreate, "cublasLtMatmulPreferenceCreate()"));
    }

    private MemorySegment createOpaque(MethodHandle create, String call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) create.invokeExact(out), call);
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private void destroy(MethodHandle destroy, MemorySegment handle, String call) {
        try {
            check((int) destroy.invokeExact(handle), call);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private void setAttribute(MethodHandle set, MemorySegment handle, int attribute, MemorySegment value, String call) {
        try {
            check((int) set.invokeExact(handle, attribute, value, value.byteSize()), call);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** A {@code cublasLtHandle_t}. */
    public final class Handle implements AutoCloseable {
        private final MemorySegment handle;
        private boolean closed;

        private Handle(MemorySegment handle) {
            this.handle = handle;
        }

        public MemorySegment handle() {
            return handle;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            destroy(ltDestroy, handle, "cublasLtDestroy()");
        }
    }

    /** A {@code cublasLtMatmulDesc_t}. */
    public final class MatmulDesc implements AutoCloseable {
        private final MemorySegment handle;
        private boolean closed;

        private MatmulDesc(MemorySegment handle) {
            this.handle = handle;
        }

        public MemorySegment handle() {
            return handle;
        }

        /** Sets {@code CUBLASLT_MATMUL_DESC_TRANSA/TRANSB} ({@link #OP_N} or {@link #OP_T}). */
        public MatmulDesc transposes(int opA, int opB) {
            try (Arena arena = Arena.ofConfined()) {
                setAttribute(
                        descSetAttribute,
                        handle,
                        DESC_TRANSA,
                        arena.allocateFrom(JAVA_INT, opA),
                        "cublasLtMatmulDescSetAttribute(TRANSA=" + opA + ")");
                setAttribute(
                        descSetAttribute,
                        handle,
                        DESC_TRANSB,
                        arena.allocateFrom(JAVA_INT, opB),
                        "cublasLtMatmulDescSetAttribute(TRANSB=" + opB + ")");
            }
            return this;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            destroy(descDestroy, handle, "cublasLtMatmulDescDestroy()");
        }
    }

    /** A {@code cublasLtMatrixLayout_t}. */
    public final class Layout implements AutoCloseable {
        private final MemorySegment handle;
        private boolean closed;

        private Layout(MemorySegment handle) {
            this.handle = handle;
        }

        public MemorySegment handle() {
            return handle;
        }

        /** Sets {@code CUBLASLT_MATRIX_LAYOUT_ORDER} ({@link #ORDER_COL} or {@link #ORDER_ROW}). */
        public Layout order(int order) {
            try (Arena arena = Arena.ofConfined()) {
                setAttribute(
                        layoutSetAttribute,
                        handle,
                        LAYOUT_ORDER,
                        arena.allocateFrom(JAVA_INT, order),
                        "cublasLtMatrixLayoutSetAttribute(ORDER=" + order + ")");
            }
            return this;
        }

        /** A strided batch of {@code count} matrices, {@code strideElements} apart (0 repeats one matrix). */
        public Layout batch(int count, long strideElements) {
            try (Arena arena = Arena.ofConfined()) {
                setAttribute(
                        layoutSetAttribute,
                        handle,
                        LAYOUT_BATCH_COUNT,
                        arena.allocateFrom(JAVA_INT, count),
                        "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT=" + count + ")");
                setAttribute(
                        layoutSetAttribute,
                        handle,
                        LAYOUT_STRIDED_BATCH_OFFSET,
                        arena.allocateFrom(JAVA_LONG, strideElements),
                        "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET=" + strideElements + ")");
            }
            return this;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            destroy(layoutDestroy, handle, "cublasLtMatrixLayoutDestroy()");
        }
    }

    /** A {@code cublasLtMatmulPreference_t}. */
    public final class Preference implements AutoCloseable {
        private final MemorySegment handle;
        private boolean closed;

        private Preference(MemorySegment handle) {
            this.handle = handle;
        }

        public MemorySegment handle() {
            return handle;
        }

        /** {@code CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES}. */
        public Preference maxWorkspace(long bytes) {
            try (Arena arena = Arena.ofConfined()) {
                setAttribute(
                        prefSetAttribute,
                        handle,
                        PREF_MAX_WORKSPACE_BYTES,
                        arena.allocateFrom(JAVA_LONG, bytes),
                        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES=" + bytes + ")");
            }
            return this;
        }

        /** {@code CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES}: the guaranteed pointer alignments. */
        public Preference minAlignments(int a, int b, int c, int d) {
            int[] values = {a, b, c, d};
            try (Arena arena = Arena.ofConfined()) {
                for (int i = 0; i < 4; i++) {
                    setAttribute(
                            prefSetAttribute,
                            handle,
                            PREF_MIN_ALIGNMENT_A_BYTES + i,
                            arena.allocateFrom(JAVA_INT, values[i]),
                            "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_" + "ABCD".charAt(i) + "_BYTES="
                                    + values[i] + ")");
                }
            }
            return this;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            destroy(prefDestroy, handle, "cublasLtMatmulPreferenceDestroy()");
        }
    }

    // ---------------------------------------------------------------- heuristic and matmul

    /**
     * A chosen algorithm.
     *
     * @param algo           the 64-byte {@code cublasLtMatmulAlgo_t}, in the arena passed to {@link #heuristic}
     * @param workspaceBytes workspace it needs
     * @param waves          cuBLASLt's estimate of GPU waves
     */
    public record Algo(MemorySegment algo, long workspaceBytes, float waves) {}

    /**
     * {@code cublasLtMatmulAlgoGetHeuristic} for one problem; the best algorithm, or empty when cuBLASLt has
     * none ({@code CUBLAS_STATUS_NOT_SUPPORTED} or zero results). The algorithm is copied into {@code arena}.
     */
    public Optional<Algo> heuristic(
            Handle h, MatmulDesc desc, Layout a, Layout b, Layout c, Layout d, Preference pref, Arena arena) {
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment result = tmp.allocate(HEURISTIC_RESULT);
            MemorySegment count = tmp.allocate(JAVA_INT);
            int rc = (int) algoGetHeuristic.invokeExact(
                    h.handle(),
                    desc.handle(),
                    a.handle(),
                    b.handle(),
                    c.handle(),
                    d.handle(),
                    pref.handle(),
                    1,
                    result,
                    count);
            if (rc == 15 || (rc == 0 && count.get(JAVA_INT, 0) == 0)) return Optional.empty();
            check(rc, "cublasLtMatmulAlgoGetHeuristic(requested=1)");
            int state = result.get(JAVA_INT, STATE_OFFSET);
            if (state != 0) return Optional.empty();
            MemorySegment algo = arena.allocate(ALGO_BYTES, 8);
            algo.copyFrom(result.asSlice(0, ALGO_BYTES));
            return Optional.of(
                    new Algo(algo, result.get(JAVA_LONG, WORKSPACE_OFFSET), result.get(JAVA_FLOAT, WAVES_OFFSET)));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * {@code cublasLtMatmul}: {@code D = alpha * op(A) op(B) + beta * C} queued on {@code stream}.
     * {@code alpha} and {@code beta} point to host scalars of the descriptor's scale type; matrices are
     * device addresses; {@code algo} may be null to let cuBLASLt choose.
     */
    public void matmul(
            Handle h,
            MatmulDesc desc,
            MemorySegment alpha,
            long a,
            Layout aDesc,
            long b,
            Layout bDesc,
            MemorySegment beta,
            long c,
            Layout cDesc,
            long d,
            Layout dDesc,
            Algo algo,
            long workspace,
            long workspaceBytes,
            CudaStream stream,
            String label) {
        int rc;
        // a local, not a conditional expression in the call: invokeExact would see the conditional as Object
        MemorySegment algoSegment = algo == null ? MemorySegment.NULL : algo.algo();
        try {
            rc = (int) matmul.invokeExact(
                    h.handle(),
                    desc.handle(),
                    alpha,
                    MemorySegment.ofAddress(a),
                    aDesc.handle(),
                    MemorySegment.ofAddress(b),
                    bDesc.handle(),
                    beta,
                    MemorySegment.ofAddress(c),
                    cDesc.handle(),
                    MemorySegment.ofAddress(d),
                    dDesc.handle(),
                    algoSegment,
                    MemorySegment.ofAddress(workspace),
                    workspaceBytes,
                    stream.handle());
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        if (rc != 0) check(rc, "cublasLtMatmul(" + label + ")");
    }
}
