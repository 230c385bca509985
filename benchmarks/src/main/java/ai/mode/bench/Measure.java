package ai.mode.bench;

import java.util.Arrays;

/**
 * Wall-clock timing harness of the quick suite ({@code mode bench}): warm-up, then repeated timed runs, median. JMH is
 * the rigorous harness (see ai.mode.bench.jmh); this one trades rigour for a suite that fits in minutes. Times a piece
 * of work: warm-up runs, then timed runs until both a minimum count and a minimum time are reached.
 */
public final class Measure {

    /**
     * How long to measure.
     *
     * @param warmupSeconds  time spent in untimed warm-up runs (at least one run)
     * @param measureSeconds minimum total time of the timed runs
     * @param minRuns        minimum number of timed runs
     * @param maxRuns        cap on timed runs
     */
    public record Budget(double warmupSeconds, double measureSeconds, int minRuns, int maxRuns) {
        public Budget {
            if (minRuns < 1 || maxRuns < minRuns)
                throw new IllegalArgumentException("need 1 <= minRuns <= maxRuns, got " + minRuns + ", " + maxRuns);
        }

        public static Budget quick() {
            return new Budget(0.3, 0.6, 3, 200);
        }

        public static Budget full() {
            return new Budget(1.0, 2.5, 5, 1000);
        }
    }

    /** Seconds per run of every timed run, with summary statistics. */
    public record Timing(double[] seconds) {
        public Timing {
            if (seconds.length == 0) throw new IllegalArgumentException("no timed runs");
            seconds = seconds.clone();
        }

        public int runs() {
            return seconds.length;
        }

        public double median() {
            return Stats.median(seconds);
        }

        public double min() {
            return Arrays.stream(seconds).min().orElseThrow();
        }

        /** Median absolute deviation relative to the median: a robust spread. */
        public double relativeSpread() {
            return Stats.mad(seconds) / median();
        }
    }

    private Measure() {}

    /** Times {@code work} under the budget. */
    public static Timing time(Runnable work, Budget budget) {
        long warmEnd = System.nanoTime() + (long) (budget.warmupSeconds() * 1e9);
        do {
            work.run();
        } while (System.nanoTime() < warmEnd);
        double[] out = new double[budget.maxRuns()];
        int n = 0;
        long start = System.nanoTime();
        while (n < budget.maxRuns()) {
            long t0 = System.nanoTime();
            work.run();
            out[n++] = (System.nanoTime() - t0) / 1e9;
            if (n >= budget.minRuns() && System.nanoTime() - start >= budget.measureSeconds() * 1e9) break;
        }
        return new Timing(Arrays.copyOf(out, n));
    }
}
