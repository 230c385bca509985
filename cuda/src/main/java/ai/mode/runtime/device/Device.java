package ai.mode.runtime.device;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * A device that runs our CUDA kernels: the small SPI between {@link DeviceBackend} and a concrete
 * device (the CUDA driver in {@code cuda}, the CPU emulator library in {@code emu}).
 *
 * <p>Model of execution, the same as one CUDA stream on one context: kernel launches and
 * device-to-device copies are queued in order and may run asynchronously; copies to or from host memory
 * return only when the copy is complete (so host memory may be reused or read at once);
 * {@link #synchronize()} waits for everything queued. Device addresses are plain {@code long}s
 * ({@code CUdeviceptr}); address 0 is never a valid allocation.
 *
 * <p>Errors: every method throws {@link DeviceException} naming the failed call, its error name and
 * its key arguments. Implementations need not be thread-safe; one thread drives one device.
 */
public interface Device extends AutoCloseable {

    /** A short name for logs and errors, e.g. {@code cuda:0 (NVIDIA H100)} or {@code emu}. */
    String name();

    /**
     * Compute capability as {@code major * 10 + minor} (e.g. 80, 90). {@link DeviceBackend} uses the
     * tensor-core (WMMA) kernels when this is at least 80; the emulator reports 80 so they run in tests.
     */
    int computeCapability();

    /** Allocates {@code bytes} (> 0) of device memory, aligned to at least 256 bytes; contents undefined. */
    long malloc(long bytes);

    /** Frees an address returned by {@link #malloc}; 0 is ignored. */
    void free(long ptr);

    /** Sets {@code bytes} bytes at {@code ptr} to the low 8 bits of {@code byteValue} (like {@code cuMemsetD8}). */
    void memset(long ptr, int byteValue, long bytes);

    /**
     * Copies {@code bytes} from host memory {@code src} (a native segment, from its start) to device address
     * {@code dst}; synchronous.
     */
    void copyHostToDevice(MemorySegment src, long dst, long bytes);

    /** Copies {@code bytes} from device address {@code src} to host memory {@code dst} (a native segment); synchronous. */
    void copyDeviceToHost(long src, MemorySegment dst, long bytes);

    /** Queues a copy of {@code bytes} from device address {@code src} to {@code dst}; the ranges must not overlap. */
    void copyDeviceToDevice(long src, long dst, long bytes);

    /**
     * The kernel with this {@code extern "C"} entry point (e.g. {@code mode_rmsnorm_fwd_f32}), from the
     * kernel modules shipped in {@code mode-kernels} (see {@code ai.mode.kernels.KernelResources}).
     * Implementations cache the lookup; unknown names throw {@link DeviceException}.
     */
    KernelFunction function(String entryPoint);

    /**
     * Queues one kernel launch, with the semantics of {@code cuLaunchKernel}: grid {@code gx*gy*gz} blocks
     * of {@code bx*by*bz} threads, {@code sharedBytes} of dynamic shared memory, and
     * {@code kernelParams} a {@code void*} array with one pointer per kernel parameter, each pointing at
     * that parameter's value (see {@link KernelArgs}). The parameter memory may be released as soon as
     * this method returns.
     */
    void launch(
            KernelFunction f,
            int gx,
            int gy,
            int gz,
            int bx,
            int by,
            int bz,
            int sharedBytes,
            MemorySegment kernelParams);

    /**
     * Checks, before a launch, that the parameters built by {@link KernelArgs} match the kernel's C
     * parameter list: {@code signature} has one character per parameter ({@code p} pointer, {@code i}
     * int, {@code u} unsigned, {@code l} long long, {@code f} float, {@code d} double). A device that knows
     * the C side (the emulator records it at compile time) throws {@link DeviceException} on a mismatch;
     * the default checks nothing.
     */
    default void verifyParameters(KernelFunction f, String signature) {}

    /** Waits until all queued work on this device is complete, and reports any asynchronous error. */
    void synchronize();

    /**
     * An optional vendor GEMM (e.g. cuBLASLt) that {@link DeviceBackend} tries before its own GEMM kernel.
     * Empty by default: the project's kernels are used.
     */
    default Optional<Gemm> vendorGemm() {
        return Optional.empty();
    }

    /** Releases the device's resources (modules, memory pools, context). Idempotent. */
    @Override
    void close();
}
