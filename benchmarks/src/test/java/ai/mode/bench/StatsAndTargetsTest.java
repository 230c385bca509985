// Robust statistics of timings and the target summary built from report rows.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StatsAndTargetsTest {

    @Test
    void medianAndMadOfOddAndEvenSamples() {
        double[] odd = {5, 1, 3};
        assertEquals(3, Stats.median(odd));
        assertEquals(5, odd[0], "input not reordered");
        assertEquals(2.5, Stats.median(new double[] {4, 1, 3, 2}));
        assertEquals(1, Stats.mad(new double[] {1, 2, 3, 4, 100}));
        assertThrows(IllegalArgumentException.class, () -> Stats.median(new double[0]));
    }

    @Test
    void measureRunsAtLeastTheMinimumTimedRuns() {
        int[] calls = {0};
        Measure.Timing t = Measure.time(() -> calls[0]++, new Measure.Budget(0, 0, 4, 10));
        assertEquals(4, t.runs());
        assertEquals(5, calls[0], "one warm-up run plus four timed runs");
        assertTrue(t.median() >= 0 && t.min() <= t.median());
    }

    @Test
    void geomeanOfRatios() {
        assertEquals(2.0, Targets.geomean(List.of(1.0, 4.0)), 1e-12);
        assertTrue(Double.isNaN(Targets.geomean(List.of())));
    }

    @Test
    void summaryStatesRatiosAndMissedTargets() {
        BenchReport r = new BenchReport()
                .add(BenchReport.Row.of("sgemm", "a fwd", "s", 1, 90, "GFLOP/s", 0.5)
                        .withPeer("OpenBLAS", 100))
                .add(BenchReport.Row.of("sgemm", "b fwd", "s", 1, 40, "GFLOP/s", 0.5)
                        .withPeer("OpenBLAS", 100))
                .add(BenchReport.Row.of("sgemm", "square", "s", 1, 10, "GFLOP/s", 0.5)
                        .withPeer("OpenBLAS", 100))
                .add(BenchReport.Row.of("train", "step", "s", 1, 3000, "tokens/s", 0.1)
                        .withPeer("PyTorch", 2000));
        String s = Targets.summary(r);
        assertTrue(
                s.contains(
                        "geomean 0.60x, 1 of 2 shapes met (below: b fwd 0.40x); lowest 0.40x (floor 0.75x) -> NOT met"),
                s);
        assertTrue(s.contains("target training >= 1.25x PyTorch (step): 1.50x (3,000 vs 2,000 tokens/s) -> met"), s);
    }

    @Test
    void anSgemmPeerOtherThanOpenBlasIsAReferenceNotATarget() {
        BenchReport r = new BenchReport()
                .add(BenchReport.Row.of("sgemm", "a fwd", "s", 1, 90, "GFLOP/s", 0.5)
                        .withPeer("OpenBLAS bytedeco", 100))
                .add(BenchReport.Row.of("sgemm", "a fwd", "s", 1, 90, "GFLOP/s", 0.5)
                        .withPeer("MKL (torch 2.13)", 180));
        String s = Targets.summary(r);
        assertTrue(
                s.contains(
                        "target SGEMM >= 0.90x OpenBLAS bytedeco at the model's shapes: geomean 0.90x, 1 of 1 shapes met;"
                                + " lowest 0.90x (floor 0.75x) -> met"),
                s);
        assertTrue(s.contains("reference SGEMM vs MKL (torch 2.13) at the model's shapes: geomean 0.50x"), s);
        assertEquals(1, s.lines().filter(l -> l.startsWith("target SGEMM")).count(), s);
    }
}
