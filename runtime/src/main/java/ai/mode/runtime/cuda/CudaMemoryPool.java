package ai.mode.runtime.cuda;

import ai.mode.bindings.CudaErrors;
import ai.mode.bindings.CudaException;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching device allocator with size classes. {@code cuMemAlloc}/{@code cuMemFree} synchronise the device
 * and cost tens of microseconds, and training allocates the same shapes every step, so freed blocks are kept
 * per size class and handed out again. Sizes round up to 512 bytes, then to a quarter of their power of two
 * (at most 25% waste). When the device is out of memory the cache is released and the allocation retried once.
 *
 * <p>Releasing the cache calls {@code cuMemFree}, which synchronises the device. With collectives queued (an
 * NCCL kernel waiting for a peer that has not launched its half yet), a device-synchronising call can block
 * the peer's launch and hang both, so the pool first waits for its stream to drain
 * ({@link RawAllocator#awaitIdle}, a stream synchronisation that blocks no other thread) and frees only when
 * nothing is queued.
 *
 * <p>Reuse is safe because every user of the pool orders its work on one stream: a block freed after a
 * kernel was queued is only reused by work queued after it. Not thread-safe (one thread drives one device).
 */
public final class CudaMemoryPool implements AutoCloseable {
    /** The raw allocator behind the pool ({@code cuMemAlloc}/{@code cuMemFree} on a device; fakes in tests). */
    public interface RawAllocator {
        long allocate(long bytes);

        void free(long ptr);

        /** Waits until no queued work (kernels, collectives) can still use a block; before frees that synchronise. */
        default void awaitIdle() {}
    }

    private static final System.Logger LOG = System.getLogger(CudaMemoryPool.class.getName());
    private static final long MIN_CLASS = 512;

    private final RawAllocator raw;
    private final TreeMap<Long, ArrayDeque<Long>> cached = new TreeMap<>();
    private final Map<Long, Long> sizeOfLive = new HashMap<>();
    private long bytesInUse;
    private long bytesCached;
    private long peakBytes;
    private long rawAllocations;

    public CudaMemoryPool(RawAllocator raw) {
        this.raw = raw;
    }

    /** The size class of a request: at least 512 bytes, rounded up to a quarter of its power of two. */
    public static long sizeClass(long bytes) {
        if (bytes <= 0) throw new IllegalArgumentException("allocation size must be > 0, got " + bytes);
        if (bytes <= MIN_CLASS) return MIN_CLASS;
        long step = Math.max(MIN_CLASS, Long.highestOneBit(bytes - 1) >>> 2);
        return Math.ceilDiv(bytes, step) * step;
    }

    /** A block of at least {@code bytes}; a cached block of the same class when there is one. */
    public long allocate(long bytes) {
        long size = sizeClass(bytes);
        ArrayDeque<Long> free = cached.get(size);
        long ptr;
        if (free != null && !free.isEmpty()) {
            ptr = free.pop();
            bytesCached -= size;
        } else {
            ptr = allocateRaw(size);
        }
        sizeOfLive.put(ptr, size);
        bytesInUse += size;
        peakBytes = Math.max(peakBytes, bytesInUse + bytesCached);
        return ptr;
    }

    private long allocateRaw(long size) {
        try {
            rawAllocations++;
            return raw.allocate(size);
        } catch (CudaException e) {
            if (e.code() != CudaErrors.OUT_OF_MEMORY || bytesCached == 0) throw e;
            LOG.log(
                    System.Logger.Level.DEBUG,
                    "out of device memory for {0} bytes; releasing {1} cached bytes and retrying",
                    size,
                    bytesCached);
            raw.awaitIdle();
            trim();
            return raw.allocate(size);
        }
    }

    /** Returns a block to its size class; 0 is ignored, an unknown pointer is an error. */
    public void free(long ptr) {
        if (ptr == 0) return;
        Long size = sizeOfLive.remove(ptr);
        if (size == null) {
            throw new IllegalArgumentException("free of device pointer 0x" + Long.toHexString(ptr)
                    + " that this pool did not allocate (or freed twice)");
        }
        bytesInUse -= size;
        bytesCached += size;
        cached.computeIfAbsent(size, s -> new ArrayDeque<>()).push(ptr);
    }

    /** Frees every cached block back to the device. */
    public void trim() {
        for (ArrayDeque<Long> blocks : cached.values()) {
            for (long p : blocks) raw.free(p);
        }
        cached.clear();
        bytesCached = 0;
    }

    /** Bytes handed out and not yet freed (by size class). */
    public long bytesInUse() {
        return bytesInUse;
    }

    /** Bytes held in the cache, ready for reuse. */
    public long bytesCached() {
        return bytesCached;
    }

    /** Highest {@code inUse + cached} seen. */
    public long peakBytes() {
        return peakBytes;
    }

    /** Number of raw allocations made (cache misses). */
    public long rawAllocations() {
        return rawAllocations;
    }

    /** Frees cached and live blocks; live tensors become invalid. */
    @Override
    public void close() {
        trim();
        for (long p : sizeOfLive.keySet()) raw.free(p);
        sizeOfLive.clear();
        bytesInUse = 0;
    }
}
