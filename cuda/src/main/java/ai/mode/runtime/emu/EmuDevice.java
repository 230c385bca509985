package ai.mode.runtime.emu;

import ai.mode.bindings.emu.EmuException;
import ai.mode.bindings.emu.EmuLibrary;
import ai.mode.kernels.KernelResources;
import ai.mode.runtime.device.Device;
import ai.mode.runtime.device.DeviceException;
import ai.mode.runtime.device.KernelFunction;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A {@link Device} backed by the CPU emulator library: the project's CUDA kernels compiled with g++ and
 * {@code cuda_emu.h}, launched through {@code emuLaunchKernel} (the signature of {@code cuLaunchKernel}).
 * Device memory is host memory; launches run synchronously. It reports compute capability 8.0 so the
 * tensor-core (WMMA) kernels run too, and it checks every launch's parameter types against the C
 * signatures the compiler recorded.
 *
 * <p>The library comes from the system property {@code mode.emu.library} (a path), else from the
 * {@code mode-kernels} resources (extracted once to a temporary file).
 */
public final class EmuDevice implements Device {
    /** System property naming an emulator library to use instead of the embedded one. */
    public static final String LIBRARY_PROPERTY = "mode.emu.library";

    private static final String RESOURCE = "/ai/mode/kernels/emu/libmode_emu.so";
    private static Path extracted;

    private final EmuLibrary library;
    private final Map<String, EmuFunction> functions = new HashMap<>();

    private record EmuFunction(String entryPoint, MemorySegment handle, String signature) implements KernelFunction {}

    private EmuDevice(EmuLibrary library) {
        this.library = library;
    }

    /** A device on the emulator library found as described in the class comment. */
    public static EmuDevice open() {
        Path path = libraryPath().orElseThrow(() -> new DeviceException(unavailableReason()));
        return open(path);
    }

    /** A device on a specific emulator library file (e.g. a test build). */
    public static EmuDevice open(Path library) {
        try {
            return new EmuDevice(EmuLibrary.load(library));
        } catch (EmuException e) {
            throw new DeviceException(e.getMessage(), e);
        }
    }

    /** Whether an emulator library can be found (without loading it). */
    public static boolean libraryAvailable() {
        String prop = System.getProperty(LIBRARY_PROPERTY);
        if (prop != null) return Files.isRegularFile(Path.of(prop));
        return KernelResources.class.getResource(RESOURCE) != null;
    }

    /** One line saying why no library is available and how to fix it. */
    public static String unavailableReason() {
        String prop = System.getProperty(LIBRARY_PROPERTY);
        if (prop != null) return "-D" + LIBRARY_PROPERTY + "=" + prop + " does not name a file";
        return "the emulator library was not built (mode-kernels was built without g++); install g++ 10+ and rebuild";
    }

    private static synchronized Optional<Path> libraryPath() {
        String prop = System.getProperty(LIBRARY_PROPERTY);
        if (prop != null) return Files.isRegularFile(Path.of(prop)) ? Optional.of(Path.of(prop)) : Optional.empty();
        if (extracted == null) {
            Optional<byte[]> bytes = KernelResources.emulatorLibrary();
            if (bytes.isEmpty()) return Optional.empty();
            try {
                Path tmp = Files.createTempFile("libmode_emu", ".so");
                tmp.toFile().deleteOnExit();
                Files.write(tmp, bytes.get());
                extracted = tmp;
            } catch (IOException e) {
                throw new UncheckedIOException("extracting the emulator library to a temporary file", e);
            }
        }
        return Optional.of(extracted);
    }

    /** The loaded library (for tests that inspect kernel signatures). */
    public EmuLibrary library() {
        return library;
    }

    @Override
    public String name() {
        return "emu";
    }

    @Override
    public int computeCapability() {
        return 80;
    }

    @Override
    public long malloc(long bytes) {
        if (bytes <= 0) throw new DeviceException("emuMemAlloc: bytes must be > 0, got " + bytes);
        try {
            return library.memAlloc(bytes);
        } catch (EmuException e) {
            throw new DeviceException(e.getMessage(), e);
        }
    }

    @Override
    public void free(long ptr) {
        if (ptr == 0) return;
        try {
            library.memFree(ptr);
        } catch (EmuException e) {
            throw new DeviceException(e.getMessage(), e);
        }
    }

    private static MemorySegment at(long ptr, long bytes) {
        return MemorySegment.ofAddress(ptr).reinterpret(bytes);
    }

    @Override
    public void memset(long ptr, int byteValue, long bytes) {
        if (bytes > 0) at(ptr, bytes).fill((byte) byteValue);
    }

    @Override
    public void copyHostToDevice(MemorySegment src, long dst, long bytes) {
        if (bytes > 0) MemorySegment.copy(src, 0, at(dst, bytes), 0, bytes);
    }

    @Override
    public void copyDeviceToHost(long src, MemorySegment dst, long bytes) {
        if (bytes > 0) MemorySegment.copy(at(src, bytes), 0, dst, 0, bytes);
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        if (bytes > 0) MemorySegment.copy(at(src, bytes), 0, at(dst, bytes), 0, bytes);
    }

    @Override
    public KernelFunction function(String entryPoint) {
        EmuFunction f = functions.get(entryPoint);
        if (f == null) {
            try {
                MemorySegment handle = library.moduleGetFunction(entryPoint);
                String signature = library.kernelSignature(entryPoint).orElseThrow();
                f = new EmuFunction(entryPoint, handle, signature);
            } catch (EmuException e) {
                throw new DeviceException(e.getMessage(), e);
            }
            functions.put(entryPoint, f);
        }
        return f;
    }

    @Override
    public void verifyParameters(KernelFunction f, String signature) {
        String expected = ((EmuFunction) f).signature();
        if (!expected.equals(signature)) {
            throw new DeviceException("kernel " + f.entryPoint() + " takes parameters (" + expected
                    + ") but the launch marshalled (" + signature + ")");
        }
    }

    @Override
    public void launch(
            KernelFunction f,
            int gx,
            int gy,
            int gz,
            int bx,
            int by,
            int bz,
            int sharedBytes,
            MemorySegment kernelParams) {
        if (!(f instanceof EmuFunction ef)) {
            throw new DeviceException("launch: kernel " + f.entryPoint() + " was not loaded by this emu device");
        }
        try {
            library.launchKernel(ef.handle(), ef.entryPoint(), gx, gy, gz, bx, by, bz, sharedBytes, kernelParams);
        } catch (EmuException e) {
            throw new DeviceException(e.getMessage(), e);
        }
    }

    @Override
    public void synchronize() {
        // launches run to completion before emuLaunchKernel returns
    }

    @Override
    public void close() {
        functions.clear();
    }
}
