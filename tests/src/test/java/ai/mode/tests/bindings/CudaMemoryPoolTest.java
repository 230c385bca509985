package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.bindings.CudaErrors;
import ai.mode.bindings.CudaException;
import ai.mode.runtime.cuda.CudaMemoryPool;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The cuda backend's caching allocator, over a fake device allocator with a capacity (no GPU needed). */
class CudaMemoryPoolTest {

    /** A fake device: hands out 256-aligned addresses, fails with CUDA_ERROR_OUT_OF_MEMORY past its capacity. */
    static final class FakeDevice implements CudaMemoryPool.RawAllocator {
        final long capacity;
        final Map<Long, Long> live = new HashMap<>();
        long used;
        long next = 0x7f0000000000L;
        int allocations;
        int frees;
        final List<String> calls = new ArrayList<>();

        FakeDevice(long capacity) {
            this.capacity = capacity;
        }

        @Override
        public long allocate(long bytes) {
            if (used + bytes > capacity) {
                throw new CudaException(
                        "cuMemAlloc(bytes=" + bytes + ")",
                        CudaErrors.OUT_OF_MEMORY,
                        CudaErrors.name(CudaErrors.OUT_OF_MEMORY),
                        "out of memory");
            }
            long p = next;
            next += (bytes + 255) / 256 * 256;
            live.put(p, bytes);
            used += bytes;
            allocations++;
            calls.add("allocate");
            return p;
        }

        @Override
        public void free(long ptr) {
            Long b = live.remove(ptr);
            if (b == null) throw new AssertionError("fake device: bad free " + ptr);
            used -= b;
            frees++;
            calls.add("free");
        }

        @Override
        public void awaitIdle() {
            calls.add("awaitIdle");
        }
    }

    @Test
    void sizeClassesBoundWaste() {
        assertEquals(512, CudaMemoryPool.sizeClass(1));
        assertEquals(512, CudaMemoryPool.sizeClass(512));
        assertEquals(1024, CudaMemoryPool.sizeClass(513));
        assertEquals(1536, CudaMemoryPool.sizeClass(1025));
        assertEquals(5120, CudaMemoryPool.sizeClass(4097));
        assertEquals(1L << 30, CudaMemoryPool.sizeClass(1L << 30));
        assertThrows(IllegalArgumentException.class, () -> CudaMemoryPool.sizeClass(0));
        Random rnd = new Random(1);
        long prev = 0;
        for (long bytes = 1; bytes < (1L << 34); bytes += 1 + (bytes >>> 3) + rnd.nextInt(100)) {
            long c = CudaMemoryPool.sizeClass(bytes);
            assertTrue(c >= bytes, "class " + c + " < request " + bytes);
            assertTrue(c <= bytes + Math.max(512, bytes / 4), "waste too large for " + bytes + ": " + c);
            assertTrue(bytes <= 2048 || c <= bytes * 1.25 + 1, "more than 25% waste for " + bytes + ": " + c);
            assertEquals(0, c % 512, "classes are multiples of 512");
            assertTrue(c >= prev, "classes are monotone");
            prev = c;
        }
        Set<Long> classes = new HashSet<>();
        for (long b = (1L << 20) + 1; b <= 1L << 21; b += 4096) classes.add(CudaMemoryPool.sizeClass(b));
        assertEquals(4, classes.size(), "four classes per power of two: " + classes);
    }

    @Test
    void freedBlocksAreReusedWithinTheirClass() {
        FakeDevice dev = new FakeDevice(1L << 30);
        CudaMemoryPool pool = new CudaMemoryPool(dev);
        long a = pool.allocate(1000);
        long b = pool.allocate(100_000);
        assertNotEquals(a, b);
        pool.free(a);
        assertEquals(1024, pool.bytesCached());
        long c = pool.allocate(900);
        assertEquals(a, c, "same class, cached block reused");
        assertEquals(2, dev.allocations, "no new device allocation");
        long d = pool.allocate(3000);
        assertEquals(3, dev.allocations, "another class needs a new block");
        assertEquals(
                CudaMemoryPool.sizeClass(900) + CudaMemoryPool.sizeClass(100_000) + CudaMemoryPool.sizeClass(3000),
                pool.bytesInUse());
        pool.free(b);
        pool.free(c);
        pool.free(d);
        assertEquals(0, pool.bytesInUse());
        pool.trim();
        assertEquals(0, pool.bytesCached());
        assertTrue(dev.live.isEmpty(), "trim returns every cached block to the device");
        assertEquals(3, pool.rawAllocations());
    }

    @Test
    void outOfMemoryReleasesTheCacheAndRetries() {
        FakeDevice dev = new FakeDevice(10_000);
        CudaMemoryPool pool = new CudaMemoryPool(dev);
        long a = pool.allocate(4000);
        long b = pool.allocate(4000);
        pool.free(a);
        pool.free(b);
        assertEquals(8192, pool.bytesCached());
        dev.calls.clear();
        long c = pool.allocate(6000);
        assertTrue(dev.live.containsKey(c));
        assertEquals(
                List.of("awaitIdle", "free", "free", "allocate"),
                dev.calls,
                "the stream drains before the device-synchronising frees");
        assertEquals(0, pool.bytesCached(), "the cache was released to make room");
        CudaException e = assertThrows(CudaException.class, () -> pool.allocate(9000));
        assertEquals(CudaErrors.OUT_OF_MEMORY, e.code(), "nothing cached: the device error propagates");
        assertTrue(e.getMessage().contains("bytes=" + CudaMemoryPool.sizeClass(9000)), e.getMessage());
    }

    @Test
    void badFreesAreErrorsAndCloseReleasesEverything() {
        FakeDevice dev = new FakeDevice(1L << 20);
        CudaMemoryPool pool = new CudaMemoryPool(dev);
        long a = pool.allocate(10);
        pool.allocate(20_000);
        pool.free(0);
        assertThrows(IllegalArgumentException.class, () -> pool.free(12345));
        pool.free(a);
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> pool.free(a));
        assertTrue(twice.getMessage().contains("freed twice"), twice.getMessage());
        pool.close();
        assertTrue(dev.live.isEmpty(), "close frees live and cached blocks");
        assertEquals(0, pool.bytesInUse());
    }
}
