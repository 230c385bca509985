package ai.mode.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * FFM binding to OpenBLAS, the SGEMM peer of our cpu backend and the target of the native-call overhead benchmark. The
 * library comes from bytedeco's Maven jar (a carrier of libopenblas.so, always on our classpath, so anyone who can
 * build the project can reproduce the comparison) or from a system install (Debian's libopenblas0-pthread), or from an
 * explicit path.
 *
 * <p>One loaded OpenBLAS: {@code cblas_sgemm}, {@code cblas_sdot} and the thread controls, through FFM.
 * Row-major SGEMM on native memory segments. Close it to release the library lookup's arena.
 */
public final class OpenBlas implements AutoCloseable {

    /** Where Debian and other distributions put the pthread build of OpenBLAS. */
    static final List<String> SYSTEM_PATHS = List.of(
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
            "/usr/lib64/libopenblas.so.0",
            "/usr/lib/libopenblas.so.0");

    private static final int CBLAS_ROW_MAJOR = 101;
    private static final int CBLAS_NO_TRANS = 111;
    private static final int CBLAS_TRANS = 112;

    private final Arena arena;
    private final String source;
    private final Path path;
    private final SymbolLookup lookup;
    private final MethodHandle sgemm;
    private final MethodHandle sdot;
    private final MethodHandle setThreads;
    private final MethodHandle getThreads;
    private final MethodHandle getConfig;
    private final MethodHandle getParallel;

    private OpenBlas(String source, Path path) {
        this.source = source;
        this.path = path;
        this.arena = Arena.ofShared();
        try {
            this.lookup = SymbolLookup.libraryLookup(path, arena);
        } catch (IllegalArgumentException e) {
            arena.close();
            throw new IllegalStateException("could not load OpenBLAS from " + path + ": " + e.getMessage(), e);
        }
        Linker linker = Linker.nativeLinker();
        ValueLayout.OfInt i = ValueLayout.JAVA_INT;
        ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT;
        this.sgemm = linker.downcallHandle(
                symbol("cblas_sgemm"),
                FunctionDescriptor.ofVoid(
                        i,
                        i,
                        i,
                        i,
                        i,
                        i,
                        f,
                        ValueLayout.ADDRESS,
                        i,
                        ValueLayout.ADDRESS,
                        i,
                        f,
                        ValueLayout.ADDRESS,
                        i));
        this.sdot = linker.downcallHandle(
                symbol("cblas_sdot"), FunctionDescriptor.of(f, i, ValueLayout.ADDRESS, i, ValueLayout.ADDRESS, i));
        this.setThreads = linker.downcallHandle(symbol("openblas_set_num_threads"), FunctionDescriptor.ofVoid(i));
        this.getThreads = linker.downcallHandle(symbol("openblas_get_num_threads"), FunctionDescriptor.of(i));
        this.getConfig =
                linker.downcallHandle(symbol("openblas_get_config"), FunctionDescriptor.of(ValueLayout.ADDRESS));
        this.getParallel = linker.downcallHandle(symbol("openblas_get_parallel"), FunctionDescriptor.of(i));
    }

    /**
     * Loads OpenBLAS. {@code spec}: {@code bytedeco} (the jar on our classpath), {@code system} (the first of
     * {@link #SYSTEM_PATHS} that exists), {@code auto} (bytedeco, else system) or a file path.
     */
    public static OpenBlas load(String spec) {
        return switch (spec) {
            case "bytedeco" -> new OpenBlas("bytedeco", bytedecoLibrary());
            case "system" ->
                new OpenBlas(
                        "system",
                        systemLibrary()
                                .orElseThrow(
                                        () -> new IllegalStateException(
                                                "no system OpenBLAS found (looked at " + String.join(", ", SYSTEM_PATHS)
                                                        + "); install it (Debian: apt-get install libopenblas0-pthread) or use --openblas bytedeco")));
            case "auto" -> {
                try {
                    yield new OpenBlas("bytedeco", bytedecoLibrary());
                } catch (RuntimeException | LinkageError e) {
                    yield load("system");
                }
            }
            default -> {
                Path p = Path.of(spec);
                if (!Files.isRegularFile(p)) {
                    throw new IllegalArgumentException("--openblas " + spec
                            + ": no such file; give bytedeco, system, auto or the path of libopenblas.so");
                }
                yield new OpenBlas("path", p);
            }
        };
    }

    /** The system OpenBLAS, if one of the usual paths exists. */
    public static java.util.Optional<Path> systemLibrary() {
        return SYSTEM_PATHS.stream().map(Path::of).filter(Files::isRegularFile).findFirst();
    }

    /**
     * Loads bytedeco's JavaCPP OpenBLAS preset {@code openblas_nolapack} (which extracts libopenblas and its
     * libgfortran into JavaCPP's cache and loads them) and returns the extracted library's path, so that FFM
     * and JavaCPP call the very same library.
     */
    public static Path bytedecoLibrary() {
        return bytedecoLibrary(org.bytedeco.openblas.global.openblas_nolapack.class, "openblas_nolapack@.0");
    }

    /**
     * Loads a JavaCPP OpenBLAS preset class and returns the path of the library it registered under {@code key}
     * (JavaCPP copies libopenblas once per preset: {@code openblas_nolapack@.0}, {@code openblas@.0}).
     */
    public static Path bytedecoLibrary(Class<?> preset, String key) {
        org.bytedeco.javacpp.Loader.load(preset);
        Map<String, String> loaded = org.bytedeco.javacpp.Loader.getLoadedLibraries();
        String where = loaded.get(key);
        if (where == null) {
            throw new IllegalStateException("bytedeco's " + preset.getSimpleName() + " loaded but registered no " + key
                    + " among " + loaded.keySet());
        }
        return Path.of(where);
    }

    private MemorySegment symbol(String name) {
        return lookup.find(name)
                .orElseThrow(() -> new IllegalStateException(
                        "OpenBLAS at " + path + " has no symbol " + name + "; is it a CBLAS-enabled OpenBLAS build?"));
    }

    /** {@code bytedeco}, {@code system} or {@code path}. */
    public String source() {
        return source;
    }

    public Path path() {
        return path;
    }

    /** The function's address, for other callers (JNI shim) of the same library. */
    public MemorySegment address(String symbolName) {
        return symbol(symbolName);
    }

    /** The build string, e.g. {@code OpenBLAS 0.3.31 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64}. */
    public String config() {
        try {
            MemorySegment s = (MemorySegment) getConfig.invokeExact();
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_config failed: " + t, t);
        }
    }

    /** 0 sequential, 1 pthreads, 2 OpenMP. */
    public int parallelMode() {
        try {
            return (int) getParallel.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_parallel failed: " + t, t);
        }
    }

    public void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("OpenBLAS thread count must be >= 1, got " + n);
        try {
            setThreads.invokeExact(n);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_set_num_threads(" + n + ") failed: " + t, t);
        }
        int now = threads();
        if (now != n)
            throw new IllegalStateException(
                    "openblas_set_num_threads(" + n + ") left " + now + " threads (library built for fewer?)");
    }

    public int threads() {
        try {
            return (int) getThreads.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_num_threads failed: " + t, t);
        }
    }

    /**
     * Row-major {@code c[m,n] = alpha op(a) op(b) + beta c}: a is [m,k] (or [k,m] if transA), b [k,n] (or [n,k]
     * if transB), all float32, contiguous.
     */
    public void sgemm(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            float alpha,
            MemorySegment a,
            MemorySegment b,
            float beta,
            MemorySegment c) {
        if (m < 1 || n < 1 || k < 1)
            throw new IllegalArgumentException("cblas_sgemm: sizes must be >= 1, got m=" + m + " n=" + n + " k=" + k);
        requireFloats("a", a, (long) m * k);
        requireFloats("b", b, (long) k * n);
        requireFloats("c", c, (long) m * n);
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        try {
            sgemm.invokeExact(
                    CBLAS_ROW_MAJOR,
                    transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
                    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
                    m,
                    n,
                    k,
                    alpha,
                    a,
                    lda,
                    b,
                    ldb,
                    beta,
                    c,
                    n);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm(m=" + m + ", n=" + n + ", k=" + k + ") failed: " + t, t);
        }
    }

    /** {@code sum x[i] y[i]} over n contiguous floats. */
    public float sdot(int n, MemorySegment x, MemorySegment y) {
        requireFloats("x", x, n);
        requireFloats("y", y, n);
        try {
            return (float) sdot.invokeExact(n, x, 1, y, 1);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sdot(n=" + n + ") failed: " + t, t);
        }
    }

    private static void requireFloats(String name, MemorySegment s, long count) {
        if (!s.isNative()) throw new IllegalArgumentException("OpenBLAS " + name + " must be native memory");
        if (s.byteSize() < count * Float.BYTES) {
            throw new IllegalArgumentException(
                    "OpenBLAS " + name + " holds " + s.byteSize() / Float.BYTES + " floats, needs " + count);
        }
    }

    /** One line naming the library for reports. */
    public String describe() {
        String mode = switch (parallelMode()) {
            case 0 -> "sequential";
            case 1 -> "pthreads";
            case 2 -> "OpenMP";
            default -> "parallel=" + parallelMode();
        };
        return config().trim() + " (" + source + ", " + mode + ", " + path + ")";
    }

    @Override
    public void close() {
        arena.close();
    }
}
