// The LoRA and block-expansion baselines start exactly at the base model, count their parameters right, and
// train only what they add.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class BaselinesTest {
    private static final LlamaConfig CFG = ModeTestSupport.TINY;
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static LlamaModel backbone() {
        LlamaModel m = LlamaModel.create(be, CFG);
        Random rnd = new Random(1);
        for (Parameter p : m.parameters()) ModeTestSupport.randomize(be, p, rnd, 0.3);
        return m;
    }

    private static float[] logits(CausalLm model, int[] ids) {
        try (Tensor it = be.fromHost(ids, 2, 5);
                Tensor out = be.zeros(10, CFG.vocabSize())) {
            model.logits(it, out);
            return be.toHostFloats(out);
        }
    }

    private static Map<String, float[]> snapshot(List<Parameter> ps) {
        Map<String, float[]> out = new HashMap<>();
        for (Parameter p : ps) out.put(p.name(), be.toHostFloats(p.value()));
        return out;
    }

    @Test
    void loraStartsAtTheBaseAndTrainsOnlyItsAdapters() {
        int[] ids = ModeTestSupport.tokens(2, 10, CFG.vocabSize());
        try (LlamaModel base = backbone();
                LoraModel lora = LoraModel.create(base, LoraModel.Config.defaults(), 3)) {
            assertArrayEquals(
                    logits(base, ids), logits(lora, ids), "B = 0: the adapted model equals the base bit for bit");
            // rank 16 on q, k, v, o: per layer 16 * (in + out) per matrix
            long perLayer = 16L * (8 + 8) + 16L * (8 + 4) + 16L * (8 + 4) + 16L * (8 + 8);
            lora.selectTrainable();
            assertEquals(CFG.numLayers() * perLayer, ModeTraining.trainableCount(lora));
            assertEquals(
                    CFG.numLayers() * perLayer,
                    ModeTraining.count(lora, base.parameters(), 0).added());
            Map<String, float[]> before = snapshot(base.parameters());
            new Trainer(
                            lora,
                            new ModeTestSupport.RandomStream(1, 300, CFG.vocabSize()),
                            null,
                            ModeModelTest.options(3),
                            null,
                            List.of())
                    .run();
            for (Parameter p : base.parameters())
                assertArrayEquals(before.get(p.name()), be.toHostFloats(p.value()), p.name());
            assertFalse(
                    java.util.Arrays.equals(logits(base, ids), logits(lora, ids)),
                    "training must change the adapted model");
        }
    }

    @Test
    void expansionStartsAtTheBaseAndAddsLayersInSeries() {
        int[] ids = ModeTestSupport.tokens(3, 10, CFG.vocabSize());
        try (LlamaModel base = backbone();
                ExpandedModel m = ExpandedModel.create(base, 2, 2)) {
            assertArrayEquals(
                    logits(base, ids), logits(m, ids), "zero output projections: the expanded model equals the base");
            assertEquals(CFG.numLayers() + 4, m.blocks().size());
            List<String> prefixes =
                    m.blocks().stream().map(l -> l.parameters().get(0).name()).toList();
            assertEquals(
                    List.of(
                            "model.layers.0.input_layernorm.weight",
                            "model.layers.1.input_layernorm.weight",
                            "expansion.layers.0.input_layernorm.weight",
                            "expansion.layers.1.input_layernorm.weight",
                            "model.layers.2.input_layernorm.weight",
                            "model.layers.3.input_layernorm.weight",
                            "expansion.layers.2.input_layernorm.weight",
                            "expansion.layers.3.input_layernorm.weight"),
                    prefixes);
            // LLaMA-Pro initialisation: a copy of the layer before the insertion point, outputs zeroed
            Parameter q = m.addedParameters().get(1);
            assertArrayEquals(
                    be.toHostFloats(base.layers().get(1).parameters().get(1).value()), be.toHostFloats(q.value()));
            m.selectTrainable();
            Map<String, float[]> before = snapshot(base.parameters());
            new Trainer(
                            m,
                            new ModeTestSupport.RandomStream(1, 300, CFG.vocabSize()),
                            null,
                            ModeModelTest.options(3),
                            null,
                            List.of())
                    .run();
            for (Parameter p : base.parameters())
                assertArrayEquals(before.get(p.name()), be.toHostFloats(p.value()), p.name());
            assertFalse(java.util.Arrays.equals(logits(base, ids), logits(m, ids)));
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
            try (LlamaModel base = backbone()) {
                ExpandedModel.create(base, 3, 1);
            }
        });
        assertTrue(e.getMessage().contains("must divide"), e.getMessage());
    }

    @Test
    void loraTargetsParseAndBadOnesFail() {
        assertEquals(LoraModel.Config.ATTENTION, LoraModel.Config.parseTargets("q,k,v,o"));
        assertEquals(
                EnumSet.range(LayerTensor.Q_PROJ, LayerTensor.DOWN_PROJ).size() - 1,
                LoraModel.Config.parseTargets("all").size());
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> LoraModel.Config.parseTargets("q,x"));
        assertTrue(e.getMessage().contains("unknown LoRA target 'x'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new LoraModel.Config(0, 16, LoraModel.Config.ATTENTION));
        assertTrue(e.getMessage().contains("--lora-rank must be >= 1"), e.getMessage());
    }
}
