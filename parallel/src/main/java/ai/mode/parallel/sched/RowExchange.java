package ai.mode.parallel.sched;

import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.Communicator.Transfer;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How one rank's batch rows relate to the other ranks', and the transfers that move per-row activations between
 * device groups. Every group splits the micro-batch's sequences over its replicas ({@link Placement#rowStart});
 * moving an activation from one group to another sends each overlap of row ranges point to point, so groups of
 * different sizes re-split the rows on the way.
 */
final class RowExchange {
    final Placement pl;
    final Backend be;
    final Communicator world;
    /** This rank's group and its replica number in it. */
    final int group, replica;

    private int batch, seq;

    RowExchange(Placement pl, int rank, Backend be, Communicator world) {
        this.pl = pl;
        this.be = be;
        this.world = world;
        this.group = pl.groupOf(rank);
        this.replica = pl.replicaOf(rank);
    }

    /** Starts a micro-batch of {@code batch} sequences of {@code seq} tokens. */
    void begin(int batch, int seq) {
        this.batch = batch;
        this.seq = seq;
    }

    /** Tokens per sequence of the current micro-batch. */
    int seq() {
        return seq;
    }

    int rowStart(int g, int r) {
        return Placement.rowStart(batch, pl.groupSize(g), r);
    }

    int rowCount(int g, int r) {
        return Placement.rowCount(batch, pl.groupSize(g), r);
    }

    /** Rows of this rank's share of the batch in its own group. */
    int myRows() {
        return rowCount(group, replica);
    }

    /** First and last+1 of the rows that this rank (in its group) shares with replica q of group g. */
    int[] overlap(int g, int q) {
        int c = rowStart(group, replica), n = myRows();
        return new int[] {Math.max(c, rowStart(g, q)), Math.min(c + n, rowStart(g, q) + rowCount(g, q))};
    }

    /**
     * Moves a per-row activation ({@code rowElems} elements per batch row) from group {@code src}'s replicas to
     * group {@code dst}'s. {@code from}: this rank's rows when it is in src, else null; {@code to}: this rank's
     * destination when in dst, else null. Same group: a local copy. Returns this rank's handle.
     */
    CommHandle reshard(Tensor from, int src, Tensor to, int dst, int rowElems) {
        if (src == dst) {
            if (group == src && from != to) be.copy(from, to);
            return CommHandle.done();
        }
        List<Transfer> tr = new ArrayList<>();
        if (group == src) addTransfers(tr, from, dst, rowElems, true);
        if (group == dst) addTransfers(tr, to, src, rowElems, false);
        return tr.isEmpty() ? CommHandle.done() : world.exchange(tr);
    }

    /** Sends ({@code send}) or receives this rank's rows of {@code mine} that group {@code other}'s replicas share. */
    private void addTransfers(List<Transfer> tr, Tensor mine, int other, int rowElems, boolean send) {
        int c = rowStart(group, replica);
        Tensor rows = be.view(mine, myRows(), rowElems);
        for (int q = 0; q < pl.groupSize(other); q++) {
            int[] o = overlap(other, q);
            if (o[1] <= o[0]) continue;
            Tensor part = be.slice(rows, o[0] - c, o[1] - o[0]);
            tr.add(send ? Transfer.send(part, pl.rankOf(other, q)) : Transfer.recv(part, pl.rankOf(other, q)));
        }
    }

    /** All-to-all of {@code [rows, D]} buffers with per-rank row counts (the buffers may hold one spare row). */
    void allToAllRows(Tensor send, int[] sendRows, Tensor recv, int[] recvRows, int d) {
        int[] sc = Arrays.stream(sendRows).map(r -> r * d).toArray(),
                rc = Arrays.stream(recvRows).map(r -> r * d).toArray();
        int sn = Arrays.stream(sendRows).sum(), rn = Arrays.stream(recvRows).sum();
        world.allToAll(be.slice(send, 0, sn), sc, be.slice(recv, 0, rn), rc).await();
    }
}
