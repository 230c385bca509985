package ai.mode.runtime.cuda;

import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaContext;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaEvent;
import ai.mode.bindings.CudaStream;
import ai.mode.bindings.NativeCallException;
import ai.mode.bindings.NativeLibraryException;
import ai.mode.runtime.device.Device;
import ai.mode.runtime.device.DeviceException;
import ai.mode.runtime.device.Gemm;
import ai.mode.runtime.device.KernelFunction;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * One NVIDIA GPU as a {@link Device}: the primary context, one stream on which everything is queued, a
 * caching memory pool ({@link CudaMemoryPool}), the project's kernel modules ({@link CudaModules}: embedded
 * fatbins, NVRTC fallback) and the cuBLASLt GEMM hook ({@link CublasLtGemm}) when cuBLASLt is available.
 *
 * <p>Host copies are queued on the stream and waited for, so they are ordered after earlier kernels and
 * return complete. Every failure is a {@link DeviceException} whose message names the driver call, the
 * error and the arguments; errors of earlier asynchronous work (an illegal address in a kernel) surface at the
 * next synchronising call with a hint. The device may be driven from any one thread at a time: each entry
 * point makes the context current on the calling thread, and every call into a vendor library (cuBLASLt
 * here, NCCL in the parallel runtime) goes through {@link #withContext}, so a library call from a thread that
 * did not open the device runs in the device's context too.
 *
 * <p>{@link CudaOptions} (the {@code cuda} backend's options) can turn the cuBLASLt hook off, compile every module with
 * NVRTC, and let cuBLASLt use TF32 for float32 GEMMs; the device reads no system property.
 */
public final class CudaDevice implements Device {
    private static final System.Logger LOG = System.getLogger(CudaDevice.class.getName());

    /** Errors that poison the context: asynchronous kernel faults. */
    private static final Set<Integer> STICKY_ERRORS = Set.of(700, 710, 714, 715, 716, 717, 718, 719);

    private final CudaDriver driver;
    private final CudaContext context;
    private final CudaStream stream;
    private final CudaMemoryPool pool;
    private final CudaModules modules;
    private final String name;
    private final int computeCapability;
    private final int maxSharedOptin;
    private final CudaOptions options;
    private final Supplier<Optional<CublasLt>> blasLt;
    private Optional<Gemm> gemm;
    private CublasLtGemm cublas;
    private boolean closed;

    private CudaDevice(CudaDriver driver, int ordinal, CudaOptions options, Supplier<Optional<CublasLt>> blasLt) {
        this.driver = driver;
        this.options = options;
        this.blasLt = blasLt;
        int dev = driver.device(ordinal);
        this.computeCapability = driver.computeCapability(dev);
        this.maxSharedOptin = driver.deviceAttribute(CudaDriver.ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev);
        this.name = "cuda:" + ordinal + " (" + driver.deviceName(dev) + ", sm_" + computeCapability + ")";
        this.context = driver.retainPrimaryContext(ordinal);
        context.makeCurrent();
        this.stream = driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
        this.pool = new CudaMemoryPool(new CudaMemoryPool.RawAllocator() {
            @Override
            public long allocate(long bytes) {
                return driver.memAlloc(bytes);
            }

            @Override
            public void free(long ptr) {
                driver.memFree(ptr);
            }

            @Override
            public void awaitIdle() {
                stream.synchronize();
            }
        });
        this.modules = new CudaModules(driver, computeCapability, name, options.nvrtcKernels());
    }

    /** {@code open(ordinal, CudaOptions.DEFAULT)}. */
    public static CudaDevice open(int ordinal) {
        return open(ordinal, CudaOptions.DEFAULT);
    }

    /**
     * Opens device {@code ordinal} with {@code options}. Throws {@link DeviceException} with one line when there is no
     * driver, no GPU, or no such ordinal.
     */
    public static CudaDevice open(int ordinal, CudaOptions options) {
        CudaDriver driver;
        try {
            driver = CudaDriver.get();
        } catch (NativeLibraryException | NativeCallException e) {
            throw new DeviceException(e.getMessage(), e);
        }
        return open(driver, ordinal, options);
    }

    /** Opens device {@code ordinal} through the given driver bindings, with the default options. */
    public static CudaDevice open(CudaDriver driver, int ordinal) {
        return open(driver, ordinal, CudaOptions.DEFAULT);
    }

    /** Opens device {@code ordinal} through the given driver bindings; cuBLASLt from the system when present. */
    public static CudaDevice open(CudaDriver driver, int ordinal, CudaOptions options) {
        return open(driver, ordinal, options, CudaDevice::systemCublasLt);
    }

    /** Opens device {@code ordinal} through the given driver and cuBLASLt bindings (tests bind fakes of both). */
    public static CudaDevice open(CudaDriver driver, int ordinal, CublasLt blasLt) {
        return open(driver, ordinal, CudaOptions.DEFAULT, () -> Optional.of(blasLt));
    }

    private static Optional<CublasLt> systemCublasLt() {
        Optional<String> missing = CublasLt.unavailableReason();
        if (missing.isPresent()) {
            LOG.log(
                    System.Logger.Level.INFO,
                    "cuBLASLt not available ({0}); GEMMs use the project''s kernel",
                    missing.get());
            return Optional.empty();
        }
        return Optional.of(CublasLt.get());
    }

    private static CudaDevice open(
            CudaDriver driver, int ordinal, CudaOptions options, Supplier<Optional<CublasLt>> blasLt) {
        try {
            int count = driver.deviceCount();
            if (ordinal < 0 || ordinal >= count) {
                throw new DeviceException(
                        "CUDA device " + ordinal + " does not exist: " + count + " device(s) visible"
                                + " (check CUDA_VISIBLE_DEVICES and the ordinal passed in, e.g. -Dmode.cuda.device on the command line)");
            }
            CudaDevice d = new CudaDevice(driver, ordinal, options, blasLt);
            LOG.log(
                    System.Logger.Level.INFO,
                    "opened {0}; driver {1} from {2}",
                    d.name,
                    driver.driverVersion(),
                    driver.origin());
            return d;
        } catch (NativeCallException e) {
            throw new DeviceException(e.getMessage(), e);
        }
    }

    private DeviceException fail(NativeCallException e) {
        String msg = e.getMessage();
        if (STICKY_ERRORS.contains(e.code())) {
            msg += " (an earlier kernel on " + name + " failed asynchronously; rerun with CUDA_LAUNCH_BLOCKING=1 to "
                    + "find it; the context is unusable now)";
        }
        return new DeviceException(msg, e);
    }

    private void enter() {
        if (closed) throw new DeviceException(name + " is closed");
        context.makeCurrent();
    }

    /**
     * Runs {@code call} with this device's context current on the calling thread: the one way into a vendor
     * library (cuBLASLt, NCCL) that acts on the current context. A library call made without it, from a thread
     * that did not open the device, would act on another device's context or on none (invalid handle or
     * execution failure). Exceptions of {@code call} pass through unchanged.
     */
    public <T> T withContext(Supplier<T> call) {
        enter();
        return call.get();
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int computeCapability() {
        return computeCapability;
    }

    /** The stream all work is queued on (for NCCL collectives that must be ordered with it). */
    public CudaStream stream() {
        return stream;
    }

    /** The primary context (make it current before calling the driver directly). */
    public CudaContext context() {
        return context;
    }

    /**
     * {@code bytes} of page-locked host memory ({@code cuMemAllocHost}), for small reads back from the device
     * that must not stage through pageable memory (collectives' host results); free with {@link #freePinned}.
     */
    public MemorySegment allocatePinned(long bytes) {
        enter();
        try {
            return driver.memAllocHost(bytes);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    /** Frees memory from {@link #allocatePinned}. */
    public void freePinned(MemorySegment host) {
        enter();
        try {
            driver.memFreeHost(host);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    /** The memory pool, for statistics. */
    public CudaMemoryPool pool() {
        return pool;
    }

    @Override
    public long malloc(long bytes) {
        enter();
        try {
            return pool.allocate(bytes);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void free(long ptr) {
        if (ptr == 0 || closed) return;
        enter();
        try {
            pool.free(ptr);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void memset(long ptr, int byteValue, long bytes) {
        enter();
        try {
            driver.memsetD8Async(ptr, byteValue, bytes, stream);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void copyHostToDevice(MemorySegment src, long dst, long bytes) {
        enter();
        try {
            if (src.isNative()) {
                driver.memcpyHtoDAsync(dst, src, bytes, stream);
                stream.synchronize();
            } else {
                try (Arena staging = Arena.ofConfined()) {
                    MemorySegment tmp = staging.allocate(bytes, 16);
                    tmp.copyFrom(src.asSlice(0, bytes));
                    driver.memcpyHtoDAsync(dst, tmp, bytes, stream);
                    stream.synchronize();
                }
            }
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void copyDeviceToHost(long src, MemorySegment dst, long bytes) {
        enter();
        try {
            if (dst.isNative()) {
                driver.memcpyDtoHAsync(dst, src, bytes, stream);
                stream.synchronize();
            } else {
                try (Arena staging = Arena.ofConfined()) {
                    MemorySegment tmp = staging.allocate(bytes, 16);
                    driver.memcpyDtoHAsync(tmp, src, bytes, stream);
                    stream.synchronize();
                    dst.asSlice(0, bytes).copyFrom(tmp);
                }
            }
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        enter();
        try {
            driver.memcpyDtoDAsync(dst, src, bytes, stream);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public KernelFunction function(String entryPoint) {
        enter();
        try {
            return modules.kernel(entryPoint);
        } catch (NativeCallException e) {
            throw fail(e);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new DeviceException(e.getMessage() + " (on " + name + ")", e);
        }
    }

    /**
     * Where a loaded kernel's code came from: {@code origin} is {@code fatbin} or {@code nvrtc <target>}; the driver's
     * {@code ptxVersion} (the virtual architecture the code was compiled from) and {@code binaryVersion} (the
     * architecture of the code that runs), each major * 10 + minor. The sm_90a image on an H100 gives
     * {@code fatbin, 90, 90}; the compute_80 PTX JIT-compiled there would give {@code fatbin, 80, 90}.
     */
    public record KernelImage(String origin, int ptxVersion, int binaryVersion) {}

    /** The {@link KernelImage} of {@code entryPoint}, loading its module if needed. */
    public KernelImage kernelImage(String entryPoint) {
        CudaKernel k = (CudaKernel) function(entryPoint);
        enter();
        try {
            return new KernelImage(
                    k.origin(),
                    driver.functionAttribute(k.function(), CudaDriver.FUNC_ATTR_PTX_VERSION),
                    driver.functionAttribute(k.function(), CudaDriver.FUNC_ATTR_BINARY_VERSION));
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    /**
     * The byte sizes of {@code entryPoint}'s parameters as the driver lays them out ({@code cuFuncGetParamInfo}), or
     * empty when the driver is older than CUDA 12.4 and cannot say.
     */
    public Optional<long[]> parameterSizes(String entryPoint) {
        CudaKernel k = (CudaKernel) function(entryPoint);
        if (!driver.hasParameterInfo()) return Optional.empty();
        enter();
        try {
            List<Long> sizes = new ArrayList<>();
            while (true) {
                Optional<long[]> p = driver.functionParameter(k.function(), sizes.size());
                if (p.isEmpty())
                    return Optional.of(sizes.stream().mapToLong(Long::longValue).toArray());
                sizes.add(p.get()[1]);
            }
        } catch (NativeCallException e) {
            throw fail(e);
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
        if (!(f instanceof CudaKernel k)) {
            throw new DeviceException("kernel " + f.entryPoint() + " was not loaded by " + name);
        }
        enter();
        try {
            if (sharedBytes > k.dynamicSharedLimit()) {
                if (sharedBytes > maxSharedOptin) {
                    throw new DeviceException("launch of " + k.entryPoint() + " needs " + sharedBytes
                            + " bytes of shared memory; " + name + " allows at most " + maxSharedOptin + " per block");
                }
                driver.setFunctionAttribute(
                        k.function(), CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes);
                k.dynamicSharedLimit(sharedBytes);
            }
            driver.launchKernel(k.function(), gx, gy, gz, bx, by, bz, sharedBytes, stream, kernelParams);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    @Override
    public void synchronize() {
        enter();
        try {
            stream.synchronize();
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    /**
     * Milliseconds the device spends on {@code work} (events recorded before and after it on the stream);
     * for benchmarks.
     */
    public float timeMillis(Runnable work) {
        enter();
        try (CudaEvent start = driver.eventCreate(CudaDriver.EVENT_DEFAULT);
                CudaEvent end = driver.eventCreate(CudaDriver.EVENT_DEFAULT)) {
            start.record(stream);
            work.run();
            end.record(stream);
            end.synchronize();
            return end.elapsedMillisSince(start);
        } catch (NativeCallException e) {
            throw fail(e);
        }
    }

    /**
     * cuBLASLt when it is available and not disabled ({@link CudaOptions#kernelGemm()}); created on first use.
     * A missing cuBLASLt is logged once and the project's GEMM kernel is used. Every call of the hook runs
     * through {@link #withContext}, on whichever thread calls it.
     */
    @Override
    public Optional<Gemm> vendorGemm() {
        if (gemm == null) {
            gemm = Optional.empty();
            if (options.kernelGemm()) return gemm;
            Optional<CublasLt> lt = blasLt.get();
            if (lt.isEmpty()) return gemm;
            try {
                cublas = withContext(() -> {
                    long workspace = pool.allocate(CublasLtGemm.WORKSPACE_BYTES);
                    return new CublasLtGemm(lt.get(), stream, workspace, pool::free, options.tf32());
                });
            } catch (NativeCallException e) {
                throw fail(e);
            }
            CublasLtGemm hook = cublas;
            gemm = Optional.of(p -> {
                try {
                    return withContext(() -> hook.run(p));
                } catch (NativeCallException e) {
                    throw fail(e);
                }
            });
        }
        return gemm;
    }

    @Override
    public void close() {
        if (closed) return;
        try {
            context.makeCurrent();
            stream.synchronize();
        } catch (NativeCallException e) {
            LOG.log(System.Logger.Level.WARNING, "closing {0} after an error: {1}", name, e.getMessage());
        }
        closed = true;
        try {
            if (cublas != null) cublas.close();
            modules.close();
            pool.close();
            stream.close();
        } catch (NativeCallException e) {
            throw new DeviceException(e.getMessage(), e);
        } finally {
            context.close();
        }
    }
}
