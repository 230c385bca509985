// Hugging Face Llama and MoDE tensor names and shapes: exact strings, [out, in] shapes for GQA, totals agreeing
// with LlamaConfig's independent parameter count, and name parsing.
package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import java.util.LinkedHashMap;
import java.util.List;
import org.junit.jupiter.api.Test;

class TensorNamesTest {

    private static final LlamaConfig GQA = new LlamaConfig(100, 48, 3, 6, 2, 130, 64, 10000f, 1e-5f, false);

    @Test
    void hfNamesAreExact() {
        assertEquals("model.embed_tokens.weight", TensorNames.EMBED_TOKENS);
        assertEquals("model.norm.weight", TensorNames.FINAL_NORM);
        assertEquals("lm_head.weight", TensorNames.LM_HEAD);
        assertEquals("model.layers.2.self_attn.q_proj.weight", TensorNames.layer(2, TensorNames.LayerTensor.Q_PROJ));
        assertEquals("model.layers.0.self_attn.k_proj.weight", TensorNames.layer(0, TensorNames.LayerTensor.K_PROJ));
        assertEquals("model.layers.0.self_attn.v_proj.weight", TensorNames.layer(0, TensorNames.LayerTensor.V_PROJ));
        assertEquals("model.layers.0.self_attn.o_proj.weight", TensorNames.layer(0, TensorNames.LayerTensor.O_PROJ));
        assertEquals("model.layers.11.mlp.gate_proj.weight", TensorNames.layer(11, TensorNames.LayerTensor.GATE_PROJ));
        assertEquals("model.layers.1.mlp.up_proj.weight", TensorNames.layer(1, TensorNames.LayerTensor.UP_PROJ));
        assertEquals("model.layers.1.mlp.down_proj.weight", TensorNames.layer(1, TensorNames.LayerTensor.DOWN_PROJ));
        assertEquals("model.layers.1.input_layernorm.weight", TensorNames.layer(1, TensorNames.LayerTensor.INPUT_NORM));
        assertEquals(
                "model.layers.1.post_attention_layernorm.weight",
                TensorNames.layer(1, TensorNames.LayerTensor.POST_ATTENTION_NORM));
        assertEquals(
                "mode.blocks.1.experts.0.layers.2.mlp.down_proj.weight",
                TensorNames.expertLayer(1, 0, 2, TensorNames.LayerTensor.DOWN_PROJ));
        assertEquals("mode.blocks.2.gate.weight", TensorNames.gateWeight(2));
        assertEquals("mode.blocks.2.gate.bias", TensorNames.gateBias(2));
    }

    @Test
    void shapesAreOutByIn() {
        int d = 48, kv = 2 * 8, f = 130;
        assertArrayEquals(new int[] {d, d}, TensorNames.LayerTensor.Q_PROJ.shape(GQA));
        assertArrayEquals(new int[] {kv, d}, TensorNames.LayerTensor.K_PROJ.shape(GQA));
        assertArrayEquals(new int[] {kv, d}, TensorNames.LayerTensor.V_PROJ.shape(GQA));
        assertArrayEquals(new int[] {d, d}, TensorNames.LayerTensor.O_PROJ.shape(GQA));
        assertArrayEquals(new int[] {f, d}, TensorNames.LayerTensor.GATE_PROJ.shape(GQA));
        assertArrayEquals(new int[] {f, d}, TensorNames.LayerTensor.UP_PROJ.shape(GQA));
        assertArrayEquals(new int[] {d, f}, TensorNames.LayerTensor.DOWN_PROJ.shape(GQA));
        assertArrayEquals(new int[] {d}, TensorNames.LayerTensor.INPUT_NORM.shape(GQA));
        assertArrayEquals(new int[] {3, d}, TensorNames.gateWeightShape(2, d));
        assertArrayEquals(new int[] {3}, TensorNames.gateBiasShape(2));
    }

    @Test
    void fullModelListAgreesWithTheConfigsParameterCount() {
        for (LlamaConfig c : List.of(GQA, LlamaConfig.tinyDefault(512))) {
            LinkedHashMap<String, int[]> shapes = TensorNames.llamaShapes(c);
            assertEquals(2 + 9 * c.numLayers() + (c.tieEmbeddings() ? 0 : 1), shapes.size());
            long total = shapes.values().stream().mapToLong(NamedTensors::numel).sum();
            assertEquals(c.parameterCount(), total);
            List<String> names = List.copyOf(shapes.keySet());
            assertEquals(TensorNames.EMBED_TOKENS, names.getFirst());
            assertEquals(c.tieEmbeddings(), !shapes.containsKey(TensorNames.LM_HEAD));
        }
    }

    @Test
    void expertShapesMirrorBackboneLayers() {
        LinkedHashMap<String, int[]> e = TensorNames.expertShapes(GQA, 1, 3, 2);
        assertEquals(18, e.size());
        assertArrayEquals(new int[] {16, 48}, e.get("mode.blocks.1.experts.3.layers.1.self_attn.k_proj.weight"));
    }

    @Test
    void parsesLayerNames() {
        TensorNames.LayerName b = TensorNames.parseLayer("model.layers.17.mlp.up_proj.weight");
        assertEquals(new TensorNames.LayerName(-1, -1, 17, TensorNames.LayerTensor.UP_PROJ), b);
        assertTrue(b.isBackbone());
        TensorNames.LayerName x =
                TensorNames.parseLayer(TensorNames.expertLayer(2, 1, 0, TensorNames.LayerTensor.O_PROJ));
        assertEquals(new TensorNames.LayerName(2, 1, 0, TensorNames.LayerTensor.O_PROJ), x);
        assertNull(TensorNames.parseLayer(TensorNames.EMBED_TOKENS));
        assertNull(TensorNames.parseLayer(TensorNames.gateWeight(0)));
        assertNull(TensorNames.parseLayer("model.layers.1.self_attn.q_proj.bias"));
        assertNull(TensorNames.parseLayer("model.layers.x.mlp.up_proj.weight"));
    }
}
