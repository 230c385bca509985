package ai.mode.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * FFM bindings for NVRTC, the CUDA runtime compiler: version, supported architectures, and compilation of
 * CUDA C++ source to PTX or CUBIN with the compiler log. Needs no GPU and no driver.
 *
 * <p>CUDA headers ({@code cuda_bf16.h}, {@code mma.h}, ...) are not built into NVRTC.
 * {@link #includeDirectories()} finds them: the local CUDA toolkit's {@code include} directory, and the
 * headers bundled in NVRTC 13.3+ ({@code nvrtcInstallBundledHeaders}, extracted once to a cache directory).
 */
public final class Nvrtc {
    private static final System.Logger LOG = System.getLogger(Nvrtc.class.getName());

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(0, "NVRTC_SUCCESS"),
            Map.entry(1, "NVRTC_ERROR_OUT_OF_MEMORY"),
            Map.entry(2, "NVRTC_ERROR_PROGRAM_CREATION_FAILURE"),
            Map.entry(3, "NVRTC_ERROR_INVALID_INPUT"),
            Map.entry(4, "NVRTC_ERROR_INVALID_PROGRAM"),
            Map.entry(5, "NVRTC_ERROR_INVALID_OPTION"),
            Map.entry(6, "NVRTC_ERROR_COMPILATION"),
            Map.entry(7, "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE"),
            Map.entry(8, "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION"),
            Map.entry(9, "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION"),
            Map.entry(10, "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID"),
            Map.entry(11, "NVRTC_ERROR_INTERNAL_ERROR"),
            Map.entry(12, "NVRTC_ERROR_TIME_FILE_WRITE_FAILED"),
            Map.entry(13, "NVRTC_ERROR_NO_PCH_CREATE_ATTEMPTED"),
            Map.entry(14, "NVRTC_ERROR_PCH_CREATE_HEAP_EXHAUSTED"),
            Map.entry(15, "NVRTC_ERROR_PCH_CREATE"),
            Map.entry(16, "NVRTC_ERROR_CANCELLED"));

    /** The NVRTC error code of a failed compilation. */
    public static final int ERROR_COMPILATION = 6;

    private static final Native.Once<Nvrtc> INSTANCE =
            new Native.Once<>(() -> new Nvrtc(NativeLibraries.system().load(NativeLibraries.Library.NVRTC)));

    private final String origin;
    private final MethodHandle nvrtcGetErrorString, nvrtcVersion, nvrtcGetNumSupportedArchs, nvrtcGetSupportedArchs;
    private final MethodHandle nvrtcCreateProgram, nvrtcDestroyProgram, nvrtcCompileProgram;
    private final MethodHandle nvrtcGetPTXSize, nvrtcGetPTX, nvrtcGetCUBINSize, nvrtcGetCUBIN;
    private final MethodHandle nvrtcGetProgramLogSize, nvrtcGetProgramLog;
    private final Optional<MethodHandle> nvrtcInstallBundledHeaders;
    private volatile List<Path> includeDirectories;

    private Nvrtc(NativeLibraries.Loaded lib) {
        this.origin = lib.origin();
        SymbolLookup l = lib.lookup();
        String n = lib.soname();
        nvrtcGetErrorString = Native.function(l, n, FunctionDescriptor.of(ADDRESS, JAVA_INT), "nvrtcGetErrorString");
        nvrtcVersion = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcVersion");
        nvrtcGetNumSupportedArchs =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcGetNumSupportedArchs");
        nvrtcGetSupportedArchs =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcGetSupportedArchs");
        nvrtcCreateProgram = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
                "nvrtcCreateProgram");
        nvrtcDestroyProgram = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcDestroyProgram");
        nvrtcCompileProgram = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "nvrtcCompileProgram");
        nvrtcGetPTXSize = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetPTXSize");
        nvrtcGetPTX = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetPTX");
        nvrtcGetCUBINSize =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBINSize");
        nvrtcGetCUBIN = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBIN");
        nvrtcGetProgramLogSize =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLogSize");
        nvrtcGetProgramLog =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLog");
        // NVRTC 13.3+: nvrtcResult nvrtcInstallBundledHeaders(const char* path, unsigned flags, const char** errorLog)
        nvrtcInstallBundledHeaders = Native.optionalFunction(
                l, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "nvrtcInstallBundledHeaders");
    }

    /** NVRTC, loaded once per JVM; throws {@link NativeLibraryException} (one line) when it is missing. */
    public static Nvrtc get() {
        return INSTANCE.get();
    }

    /** Empty when NVRTC loads, else the one-line reason. */
    public static Optional<String> unavailableReason() {
        return NativeLibraries.system().problem(NativeLibraries.Library.NVRTC);
    }

    /** Our name for an {@code nvrtcResult} code (works without the library). */
    public static String errorName(int code) {
        return NAMES.getOrDefault(code, "nvrtcResult(" + code + ")");
    }

    /** Every code the built-in table knows. */
    public static Map<Integer, String> errorNames() {
        return NAMES;
    }

    /** Where the library was loaded from. */
    public String origin() {
        return origin;
    }

    /** {@code nvrtcGetErrorString}: the library's own name for a code. */
    public String errorString(int code) {
        try {
            return Native.string((MemorySegment) nvrtcGetErrorString.invokeExact(code));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private void check(int rc, String call) {
        if (rc != 0) throw new NvrtcException(call, rc, errorName(rc), errorString(rc));
    }

    /** {@code nvrtcVersion}: {major, minor}. */
    public int[] version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check((int) nvrtcVersion.invokeExact(major, minor), "nvrtcVersion()");
            return new int[] {major.get(JAVA_INT, 0), minor.get(JAVA_INT, 0)};
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code nvrtcGetSupportedArchs}: the {@code sm_XY} numbers (e.g. 75, 80, 90) this NVRTC can target. */
    public int[] supportedArchs() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            check((int) nvrtcGetNumSupportedArchs.invokeExact(count), "nvrtcGetNumSupportedArchs()");
            int n = count.get(JAVA_INT, 0);
            MemorySegment archs = arena.allocate(JAVA_INT, Math.max(1, n));
            check((int) nvrtcGetSupportedArchs.invokeExact(archs), "nvrtcGetSupportedArchs()");
            return archs.asSlice(0, 4L * n).toArray(JAVA_INT);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * The result of a successful compilation.
     *
     * @param ptx   PTX text (NUL removed), or null when the library returned none
     * @param cubin the CUBIN for a real architecture ({@code sm_XY} targets), or null for virtual ones
     * @param log   the compiler log (warnings), possibly empty
     */
    public record Compiled(String ptx, byte[] cubin, String log) {}

    /**
     * Compiles {@code source} with {@code options} (e.g. {@code --gpu-architecture=compute_80},
     * {@code -I<dir>}). {@code headers} maps include names to contents for {@code #include "name"}.
     * Throws {@link NvrtcException} with the compiler log when compilation fails.
     *
     * @param name the program name shown in the log (e.g. {@code rmsnorm.cu})
     */
    public Compiled compile(String source, String name, Map<String, String> headers, List<String> options) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment progOut = arena.allocate(ADDRESS);
            List<String> headerNames = new ArrayList<>(headers.keySet());
            List<String> headerTexts = new ArrayList<>();
            for (String h : headerNames) headerTexts.add(headers.get(h));
            check(
                    (int) nvrtcCreateProgram.invokeExact(
                            progOut,
                            arena.allocateFrom(source),
                            arena.allocateFrom(name),
                            headerNames.size(),
                            Native.stringArray(arena, headerTexts),
                            Native.stringArray(arena, headerNames)),
                    "nvrtcCreateProgram(name=" + name + ", headers=" + headerNames.size() + ")");
            MemorySegment prog = progOut.get(ADDRESS, 0);
            try {
                int rc =
                        (int) nvrtcCompileProgram.invokeExact(prog, options.size(), Native.stringArray(arena, options));
                String log = programLog(arena, prog);
                if (rc != 0) {
                    throw new NvrtcException(
                            "nvrtcCompileProgram(name=" + name + ", options=" + options + ")",
                            rc,
                            errorName(rc),
                            errorString(rc),
                            log);
                }
                return new Compiled(ptx(arena, prog), cubin(arena, prog), log);
            } finally {
                check((int) nvrtcDestroyProgram.invokeExact(progOut), "nvrtcDestroyProgram(name=" + name + ")");
            }
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    private String programLog(Arena arena, MemorySegment prog) throws Throwable {
        MemorySegment size = arena.allocate(JAVA_LONG);
        check((int) nvrtcGetProgramLogSize.invokeExact(prog, size), "nvrtcGetProgramLogSize()");
        long n = size.get(JAVA_LONG, 0);
        if (n <= 1) return "";
        MemorySegment buf = arena.allocate(n);
        check((int) nvrtcGetProgramLog.invokeExact(prog, buf), "nvrtcGetProgramLog()");
        return buf.getString(0);
    }

    private String ptx(Arena arena, MemorySegment prog) throws Throwable {
        MemorySegment size = arena.allocate(JAVA_LONG);
        if ((int) nvrtcGetPTXSize.invokeExact(prog, size) != 0 || size.get(JAVA_LONG, 0) <= 1) return null;
        MemorySegment buf = arena.allocate(size.get(JAVA_LONG, 0));
        check((int) nvrtcGetPTX.invokeExact(prog, buf), "nvrtcGetPTX()");
        return buf.getString(0);
    }

    private byte[] cubin(Arena arena, MemorySegment prog) throws Throwable {
        MemorySegment size = arena.allocate(JAVA_LONG);
        if ((int) nvrtcGetCUBINSize.invokeExact(prog, size) != 0 || size.get(JAVA_LONG, 0) == 0) return null;
        MemorySegment buf = arena.allocate(size.get(JAVA_LONG, 0));
        check((int) nvrtcGetCUBIN.invokeExact(prog, buf), "nvrtcGetCUBIN()");
        return buf.toArray(JAVA_BYTE);
    }

    // ---------------------------------------------------------------- CUDA headers

    /** Whether this NVRTC bundles the CUDA headers (13.3+). */
    public boolean hasBundledHeaders() {
        return nvrtcInstallBundledHeaders.isPresent();
    }

    /**
     * Extracts NVRTC's bundled CUDA headers into {@code dir} ({@code nvrtcInstallBundledHeaders}; skipped when
     * a matching version is already there). Returns false when this NVRTC bundles none.
     */
    public boolean installBundledHeaders(Path dir) {
        if (nvrtcInstallBundledHeaders.isEmpty()) return false;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment errorLog = arena.allocate(ADDRESS);
            int rc =
                    (int) nvrtcInstallBundledHeaders.get().invokeExact(arena.allocateFrom(dir.toString()), 0, errorLog);
            if (rc != 0) {
                String detail = Native.string(errorLog.get(ADDRESS, 0));
                throw new NvrtcException(
                        "nvrtcInstallBundledHeaders(path=" + dir + ")",
                        rc,
                        errorName(rc),
                        detail != null ? detail : errorString(rc));
            }
            return true;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * Directories to pass as {@code -I} so kernels can include {@code cuda_bf16.h}, {@code cuda_fp16.h} and
     * {@code mma.h}: {@code -Dmode.cuda.include} / {@code MODE_CUDA_INCLUDE} (colon-separated) if set; else the
     * local CUDA toolkit's include directory (complete and self-consistent), then NVRTC's bundled headers
     * (13.3+, extracted once to {@link #bundledHeadersDirectory()}). The bundle has {@code cuda_bf16.h} but
     * lacks {@code crt/mma.h}, so WMMA kernels need the toolkit; empty when neither exists.
     */
    public List<Path> includeDirectories() {
        List<Path> dirs = includeDirectories;
        if (dirs == null) {
            synchronized (this) {
                dirs = includeDirectories;
                if (dirs == null) {
                    dirs = findIncludeDirectories();
                    includeDirectories = dirs;
                }
            }
        }
        return dirs;
    }

    /** {@link #includeDirectories()} as {@code -I<dir>} options. */
    public List<String> includeOptions() {
        List<String> out = new ArrayList<>();
        for (Path p : includeDirectories()) out.add("-I" + p);
        return out;
    }

    private List<Path> findIncludeDirectories() {
        String explicit = System.getProperty("mode.cuda.include", System.getenv("MODE_CUDA_INCLUDE"));
        List<Path> out = new ArrayList<>();
        if (explicit != null && !explicit.isBlank()) {
            for (String s : explicit.split(":")) {
                if (!s.isBlank()) out.add(Path.of(s));
            }
            return List.copyOf(out);
        }
        toolkitIncludeDirectory().ifPresent(out::add);
        bundledHeadersDirectory().ifPresent(out::add);
        return List.copyOf(out);
    }

    /**
     * NVRTC's bundled CUDA headers (13.3+), extracted on first use below the cache directory
     * ({@code ~/.cache/mode-j/nvrtc-headers/<version>}); empty for older NVRTC or when extraction fails.
     */
    public Optional<Path> bundledHeadersDirectory() {
        if (!hasBundledHeaders()) return Optional.empty();
        int[] v = version();
        Path dir = NativeLibraries.defaultCacheDir()
                .resolveSibling("nvrtc-headers")
                .resolve(v[0] + "." + v[1]);
        try {
            synchronized (this) {
                Files.createDirectories(dir);
                installBundledHeaders(dir);
            }
            if (Files.isRegularFile(dir.resolve("cuda_bf16.h"))) return Optional.of(dir);
            LOG.log(System.Logger.Level.WARNING, "NVRTC bundled headers in {0} lack cuda_bf16.h", dir);
        } catch (IOException | NvrtcException e) {
            LOG.log(System.Logger.Level.WARNING, "NVRTC bundled headers not usable: {0}", e.getMessage());
        }
        return Optional.empty();
    }

    /**
     * The CUDA toolkit's include directory holding {@code cuda_bf16.h}: {@code CUDA_HOME}/{@code CUDA_PATH},
     * the directory of {@code nvcc} on {@code PATH} (symlinks resolved), {@code /usr/local/cuda} and
     * {@code /usr/local/cuda-*} (newest first), each as {@code include} or {@code targets/<arch>/include}.
     */
    public static Optional<Path> toolkitIncludeDirectory() {
        Map<Path, Boolean> candidates = new LinkedHashMap<>();
        for (String env : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = System.getenv(env);
            if (home != null && !home.isBlank()) candidates.put(Path.of(home), true);
        }
        String path = System.getenv("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                Path nvcc = Path.of(d.isEmpty() ? "." : d, "nvcc");
                if (Files.isExecutable(nvcc)) {
                    try {
                        Path bin = nvcc.toRealPath().getParent();
                        if (bin != null && bin.getParent() != null) candidates.put(bin.getParent(), true);
                    } catch (IOException e) {
                        // unreadable entry: ignore
                    }
                }
            }
        }
        candidates.put(Path.of("/usr/local/cuda"), true);
        for (Path p : NativeLibraries.versionedSiblings(Path.of("/usr/local"), "cuda-")) candidates.put(p, true);
        for (Path home : candidates.keySet()) {
            for (Path inc : List.of(
                    home.resolve("include"),
                    home.resolve("targets").resolve("x86_64-linux").resolve("include"),
                    home.resolve("targets").resolve("sbsa-linux").resolve("include"))) {
                if (Files.isRegularFile(inc.resolve("cuda_bf16.h"))) return Optional.of(inc);
            }
        }
        return Optional.empty();
    }
}
