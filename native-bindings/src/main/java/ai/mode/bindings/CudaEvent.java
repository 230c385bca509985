package ai.mode.bindings;

import java.lang.foreign.MemorySegment;

/** A CUDA event ({@code CUevent}) for ordering and timing; {@link #close()} destroys it. */
public final class CudaEvent implements AutoCloseable {
    private final CudaDriver driver;
    private final MemorySegment handle;
    private boolean closed;

    CudaEvent(CudaDriver driver, MemorySegment handle) {
        this.driver = driver;
        this.handle = handle;
    }

    /** The raw {@code CUevent}. */
    public MemorySegment handle() {
        return handle;
    }

    /** {@code cuEventRecord} on {@code stream}. */
    public void record(CudaStream stream) {
        driver.eventRecord(handle, stream.handle());
    }

    /** {@code cuEventSynchronize}: waits until the recorded work is done. */
    public void synchronize() {
        driver.eventSynchronize(handle);
    }

    /** {@code cuEventElapsedTime}: milliseconds from {@code start} to this event (both recorded and complete). */
    public float elapsedMillisSince(CudaEvent start) {
        return driver.eventElapsedMillis(start.handle, handle);
    }

    /** {@code cuEventDestroy}; idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        driver.eventDestroy(handle);
    }
}
