package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.MemoryEstimate;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import org.junit.jupiter.api.Test;

/**
 * The heap estimate before allocation (issue 14): its parameter counts against a model's real tensors, its
 * one-line refusal (size needed, size available, the fix), saturation instead of overflow for absurd batches, and
 * that a model's optimizer state and activations scale as stated (trainable parameters x 12 bytes; activations
 * linear in batch x seq).
 */
class MemoryEstimateTest {
    private static final LlamaConfig GQA = new LlamaConfig(97, 32, 3, 4, 2, 48, 64, 10000f, 1e-5f, false);

    @Test
    void parameterCountsMatchTheAllocatedTensors() {
        try (Backend be = Backends.create("cpu", 1);
                LlamaModel m = LlamaModel.create(be, GQA).initialize(1)) {
            long all = 0, layer0 = 0;
            for (Parameter p : m.parameters()) {
                all += p.numel();
                if (p.name().startsWith("model.layers.0.")) layer0 += p.numel();
            }
            assertEquals(all, GQA.parameterCount());
            assertEquals(layer0, GQA.layerParameterCount());
            for (Parameter p : m.parameters()) p.setTrainable(true);
            MemoryEstimate e = MemoryEstimate.training(m, 4, 16);
            assertEquals(0, e.parameterBytes(), "the parameters are allocated already");
            assertEquals(12 * all, e.optimizerBytes(), "a gradient and two AdamW moments per trainable parameter");
            MemoryEstimate twice = MemoryEstimate.training(m, 8, 16);
            assertEquals(2.0 * e.activationBytes(), twice.activationBytes(), 2, "activations are linear in the batch");
        }
    }

    @Test
    void tooLargeIsOneLineNamingNeededAvailableAndTheFix() {
        MemoryEstimate e = MemoryEstimate.training(
                LlamaConfig.baseDefault(4096),
                4,
                LlamaConfig.baseDefault(4096).parameterCount(),
                0,
                2_000_000_000L,
                128);
        IllegalArgumentException x =
                assertThrows(IllegalArgumentException.class, () -> e.require("pretraining", 3L << 30, 4L << 30));
        String m = x.getMessage();
        assertTrue(
                m.startsWith("pretraining needs at least ")
                        && m.contains("activations ")
                        && m.contains("for --batch 2000000000 x --seq 128")
                        && m.contains("but 3.0 GiB is available (the JVM's heap is at most 4.0 GiB)")
                        && m.contains("use a smaller --batch or --seq")
                        && !m.contains("\n"),
                m);
        MemoryEstimate model = MemoryEstimate.training(LlamaConfig.baseDefault(4096), 4, 1L << 30, 1L << 30, 1, 16);
        String mm = assertThrows(IllegalArgumentException.class, () -> model.require("pretraining", 1L << 30, 2L << 30))
                .getMessage();
        assertTrue(
                mm.contains("parameters 4.0 GiB, optimizer state 12.0 GiB")
                                && mm.contains("use a smaller model")
                                && mm.contains("MODE_JAVA_OPTS=-Xmx")
                        || mm.contains("cannot hold it even with more heap"),
                mm);
        MemoryEstimate small = MemoryEstimate.training(LlamaConfig.baseDefault(4096), 4, 0, 0, 1, 16);
        small.require("pretraining", small.total(), small.total()); // exactly enough passes
        assertThrows(IllegalArgumentException.class, () -> small.require("x", small.total() - 1, small.total()));
    }

    @Test
    void absurdSizesSaturateInsteadOfOverflowing() {
        LlamaConfig huge = new LlamaConfig(2_000_000_000, 8192, 64, 64, 64, 32768, 1 << 20, 10000f, 1e-5f, false);
        MemoryEstimate e = MemoryEstimate.training(
                huge, 64, huge.parameterCount(), huge.parameterCount(), Integer.MAX_VALUE, 1 << 20);
        assertEquals(Long.MAX_VALUE, e.total());
        assertTrue(e.parameterBytes() > 0 && e.activationBytes() > 0);
        String m = assertThrows(IllegalArgumentException.class, () -> e.require("pretraining"))
                .getMessage();
        assertTrue(m.contains("EiB") && !m.matches(".*[ (]-[0-9].*"), m);
        assertTrue(m.contains("use a smaller") && m.contains("cannot hold it even with more heap"), m);
    }
}
