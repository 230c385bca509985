package ai.mode.tests.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * Which attention kernels {@link DeviceBackend} launches: the tensor-core (WMMA) flash-attention kernels for bf16
 * tensors on compute capability 8.0+ with tensor cores enabled, the CUDA-core kernels otherwise (float32 tensors,
 * an older device, tensor cores disabled), each fallback reason logged once at debug level. The numerics of both are
 * checked by the conformance suite (EmuConformanceTest); this pins the choice, so that suite cannot pass by running
 * the CUDA-core kernels where the tensor-core ones were meant to run.
 */
class AttentionKernelChoiceTest {
    private static final Logger LOG = Logger.getLogger(DeviceBackend.class.getName());

    /** The entry points one forward and one backward call launch, at head dimension {@code hd}. */
    private static List<String> launches(int computeCapability, boolean tensorCores, DType dt, int hd) {
        assumeTrue(EmuDevice.libraryAvailable(), EmuDevice::unavailableReason);
        EmuDevice emu = EmuDevice.open();
        KernelArgsLayoutTest.Recording rec = new KernelArgsLayoutTest.Recording(emu, computeCapability);
        try (DeviceBackend be = new DeviceBackend(rec, "emu", tensorCores)) {
            Tensor q = be.allocate(dt, 1, 5, 2, hd), k = be.allocate(dt, 1, 5, 1, hd), v = be.allocate(dt, 1, 5, 1, hd);
            Tensor out = be.allocate(dt, 1, 5, 2, hd), lse = be.zeros(1, 2, 5);
            be.attentionForward(q, k, v, out, lse);
            be.attentionBackward(
                    out,
                    q,
                    k,
                    v,
                    out,
                    lse,
                    be.allocate(dt, 1, 5, 2, hd),
                    be.allocate(dt, 1, 5, 1, hd),
                    be.allocate(dt, 1, 5, 1, hd));
            be.synchronize();
        } finally {
            emu.close();
        }
        return rec.launched;
    }

    @Test
    void bf16OnTensorCoresRunsTheWmmaKernelsOfTheHeadTile() {
        for (int[] hdTile : new int[][] {{8, 32}, {32, 32}, {40, 64}, {64, 64}, {72, 128}, {128, 128}}) {
            String t = "mode_attention_wmma" + hdTile[1];
            assertEquals(
                    List.of(t + "_fwd_bf16", t + "_bwddq_bf16", t + "_bwddkv_bf16"),
                    launches(80, true, DType.BF16, hdTile[0]),
                    "hd " + hdTile[0]);
        }
        assertEquals(
                List.of(
                        "mode_attention_wmma64_fwd_bf16",
                        "mode_attention_wmma64_bwddq_bf16",
                        "mode_attention_wmma64_bwddkv_bf16"),
                launches(90, true, DType.BF16, 64));
    }

    @Test
    void otherCasesRunTheCudaCoreKernels() {
        List<String> f32 =
                List.of("mode_attention64_fwd_f32", "mode_attention64_bwddq_f32", "mode_attention64_bwddkv_f32");
        List<String> bf16 =
                List.of("mode_attention64_fwd_bf16", "mode_attention64_bwddq_bf16", "mode_attention64_bwddkv_bf16");
        assertEquals(f32, launches(80, true, DType.F32, 64), "float32 tensors");
        assertEquals(bf16, launches(75, true, DType.BF16, 64), "compute capability 7.5");
        assertEquals(bf16, launches(80, false, DType.BF16, 64), "tensor cores disabled");
    }

    @Test
    void eachFallbackReasonIsLoggedOnceAtDebugLevel() {
        List<LogRecord> records = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        Level before = LOG.getLevel();
        LOG.setLevel(Level.ALL);
        LOG.addHandler(h);
        try {
            launches(75, true, DType.BF16, 40); // forward and backward: the same reason, one line
        } finally {
            LOG.removeHandler(h);
            LOG.setLevel(before);
        }
        List<LogRecord> attention = records.stream()
                .filter(r -> r.getMessage().contains("CUDA-core attention"))
                .toList();
        assertEquals(1, attention.size(), "one line per reason and backend: " + attention);
        assertEquals(Level.FINE, attention.get(0).getLevel(), "System.Logger DEBUG is java.util.logging FINE");
        String line = java.text.MessageFormat.format(
                attention.get(0).getMessage(), attention.get(0).getParameters());
        assertTrue(line.contains("compute capability 75") && !line.contains("\n"), line);
    }
}
