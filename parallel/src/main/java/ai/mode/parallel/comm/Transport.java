package ai.mode.parallel.comm;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The exchange service behind HubCommunicator: in-process (LocalHub, threads as ranks) or remote (a TCP connection to
 * the LocalHub that the master process serves). Pure host arrays; no tensors.
 *
 * <p>Matches the members' contributions to collectives (by group and sequence number) and delivers
 * point-to-point messages (FIFO per group, source and destination). A transport is shared by all ranks that
 * talk through it and is thread-safe.
 */
public interface Transport extends AutoCloseable {

    /**
     * Contributes {@code member}'s part to collective number {@code seq} of {@code group} (which has
     * {@code members} members); the future completes with this member's result once all have contributed,
     * or exceptionally with a {@link CommunicatorException}.
     */
    CompletableFuture<HostBuffer> collective(
            String group, int members, long seq, int member, CollectiveSpec spec, HostBuffer contribution);

    /** Queues a message from {@code src} to {@code dst} (group members); never blocks. */
    void send(String group, int src, int dst, HostBuffer data);

    /** The next message from {@code src} to {@code dst}. */
    CompletableFuture<HostBuffer> receive(String group, int src, int dst);

    /** Members that have not yet contributed to collective {@code seq} of {@code group} (for timeout messages). */
    List<Integer> missing(String group, long seq);

    /** Fails every pending and later operation with {@code reason}; the first reason wins. */
    void abort(String reason);

    /** Releases the transport (a remote one closes its connection). */
    @Override
    default void close() {}
}
