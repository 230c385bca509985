package ai.mode.runtime.cpu;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
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
 * <p>The caller waits for the tasks, not for the helper threads, so a nested or concurrent call from
 * another thread cannot deadlock: a helper that starts late finds nothing left and returns.
 */
final class CpuThreads implements AutoCloseable {

    /** One unit of work; {@code index} is the task number. */
    @FunctionalInterface
    interface Task {
        void run(int index);
    }

    private final int threads;
    private final ExecutorService pool;
    private volatile boolean closed;

    CpuThreads(int threads) {
        if (threads < 1) throw new IllegalArgumentException("cpu backend needs at least 1 thread, got " + threads);
        this.threads = threads;
        if (threads == 1) {
            this.pool = null;
        } else {
            AtomicInteger n = new AtomicInteger();
            ThreadFactory factory = r -> {
                Thread t = new Thread(r, "mode-cpu-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            this.pool = Executors.newFixedThreadPool(threads - 1, factory);
        }
    }

    int threads() { return threads; }

    /** Runs {@code task.run(i)} for every {@code i} in {@code [0, count)}; rethrows the first task failure. */
    void parallelFor(int count, Task task) {
        if (count <= 0) return;
        if (closed) throw new IllegalStateException("the cpu backend was closed; create a new one");
        if (pool == null || count == 1) {
            for (int i = 0; i < count; i++) task.run(i);
            return;
        }
        Region region = new Region(count, task, Thread.currentThread());
        int helpers = Math.min(threads - 1, count - 1);
        for (int h = 0; h < helpers; h++) pool.execute(region::work);
        region.work();
        region.await();
        Throwable failure = region.failure.get();
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

    /** Work on {@code [start, end)}. */
    @FunctionalInterface
    interface RangeTask {
        void run(int start, int end);
    }

    @Override
    public void close() {
        closed = true;
        if (pool != null) pool.shutdownNow();
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
                if (spins < 2000) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 50_000L);
                }
            }
        }
    }
}
