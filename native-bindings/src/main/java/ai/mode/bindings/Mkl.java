package ai.mode.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * FFM bindings for the part of Intel oneMKL (through {@code libmkl_rt}) that the cpu backend uses as its vendor
 * SGEMM: row-major {@code cblas_sgemm} on Java float arrays, and the thread count.
 *
 * <p>Conditional numerical reproducibility: at load, before any other oneMKL call, the CNR mode is set to the
 * {@code AUTO} branch ({@code MKL_CBWR_Set}) unless the {@code MKL_CBWR} environment variable already chose one,
 * which oneMKL then reads itself. Without CNR, oneMKL's bits depend on the arrays' memory alignment, which changes
 * when the garbage collector moves them: on an AMD EPYC the same product on the same inputs gave different bits
 * before and after a full collection (docs/cpu-backend.md). {@code AUTO} keeps the code path oneMKL selects for
 * this CPU and makes it alignment-independent for the whole process.
 *
 * <p>{@code cblas_sgemm} is bound as a critical downcall with heap access, so it reads and writes the arrays in
 * place (no copies; the call is not a safepoint, so a collection waits for it: callers keep each call to
 * milliseconds). CBLAS returns no status and reports bad arguments by printing, so every argument is checked
 * here first, bounds included: a call that would read or write outside an array throws instead.
 */
@SuppressWarnings("restricted")
public final class Mkl {
    private static final int ROW_MAJOR = 101;
    private static final int NO_TRANS = 111;
    private static final int TRANS = 112;
    /** {@code MKL_CBWR_Get} selector of the code branch, and the strict-mode flag (mkl_service.h). */
    private static final int CBWR_BRANCH = 1, CBWR_STRICT = 0x10000;
    /** {@code MKL_CBWR_AUTO}: the branch oneMKL picks for this CPU, fixed for the process. */
    private static final int CBWR_AUTO = 2;
    /** {@code MKL_CBWR_OFF} and {@code MKL_CBWR_BRANCH_OFF}: no reproducibility mode. */
    private static final int CBWR_OFF = 0, CBWR_BRANCH_OFF = 1;
    /** The branch names of mkl_service.h, by code. */
    private static final String[] CBWR_BRANCHES = {
        "OFF",
        "BRANCH_OFF",
        "AUTO",
        "COMPATIBLE",
        "SSE2",
        "?",
        "SSSE3",
        "SSE4_1",
        "SSE4_2",
        "AVX",
        "AVX2",
        "AVX512_MIC",
        "AVX512",
        "AVX512_MIC_E1",
        "AVX512_E1"
    };

    private static final Native.Once<Mkl> INSTANCE = new Native.Once<>(() -> load(NativeLibraries.system()));

    private final String origin;
    private final MethodHandle sgemm;
    private final MethodHandle setNumThreads;
    private final MethodHandle setNumThreadsLocal;
    private final MethodHandle getMaxThreads;
    private final String version;
    private final String reproducibility;

    private Mkl(NativeLibraries.Loaded loaded) {
        SymbolLookup l = loaded.lookup();
        String n = loaded.soname();
        this.origin = loaded.origin();
        // first, before any other oneMKL call: oneMKL fixes its CNR mode at the first call that needs it
        MethodHandle cbwrSet = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT), "MKL_CBWR_Set");
        MethodHandle cbwrGet = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT), "MKL_CBWR_Get");
        this.reproducibility = setReproducibility(cbwrSet, cbwrGet, System.getenv("MKL_CBWR"), n);
        this.sgemm = Native.function(
                l,
                n,
                FunctionDescriptor.ofVoid(
                        JAVA_INT,
                        JAVA_INT,
                        JAVA_INT,
                        JAVA_INT,
                        JAVA_INT,
                        JAVA_INT,
                        JAVA_FLOAT,
                        ADDRESS,
                        JAVA_INT,
                        ADDRESS,
                        JAVA_INT,
                        JAVA_FLOAT,
                        ADDRESS,
                        JAVA_INT),
                Linker.Option.critical(true),
                "cblas_sgemm");
        this.setNumThreads = Native.function(l, n, FunctionDescriptor.ofVoid(JAVA_INT), "MKL_Set_Num_Threads");
        this.setNumThreadsLocal =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT), "MKL_Set_Num_Threads_Local");
        this.getMaxThreads = Native.function(l, n, FunctionDescriptor.of(JAVA_INT), "MKL_Get_Max_Threads");
        MethodHandle versionString =
                Native.function(l, n, FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT), "MKL_Get_Version_String");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256);
            versionString.invokeExact(buf, 256);
            this.version = buf.getString(0).trim();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Sets CNR to {@code AUTO} unless {@code MKL_CBWR} (the environment) chose a mode, then reads the mode back as
     * e.g. {@code cnr AUTO} or {@code cnr AVX2,STRICT}; a mode oneMKL refuses, or no mode at all, is a
     * {@link NativeLibraryException}: without it oneMKL's results are not reproducible.
     */
    private static String setReproducibility(
            MethodHandle set, MethodHandle get, String fromEnvironment, String soname) {
        try {
            if (fromEnvironment == null || fromEnvironment.isBlank()) {
                int status = (int) set.invokeExact(CBWR_AUTO);
                if (status != 0) {
                    throw new NativeLibraryException("MKL_CBWR_Set(MKL_CBWR_AUTO) in " + soname + " returned " + status
                            + " (" + cbwrError(status)
                            + "); oneMKL's results would not be reproducible, so it is not used");
                }
            }
            int all = (int) get.invokeExact(~0);
            int branch = (int) get.invokeExact(CBWR_BRANCH);
            if (branch == CBWR_OFF || branch == CBWR_BRANCH_OFF) {
                throw new NativeLibraryException("oneMKL's conditional numerical reproducibility is off (MKL_CBWR="
                        + fromEnvironment + "); unset MKL_CBWR or give a branch, e.g. MKL_CBWR=AUTO");
            }
            return "cnr " + branchName(branch) + ((all & CBWR_STRICT) != 0 ? ",STRICT" : "");
        } catch (NativeLibraryException e) {
            throw e;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private static String branchName(int branch) {
        return branch >= 0 && branch < CBWR_BRANCHES.length ? CBWR_BRANCHES[branch] : "branch " + branch;
    }

    private static String cbwrError(int status) {
        return switch (status) {
            case -1 -> "invalid settings";
            case -2 -> "invalid input";
            case -3 -> "branch not supported on this CPU";
            case -4 -> "unknown branch";
            case -8 -> "mode change failed: oneMKL was already used in this process";
            default -> "unknown status";
        };
    }

    /** oneMKL from {@code libraries}; throws {@link NativeLibraryException} (one line) when it is missing. */
    public static Mkl load(NativeLibraries libraries) {
        return new Mkl(libraries.load(NativeLibraries.Library.MKL));
    }

    /** oneMKL, found by the process-wide discovery once per JVM. */
    public static Mkl get() {
        return INSTANCE.get();
    }

    /** Empty when oneMKL loads, else the one-line reason. */
    public static Optional<String> unavailableReason() {
        try {
            get();
            return Optional.empty();
        } catch (NativeLibraryException e) {
            return Optional.of(e.getMessage());
        }
    }

    /** Where the library was loaded from. */
    public String origin() {
        return origin;
    }

    /** {@code MKL_Get_Version_String} (read at load), e.g. {@code Intel(R) oneAPI Math Kernel Library Version 2025.3-Product ...}. */
    public String version() {
        return version;
    }

    /**
     * The conditional numerical reproducibility mode in force, e.g. {@code cnr AUTO}: results are bitwise
     * reproducible from call to call and run to run on this CPU with this oneMKL.
     */
    public String reproducibility() {
        return reproducibility;
    }

    /** {@code MKL_Set_Num_Threads}: threads of every later call that sets no thread-local count (1: sequential). */
    public void setNumThreads(int threads) {
        if (threads < 1)
            throw new IllegalArgumentException("MKL_Set_Num_Threads: threads must be >= 1 but is " + threads);
        try {
            setNumThreads.invokeExact(threads);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * {@code MKL_Set_Num_Threads_Local}: threads of the calling thread's later calls (0: back to the process-wide
     * count); returns the previous local count, 0 when none was set.
     */
    public int setNumThreadsLocal(int threads) {
        if (threads < 0)
            throw new IllegalArgumentException("MKL_Set_Num_Threads_Local: threads must be >= 0 but is " + threads);
        try {
            return (int) setNumThreadsLocal.invokeExact(threads);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code MKL_Get_Max_Threads}: threads the calling thread's next call may use. */
    public int maxThreads() {
        try {
            return (int) getMaxThreads.invokeExact();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Row-major {@code C = alpha op(A) op(B) + beta C} by {@code cblas_sgemm}. op(A) is m x k, stored
     * {@code [m, lda]} (or, transposed, {@code [k, lda]}) from {@code a[aOff]}; op(B) is k x n, stored
     * {@code [k, ldb]} (or {@code [n, ldb]}); C is {@code [m, ldc]} from {@code c[cOff]}. beta 0 never reads C.
     */
    public void sgemm(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            float alpha,
            float[] a,
            int aOff,
            int lda,
            float[] b,
            int bOff,
            int ldb,
            float beta,
            float[] c,
            int cOff,
            int ldc) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("cblas_sgemm: negative size m=" + m + " n=" + n + " k=" + k);
        }
        if (m == 0 || n == 0) return;
        checkMatrix("a", a, aOff, transA ? k : m, transA ? m : k, lda);
        checkMatrix("b", b, bOff, transB ? n : k, transB ? k : n, ldb);
        checkMatrix("c", c, cOff, m, n, ldc);
        try {
            sgemm.invokeExact(
                    ROW_MAJOR,
                    transA ? TRANS : NO_TRANS,
                    transB ? TRANS : NO_TRANS,
                    m,
                    n,
                    k,
                    alpha,
                    MemorySegment.ofArray(a).asSlice(4L * aOff),
                    Math.max(1, lda),
                    MemorySegment.ofArray(b).asSlice(4L * bOff),
                    Math.max(1, ldb),
                    beta,
                    MemorySegment.ofArray(c).asSlice(4L * cOff),
                    Math.max(1, ldc));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** A rows x cols row-major matrix with leading dimension ld at array[off] must lie inside the array. */
    private static void checkMatrix(String name, float[] array, int off, int rows, int cols, int ld) {
        if (array == null) throw new IllegalArgumentException("cblas_sgemm: " + name + " is null");
        if (ld < cols) {
            throw new IllegalArgumentException("cblas_sgemm: leading dimension of " + name + " is " + ld
                    + " but its rows have " + cols + " columns");
        }
        long last = rows == 0 || cols == 0 ? off : off + (long) (rows - 1) * ld + cols;
        if (off < 0 || last > array.length) {
            throw new IllegalArgumentException(
                    "cblas_sgemm: " + name + " [" + rows + ", " + cols + "] with leading dimension " + ld
                            + " at offset " + off + " runs past its array of " + array.length + " floats");
        }
    }
}
