// The GPU section's op list, run through the emulated device backend (same DeviceBackend code path as cuda)
// on a tiny model, so the benchmark's calls, shapes and dtypes are checked without a GPU (the flash-attention rows
// with the tensor-core and the CUDA-core emulated backends side by side); plus the no-device path.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class GpuSuiteTest {

    @Test
    void rotationCopiesExceedTheRequestedBytes() {
        assertEquals(1, GpuSuite.copies(0, 100));
        assertEquals(3, GpuSuite.copies(250, 100));
        assertEquals(64, GpuSuite.copies(1L << 40, 1));
    }

    @Test
    void reductionRowsRunAtTheIssuesSize() {
        // a large model's width over a 64k-token batch: what the GPU section's reduction rows measure
        assertEquals("65536x4096", GpuSuite.reductionShape());
    }

    @Test
    void noDeviceIsReportedAsAReasonNotAnError() {
        if (GpuSuite.unavailableReason().isPresent()) {
            assertTrue(!GpuSuite.unavailableReason().get().isBlank());
        }
    }

    @Test
    void everyOpRunsOnTheEmulatedDevice() {
        boolean emu = Backends.providers().stream().anyMatch(p -> p.name().equals("emu") && p.available());
        assumeTrue(
                emu,
                () -> "emu backend not available: "
                        + Backends.providers().stream()
                                .filter(p -> p.name().equals("emu"))
                                .map(BackendProvider::unavailableReason)
                                .findFirst()
                                .orElse("not registered"));
        LlamaConfig tiny = new LlamaConfig(32, 16, 1, 2, 2, 24, 8, 10000f, 1e-5f, true);
        try (Backend be = Backends.create("emu", 1)) {
            GpuSuite.OpTimer timer = GpuSuite.wallTimer(be, 1);
            List<BenchReport.Row> rows = GpuSuite.opRows(be, timer, tiny, 1, 8, 0, 1e12, 1e12);
            assertEquals(2 * 6 + 2, rows.size());
            for (BenchReport.Row r : rows) {
                assertTrue(r.value() > 0 && r.note().isEmpty(), r.name() + ": " + r.note());
            }
            List<BenchReport.Row> reductions = GpuSuite.reductionRows(be, timer, 300, 130, 37, 0, 1e12, new Random(2));
            assertEquals(
                    GpuSuite.REDUCTION_ROWS,
                    reductions.stream().map(BenchReport.Row::name).toList());
            for (BenchReport.Row r : reductions) {
                assertTrue(r.value() > 0 && r.note().isEmpty(), r.name() + ": " + r.note());
                assertTrue(r.shape().startsWith("300x130"), r.name() + " at " + r.shape());
            }
            try (DeviceBackend cudaCores = new DeviceBackend(EmuDevice.open(), "emu", false)) {
                List<BenchReport.Row> flash = GpuSuite.flashAttentionRows(
                        be, cudaCores, timer, timer, new int[][] {{1, 20, 2, 1, 128}}, 0, 1e12, 1e12);
                assertEquals(
                        List.of("flash attention fwd bf16", "flash attention bwd bf16"),
                        flash.stream().map(BenchReport.Row::name).toList());
                for (BenchReport.Row r : flash) {
                    assertTrue(r.value() > 0 && r.peerValue() > 0, r.name() + ": " + r.note());
                    assertTrue(r.note().contains("FlashAttention-3"), r.note());
                }
            }
            List<BenchReport.Row> grouped = GpuSuite.groupedRows(be, timer, 2, 5, 16, 24, 0, 1e12, new Random(3));
            assertEquals(5, grouped.size()); // bf16 activations: forward, SwiGLU, dx, dW, top-k
            for (BenchReport.Row r : grouped) {
                assertTrue(r.value() > 0 && r.note().isEmpty(), r.name() + ": " + r.note());
                if (r.name().contains("fwd")) assertTrue(r.peerValue() > 0, r.name() + " has its peer beside it");
            }
            GemmCase g = new GemmCase("t", false, true, 8, 24, 16);
            assertTrue(GpuSuite.gemmSeconds(be, timer, g, DType.BF16, 0, new Random(1)) > 0);
        }
    }
}
