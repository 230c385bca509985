package ai.mode.parallel.comm;

import ai.mode.runtime.Backend;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Threads as ranks: one communicator per device of this JVM over a shared LocalHub, and a runner that gives each rank
 * its own thread, aborts the world when one rank fails, and rethrows the failure that started it. Factory of in-process
 * communicators and the rank-thread runner.
 */
public final class InProcessWorld {
    private InProcessWorld() {}

    /** One world communicator per backend (rank r drives backends.get(r)), all over one new {@link LocalHub}. */
    public static List<Communicator> create(List<Backend> backends, Duration timeout) {
        LocalHub hub = new LocalHub();
        List<Integer> ranks = new ArrayList<>();
        for (int r = 0; r < backends.size(); r++) ranks.add(r);
        List<Communicator> out = new ArrayList<>();
        for (int r = 0; r < backends.size(); r++)
            out.add(new HubCommunicator(hub, "world", r, ranks, backends.get(r), timeout));
        return out;
    }

    /** The work of one rank. */
    @FunctionalInterface
    public interface RankTask<T> {
        T run(int index, Communicator comm) throws Exception;
    }

    /**
     * Runs {@code task} for every communicator on its own thread (named {@code mode-rank-R}) and returns the
     * results in order. When a rank throws, its communicator is aborted (so no other rank hangs) and, after
     * every thread has ended, the first failure is rethrown (the others are attached as suppressed).
     */
    public static <T> List<T> run(List<Communicator> comms, RankTask<T> task) {
        int n = comms.size();
        List<T> results = new ArrayList<>(java.util.Collections.nCopies(n, null));
        AtomicReference<Throwable> first = new AtomicReference<>();
        List<Throwable> others = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int index = i;
            Communicator c = comms.get(i);
            Thread t = new Thread(
                    () -> {
                        try {
                            results.set(index, task.run(index, c));
                        } catch (Throwable e) {
                            if (first.compareAndSet(null, e)) {
                                String msg =
                                        e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                                c.abort(
                                        e instanceof CommunicatorException
                                                ? msg
                                                : "rank " + c.worldRanks().get(c.rank()) + " failed: " + msg);
                            } else {
                                others.add(e);
                            }
                        }
                    },
                    "mode-rank-" + c.worldRanks().get(c.rank()));
            t.setDaemon(true);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        boolean interrupted = false;
        for (Thread t : threads) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        Throwable f = first.get();
        if (f != null) {
            for (Throwable o : others) if (o != f) f.addSuppressed(o);
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error er) throw er;
            throw new IllegalStateException(f.getMessage(), f);
        }
        return results;
    }
}
