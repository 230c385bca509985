package ai.mode.model.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Sampling against an independent float64 reference: top-k keeps a token when fewer than k tokens beat it (by
 * logit, ties to the lower id), top-p keeps a token when the mass of the tokens ranked before it is below p;
 * draws follow the distribution (a chi-square check) and a seed fixes them; bad options are one-line errors.
 */
class SamplerTest {

    /** The reference: per-token membership tests, written without sorting. */
    static double[] reference(float[] logits, double temperature, int topK, double topP) {
        int v = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float f : logits) max = Math.max(max, f);
        double[] w = new double[v];
        for (int i = 0; i < v; i++) {
            int better = 0;
            for (int j = 0; j < v; j++) if (logits[j] > logits[i] || logits[j] == logits[i] && j < i) better++;
            if (topK == 0 || better < topK) w[i] = Math.exp((logits[i] - (double) max) / temperature);
        }
        double total = 0;
        for (double x : w) total += x;
        double[] p = new double[v];
        for (int i = 0; i < v; i++) {
            if (w[i] == 0) continue;
            double before = 0;
            for (int j = 0; j < v; j++)
                if (w[j] > 0 && (logits[j] > logits[i] || logits[j] == logits[i] && j < i)) before += w[j];
            if (before < topP * total) p[i] = w[i];
        }
        double kept = 0;
        for (double x : p) kept += x;
        for (int i = 0; i < v; i++) p[i] /= kept;
        return p;
    }

    @Test
    void filteredDistributionsMatchTheReference() {
        SplittableRandom r = new SplittableRandom(5);
        for (int trial = 0; trial < 200; trial++) {
            int v = 1 + r.nextInt(40);
            float[] logits = new float[v];
            for (int i = 0; i < v; i++) logits[i] = (float) (r.nextGaussian() * 3); // ties below
            if (v > 3) logits[2] = logits[1];
            double t = 0.2 + r.nextDouble() * 2;
            int k = r.nextInt(v + 2);
            double p = trial % 3 == 0 ? 1 : 0.05 + r.nextDouble() * 0.95;
            double[] got = Sampler.probabilities(logits, new Sampling(t, k, p, 0));
            double[] want = reference(logits, t, k, p);
            for (int i = 0; i < v; i++)
                assertEquals(
                        want[i], got[i], 1e-12, "trial " + trial + " token " + i + " v=" + v + " k=" + k + " p=" + p);
        }
    }

    @Test
    void drawsFollowTheDistributionAndASeedFixesThem() {
        float[] logits = {2f, 1f, 0.5f, -1f, 3f, 0f};
        Sampling s = new Sampling(0.9, 4, 0.95, 77);
        double[] p = Sampler.probabilities(logits, s);
        Sampler a = new Sampler(s), b = new Sampler(s);
        int n = 20_000;
        int[] counts = new int[logits.length];
        int[] first = new int[50], second = new int[50];
        for (int i = 0; i < n; i++) {
            int x = a.next(logits);
            counts[x]++;
            int y = b.next(logits);
            assertEquals(x, y, "the same seed draws the same token at draw " + i);
            if (i < 50) first[i] = x;
        }
        Sampler c = new Sampler(new Sampling(0.9, 4, 0.95, 78));
        for (int i = 0; i < 50; i++) second[i] = c.next(logits);
        assertNotEquals(java.util.Arrays.toString(first), java.util.Arrays.toString(second), "another seed");
        double chi2 = 0;
        int df = -1;
        for (int i = 0; i < logits.length; i++) {
            if (p[i] == 0) {
                assertEquals(0, counts[i], "a filtered token is never drawn: " + i);
                continue;
            }
            double e = p[i] * n;
            chi2 += (counts[i] - e) * (counts[i] - e) / e;
            df++;
        }
        assertTrue(chi2 < 20, "chi-square " + chi2 + " with " + df + " degrees of freedom"); // p < 0.0005 at df 3
    }

    @Test
    void greedyIsTheFirstArgmax() {
        Sampler g = new Sampler(Sampling.GREEDY);
        assertEquals(1, g.next(new float[] {0f, 5f, 5f, -1f}), "ties go to the lower id");
        assertEquals(1, Sampler.argmax(new float[] {Float.NaN, -3f}), "a NaN logit is never the arg-max");
        assertEquals(2, Sampler.argmax(new float[] {1f, 2f, 3f}));
        assertThrows(IllegalArgumentException.class, () -> Sampler.probabilities(new float[] {1f}, Sampling.GREEDY));
    }

    @Test
    void badOptionsAreOneLineErrors() {
        expect("--temperature NaN is not a finite number >= 0", () -> new Sampling(Double.NaN, 0, 1, 0));
        expect("--temperature Infinity is not a finite number", () -> new Sampling(Double.POSITIVE_INFINITY, 0, 1, 0));
        expect("--temperature -0.5 is not a finite number >= 0", () -> new Sampling(-0.5, 0, 1, 0));
        expect("--top-k -1 is negative", () -> new Sampling(1, -1, 1, 0));
        expect("--top-p 0.0 is outside (0, 1]", () -> new Sampling(1, 0, 0, 0));
        expect("--top-p 1.5 is outside (0, 1]", () -> new Sampling(1, 0, 1.5, 0));
        expect("--top-p NaN is outside (0, 1]", () -> new Sampling(1, 0, Double.NaN, 0));
    }

    private static void expect(String part, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(part), x.getMessage());
        assertTrue(x.getMessage().contains("; use"), "names the fix: " + x.getMessage());
        assertEquals(1, x.getMessage().lines().count());
    }
}
