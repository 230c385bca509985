package ai.mode.parallel.comm;

import java.util.List;

/**
 * The future of an asynchronous collective: issue now, overlap compute, await before using the result.
 *
 * <p>An operation in flight. {@link #await()} blocks until it is complete and its output tensors hold the
 * result; it must be called on the thread that issued the operation (backends are driven by one thread),
 * and before the output is read or an input is modified. Awaiting twice is harmless.
 */
public interface CommHandle {

    /** Waits for completion (up to the communicator's timeout) and writes the outputs; rethrows failures. */
    void await();

    /** Whether {@link #await()} would return without waiting for a peer. */
    boolean isDone();

    /** A handle that is already complete. */
    static CommHandle done() {
        return new CommHandle() {
            @Override
            public void await() {}

            @Override
            public boolean isDone() {
                return true;
            }
        };
    }

    /** One handle for several: awaits them in list order. */
    static CommHandle all(List<CommHandle> handles) {
        List<CommHandle> copy = List.copyOf(handles);
        return new CommHandle() {
            @Override
            public void await() {
                for (CommHandle h : copy) h.await();
            }

            @Override
            public boolean isDone() {
                for (CommHandle h : copy) if (!h.isDone()) return false;
                return true;
            }
        };
    }
}
