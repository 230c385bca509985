package ai.mode.model.mode;

import java.util.Arrays;

/**
 * What one MoDE block's gate did over some tokens: the mean weight of every branch, the mean entropy of the per-token
 * gate distribution and, for top-k routing, the load of every branch (the fraction of tokens routed to it) and the
 * tokens over capacity. The numbers users of mixtures of experts ask for first: a gate that collapses onto one branch
 * shows as entropy near 0 and one load near 1.
 *
 * <p>Sums are kept on the host in float64 from the per-token probabilities {@code [tokens, N+1]} (at sequence level
 * every token carries its sequence's row, so every statistic is per token). They only add up, so the sums of several
 * devices' rows combine by addition ({@link #writeTo}, {@link #addFrom}). MoDE-J's top-k routing drops no token;
 * "over capacity" counts, per branch, the tokens beyond an even share at capacity factor 1 ({@code k·tokens/(N+1)}),
 * i.e. the tokens a capacity-limited mixture of experts would have to drop or reroute.
 */
public final class RouterStatistics {
    private final int branches;
    private final double[] weightSum;
    private final double[] routed; // tokens routed to each branch (whole numbers, exact in float64)
    private double entropySum;
    private double tokens;

    /** @param branches N+1 */
    public RouterStatistics(int branches) {
        this.branches = branches;
        this.weightSum = new double[branches];
        this.routed = new double[branches];
    }

    /**
     * One block's gate over some tokens.
     *
     * @param meanWeight   mean gate weight per branch (backbone first); NaN when no token was seen
     * @param entropy      mean entropy (nats) of the per-token gate distribution; at most ln(N+1)
     * @param load         top-k: the fraction of tokens routed to each branch (sums to k); null for dense routing
     * @param overCapacity top-k: tokens beyond k·tokens/(N+1) summed over the branches; 0 for dense routing
     * @param tokens       tokens seen
     */
    public record Summary(double[] meanWeight, double entropy, double[] load, long overCapacity, long tokens) {}

    /** Values in {@link #writeTo}'s layout: per branch the weight sum, then the entropy sum, tokens, routed counts. */
    public static int size(int branches) {
        return 2 * branches + 2;
    }

    public void reset() {
        Arrays.fill(weightSum, 0);
        Arrays.fill(routed, 0);
        entropySum = 0;
        tokens = 0;
    }

    /** Adds the gate probabilities of {@code probs.length / (N+1)} tokens, {@code [tokens, N+1]} row-major. */
    public void addProbabilities(float[] probs) {
        if (probs.length % branches != 0)
            throw new IllegalArgumentException(
                    "gate probabilities of " + probs.length + " values are not rows of " + branches + " branches");
        addProbabilities(probs, 0, probs.length / branches);
    }

    /** Adds the tokens {@code from..to-1} of {@code probs [tokens, N+1]}. */
    void addProbabilities(float[] probs, int from, int to) {
        for (int r = from; r < to; r++) {
            double h = 0;
            for (int b = 0; b < branches; b++) {
                double p = probs[r * branches + b];
                weightSum[b] += p;
                if (p > 0) h -= p * Math.log(p);
            }
            entropySum += h;
        }
        tokens += to - from;
    }

    /** Top-k routing: {@code count} tokens went to {@code branch}. */
    public void addRouted(int branch, long count) {
        routed[branch] += count;
    }

    /** Writes the sums into {@code dst} from {@code offset} ({@link #size} values). */
    void writeTo(double[] dst, int offset) {
        System.arraycopy(weightSum, 0, dst, offset, branches);
        dst[offset + branches] = entropySum;
        dst[offset + branches + 1] = tokens;
        System.arraycopy(routed, 0, dst, offset + branches + 2, branches);
    }

    /** Adds sums written by {@link #writeTo} (another device's rows). */
    void addFrom(double[] src, int offset) {
        for (int b = 0; b < branches; b++) {
            weightSum[b] += src[offset + b];
            routed[b] += src[offset + branches + 2 + b];
        }
        entropySum += src[offset + branches];
        tokens += src[offset + branches + 1];
    }

    public long tokens() {
        return (long) tokens;
    }

    public Summary summary() {
        double total = 0; // = k·tokens under top-k routing, 0 under dense routing
        for (double r : routed) total += r;
        boolean sparse = total > 0;
        double[] mean = new double[branches], load = sparse ? new double[branches] : null;
        long over = 0;
        double share = Math.ceil(total / branches);
        for (int b = 0; b < branches; b++) {
            mean[b] = tokens == 0 ? Double.NaN : weightSum[b] / tokens;
            if (sparse) {
                load[b] = routed[b] / tokens;
                over += (long) Math.max(0, routed[b] - share);
            }
        }
        return new Summary(mean, tokens == 0 ? Double.NaN : entropySum / tokens, load, over, (long) tokens);
    }
}
