package ai.mode.bench;

import java.util.Arrays;

/**
 * Robust summary statistics for repeated timings: median and median absolute deviation of a sample (the inputs are not
 * modified).
 */
public final class Stats {
    private Stats() {}

    public static double median(double[] xs) {
        if (xs.length == 0) throw new IllegalArgumentException("median of an empty sample");
        double[] s = xs.clone();
        Arrays.sort(s);
        int h = s.length / 2;
        return s.length % 2 == 1 ? s[h] : 0.5 * (s[h - 1] + s[h]);
    }

    /** Median of |x - median(x)|. */
    public static double mad(double[] xs) {
        double m = median(xs);
        double[] d = new double[xs.length];
        for (int i = 0; i < xs.length; i++) d[i] = Math.abs(xs[i] - m);
        return median(d);
    }
}
