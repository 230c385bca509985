package ai.mode.parallel.sched;

import ai.mode.model.mode.TopKPlan;
import ai.mode.model.mode.TopKPlan.Branch;
import ai.mode.model.mode.TopKPlan.Packed;
import ai.mode.model.mode.TopKPlan.Selection;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where the tokens of one block's top-k routing go between ranks, for one forward pass. The merge ranks hold the
 * {@link TopKPlan}; a branch placed on the merge group runs there on its {@link Packed} batch ({@link Local}); an
 * expert placed elsewhere gets its tokens sent to the replica of its group that owns their sequence
 * ({@link Remote}: rows laid out per destination rank, expert-major, then in sequence order). The expert ranks
 * learn from an all-to-all of per-(expert, sequence) counts where their rows sit in the receive buffer and pack
 * them per sequence exactly as the merge rank would ({@link Hosted}).
 */
final class SparseDispatch implements AutoCloseable {
    /** A branch run on the merge rank itself. */
    record Local(Branch branch, Packed packed) {}

    /** An expert's tokens sent to other ranks; {@code position [selected]}: each token's row in the send buffer. */
    record Remote(Branch branch, Tensor position) {}

    /** A hosted expert's packed batch on an expert rank; {@code position [selected]}: rows of the receive buffer. */
    record Hosted(Packed packed, Tensor position) {}

    final TopKPlan plan; // merge ranks, else null
    final Map<Integer, Local> local = new LinkedHashMap<>(); // branch -> run here (merge ranks)
    final Map<Integer, Remote> remote = new LinkedHashMap<>(); // branch -> sent away (merge ranks)
    final Map<Integer, Hosted> hosted = new LinkedHashMap<>(); // local expert position -> batch (expert ranks)
    final int[] sendCounts, recvCounts; // all-to-all rows per world rank
    Tensor sendIndex; // I32 [sent]: token of every dispatched row (merge ranks), or null
    int sent, received;
    private final Backend be;
    private final List<Tensor> temps = new ArrayList<>();

    /**
     * Lays out block p's dispatch on this rank ({@code plan}: the routing on merge ranks, else null) and exchanges
     * the per-(expert, sequence) counts with the other ranks.
     */
    SparseDispatch(BlockPart p, RowExchange ex, TopKPlan plan) {
        this.be = ex.be;
        this.plan = plan;
        Placement pl = ex.pl;
        int i = p.index, merge = pl.mergeGroup(i), n = ex.world.size(), rowsHere = ex.myRows();
        sendCounts = new int[n];
        recvCounts = new int[n];
        int[] countSend = new int[n], countRecv = new int[n];
        List<int[]> counts = new ArrayList<>(); // per destination rank: counts per (expert, sequence)
        if (p.merge) {
            int a = ex.rowStart(merge, ex.replica);
            Selection[] sel = new Selection[pl.numExperts() + 1];
            for (int br = 0; br < sel.length; br++) {
                sel[br] = plan.select(br);
                if (sel[br].size() == 0 || (br > 0 && p.localPosition(br - 1) < 0)) continue;
                local.put(
                        br,
                        new Local(
                                plan.branch(sel[br], key(i, br)), plan.pack(sel[br].tokens(), sel[br].perSequence())));
            }
            int[][] positions = new int[sel.length][];
            int[][] firstOfSeq = new int[sel.length][rowsHere + 1]; // selection index where sequence b starts
            for (int br = 1; br < sel.length; br++) {
                positions[br] = new int[sel[br].size()];
                for (int b = 0; b < rowsHere; b++) firstOfSeq[br][b + 1] = firstOfSeq[br][b] + sel[br].perSequence()[b];
            }
            List<Integer> sendTokens = new ArrayList<>();
            for (int dst = 0; dst < n; dst++) {
                int g = pl.groupOf(dst);
                List<Integer> cnt = new ArrayList<>();
                if (g != merge && pl.expertsOn(i, g).length > 0) {
                    int[] o = ex.overlap(g, pl.replicaOf(dst));
                    for (int j : pl.expertsOn(i, g)) {
                        int br = j + 1;
                        for (int b = o[0] - a; b < o[1] - a; b++) {
                            cnt.add(sel[br].perSequence()[b]);
                            for (int u = firstOfSeq[br][b]; u < firstOfSeq[br][b + 1]; u++) {
                                positions[br][u] = sendTokens.size();
                                sendTokens.add(sel[br].tokens()[u]);
                            }
                            sendCounts[dst] += sel[br].perSequence()[b];
                        }
                    }
                }
                counts.add(cnt.stream().mapToInt(Integer::intValue).toArray());
                countSend[dst] = cnt.size();
            }
            for (int br = 1; br < sel.length; br++) {
                if (pl.expertGroup(i, br - 1) == merge || sel[br].size() == 0) continue;
                remote.put(br, new Remote(plan.branch(sel[br], key(i, br)), plan.ints(positions[br])));
            }
            if (!sendTokens.isEmpty())
                sendIndex = plan.ints(
                        sendTokens.stream().mapToInt(Integer::intValue).toArray());
        }
        boolean hosts = ex.group != merge && p.experts.length > 0;
        if (hosts) { // how many counts come from each merge replica
            for (int q = 0; q < pl.groupSize(merge); q++) {
                int[] o = ex.overlap(merge, q);
                countRecv[pl.rankOf(merge, q)] = Math.max(0, o[1] - o[0]) * p.experts.length;
            }
        }
        int[] recvCountsFlat = exchangeCounts(ex, counts, countSend, countRecv);
        if (hosts) layOutHosted(p, ex, recvCountsFlat);
        sent = Arrays.stream(sendCounts).sum();
    }

    /** Buffer key of block i's branch br. */
    static String key(int i, int br) {
        return "sparse." + i + "." + br;
    }

    /** All-to-all 1: the counts per (expert, sequence), from merge ranks to expert ranks. */
    private int[] exchangeCounts(RowExchange ex, List<int[]> counts, int[] countSend, int[] countRecv) {
        int[] flat = counts.stream().flatMapToInt(Arrays::stream).toArray();
        int[] recv = new int[Arrays.stream(countRecv).sum()];
        try (Tensor cs = be.fromHost(flat.length == 0 ? new int[] {0} : flat, Math.max(1, flat.length));
                Tensor cr = be.allocate(DType.I32, Math.max(1, recv.length))) {
            ex.world
                    .allToAll(
                            flat.length == 0 ? be.slice(cs, 0, 0) : cs,
                            countSend,
                            recv.length == 0 ? be.slice(cr, 0, 0) : cr,
                            countRecv)
                    .await();
            if (recv.length > 0) be.toHost(cr, recv);
        }
        return recv;
    }

    /** Expert ranks: where each hosted expert's rows sit in the receive buffer, packed per local sequence. */
    private void layOutHosted(BlockPart p, RowExchange ex, int[] recvCountsFlat) {
        Placement pl = ex.pl;
        int merge = pl.mergeGroup(p.index), rowsHere = ex.myRows(), c = ex.rowStart(ex.group, ex.replica);
        List<List<List<Integer>>> rowsOf = new ArrayList<>(); // [hosted expert][local sequence] -> received rows
        for (int e = 0; e < p.experts.length; e++) {
            List<List<Integer>> perSeqRows = new ArrayList<>();
            for (int b = 0; b < rowsHere; b++) perSeqRows.add(new ArrayList<>());
            rowsOf.add(perSeqRows);
        }
        int pos = 0, ci = 0;
        for (int q = 0; q < pl.groupSize(merge); q++) {
            int[] o = ex.overlap(merge, q);
            int rowsFromSrc = 0;
            for (int e = 0; e < p.experts.length; e++) {
                for (int b = o[0]; b < o[1]; b++) {
                    int cnt = recvCountsFlat[ci++];
                    for (int u = 0; u < cnt; u++) rowsOf.get(e).get(b - c).add(pos++);
                    rowsFromSrc += cnt;
                }
            }
            recvCounts[pl.rankOf(merge, q)] = rowsFromSrc;
        }
        received = pos;
        for (int e = 0; e < p.experts.length; e++) {
            int[] perSeq = rowsOf.get(e).stream().mapToInt(List::size).toArray();
            int[] items = rowsOf.get(e).stream()
                    .flatMap(List::stream)
                    .mapToInt(Integer::intValue)
                    .toArray();
            if (items.length == 0) continue;
            hosted.put(e, new Hosted(Packed.of(items, perSeq, this::ints), ints(items)));
        }
    }

    private Tensor ints(int[] v) {
        Tensor t = be.fromHost(v, v.length);
        temps.add(t);
        return t;
    }

    @Override
    public void close() {
        if (plan != null) plan.close();
        for (Tensor t : temps) t.close();
        temps.clear();
    }
}
