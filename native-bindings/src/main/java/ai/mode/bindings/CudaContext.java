package ai.mode.bindings;

import java.lang.foreign.MemorySegment;

/**
 * A retained primary context of one device ({@code cuDevicePrimaryCtxRetain}); {@link #close()} releases
 * it. Driver calls act on the calling thread's current context, so every thread that uses the device calls
 * {@link #makeCurrent()} first (cheap when it already is current).
 */
public final class CudaContext implements AutoCloseable {
    private static final ThreadLocal<MemorySegment> CURRENT = new ThreadLocal<>();

    private final CudaDriver driver;
    private final int ordinal;
    private final int device;
    private final MemorySegment handle;
    private boolean closed;

    CudaContext(CudaDriver driver, int ordinal, int device, MemorySegment handle) {
        this.driver = driver;
        this.ordinal = ordinal;
        this.device = device;
        this.handle = handle;
    }

    /** Makes this context current on the calling thread ({@code cuCtxSetCurrent}) unless it already is. */
    public void makeCurrent() {
        if (closed) throw new IllegalStateException("CUDA context of device " + ordinal + " is closed");
        if (!handle.equals(CURRENT.get())) {
            driver.contextSetCurrent(handle);
            CURRENT.set(handle);
        }
    }

    /** The device ordinal (as passed to {@link CudaDriver#retainPrimaryContext}). */
    public int ordinal() {
        return ordinal;
    }

    /** The {@code CUdevice} handle. */
    public int device() {
        return device;
    }

    /** The raw {@code CUcontext}. */
    public MemorySegment handle() {
        return handle;
    }

    /** Releases the primary context; idempotent. The caller must have freed what it allocated in it. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (handle.equals(CURRENT.get())) CURRENT.remove();
        driver.primaryContextRelease(device);
    }
}
