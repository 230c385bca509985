package ai.mode.tests.gpucheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bench.BenchReport;
import ai.mode.bench.GpuSuite;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.emu.EmuDevice;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The gpu-bench step's check of the reduction rows (GpuCheck bench-rows), on reports written and read back as
 * gpu-check.sh does: rows the GPU section measures through the emulated device pass at their shape; a missing row,
 * a skipped one or one at another shape fails, naming it.
 */
class GpuCheckBenchRowsTest {

    /** The reduction rows of the GPU section, measured on the emulator at n x d, through the JSON round trip. */
    private static BenchReport measured(int n, int d) {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "no emulator library: " + EmuDevice.unavailableReason());
        BenchReport report = new BenchReport();
        try (Backend be = Backends.create("emu", 1)) {
            GpuSuite.reductionRows(be, GpuSuite.wallTimer(be, 1), n, d, 37, 0, 1e12, new Random(3))
                    .forEach(report::add);
        }
        return BenchReport.fromJson(report.toJson());
    }

    @Test
    void measuredRowsPassAtTheirShapeOnly() {
        BenchReport report = measured(300, 130);
        assertEquals(List.of(), GpuCheck.reductionRowProblems(report, "300x130"));
        List<String> full = GpuCheck.reductionRowProblems(report, GpuSuite.reductionShape());
        assertEquals(GpuSuite.REDUCTION_ROWS.size(), full.size(), full.toString());
        assertTrue(full.getFirst().contains("ran at 300x130, not 65536x4096"), full.getFirst());
    }

    @Test
    void aMissingOrSkippedRowIsNamed() {
        BenchReport measured = measured(64, 33);
        BenchReport report = new BenchReport();
        for (BenchReport.Row r : measured.rows()) {
            if (r.name().equals(GpuSuite.REDUCTION_ROWS.get(1))) continue; // embedding backward missing
            report.add(
                    r.name().equals(GpuSuite.REDUCTION_ROWS.get(2))
                            ? BenchReport.Row.skipped("gpu", r.name(), "cuda rejected it: out of memory")
                            : r);
        }
        assertEquals(
                List.of(
                        "'embedding bwd f32' is missing",
                        "'sum of squares f32' did not run: cuda rejected it: out of memory"),
                GpuCheck.reductionRowProblems(BenchReport.fromJson(report.toJson()), "64x33"));
    }
}
