package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The key/value cache of one generation: per decoder-layer graph a K and a V buffer on the backend, so that each new
 * token costs one position instead of a forward pass over the whole sequence.
 *
 * <p>Each {@link DecoderLayer} that runs {@link Layer#forwardCached} gets, on first use, two tensors
 * {@code [R, C, Hkv, hd]} (R its rows: 1 for a backbone layer, E for E stacked MoDE experts; C the capacity), into
 * whose rows {@code [length, length + t)} it writes the roped keys and values of the t new positions. The
 * {@link #length()} is shared by every layer: the model advances it once after all layers have run
 * ({@link CausalLm#forwardCached}). Memory: {@code 2 · R · C · Hkv · hd} floats per layer graph.
 */
public final class KvCache implements AutoCloseable {
    private final Backend backend;
    private final int capacity;
    private final Map<DecoderLayer, Tensor[]> layers = new IdentityHashMap<>();
    private int length;

    /** A cache for at most {@code capacity} positions (at most the model's max_position_embeddings). */
    public KvCache(Backend backend, int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("key/value cache capacity must be >= 1, got " + capacity);
        this.backend = backend;
        this.capacity = capacity;
    }

    /** C, the positions this cache holds at most. */
    public int capacity() {
        return capacity;
    }

    /** Positions cached so far (the position of the next token). */
    public int length() {
        return length;
    }

    /** Room for {@code t} more positions, or an error naming both numbers. */
    void requireRoom(String who, int t) {
        if (length + t > capacity)
            throw new IllegalArgumentException(who + ": " + t + " new positions after " + length
                    + " cached ones exceed the cache capacity " + capacity);
    }

    /** The {K, V} buffers {@code [rows, C, kvHeads, headDim]} of {@code layer}, allocated (zero) on first use. */
    Tensor[] buffers(DecoderLayer layer, int rows, int kvHeads, int headDim) {
        Tensor[] kv = layers.get(layer);
        if (kv != null && kv[0].dim(0) != rows)
            throw new IllegalArgumentException("key/value cache of " + layer.prefix() + " holds " + kv[0].dim(0)
                    + " rows but the layer now runs " + rows);
        if (kv == null) {
            kv = new Tensor[] {
                backend.zeros(rows, capacity, kvHeads, headDim), backend.zeros(rows, capacity, kvHeads, headDim)
            };
            layers.put(layer, kv);
        }
        return kv;
    }

    /** Records t more cached positions (after every layer has written them). */
    public void advance(int t) {
        requireRoom("key/value cache", t);
        length += t;
    }

    /** Forgets every cached position (the buffers stay allocated for the next sequence). */
    public void clear() {
        length = 0;
    }

    /** Bytes of cache memory currently allocated. */
    public long bytes() {
        long n = 0;
        for (Tensor[] kv : layers.values())
            n += 2 * kv[0].numel() * kv[0].dtype().bytes();
        return n;
    }

    @Override
    public void close() {
        for (Tensor[] kv : layers.values()) {
            kv[0].close();
            kv[1].close();
        }
        layers.clear();
    }
}
