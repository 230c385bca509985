package ai.mode.bindings;

/**
 * One {@code cuMemAlloc} allocation, freed by {@link #close()}. For short-lived buffers (tests, workspaces);
 * the cuda backend's pool manages its own raw pointers.
 */
public final class DeviceMemory implements AutoCloseable {
    private final CudaDriver driver;
    private final long ptr;
    private final long bytes;
    private boolean closed;

    private DeviceMemory(CudaDriver driver, long ptr, long bytes) {
        this.driver = driver;
        this.ptr = ptr;
        this.bytes = bytes;
    }

    /** Allocates {@code bytes} in the current context. */
    public static DeviceMemory allocate(CudaDriver driver, long bytes) {
        return new DeviceMemory(driver, driver.memAlloc(bytes), bytes);
    }

    /** The device address ({@code CUdeviceptr}). */
    public long address() {
        return ptr;
    }

    public long bytes() {
        return bytes;
    }

    /** {@code cuMemFree}; idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        driver.memFree(ptr);
    }
}
