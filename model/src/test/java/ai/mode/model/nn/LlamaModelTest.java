// Structure of the Llama model: HF names and shapes (checked against the io helper's independent table),
// parameter count, seeded initialisation, buffer reuse across steps, input validation.
package ai.mode.model.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LlamaModelTest {
    static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    @Test
    void namesAndShapesAreHuggingFaceLlamas() {
        for (boolean tied : new boolean[] {true, false}) {
            LlamaConfig cfg = new LlamaConfig(50, 16, 3, 4, 2, 40, 32, 10000f, 1e-5f, tied);
            try (LlamaModel m = LlamaModel.create(be, cfg)) {
                Map<String, int[]> ours = new LinkedHashMap<>();
                long count = 0;
                for (Parameter p : m.parameters()) {
                    ours.put(p.name(), p.shape());
                    count += p.numel();
                }
                Map<String, int[]> hf = TensorNames.llamaShapes(cfg);
                assertEquals(List.copyOf(hf.keySet()), List.copyOf(ours.keySet()));
                hf.forEach((k, s) -> assertArrayEquals(s, ours.get(k), k));
                assertEquals(cfg.parameterCount(), count);
                assertEquals(tied, m.head().weight() == m.embedding().table());
            }
        }
    }

    @Test
    void initialisationIsSeededPerNameAndScalesOutputProjections() {
        LlamaConfig cfg = new LlamaConfig(64, 64, 4, 4, 4, 128, 32, 10000f, 1e-5f, true);
        try (LlamaModel a = LlamaModel.create(be, cfg).initialize(1);
                LlamaModel b = LlamaModel.create(be, cfg).initialize(1);
                LlamaModel c = LlamaModel.create(be, cfg).initialize(2)) {
            for (int i = 0; i < a.parameters().size(); i++) {
                Parameter pa = a.parameters().get(i);
                assertArrayEquals(
                        be.toHostFloats(pa.value()),
                        be.toHostFloats(b.parameters().get(i).value()),
                        pa.name());
                if (pa.shape().length == 2) {
                    assertFalse(java.util.Arrays.equals(
                            be.toHostFloats(pa.value()),
                            be.toHostFloats(c.parameters().get(i).value())));
                }
            }
            Map<String, Parameter> byName = a.parametersByName();
            assertEquals(0.02, std(byName.get("model.layers.0.self_attn.q_proj.weight")), 0.002);
            assertEquals(0.02 / Math.sqrt(8), std(byName.get("model.layers.2.mlp.down_proj.weight")), 0.0008);
            for (float v : be.toHostFloats(byName.get("model.norm.weight").value())) assertEquals(1f, v);
        }
    }

    private static double std(Parameter p) {
        double s = 0;
        float[] v = be.toHostFloats(p.value());
        for (float x : v) s += x * x;
        return Math.sqrt(s / v.length);
    }

    @Test
    void buffersAreReusedAcrossStepsOfTheSameShape() {
        LlamaConfig cfg = new LlamaConfig(40, 16, 2, 2, 1, 24, 16, 10000f, 1e-5f, false);
        try (LlamaModel m = LlamaModel.create(be, cfg).initialize(3);
                Tensor ids = be.fromHost(new int[] {1, 2, 3, 4, 5, 6, 7, 8}, 2, 4);
                Tensor tg = be.fromHost(new int[] {2, 3, 4, 5, 6, 7, 8, 9}, 2, 4)) {
            for (Parameter p : m.parameters()) p.setTrainable(true);
            m.forwardBackward(ids, tg, 0.125f);
            DecoderLayer l0 = m.layers().get(0);
            long bytes = l0.bufferBytes(), scratch = m.scratch().bytes();
            Tensor y = l0.forward(m.embedding().forward(ids));
            m.zeroGrad();
            m.forwardBackward(ids, tg, 0.125f);
            assertSame(y, l0.forward(m.embedding().forward(ids)), "layer output buffer must be reused");
            assertEquals(bytes, l0.bufferBytes());
            assertEquals(scratch, m.scratch().bytes());
            assertTrue(bytes > 0 && scratch > 0);
            m.releaseBuffers();
            assertEquals(0, l0.bufferBytes());
            assertEquals(0, m.scratch().bytes());
        }
    }

    @Test
    void smallerBatchesReuseTheBuffersAndStayCorrect() {
        LlamaConfig cfg = new LlamaConfig(40, 16, 2, 2, 1, 24, 16, 10000f, 1e-5f, false);
        int[] ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, tg = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
        try (LlamaModel m = LlamaModel.create(be, cfg).initialize(5);
                LlamaModel fresh = LlamaModel.create(be, cfg).initialize(5);
                Tensor big = be.fromHost(ids, 3, 4);
                Tensor bigT = be.fromHost(tg, 3, 4);
                Tensor small = be.fromHost(java.util.Arrays.copyOf(ids, 4), 1, 4);
                Tensor smallT = be.fromHost(java.util.Arrays.copyOf(tg, 4), 1, 4)) {
            for (Parameter p : m.parameters()) p.setTrainable(true);
            for (Parameter p : fresh.parameters()) p.setTrainable(true);
            m.forwardBackward(big, bigT, 1f / 12);
            long bytes = m.layers().get(1).bufferBytes() + m.scratch().bytes();
            m.zeroGrad();
            double loss = m.forwardBackward(small, smallT, 0.25f).meanLoss();
            assertEquals(
                    bytes, m.layers().get(1).bufferBytes() + m.scratch().bytes(), "a smaller batch must not allocate");
            assertEquals(fresh.forwardBackward(small, smallT, 0.25f).meanLoss(), loss);
            for (int i = 0; i < m.parameters().size(); i++) {
                assertArrayEquals(
                        be.toHostFloats(fresh.parameters().get(i).grad()),
                        be.toHostFloats(m.parameters().get(i).grad()));
            }
        }
    }

    @Test
    void badInputsAreRejectedWithClearMessages() {
        LlamaConfig cfg = new LlamaConfig(40, 16, 1, 2, 1, 24, 8, 10000f, 1e-5f, true);
        try (LlamaModel m = LlamaModel.create(be, cfg);
                Tensor longIds = be.fromHost(new int[18], 2, 9);
                Tensor floats = be.zeros(2, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.forwardHidden(longIds));
            assertTrue(e.getMessage().contains("exceeds the model's max_position_embeddings 8"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.forwardHidden(floats));
            assertTrue(e.getMessage().contains("i32[B, T]"), e.getMessage());
            IllegalStateException s = assertThrows(
                    IllegalStateException.class, () -> new DecoderLayer(be, cfg, "x.", m.scratch()).backward(floats));
            assertTrue(s.getMessage().contains("backward before forward"), s.getMessage());
        }
    }
}
