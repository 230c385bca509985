package ai.mode.parallel.sched;

import ai.mode.parallel.comm.CommunicatorException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * One long-lived thread per local rank ("lane"): every rank's backend is driven by the same thread for the whole run
 * (CUDA contexts, thread-confined buffers), and a failure on one lane aborts the communicators so that the other lanes
 * fail fast instead of waiting for a peer that will never come. Runs one task per lane concurrently and waits for all
 * of them.
 */
final class RankLanes implements AutoCloseable {
    /** The work of one lane. */
    @FunctionalInterface
    interface Task<T> {
        T run(int lane) throws Exception;
    }

    private final List<ExecutorService> lanes = new ArrayList<>();
    private final Consumer<String> abort;
    private volatile String broken;

    /**
     * @param names thread name per lane
     * @param abort called once with the reason when a lane fails (aborts every communicator of this process)
     */
    RankLanes(List<String> names, Consumer<String> abort) {
        for (String n : names) {
            lanes.add(Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, n);
                t.setDaemon(true);
                return t;
            }));
        }
        this.abort = abort;
    }

    int size() {
        return lanes.size();
    }

    /**
     * Runs {@code task} on every lane; returns the results in lane order. When a lane throws, the communicators
     * are aborted, every lane is waited for, and the first failure is rethrown (later ones attached as suppressed).
     * After a failure the lanes refuse further work.
     */
    <T> List<T> run(Task<T> task) {
        if (broken != null)
            throw new IllegalStateException("the parallel run failed earlier (" + broken + "); start a new one");
        List<Future<T>> fs = new ArrayList<>();
        Object lock = new Object();
        Throwable[] first = new Throwable[1];
        for (int i = 0; i < lanes.size(); i++) {
            int lane = i;
            fs.add(lanes.get(i).submit(() -> {
                try {
                    return task.run(lane);
                } catch (Throwable e) {
                    boolean isFirst;
                    synchronized (lock) {
                        isFirst = first[0] == null;
                        if (isFirst) first[0] = e;
                    }
                    if (isFirst) {
                        String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                        abort.accept(
                                e instanceof CommunicatorException
                                        ? msg
                                        : Thread.currentThread().getName() + " failed: " + msg);
                    }
                    throw e;
                }
            }));
        }
        List<T> out = new ArrayList<>();
        List<Throwable> others = new ArrayList<>();
        boolean interrupted = false;
        for (Future<T> f : fs) {
            while (true) {
                try {
                    out.add(f.get());
                    break;
                } catch (ExecutionException e) {
                    others.add(e.getCause());
                    out.add(null);
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        Throwable f;
        synchronized (lock) {
            f = first[0];
        }
        if (f != null) {
            broken = f.getMessage() == null ? f.getClass().getSimpleName() : f.getMessage();
            for (Throwable o : others) if (o != f) f.addSuppressed(o);
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error er) throw er;
            throw new IllegalStateException(f.getMessage(), f);
        }
        return out;
    }

    @Override
    public void close() {
        for (ExecutorService e : lanes) e.shutdownNow();
    }
}
