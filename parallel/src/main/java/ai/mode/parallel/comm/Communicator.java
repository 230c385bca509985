package ai.mode.parallel.comm;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * The collective-communication contract of the parallel runtime: one object per rank and group, backed by NCCL on GPUs
 * or by an exchange hub (in-process threads, or TCP between processes) for cpu/emu devices.
 *
 * <p>One rank's view of a group of ranks. Every member calls the same collectives in the same order (SPMD);
 * point-to-point messages between two members are delivered in the order they were sent.
 *
 * <p>Every operation is asynchronous: it returns a {@link CommHandle} at once and its outputs hold the result
 * after {@link CommHandle#await()}, which must run on the issuing thread. Tensors are this rank's
 * {@link #backend()}'s, f32 (reductions) or f32/i32 (data movement). Results are the same bits on every rank,
 * and reductions combine the ranks' values in rank order, so runs are reproducible.
 *
 * <p>Failure: a member that fails calls {@link #abort}; every member waiting on (or later starting) an
 * operation then gets a {@link CommunicatorException} naming the reason, never a hang. A wait longer than the
 * communicator's timeout aborts it with a message naming the members that did not arrive.
 */
public interface Communicator extends AutoCloseable {

    /** This member's index in the group, 0..size-1. */
    int rank();

    /** Number of members. */
    int size();

    /** The world ranks of the members, in group order. */
    List<Integer> worldRanks();

    /** A short name for messages, e.g. {@code world} or {@code world/split[2, 3]}. */
    String name();

    /** The backend whose tensors this communicator moves. */
    Backend backend();

    /** In place: {@code t} becomes the elementwise reduction of every member's {@code t}. */
    CommHandle allReduce(Tensor t, ReduceOp op);

    /** recv (size·n elements) = the members' send tensors (n elements each) concatenated in rank order. */
    default CommHandle allGather(Tensor send, Tensor recv) {
        int[] counts = new int[size()];
        java.util.Arrays.fill(counts, Math.toIntExact(send.numel()));
        return allGather(send, recv, counts);
    }

    /** Uneven all-gather: member r contributes {@code counts[r]} elements; recv holds their sum, in rank order. */
    CommHandle allGather(Tensor send, Tensor recv, int[] counts);

    /** recv (n elements) = this member's block of the reduction of every member's send (size·n elements). */
    default CommHandle reduceScatter(Tensor send, Tensor recv, ReduceOp op) {
        int[] counts = new int[size()];
        java.util.Arrays.fill(counts, Math.toIntExact(recv.numel()));
        return reduceScatter(send, recv, counts, op);
    }

    /** Uneven reduce-scatter: member r receives the {@code counts[r]} elements of its block (blocks in rank order). */
    CommHandle reduceScatter(Tensor send, Tensor recv, int[] counts, ReduceOp op);

    /** In place: every member's {@code t} becomes {@code root}'s. */
    CommHandle broadcast(Tensor t, int root);

    /** Sends {@code t} to member {@code peer} (matched by the peer's {@link #recv} in order). */
    default CommHandle send(Tensor t, int peer) {
        return exchange(List.of(Transfer.send(t, peer)));
    }

    /** Receives the next message from member {@code peer} into {@code t} (same element count and dtype). */
    default CommHandle recv(Tensor t, int peer) {
        return exchange(List.of(Transfer.recv(t, peer)));
    }

    /**
     * A batch of sends and receives issued together (one NCCL group): safe whatever the order of the pairs,
     * as long as both sides of each pair issue their messages in the same order.
     */
    CommHandle exchange(List<Transfer> transfers);

    /**
     * All-to-all with per-pair sizes: {@code send} holds the blocks for members 0..size-1 back to back
     * ({@code sendCounts[d]} elements for member d); {@code recv} receives the blocks from members 0..size-1
     * ({@code recvCounts[s]} elements from member s). Member s's sendCounts[d] must equal member d's recvCounts[s].
     */
    CommHandle allToAll(Tensor send, int[] sendCounts, Tensor recv, int[] recvCounts);

    /** Blocks until every member has reached the barrier. */
    void barrier();

    /** Blocking reduction of host doubles (loss sums, norms): the same result on every member. */
    double[] allReduce(double[] values, ReduceOp op);

    /**
     * Collective: every member calls it; members with the same {@code color} (>= 0) form a new communicator,
     * ordered by their rank here; a negative color returns null.
     */
    Communicator split(int color);

    /**
     * {@link #split(int)} when every member's color is known locally ({@code colors[r]} is member r's, the same
     * array on every member, e.g. from a deterministic placement): no exchange of colors is needed first. The
     * default uses this member's entry; the NCCL communicator creates the groups without reading anything back
     * to the host.
     */
    default Communicator split(int[] colors) {
        if (colors.length != size()) {
            throw new IllegalArgumentException(
                    "split: " + colors.length + " colors given for the " + size() + " members of " + name());
        }
        return split(colors[rank()]);
    }

    /** Fails every pending and later operation of every member with {@code reason} (after a local failure). */
    void abort(String reason);

    /** Releases this member's resources (not collective). */
    @Override
    void close();

    /** One side of a point-to-point message in {@link #exchange}. */
    record Transfer(Tensor tensor, int peer, boolean isSend) {
        public static Transfer send(Tensor t, int peer) {
            return new Transfer(t, peer, true);
        }

        public static Transfer recv(Tensor t, int peer) {
            return new Transfer(t, peer, false);
        }
    }
}
