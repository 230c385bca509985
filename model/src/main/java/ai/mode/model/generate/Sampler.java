package ai.mode.model.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks each next token from a row of logits per a {@link Sampling}: the arg-max, or a draw from the filtered
 * distribution {@link #probabilities} with one uniform number of a {@link SplittableRandom} seeded once per
 * generation, so a seed fixes the text. All arithmetic on the distribution is float64.
 */
public final class Sampler {
    private final Sampling sampling;
    private final SplittableRandom random;

    public Sampler(Sampling sampling) {
        this.sampling = sampling;
        this.random = new SplittableRandom(sampling.seed());
    }

    /** The next token for one row of logits [V]. */
    public int next(float[] logits) {
        if (sampling.greedy()) return argmax(logits);
        double[] p = probabilities(logits, sampling);
        double u = random.nextDouble(), cum = 0;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) continue;
            cum += p[i];
            last = i;
            if (u < cum) return i;
        }
        return last; // u within rounding of 1
    }

    /** The lowest index of the largest logit (NaN logits are never chosen unless all are NaN: then 0). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++)
            if (logits[i] > logits[best] || Float.isNaN(logits[best]) && !Float.isNaN(logits[i])) best = i;
        return best;
    }

    /**
     * The distribution a sampled token is drawn from: {@code softmax(logits / T)}, then only the top-k tokens (by
     * logit, ties to the lower id), renormalised, then only the smallest prefix of them in descending probability
     * whose mass reaches top-p, renormalised; every other entry exactly 0. Float64 throughout.
     */
    public static double[] probabilities(float[] logits, Sampling s) {
        if (s.greedy()) throw new IllegalArgumentException("greedy decoding has no distribution to sample");
        int v = logits.length;
        Integer[] order = new Integer[v];
        for (int i = 0; i < v; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(logits[b], logits[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int keep = s.topK() > 0 ? Math.min(s.topK(), v) : v;
        double max = logits[order[0]], sum = 0;
        double[] p = new double[v];
        for (int r = 0; r < keep; r++) {
            int i = order[r];
            p[i] = Math.exp((logits[i] - max) / s.temperature());
            sum += p[i];
        }
        if (s.topP() < 1) {
            double cum = 0;
            int r = 0;
            while (r < keep && cum < s.topP() * sum) cum += p[order[r++]];
            for (int j = r; j < keep; j++) p[order[j]] = 0;
            keep = r;
            sum = cum;
        }
        for (int r = 0; r < keep; r++) p[order[r]] /= sum;
        return p;
    }
}
