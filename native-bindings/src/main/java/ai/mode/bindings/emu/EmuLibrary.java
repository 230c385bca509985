package ai.mode.bindings.emu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * FFM binding to the CPU emulator library {@code libmode_emu.so} (built from the project's CUDA kernels
 * with {@code kernels/src/main/emu/cuda_emu.h}). Its C API mirrors the CUDA driver calls the {@code cuda}
 * backend makes: {@code emuModuleGetFunction}, {@code emuLaunchKernel} (the signature of
 * {@code cuLaunchKernel}), {@code emuMemAlloc}/{@code emuMemFree}. Device memory is host memory.
 *
 * <p>A library is loaded once per path and never unloaded (its emulator thread lives as long as the process).
 * Every call is checked: a non-zero status throws {@link EmuException} naming the call, the error name, the
 * library's detail message and the key arguments.
 */
public final class EmuLibrary {
    private static final Map<Path, EmuLibrary> LOADED = new ConcurrentHashMap<>();

    private final Path path;
    private final MethodHandle getErrorName;
    private final MethodHandle getLastErrorMessage;
    private final MethodHandle usesFibers;
    private final MethodHandle getKernelCount;
    private final MethodHandle getKernelName;
    private final MethodHandle getKernelSignature;
    private final MethodHandle getScalarLayout;
    private final MethodHandle moduleGetFunction;
    private final MethodHandle launchKernel;
    private final MethodHandle memAlloc;
    private final MethodHandle memFree;

    private EmuLibrary(Path path) {
        this.path = path;
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.libraryLookup(path, Arena.global());
        getErrorName = bind(linker, lookup, "emuGetErrorName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getLastErrorMessage = bind(linker, lookup, "emuGetLastErrorMessage", FunctionDescriptor.of(ADDRESS));
        usesFibers = bind(linker, lookup, "emuUsesFibers", FunctionDescriptor.of(JAVA_INT));
        getKernelCount = bind(linker, lookup, "emuGetKernelCount", FunctionDescriptor.of(JAVA_INT));
        getKernelName = bind(linker, lookup, "emuGetKernelName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getKernelSignature = bind(linker, lookup, "emuGetKernelSignature", FunctionDescriptor.of(ADDRESS, ADDRESS));
        getScalarLayout =
                bind(linker, lookup, "emuGetScalarLayout", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        moduleGetFunction =
                bind(linker, lookup, "emuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        launchKernel = bind(
                linker,
                lookup,
                "emuLaunchKernel",
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        ADDRESS, ADDRESS, ADDRESS));
        memAlloc = bind(linker, lookup, "emuMemAlloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        memFree = bind(linker, lookup, "emuMemFree", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    }

    /**
     * Loads the emulator library at {@code path} (once per path per process).
     *
     * @throws EmuException if the file is missing or is not an emulator library
     */
    public static EmuLibrary load(Path path) {
        Path p = path.toAbsolutePath().normalize();
        if (!Files.isRegularFile(p)) {
            throw new EmuException("emulator library " + p + " not found; build mode-kernels with g++ installed");
        }
        return LOADED.computeIfAbsent(p, EmuLibrary::new);
    }

    private static MethodHandle bind(Linker linker, SymbolLookup lookup, String name, FunctionDescriptor fd) {
        MemorySegment symbol = lookup.find(name)
                .orElseThrow(() -> new EmuException(
                        "symbol " + name + " missing from the emulator library; rebuild mode-kernels"));
        return linker.downcallHandle(symbol, fd);
    }

    /** The file this library was loaded from. */
    public Path path() {
        return path;
    }

    /** Whether CUDA threads run as fibers on one emulator thread (true) or as OS threads (sanitizer builds). */
    public boolean usesFibers() {
        try {
            return (int) usesFibers.invokeExact() != 0;
        } catch (Throwable t) {
            throw rethrow("emuUsesFibers", t);
        }
    }

    /** Number of kernels compiled into the library. */
    public int kernelCount() {
        try {
            return (int) getKernelCount.invokeExact();
        } catch (Throwable t) {
            throw rethrow("emuGetKernelCount", t);
        }
    }

    /** Name of kernel {@code i} (0 <= i < {@link #kernelCount()}). */
    public String kernelName(int i) {
        MemorySegment s;
        try {
            s = (MemorySegment) getKernelName.invokeExact(i);
        } catch (Throwable t) {
            throw rethrow("emuGetKernelName", t);
        }
        if (s.equals(MemorySegment.NULL)) throw new EmuException("emuGetKernelName(" + i + "): index out of range");
        return s.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /**
     * The C parameter types of a kernel as the compiler saw them, one character per parameter
     * ({@code p} pointer, {@code i} int, {@code u} unsigned, {@code l} long long, {@code f} float,
     * {@code d} double); empty if there is no such kernel.
     */
    public Optional<String> kernelSignature(String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = (MemorySegment) getKernelSignature.invokeExact(arena.allocateFrom(name));
            return s.equals(MemorySegment.NULL)
                    ? Optional.empty()
                    : Optional.of(s.reinterpret(Long.MAX_VALUE).getString(0));
        } catch (Throwable t) {
            throw rethrow("emuGetKernelSignature", t);
        }
    }

    /**
     * {@code sizeof} and {@code alignof} of the C parameter types, in signature-code order
     * {@code p i u l f d}: {@code result[0]} sizes, {@code result[1]} alignments.
     */
    public int[][] scalarLayout() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sizes = arena.allocate(JAVA_INT, 16);
            MemorySegment aligns = arena.allocate(JAVA_INT, 16);
            int n = (int) getScalarLayout.invokeExact(sizes, aligns, 16);
            return new int[][] {
                sizes.asSlice(0, 4L * n).toArray(JAVA_INT),
                aligns.asSlice(0, 4L * n).toArray(JAVA_INT)
            };
        } catch (Throwable t) {
            throw rethrow("emuGetScalarLayout", t);
        }
    }

    /** The handle of a kernel, like {@code cuModuleGetFunction}. */
    public MemorySegment moduleGetFunction(String name) {
        int rc;
        MemorySegment handle;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            rc = (int) moduleGetFunction.invokeExact(out, arena.allocateFrom(name));
            handle = out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow("emuModuleGetFunction", t);
        }
        check(rc, "emuModuleGetFunction", "name=" + name);
        return handle;
    }

    /**
     * Runs a kernel over the whole grid before returning; parameters as {@code cuLaunchKernel}
     * ({@code kernelParams} is a {@code void*} array with one pointer per parameter).
     */
    public void launchKernel(
            MemorySegment function,
            String name,
            int gx,
            int gy,
            int gz,
            int bx,
            int by,
            int bz,
            int sharedBytes,
            MemorySegment kernelParams) {
        int rc;
        try {
            rc = (int) launchKernel.invokeExact(
                    function,
                    gx,
                    gy,
                    gz,
                    bx,
                    by,
                    bz,
                    sharedBytes,
                    MemorySegment.NULL,
                    kernelParams,
                    MemorySegment.NULL);
        } catch (Throwable t) {
            throw rethrow("emuLaunchKernel", t);
        }
        check(
                rc,
                "emuLaunchKernel",
                "kernel=" + name + ", grid=" + gx + "x" + gy + "x" + gz + ", block=" + bx + "x" + by + "x" + bz
                        + ", sharedBytes=" + sharedBytes);
    }

    /** Allocates {@code bytes} (> 0) of emulated device memory, 256-byte aligned. */
    public long memAlloc(long bytes) {
        int rc;
        long ptr;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            rc = (int) memAlloc.invokeExact(out, bytes);
            ptr = out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow("emuMemAlloc", t);
        }
        check(rc, "emuMemAlloc", "bytes=" + bytes);
        return ptr;
    }

    /** Frees memory from {@link #memAlloc}. */
    public void memFree(long ptr) {
        int rc;
        try {
            rc = (int) memFree.invokeExact(ptr);
        } catch (Throwable t) {
            throw rethrow("emuMemFree", t);
        }
        check(rc, "emuMemFree", "ptr=0x" + Long.toHexString(ptr));
    }

    private void check(int rc, String call, String args) {
        if (rc == 0) return;
        String name;
        String detail;
        try {
            name = ((MemorySegment) getErrorName.invokeExact(rc))
                    .reinterpret(256)
                    .getString(0);
            detail = ((MemorySegment) getLastErrorMessage.invokeExact())
                    .reinterpret(4096)
                    .getString(0);
        } catch (Throwable t) {
            throw rethrow("emuGetErrorName", t);
        }
        throw new EmuException(
                call + "(" + args + ") failed: " + name + " (" + rc + ")" + (detail.isEmpty() ? "" : ": " + detail));
    }

    private static RuntimeException rethrow(String call, Throwable t) {
        if (t instanceof Error e) throw e;
        return new EmuException(call + " failed: " + t);
    }
}
