package ai.mode.bench;

import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Machine ceilings measured before the benchmarks, so every throughput is reported next to what this machine can
 * actually do: a Vector API FMA loop (float32 GFLOP/s) and a large array copy (GB/s). The FMA-throughput and
 * memory-copy probes, each run on {@code threads} threads at once.
 */
public final class PeakProbes {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Independent accumulator chains: enough to cover FMA latency x ports (4 cycles x 2 ports) with margin. */
    private static final int CHAINS = 12;

    private PeakProbes() {}

    /** Float32 lanes per preferred vector. */
    public static int lanes() {
        return S.length();
    }

    /** Float32 FLOPs one call of {@link #fmaLoop} performs: 2 per lane per FMA. */
    public static long fmaLoopFlops(long iterations) {
        return iterations * CHAINS * S.length() * 2L;
    }

    /** {@code CHAINS} independent chains of {@code a = a * x + y}; returns a value that depends on all of them. */
    public static float fmaLoop(long iterations, float seed) {
        FloatVector x = FloatVector.broadcast(S, 0.999_999f);
        FloatVector y = FloatVector.broadcast(S, 1e-6f);
        FloatVector a0 = FloatVector.broadcast(S, seed), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3);
        FloatVector a4 = a0.add(4), a5 = a0.add(5), a6 = a0.add(6), a7 = a0.add(7);
        FloatVector a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10), a11 = a0.add(11);
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(x, y);
            a1 = a1.fma(x, y);
            a2 = a2.fma(x, y);
            a3 = a3.fma(x, y);
            a4 = a4.fma(x, y);
            a5 = a5.fma(x, y);
            a6 = a6.fma(x, y);
            a7 = a7.fma(x, y);
            a8 = a8.fma(x, y);
            a9 = a9.fma(x, y);
            a10 = a10.fma(x, y);
            a11 = a11.fma(x, y);
        }
        return a0.add(a1)
                .add(a2)
                .add(a3)
                .add(a4)
                .add(a5)
                .add(a6)
                .add(a7)
                .add(a8)
                .add(a9)
                .add(a10)
                .add(a11)
                .reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }

    /** Peak float32 FMA throughput in GFLOP/s on {@code threads} threads: best of {@code repeats} runs. */
    public static double fmaGflops(int threads, int repeats) {
        long iters = 20_000_000L;
        float[] sink = new float[threads];
        // warm-up so the loop is compiled by C2 before timing
        for (int w = 0; w < 3; w++) onThreads(threads, t -> sink[t] += fmaLoop(iters / 10, t));
        double best = 0;
        for (int r = 0; r < repeats; r++) {
            double secs = onThreads(threads, t -> sink[t] += fmaLoop(iters, t));
            best = Math.max(best, fmaLoopFlops(iters) * threads / secs / 1e9);
        }
        if (Float.isNaN(sink[0])) throw new IllegalStateException("FMA probe produced NaN");
        return best;
    }

    /**
     * Memory-copy bandwidth in GB/s (bytes read + bytes written per second) copying {@code megabytes} MB
     * between two float arrays, split across {@code threads} threads: best of {@code repeats} runs.
     */
    public static double copyGBs(int threads, int megabytes, int repeats) {
        int n = megabytes * (1 << 20) / Float.BYTES;
        float[] src = new float[n];
        float[] dst = new float[n];
        for (int i = 0; i < n; i += 1024) src[i] = i;
        int chunk = (n + threads - 1) / threads;
        ThreadBody copy = t -> {
            int from = t * chunk, len = Math.min(chunk, n - from);
            if (len > 0) System.arraycopy(src, from, dst, from, len);
        };
        onThreads(threads, copy);
        double best = 0;
        for (int r = 0; r < repeats; r++) {
            double secs = onThreads(threads, copy);
            best = Math.max(best, 2.0 * n * Float.BYTES / secs / 1e9);
        }
        if (dst[1024] != 1024f) throw new IllegalStateException("copy probe did not copy");
        return best;
    }

    /** Work of thread {@code t} of a probe. */
    @FunctionalInterface
    interface ThreadBody {
        void run(int t);
    }

    /** Runs {@code body} on {@code threads} fresh threads released together; returns the wall seconds until all end. */
    static double onThreads(int threads, ThreadBody body) {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        Thread[] ts = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            int id = t;
            ts[t] = new Thread(
                    () -> {
                        try {
                            start.await();
                        } catch (InterruptedException | BrokenBarrierException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                        body.run(id);
                    },
                    "probe-" + t);
            ts[t].start();
        }
        try {
            start.await();
            long t0 = System.nanoTime();
            for (Thread th : ts) th.join();
            return (System.nanoTime() - t0) / 1e9;
        } catch (InterruptedException | BrokenBarrierException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("probe interrupted", e);
        }
    }
}
