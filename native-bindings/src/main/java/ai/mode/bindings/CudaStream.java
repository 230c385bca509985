package ai.mode.bindings;

import java.lang.foreign.MemorySegment;

/** A CUDA stream ({@code CUstream}); {@link #close()} destroys it. {@link #DEFAULT} is the legacy default stream. */
public final class CudaStream implements AutoCloseable {
    /** The legacy default stream (handle 0); closing it does nothing. */
    public static final CudaStream DEFAULT = new CudaStream(null, MemorySegment.NULL);

    private final CudaDriver driver;
    private final MemorySegment handle;
    private boolean closed;

    CudaStream(CudaDriver driver, MemorySegment handle) {
        this.driver = driver;
        this.handle = handle;
    }

    /** The raw {@code CUstream} (also what cuBLASLt and NCCL take as {@code cudaStream_t}). */
    public MemorySegment handle() {
        return handle;
    }

    /** {@code cuStreamSynchronize}: waits for all queued work, reporting asynchronous errors. */
    public void synchronize() {
        driver().streamSynchronize(handle);
    }

    /** {@code cuStreamQuery}: true when all queued work is complete. */
    public boolean isIdle() {
        return driver().streamQuery(handle);
    }

    /** {@code cuStreamWaitEvent}: later work on this stream waits for {@code event}. */
    public void waitFor(CudaEvent event) {
        driver().streamWaitEvent(handle, event.handle());
    }

    private CudaDriver driver() {
        return driver != null ? driver : CudaDriver.get();
    }

    /** {@code cuStreamDestroy}; idempotent. */
    @Override
    public void close() {
        if (closed || driver == null) return;
        closed = true;
        driver.streamDestroy(handle);
    }
}
