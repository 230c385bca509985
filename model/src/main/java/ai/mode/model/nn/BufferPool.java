// Named, shape-keyed reusable tensors: the activation-buffer strategy of the layers. Buffers are allocated
// on first use and reused every step while the batch shape is unchanged, so steady-state training allocates
// nothing per step.
package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reusable tensors keyed by name. {@link #get} returns the same tensor for the same key and shape; a new
 * shape for a key frees the old buffer and allocates a new one (e.g. when evaluation uses another batch
 * size). Contents are whatever was last written (zeros on first allocation).
 *
 * <p>Two uses: each layer owns a pool for what its backward needs (saved activations) and for the
 * tensors it returns; a model shares one <em>scratch</em> pool among all its layers for backward-pass
 * temporaries, which are dead once a layer's backward returns. A scratch pool must not be shared by
 * layers that run concurrently on different threads.
 */
public final class BufferPool implements AutoCloseable {
    private final Backend backend;
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();

    public BufferPool(Backend backend) {
        this.backend = backend;
    }

    public Backend backend() { return backend; }

    /** A float32 buffer for {@code key} with exactly {@code shape}. */
    public Tensor get(String key, int... shape) {
        return get(key, DType.F32, shape);
    }

    /** A buffer for {@code key} with exactly {@code dtype} and {@code shape}. */
    public Tensor get(String key, DType dtype, int... shape) {
        Tensor t = buffers.get(key);
        if (t != null && t.dtype() == dtype && Arrays.equals(t.shape(), shape)) return t;
        if (t != null) t.close();
        t = backend.allocate(dtype, shape);
        buffers.put(key, t);
        return t;
    }

    /** Total bytes currently held. */
    public long bytes() {
        long n = 0;
        for (Tensor t : buffers.values()) n += t.numel() * t.dtype().bytes();
        return n;
    }

    /** Frees every buffer (they are re-allocated on next use). */
    public void release() {
        for (Tensor t : buffers.values()) t.close();
        buffers.clear();
    }

    @Override
    public void close() { release(); }
}
