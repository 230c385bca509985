package ai.mode.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * FFM bindings for the CUDA driver API ({@code libcuda.so.1}): initialisation, devices, primary contexts,
 * modules and launches, memory, streams and events. Every call is checked; a failure throws
 * {@link CudaException} naming the call, its key arguments and the error.
 *
 * <p>Versioned entry points are bound by their {@code _v2} names where {@code cuda.h} maps the API name to
 * one (e.g. {@code cuMemAlloc} to {@code cuMemAlloc_v2}), falling back to the legacy name. Handles
 * ({@code CUcontext}, {@code CUmodule}, {@code CUstream}, {@code CUevent}) are wrapped in AutoCloseable
 * classes; device pointers ({@code CUdeviceptr}) are plain {@code long}s.
 *
 * <p>Driver calls act on the calling thread's current context: call {@link CudaContext#makeCurrent()}
 * on each thread before using a device.
 */
@SuppressWarnings("restricted")
public final class CudaDriver {
    /** {@code CUdevice_attribute} values used by MoDE-J. */
    public static final int ATTR_MAX_THREADS_PER_BLOCK = 1;

    public static final int ATTR_WARP_SIZE = 10;
    public static final int ATTR_CLOCK_RATE_KHZ = 13;
    public static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    public static final int ATTR_MEMORY_CLOCK_RATE_KHZ = 36;
    public static final int ATTR_GLOBAL_MEMORY_BUS_WIDTH = 37;
    public static final int ATTR_L2_CACHE_SIZE = 38;
    public static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    /** {@code CUfunction_attribute} values. */
    public static final int FUNC_ATTR_MAX_THREADS_PER_BLOCK = 0;

    public static final int FUNC_ATTR_SHARED_SIZE_BYTES = 1;
    public static final int FUNC_ATTR_LOCAL_SIZE_BYTES = 3;
    public static final int FUNC_ATTR_NUM_REGS = 4;
    public static final int FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    /** The virtual architecture the function's code was compiled from (major * 10 + minor, e.g. 90). */
    public static final int FUNC_ATTR_PTX_VERSION = 5;
    /** The architecture of the function's binary code (major * 10 + minor). */
    public static final int FUNC_ATTR_BINARY_VERSION = 6;

    /** Stream and event flags. */
    public static final int STREAM_NON_BLOCKING = 0x1;

    public static final int EVENT_DEFAULT = 0x0;
    public static final int EVENT_DISABLE_TIMING = 0x2;

    private static final int JIT_ERROR_LOG_BUFFER = 5;
    private static final int JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
    private static final int JIT_LOG_BYTES = 16 * 1024;

    private static volatile Object instance;

    private final String origin;
    private final MethodHandle cuGetErrorName, cuGetErrorString, cuInit, cuDriverGetVersion;
    private final MethodHandle cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute, cuDeviceTotalMem;
    private final MethodHandle cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize;
    private final MethodHandle cuMemGetInfo, cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost;
    private final MethodHandle cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD;
    private final MethodHandle cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync;
    private final MethodHandle cuMemsetD8, cuMemsetD32, cuMemsetD8Async, cuMemsetD32Async;
    private final MethodHandle cuModuleLoadDataEx, cuModuleUnload, cuModuleGetFunction;
    private final MethodHandle cuFuncGetAttribute, cuFuncSetAttribute, cuLaunchKernel;
    /** Drivers of CUDA 12.4 and later. */
    private final Optional<MethodHandle> cuFuncGetParamInfo;

    private final MethodHandle cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamQuery, cuStreamWaitEvent;
    private final MethodHandle cuEventCreate, cuEventDestroy, cuEventRecord, cuEventSynchronize, cuEventElapsedTime;

    private CudaDriver(NativeLibraries.Loaded lib) {
        this.origin = lib.origin();
        SymbolLookup l = lib.lookup();
        String n = lib.soname();
        cuGetErrorName = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorName");
        cuGetErrorString =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorString");
        cuInit = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_INT), "cuInit");
        cuDriverGetVersion = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDriverGetVersion");
        cuDeviceGetCount = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDeviceGetCount");
        cuDeviceGet = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceGet");
        cuDeviceGetName =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
        cuDeviceGetAttribute = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
        cuDeviceTotalMem = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceTotalMem_v2", "cuDeviceTotalMem");
        cuDevicePrimaryCtxRetain =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_INT),
                "cuDevicePrimaryCtxRelease_v2",
                "cuDevicePrimaryCtxRelease");
        cuCtxSetCurrent = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuCtxSetCurrent");
        cuCtxSynchronize = Native.function(l, n, FunctionDescriptor.of(JAVA_INT), "cuCtxSynchronize");
        cuMemGetInfo = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuMemGetInfo_v2", "cuMemGetInfo");
        cuMemAlloc = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAlloc_v2", "cuMemAlloc");
        cuMemFree = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, JAVA_LONG), "cuMemFree_v2", "cuMemFree");
        cuMemAllocHost = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAllocHost_v2", "cuMemAllocHost");
        cuMemFreeHost = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuMemFreeHost");
        cuMemcpyHtoD = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG),
                "cuMemcpyHtoD_v2",
                "cuMemcpyHtoD");
        cuMemcpyDtoH = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG),
                "cuMemcpyDtoH_v2",
                "cuMemcpyDtoH");
        cuMemcpyDtoD = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                "cuMemcpyDtoD_v2",
                "cuMemcpyDtoD");
        cuMemcpyHtoDAsync = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS),
                "cuMemcpyHtoDAsync_v2",
                "cuMemcpyHtoDAsync");
        cuMemcpyDtoHAsync = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS),
                "cuMemcpyDtoHAsync_v2",
                "cuMemcpyDtoHAsync");
        cuMemcpyDtoDAsync = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS),
                "cuMemcpyDtoDAsync_v2",
                "cuMemcpyDtoDAsync");
        cuMemsetD8 = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG), "cuMemsetD8_v2", "cuMemsetD8");
        cuMemsetD32 = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG), "cuMemsetD32_v2", "cuMemsetD32");
        cuMemsetD8Async = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS), "cuMemsetD8Async");
        cuMemsetD32Async = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS), "cuMemsetD32Async");
        cuModuleLoadDataEx = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
                "cuModuleLoadDataEx");
        cuModuleUnload = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuModuleUnload");
        cuModuleGetFunction = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
        cuFuncGetAttribute = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "cuFuncGetAttribute");
        cuFuncSetAttribute = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuFuncSetAttribute");
        cuFuncGetParamInfo = Native.optionalFunction(
                l, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS), "cuFuncGetParamInfo");
        cuLaunchKernel = Native.function(
                l,
                n,
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        ADDRESS, ADDRESS, ADDRESS),
                "cuLaunchKernel");
        cuStreamCreate = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamCreate");
        cuStreamDestroy = Native.function(
                l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamDestroy_v2", "cuStreamDestroy");
        cuStreamSynchronize = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamSynchronize");
        cuStreamQuery = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamQuery");
        cuStreamWaitEvent =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), "cuStreamWaitEvent");
        cuEventCreate = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuEventCreate");
        cuEventDestroy =
                Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventDestroy_v2", "cuEventDestroy");
        cuEventRecord = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuEventRecord");
        cuEventSynchronize = Native.function(l, n, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventSynchronize");
        // The legacy symbol first: cuEventElapsedTime_v2 exists only in CUDA 13+ drivers, same signature.
        cuEventElapsedTime = Native.function(
                l,
                n,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
                "cuEventElapsedTime",
                "cuEventElapsedTime_v2");
    }

    // ---------------------------------------------------------------- loading

    /**
     * The driver bindings, loaded and initialised ({@code cuInit(0)}) once per JVM. Throws
     * {@link NativeLibraryException} when {@code libcuda.so.1} is missing and {@link CudaException} when
     * {@code cuInit} fails (e.g. {@code CUDA_ERROR_NO_DEVICE}); the same failure is rethrown on later calls.
     */
    public static CudaDriver get() {
        Object i = instance;
        if (i == null) {
            synchronized (CudaDriver.class) {
                i = instance;
                if (i == null) {
                    try {
                        CudaDriver d =
                                new CudaDriver(NativeLibraries.system().load(NativeLibraries.Library.CUDA_DRIVER));
                        d.check(d.cuInitCall(), "cuInit(flags=0)");
                        i = d;
                    } catch (NativeLibraryException | CudaException e) {
                        i = e;
                    }
                    instance = i;
                }
            }
        }
        if (i instanceof NativeLibraryException e) throw new NativeLibraryException(e.getMessage(), e);
        if (i instanceof CudaException e) throw new CudaException(e.call(), e.code(), e.errorName(), describeInit(e));
        return (CudaDriver) i;
    }

    /**
     * Bindings over an explicitly loaded driver library (e.g. one found by a custom {@link NativeLibraries}),
     * initialised with {@code cuInit(0)}; not cached. {@link #get()} is the normal entry point.
     */
    public static CudaDriver bind(NativeLibraries.Loaded library) {
        CudaDriver d = new CudaDriver(library);
        try {
            d.check(d.cuInitCall(), "cuInit(flags=0)");
        } catch (CudaException e) {
            throw new CudaException(e.call(), e.code(), e.errorName(), describeInit(e));
        }
        return d;
    }

    private static String describeInit(CudaException e) {
        return switch (e.code()) {
            case CudaErrors.NO_DEVICE -> "no CUDA-capable GPU is visible; use --backend cpu";
            case CudaErrors.STUB_LIBRARY ->
                "the CUDA driver stub (lib64/stubs) was loaded instead of the driver; "
                        + "remove the stubs directory from LD_LIBRARY_PATH";
            default -> e.description();
        };
    }

    /** Empty when the driver loads and initialises, else the one-line reason (no driver, no device, ...). */
    public static Optional<String> unavailableReason() {
        try {
            get();
            return Optional.empty();
        } catch (NativeLibraryException | CudaException e) {
            return Optional.of(e.getMessage());
        }
    }

    /** Where {@code libcuda} was loaded from. */
    public String origin() {
        return origin;
    }

    private int cuInitCall() {
        try {
            return (int) cuInit.invokeExact(0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- errors

    /** Throws {@link CudaException} for a non-zero {@code CUresult}; {@code call} names the call and its arguments. */
    public void check(int result, String call) {
        if (result != CudaErrors.SUCCESS) {
            throw new CudaException(call, result, errorName(result), errorString(result));
        }
    }

    /** The driver's name for {@code code} ({@code cuGetErrorName}), or the built-in table's. */
    public String errorName(int code) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) cuGetErrorName.invokeExact(code, out);
            String s = rc == 0 ? Native.string(out.get(ADDRESS, 0)) : null;
            return s != null ? s : CudaErrors.name(code);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** The driver's description of {@code code} ({@code cuGetErrorString}), or null. */
    public String errorString(int code) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) cuGetErrorString.invokeExact(code, out);
            return rc == 0 ? Native.string(out.get(ADDRESS, 0)) : null;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- driver and devices

    /** {@code cuDriverGetVersion}: e.g. 12040 for CUDA 12.4. */
    public int driverVersion() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(out), "cuDriverGetVersion()");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuDeviceGetCount}. */
    public int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(out), "cuDeviceGetCount()");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuDeviceGet}: the {@code CUdevice} handle of an ordinal. */
    public int device(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(out, ordinal), "cuDeviceGet(ordinal=" + ordinal + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuDeviceGetName}. */
    public String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(256);
            check((int) cuDeviceGetName.invokeExact(out, 256, device), "cuDeviceGetName(device=" + device + ")");
            return out.getString(0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuDeviceGetAttribute} (see the {@code ATTR_*} constants). */
    public int deviceAttribute(int attribute, int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(
                    (int) cuDeviceGetAttribute.invokeExact(out, attribute, device),
                    "cuDeviceGetAttribute(attribute=" + attribute + ", device=" + device + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Compute capability as {@code major * 10 + minor}. */
    public int computeCapability(int device) {
        return deviceAttribute(ATTR_COMPUTE_CAPABILITY_MAJOR, device) * 10
                + deviceAttribute(ATTR_COMPUTE_CAPABILITY_MINOR, device);
    }

    /** {@code cuDeviceTotalMem}: bytes of device memory. */
    public long deviceTotalMemory(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) cuDeviceTotalMem.invokeExact(out, device), "cuDeviceTotalMem(device=" + device + ")");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- contexts

    /** Retains the primary context of device {@code ordinal}; closing the result releases it. */
    public CudaContext retainPrimaryContext(int ordinal) {
        int dev = device(ordinal);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(out, dev), "cuDevicePrimaryCtxRetain(device=" + dev + ")");
            return new CudaContext(this, ordinal, dev, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void primaryContextRelease(int device) {
        try {
            check(
                    (int) cuDevicePrimaryCtxRelease.invokeExact(device),
                    "cuDevicePrimaryCtxRelease(device=" + device + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void contextSetCurrent(MemorySegment ctx) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent(ctx=" + hex(ctx) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuCtxSynchronize}: waits for all work of the current context. */
    public void contextSynchronize() {
        try {
            check((int) cuCtxSynchronize.invokeExact(), "cuCtxSynchronize()");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- memory

    /** {@code cuMemGetInfo}: {free, total} bytes of the current context's device. */
    public long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo()");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemAlloc}: {@code bytes} of device memory (256-byte aligned). */
    public long memAlloc(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc(bytes=" + bytes + ")");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemFree}. */
    public void memFree(long ptr) {
        try {
            check((int) cuMemFree.invokeExact(ptr), "cuMemFree(ptr=" + hex(ptr) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemAllocHost}: page-locked host memory; free with {@link #memFreeHost}. */
    public MemorySegment memAllocHost(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuMemAllocHost.invokeExact(out, bytes), "cuMemAllocHost(bytes=" + bytes + ")");
            return out.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemFreeHost}. */
    public void memFreeHost(MemorySegment host) {
        try {
            check((int) cuMemFreeHost.invokeExact(host), "cuMemFreeHost(ptr=" + hex(host) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyHtoD}: synchronous copy of {@code bytes} from native host memory to the device. */
    public void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        requireNative(src, bytes, "cuMemcpyHtoD");
        try {
            check(
                    (int) cuMemcpyHtoD.invokeExact(dst, src, bytes),
                    "cuMemcpyHtoD(dst=" + hex(dst) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyDtoH}: synchronous copy of {@code bytes} from the device to native host memory. */
    public void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        requireNative(dst, bytes, "cuMemcpyDtoH");
        try {
            check(
                    (int) cuMemcpyDtoH.invokeExact(dst, src, bytes),
                    "cuMemcpyDtoH(src=" + hex(src) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyDtoD}. */
    public void memcpyDtoD(long dst, long src, long bytes) {
        try {
            check(
                    (int) cuMemcpyDtoD.invokeExact(dst, src, bytes),
                    "cuMemcpyDtoD(dst=" + hex(dst) + ", src=" + hex(src) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyHtoDAsync}: queued on {@code stream}; {@code src} must stay valid until the stream passes it. */
    public void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, CudaStream stream) {
        requireNative(src, bytes, "cuMemcpyHtoDAsync");
        try {
            check(
                    (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream.handle()),
                    "cuMemcpyHtoDAsync(dst=" + hex(dst) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyDtoHAsync}: queued on {@code stream}; read {@code dst} only after synchronising. */
    public void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, CudaStream stream) {
        requireNative(dst, bytes, "cuMemcpyDtoHAsync");
        try {
            check(
                    (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream.handle()),
                    "cuMemcpyDtoHAsync(src=" + hex(src) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemcpyDtoDAsync}. */
    public void memcpyDtoDAsync(long dst, long src, long bytes, CudaStream stream) {
        try {
            check(
                    (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream.handle()),
                    "cuMemcpyDtoDAsync(dst=" + hex(dst) + ", src=" + hex(src) + ", bytes=" + bytes + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemsetD8}: {@code count} bytes set to the low 8 bits of {@code value}. */
    public void memsetD8(long ptr, int value, long count) {
        try {
            check(
                    (int) cuMemsetD8.invokeExact(ptr, (byte) value, count),
                    "cuMemsetD8(ptr=" + hex(ptr) + ", value=" + (value & 0xff) + ", count=" + count + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemsetD32}: {@code count} 32-bit words set to {@code value}. */
    public void memsetD32(long ptr, int value, long count) {
        try {
            check(
                    (int) cuMemsetD32.invokeExact(ptr, value, count),
                    "cuMemsetD32(ptr=" + hex(ptr) + ", value=" + value + ", count=" + count + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemsetD8Async}. */
    public void memsetD8Async(long ptr, int value, long count, CudaStream stream) {
        try {
            check(
                    (int) cuMemsetD8Async.invokeExact(ptr, (byte) value, count, stream.handle()),
                    "cuMemsetD8Async(ptr=" + hex(ptr) + ", value=" + (value & 0xff) + ", count=" + count + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuMemsetD32Async}. */
    public void memsetD32Async(long ptr, int value, long count, CudaStream stream) {
        try {
            check(
                    (int) cuMemsetD32Async.invokeExact(ptr, value, count, stream.handle()),
                    "cuMemsetD32Async(ptr=" + hex(ptr) + ", value=" + value + ", count=" + count + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- modules and launches

    /**
     * {@code cuModuleLoadDataEx} of a cubin, PTX (NUL-terminated) or fatbin image, with the JIT error log
     * appended to the exception message when loading fails.
     *
     * @param name a label for errors (e.g. the module name)
     */
    public CudaModule moduleLoadData(byte[] image, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment img = arena.allocate(image.length + 1L, 16);
            img.copyFrom(MemorySegment.ofArray(image));
            MemorySegment log = arena.allocate(JIT_LOG_BYTES);
            MemorySegment options = arena.allocate(JAVA_INT, 2);
            options.setAtIndex(JAVA_INT, 0, JIT_ERROR_LOG_BUFFER);
            options.setAtIndex(JAVA_INT, 1, JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
            MemorySegment values = arena.allocate(ADDRESS, 2);
            values.setAtIndex(ADDRESS, 0, log);
            values.setAtIndex(ADDRESS, 1, MemorySegment.ofAddress(JIT_LOG_BYTES));
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) cuModuleLoadDataEx.invokeExact(out, img, 2, options, values);
            if (rc != CudaErrors.SUCCESS) {
                String jitLog = log.getString(0).strip();
                String desc = errorString(rc);
                if (!jitLog.isEmpty()) desc = (desc == null ? "" : desc) + "; JIT log: " + jitLog;
                throw new CudaException(
                        "cuModuleLoadDataEx(module=" + name + ", bytes=" + image.length + ")", rc, errorName(rc), desc);
            }
            return new CudaModule(this, name, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void moduleUnload(MemorySegment module, String name) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload(module=" + name + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    MemorySegment moduleGetFunction(MemorySegment module, String moduleName, String entry) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(
                    (int) cuModuleGetFunction.invokeExact(out, module, arena.allocateFrom(entry)),
                    "cuModuleGetFunction(module=" + moduleName + ", name=" + entry + ")");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuFuncGetAttribute} (see the {@code FUNC_ATTR_*} constants). */
    public int functionAttribute(CudaFunction f, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(
                    (int) cuFuncGetAttribute.invokeExact(out, attribute, f.handle()),
                    "cuFuncGetAttribute(function=" + f.name() + ", attribute=" + attribute + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** Whether this driver has {@code cuFuncGetParamInfo} (CUDA 12.4 and later) for {@link #functionParameter}. */
    public boolean hasParameterInfo() {
        return cuFuncGetParamInfo.isPresent();
    }

    /**
     * {@code cuFuncGetParamInfo}: {offset, size} in bytes of parameter {@code index} of {@code f} in the device-side
     * parameter layout, or empty when {@code f} takes fewer parameters (the driver answers
     * CUDA_ERROR_INVALID_VALUE). Throws {@link IllegalStateException} when the driver lacks the call.
     */
    public Optional<long[]> functionParameter(CudaFunction f, int index) {
        MethodHandle h = cuFuncGetParamInfo.orElseThrow(() -> new IllegalStateException(
                "cuFuncGetParamInfo is missing from " + origin + " (it needs a CUDA 12.4 or newer driver)"));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offset = arena.allocate(JAVA_LONG), size = arena.allocate(JAVA_LONG);
            int r = (int) h.invokeExact(f.handle(), (long) index, offset, size);
            if (r == CudaErrors.INVALID_VALUE) return Optional.empty();
            check(r, "cuFuncGetParamInfo(function=" + f.name() + ", index=" + index + ")");
            return Optional.of(new long[] {offset.get(JAVA_LONG, 0), size.get(JAVA_LONG, 0)});
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuFuncSetAttribute}, e.g. {@link #FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES} above 48 KiB. */
    public void setFunctionAttribute(CudaFunction f, int attribute, int value) {
        try {
            check(
                    (int) cuFuncSetAttribute.invokeExact(f.handle(), attribute, value),
                    "cuFuncSetAttribute(function=" + f.name() + ", attribute=" + attribute + ", value=" + value + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /**
     * {@code cuLaunchKernel} on {@code stream}; {@code kernelParams} is a {@code void*} array with one pointer
     * per kernel parameter (the driver copies the values before returning).
     */
    public void launchKernel(
            CudaFunction f,
            int gx,
            int gy,
            int gz,
            int bx,
            int by,
            int bz,
            int sharedBytes,
            CudaStream stream,
            MemorySegment kernelParams) {
        int rc;
        try {
            rc = (int) cuLaunchKernel.invokeExact(
                    f.handle(), gx, gy, gz, bx, by, bz, sharedBytes, stream.handle(), kernelParams, MemorySegment.NULL);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
        if (rc != CudaErrors.SUCCESS) {
            check(
                    rc,
                    "cuLaunchKernel(" + f.name() + ", grid=[" + gx + "," + gy + "," + gz + "], block=[" + bx + "," + by
                            + "," + bz + "], sharedBytes=" + sharedBytes + ")");
        }
    }

    // ---------------------------------------------------------------- streams and events

    /** {@code cuStreamCreate} (flags: 0 or {@link #STREAM_NON_BLOCKING}). */
    public CudaStream streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuStreamCreate.invokeExact(out, flags), "cuStreamCreate(flags=" + flags + ")");
            return new CudaStream(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy(stream=" + hex(stream) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize(stream=" + hex(stream) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    boolean streamQuery(MemorySegment stream) {
        try {
            int rc = (int) cuStreamQuery.invokeExact(stream);
            if (rc == CudaErrors.NOT_READY) return false;
            check(rc, "cuStreamQuery(stream=" + hex(stream) + ")");
            return true;
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check(
                    (int) cuStreamWaitEvent.invokeExact(stream, event, 0),
                    "cuStreamWaitEvent(stream=" + hex(stream) + ", event=" + hex(event) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    /** {@code cuEventCreate} (flags: {@link #EVENT_DEFAULT} for timing, {@link #EVENT_DISABLE_TIMING}). */
    public CudaEvent eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuEventCreate.invokeExact(out, flags), "cuEventCreate(flags=" + flags + ")");
            return new CudaEvent(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy(event=" + hex(event) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check(
                    (int) cuEventRecord.invokeExact(event, stream),
                    "cuEventRecord(event=" + hex(event) + ", stream=" + hex(stream) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize(event=" + hex(event) + ")");
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check(
                    (int) cuEventElapsedTime.invokeExact(out, start, end),
                    "cuEventElapsedTime(start=" + hex(start) + ", end=" + hex(end) + ")");
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void requireNative(MemorySegment host, long bytes, String call) {
        if (!host.isNative()) {
            throw new IllegalArgumentException(
                    call + ": host memory must be a native segment (Arena-allocated), not a heap array");
        }
        if (host.byteSize() < bytes) {
            throw new IllegalArgumentException(
                    call + ": host segment has " + host.byteSize() + " bytes, copy needs " + bytes);
        }
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    static String hex(MemorySegment s) {
        return hex(s.address());
    }
}
