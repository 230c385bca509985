package ai.mode.model.mode;

import java.util.Arrays;

/**
 * What one MoDE block's gate did over the forward passes since {@link #reset()}: the mean weight of every branch, the
 * mean entropy of the per-token gate distribution and, for top-k routing, the load of every branch (the fraction of
 * tokens routed to it) and the tokens over capacity. The numbers users of mixtures of experts ask for first: a gate
 * that collapses onto one branch shows as entropy near 0 and one load near 1.
 *
 * <p>Sums are kept on the host in float64 from the per-token probabilities {@code [B·T, N+1]} (at sequence level
 * every token carries its sequence's row, so every statistic is per token). MoDE-J's top-k routing drops no token;
 * "over capacity" counts, per branch, the tokens beyond an even share at capacity factor 1 ({@code k·tokens/(N+1)}),
 * i.e. the tokens a capacity-limited mixture of experts would have to drop or reroute.
 */
public final class RouterStatistics {
    private final int branches;
    private final double[] weightSum;
    private final long[] routed;
    private double entropySum;
    private long tokens;
    private boolean sparse;
    private int k;

    /** @param branches N+1 */
    public RouterStatistics(int branches) {
        this.branches = branches;
        this.weightSum = new double[branches];
        this.routed = new long[branches];
    }

    /**
     * One block's gate over some tokens.
     *
     * @param meanWeight  mean gate weight per branch (backbone first); NaN when no token was seen
     * @param entropy     mean entropy (nats) of the per-token gate distribution; at most ln(N+1)
     * @param load        top-k: the fraction of tokens routed to each branch (sums to k); null for dense routing
     * @param overCapacity top-k: tokens beyond k·tokens/(N+1) summed over the branches; 0 for dense routing
     * @param tokens      tokens seen
     */
    public record Summary(double[] meanWeight, double entropy, double[] load, long overCapacity, long tokens) {}

    public void reset() {
        Arrays.fill(weightSum, 0);
        Arrays.fill(routed, 0);
        entropySum = 0;
        tokens = 0;
        sparse = false;
        k = 0;
    }

    /** Adds the gate probabilities of {@code probs.length / (N+1)} tokens, {@code [tokens, N+1]} row-major. */
    public void addProbabilities(float[] probs) {
        if (probs.length % branches != 0)
            throw new IllegalArgumentException(
                    "gate probabilities of " + probs.length + " values are not rows of " + branches + " branches");
        int rows = probs.length / branches;
        for (int r = 0; r < rows; r++) {
            double h = 0;
            for (int b = 0; b < branches; b++) {
                double p = probs[r * branches + b];
                weightSum[b] += p;
                if (p > 0) h -= p * Math.log(p);
            }
            entropySum += h;
        }
        tokens += rows;
    }

    /** Top-k routing: {@code count} tokens went to {@code branch} under top-{@code topK}. */
    public void addRouted(int branch, int count, int topK) {
        sparse = true;
        k = topK;
        routed[branch] += count;
    }

    public Summary summary() {
        double[] mean = new double[branches], load = sparse ? new double[branches] : null;
        long over = 0;
        double share = sparse ? (double) k * tokens / branches : 0;
        for (int b = 0; b < branches; b++) {
            mean[b] = tokens == 0 ? Double.NaN : weightSum[b] / tokens;
            if (sparse) {
                load[b] = tokens == 0 ? Double.NaN : routed[b] / (double) tokens;
                over += Math.max(0, routed[b] - (long) Math.ceil(share));
            }
        }
        return new Summary(mean, tokens == 0 ? Double.NaN : entropySum / tokens, load, over, tokens);
    }
}
