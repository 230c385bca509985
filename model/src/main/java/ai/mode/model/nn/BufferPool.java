package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Shapes;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Named reusable tensors: the activation-buffer strategy of the layers. Each name keeps one flat allocation that only
 * ever grows, and hands out a view of the requested shape, so steady-state training allocates nothing per step, and
 * changing shapes (a smaller last evaluation batch, a variable number of tokens routed to an expert) reuse the same
 * memory instead of reallocating.
 *
 * <p>Reusable tensors keyed by name. {@link #get} returns a tensor of exactly the requested shape backed by the
 * key's flat buffer; asking again with the same shape returns the same tensor object. A larger request grows
 * the buffer (by at least half, so a slowly growing shape reallocates rarely); a smaller one reuses it.
 * Contents are whatever was last written (zeros on first allocation).
 *
 * <p>Two uses: each layer owns a pool for what its backward needs (saved activations) and for the tensors it
 * returns; a model shares one <em>scratch</em> pool among all its layers for backward-pass temporaries, which
 * are dead once a layer's backward returns. A scratch pool must not be shared by layers that run concurrently
 * on different threads.
 */
public final class BufferPool implements AutoCloseable {
    private static final class Entry {
        Tensor flat;
        Tensor view;
        int[] shape;
    }

    private final Backend backend;
    private final Map<String, Entry> buffers = new LinkedHashMap<>();

    public BufferPool(Backend backend) {
        this.backend = backend;
    }

    public Backend backend() {
        return backend;
    }

    /** A float32 buffer for {@code key} with exactly {@code shape}. */
    public Tensor get(String key, int... shape) {
        return get(key, DType.F32, shape);
    }

    /** A buffer for {@code key} with exactly {@code dtype} and {@code shape}. */
    public Tensor get(String key, DType dtype, int... shape) {
        Entry e = buffers.get(key);
        if (e != null && e.flat.dtype() == dtype && Arrays.equals(e.shape, shape)) return e.view;
        long n = Shapes.numel(shape);
        if (e == null || e.flat.dtype() != dtype || e.flat.numel() < n) {
            long capacity = e == null || e.flat.dtype() != dtype ? n : Math.max(n, e.flat.numel() + e.flat.numel() / 2);
            if (e != null) e.flat.close();
            else buffers.put(key, e = new Entry());
            e.flat = backend.allocate(dtype, Math.toIntExact(Math.max(1, capacity)));
        }
        e.shape = shape.clone();
        e.view = backend.view(n == e.flat.numel() ? e.flat : backend.slice(e.flat, 0, Math.toIntExact(n)), shape);
        return e.view;
    }

    /** Total bytes currently held. */
    public long bytes() {
        long n = 0;
        for (Entry e : buffers.values()) n += e.flat.numel() * e.flat.dtype().bytes();
        return n;
    }

    /** Frees every buffer (they are re-allocated on next use). */
    public void release() {
        for (Entry e : buffers.values()) e.flat.close();
        buffers.clear();
    }

    @Override
    public void close() {
        release();
    }
}
