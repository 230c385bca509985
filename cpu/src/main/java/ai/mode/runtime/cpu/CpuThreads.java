package ai.mode.runtime.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * The fixed worker pool of one {@link CpuBackend}: {@code threads - 1} daemon workers plus the calling thread.
 *
 * <p>{@link #parallelFor} runs tasks {@code 0..count-1}, each exactly once, on whichever thread claims it.
 * Callers make every task's arithmetic independent of the thread that runs it and of the thread count
 * (fixed partitions, per-task outputs combined in a fixed order afterwards), which is what makes the cpu
 * backend's results bitwise identical for any thread count.
 *
 * <p>Workers spin for a short while ({@link #SPIN_NANOS}) after each region before parking, so the many
 * back-to-back regions of a training step start without a wake-up delay. One region runs at a time: a call
 * made while the pool is busy (from another thread, or from inside a task) runs its tasks on the calling
 * thread, which cannot deadlock and gives the same results.
 */
final class CpuThreads implements AutoCloseable {

    /** One unit of work; {@code index} is the task number. */
    @FunctionalInterface
    interface Task {
        void run(int index);
    }

    /** Work on {@code [start, end)}. */
    @FunctionalInterface
    interface RangeTask {
        void run(int start, int end);
    }

    /** How long an idle worker polls for the next region before it parks. */
    private static final long SPIN_NANOS = 100_000L;

    private final int threads;
    private final Thread[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile Region region;
    private volatile long generation;
    private volatile boolean closed;

    CpuThreads(int threads) {
        if (threads < 1) throw new IllegalArgumentException("cpu backend needs at least 1 thread, got " + threads);
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            Thread t = new Thread(this::workerLoop, "mode-cpu-" + (i + 1));
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    int threads() {
        return threads;
    }

    /** Runs {@code task.run(i)} for every {@code i} in {@code [0, count)}; rethrows the first task failure. */
    void parallelFor(int count, Task task) {
        if (count <= 0) return;
        if (closed) throw new IllegalStateException("the cpu backend was closed; create a new one");
        if (workers.length == 0 || count == 1 || !busy.compareAndSet(false, true)) {
            for (int i = 0; i < count; i++) task.run(i);
            return;
        }
        Region r = new Region(count, task, Thread.currentThread());
        try {
            region = r;
            generation++; // only the holder of 'busy' writes it
            for (Thread w : workers) LockSupport.unpark(w);
            r.work();
            r.await();
        } finally {
            region = null;
            busy.set(false);
        }
        Throwable failure = r.failure.get();
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error err) throw err;
        if (failure != null) throw new IllegalStateException("cpu backend task failed", failure);
    }

    /** Splits {@code [0, n)} into pieces of {@code grain} (the last may be shorter) and runs them in parallel. */
    void parallelRanges(int n, int grain, RangeTask task) {
        if (n <= 0) return;
        int g = Math.max(1, grain);
        int pieces = (n + g - 1) / g;
        parallelFor(pieces, i -> task.run(i * g, Math.min(n, (i + 1) * g)));
    }

    private void workerLoop() {
        long seen = 0;
        while (!closed) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (generation == seen && !closed) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 1_000_000_000L); // woken by unpark in parallelFor or close
                }
            }
            seen = generation;
            Region r = region;
            if (r != null) r.work();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }

    /** One parallel region: a task counter, a completion counter and the waiting caller. */
    private static final class Region {
        final int count;
        final Task task;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Region(int count, Task task, Thread caller) {
            this.count = count;
            this.task = task;
            this.caller = caller;
        }

        void work() {
            int i;
            while ((i = next.getAndIncrement()) < count) {
                try {
                    if (failure.get() == null) task.run(i);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    if (done.incrementAndGet() == count) LockSupport.unpark(caller);
                }
            }
        }

        void await() {
            int spins = 0;
            while (done.get() < count) {
                if (spins < 20_000) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 50_000L);
                }
            }
        }
    }
}
