package ai.mode.model.mode;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Router statistics of every block of a MoDE model, kept apart per domain of the batch rows ({@link RouterStatistics}
 * per block and domain): what the gates did in the forward passes of the rows given by {@link #open}, from the gate
 * probabilities and top-k plans those passes produced anyway (no extra forward pass). One device's blocks, or one
 * rank's blocks of a placed model, add their rows here; the sums of several ranks combine by addition
 * ({@link #toArray}, {@link #add}).
 *
 * <p>Rows are labelled by a domain index per sequence of the whole batch; a rank that holds rows {@code first..}
 * of the batch passes {@code first} with its probabilities. Rows without a label (a stream that does not say where
 * its rows come from, or an evaluation) count under {@link #ALL}. Collecting is on between {@link #open} and
 * {@link #pause}, so forward passes outside training micro-batches (validation) are not counted.
 */
public final class GateStatistics {
    /** The key of rows whose domain is not known. */
    public static final String ALL = "all";

    private final int blocks, branches;
    private final List<String> domains;
    private final RouterStatistics[][] sums; // [block][domain], the last domain = unlabelled rows
    private int[] rowDomain; // domain index of every sequence of the batch; null = unlabelled
    private boolean collecting;

    /**
     * @param branches N+1
     * @param domains  the domain names the row labels index
     */
    public GateStatistics(int blocks, int branches, List<String> domains) {
        if (domains.contains(ALL))
            throw new IllegalArgumentException(
                    "a domain may not be named '" + ALL + "' (it stands for unlabelled rows)");
        this.blocks = blocks;
        this.branches = branches;
        this.domains = List.copyOf(domains);
        this.sums = new RouterStatistics[blocks][this.domains.size() + 1];
        for (RouterStatistics[] b : sums) for (int d = 0; d < b.length; d++) b[d] = new RouterStatistics(branches);
    }

    /**
     * Counts the forward passes that follow, whose batch rows (sequences) come from the domains {@code rowDomain}
     * (indices into the domain names; null: not known).
     */
    public void open(int[] rowDomain) {
        if (rowDomain != null)
            for (int d : rowDomain)
                if (d < 0 || d >= domains.size())
                    throw new IllegalArgumentException(
                            "row domain " + d + " is not one of the " + domains.size() + " domains " + domains);
        this.rowDomain = rowDomain == null ? null : rowDomain.clone();
        collecting = true;
    }

    /** Stops counting until the next {@link #open}. */
    public void pause() {
        collecting = false;
    }

    public boolean collecting() {
        return collecting;
    }

    /**
     * Adds what block {@code block}'s gate did on {@code rows} sequences of T tokens, batch rows {@code first..}:
     * its probabilities {@code probs [rows·T, N+1]} (on the device) and, for top-k routing, its plan (else null).
     * Nothing happens while paused.
     */
    public void observe(int block, Backend be, Tensor probs, TopKPlan plan, int first, int seq) {
        if (!collecting) return;
        float[] p = be.toHostFloats(probs);
        int rows = p.length / (seq * branches);
        if (rowDomain != null && first + rows > rowDomain.length)
            throw new IllegalArgumentException("rows " + first + ".." + (first + rows - 1) + " of block " + block
                    + " fall outside the " + rowDomain.length + " labelled rows of the batch");
        int[] routed = plan == null ? null : plan.routedPerSequence(); // [rows, N+1]
        for (int r = 0; r < rows; r++) {
            RouterStatistics s = sums[block][domainOf(first + r)];
            s.addProbabilities(p, r * seq, (r + 1) * seq);
            if (routed != null) for (int b = 0; b < branches; b++) s.addRouted(b, routed[r * branches + b]);
        }
    }

    private int domainOf(int row) {
        return rowDomain == null ? domains.size() : rowDomain[row];
    }

    /** Zeroes every sum. */
    public void reset() {
        for (RouterStatistics[] b : sums) for (RouterStatistics s : b) s.reset();
    }

    /** Per domain with tokens (in domain order, then {@link #ALL}), one summary per block. */
    public Map<String, List<RouterStatistics.Summary>> summaries() {
        Map<String, List<RouterStatistics.Summary>> out = new LinkedHashMap<>();
        for (int d = 0; d <= domains.size(); d++) {
            if (sums[0][d].tokens() == 0) continue;
            List<RouterStatistics.Summary> perBlock = new ArrayList<>();
            for (int b = 0; b < blocks; b++) perBlock.add(sums[b][d].summary());
            out.put(d < domains.size() ? domains.get(d) : ALL, perBlock);
        }
        return out;
    }

    /** The summaries of rows of {@code domain} (or {@link #ALL}), one per block; NaN means when it had no token. */
    public List<RouterStatistics.Summary> blocks(String domain) {
        int d = domain.equals(ALL) ? domains.size() : domains.indexOf(domain);
        if (d < 0) throw new IllegalArgumentException("no router statistics for domain '" + domain + "'");
        List<RouterStatistics.Summary> out = new ArrayList<>();
        for (int b = 0; b < blocks; b++) out.add(sums[b][d].summary());
        return out;
    }

    /** Every sum, block by block and domain by domain ({@link RouterStatistics#writeTo}), to add across ranks. */
    public double[] toArray() {
        int per = RouterStatistics.size(branches), n = domains.size() + 1;
        double[] out = new double[blocks * n * per];
        for (int b = 0; b < blocks; b++) for (int d = 0; d < n; d++) sums[b][d].writeTo(out, (b * n + d) * per);
        return out;
    }

    /** Adds sums in {@link #toArray}'s layout (another rank's, or the total of every rank's). */
    public void add(double[] values) {
        int per = RouterStatistics.size(branches), n = domains.size() + 1;
        if (values.length != blocks * n * per)
            throw new IllegalArgumentException("router statistics of " + values.length + " values do not match "
                    + blocks + " blocks x " + n + " domains x " + per);
        for (int b = 0; b < blocks; b++) for (int d = 0; d < n; d++) sums[b][d].addFrom(values, (b * n + d) * per);
    }
}
