package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import java.util.LinkedHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tensor names and shapes of a Hugging Face Llama checkpoint and of MoDE's expert/gate file, in one place so that the
 * model, trainer, importer and MoDE code agree. HF Linear weights are stored [out, in].
 *
 * <p>Backbone (Hugging Face Llama): {@code model.embed_tokens.weight} [V, D];
 * {@code model.layers.{i}.<suffix>} per {@link LayerTensor}; {@code model.norm.weight} [D];
 * {@code lm_head.weight} [V, D], absent when embeddings are tied.
 *
 * <p>MoDE: {@code mode.blocks.{b}.experts.{j}.layers.{l}.<suffix>} (same suffixes and shapes as a backbone layer),
 * {@code mode.blocks.{b}.gate.weight} [N+1, D] and {@code mode.blocks.{b}.gate.bias} [N+1]; gate output 0 is
 * the backbone, output j+1 expert j.
 *
 * <pre>{@code
 * String q = TensorNames.layer(3, TensorNames.LayerTensor.Q_PROJ);   // model.layers.3.self_attn.q_proj.weight
 * int[] s = TensorNames.LayerTensor.K_PROJ.shape(cfg);                 // [Hkv*hd, D]
 * LinkedHashMap<String, int[]> all = TensorNames.llamaShapes(cfg);     // every backbone tensor, canonical order
 * }</pre>
 */
public final class TensorNames {
    private TensorNames() {}

    public static final String EMBED_TOKENS = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";

    /** The nine tensors of one decoder layer, in canonical order; shapes are HF's [out, in] for Linear weights. */
    public enum LayerTensor {
        INPUT_NORM("input_layernorm.weight"),
        Q_PROJ("self_attn.q_proj.weight"),
        K_PROJ("self_attn.k_proj.weight"),
        V_PROJ("self_attn.v_proj.weight"),
        O_PROJ("self_attn.o_proj.weight"),
        POST_ATTENTION_NORM("post_attention_layernorm.weight"),
        GATE_PROJ("mlp.gate_proj.weight"),
        UP_PROJ("mlp.up_proj.weight"),
        DOWN_PROJ("mlp.down_proj.weight");

        private final String suffix;

        LayerTensor(String suffix) {
            this.suffix = suffix;
        }

        /** Name relative to the layer prefix, e.g. {@code self_attn.q_proj.weight}. */
        public String suffix() {
            return suffix;
        }

        /** Shape for a config: norms [D]; q, o [D, D]; k, v [Hkv*hd, D]; gate, up [F, D]; down [D, F]. */
        public int[] shape(LlamaConfig c) {
            int d = c.hiddenSize(), f = c.intermediateSize();
            return switch (this) {
                case INPUT_NORM, POST_ATTENTION_NORM -> new int[] {d};
                case Q_PROJ, O_PROJ -> new int[] {d, d};
                case K_PROJ, V_PROJ -> new int[] {c.kvDim(), d};
                case GATE_PROJ, UP_PROJ -> new int[] {f, d};
                case DOWN_PROJ -> new int[] {d, f};
            };
        }

        /** The tensor with this suffix, or null. */
        public static LayerTensor ofSuffix(String suffix) {
            for (LayerTensor t : values()) if (t.suffix.equals(suffix)) return t;
            return null;
        }
    }

    /** {@code model.layers.{layer}.<suffix>}. */
    public static String layer(int layer, LayerTensor t) {
        return "model.layers." + layer + "." + t.suffix;
    }

    /** {@code mode.blocks.{block}.experts.{expert}.layers.{layer}.<suffix>}. */
    public static String expertLayer(int block, int expert, int layer, LayerTensor t) {
        return "mode.blocks." + block + ".experts." + expert + ".layers." + layer + "." + t.suffix;
    }

    /** {@code mode.blocks.{block}.gate.weight}, shape [numExperts+1, D]. */
    public static String gateWeight(int block) {
        return "mode.blocks." + block + ".gate.weight";
    }

    /** {@code mode.blocks.{block}.gate.bias}, shape [numExperts+1]. */
    public static String gateBias(int block) {
        return "mode.blocks." + block + ".gate.bias";
    }

    /** [numExperts+1, hidden]: row 0 scores the backbone, row j+1 expert j. */
    public static int[] gateWeightShape(int numExperts, int hidden) {
        return new int[] {numExperts + 1, hidden};
    }

    /** [numExperts+1]. */
    public static int[] gateBiasShape(int numExperts) {
        return new int[] {numExperts + 1};
    }

    /**
     * Every backbone tensor with its shape in canonical order: embedding, layers 0..L-1 (each in
     * {@link LayerTensor} order), final norm, and {@code lm_head.weight} unless embeddings are tied.
     */
    public static LinkedHashMap<String, int[]> llamaShapes(LlamaConfig c) {
        LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
        m.put(EMBED_TOKENS, new int[] {c.vocabSize(), c.hiddenSize()});
        for (int i = 0; i < c.numLayers(); i++) {
            for (LayerTensor t : LayerTensor.values()) m.put(layer(i, t), t.shape(c));
        }
        m.put(FINAL_NORM, new int[] {c.hiddenSize()});
        if (!c.tieEmbeddings()) m.put(LM_HEAD, new int[] {c.vocabSize(), c.hiddenSize()});
        return m;
    }

    /** Tensors of one expert of {@code layers} decoder layers in block {@code block}, canonical order. */
    public static LinkedHashMap<String, int[]> expertShapes(LlamaConfig c, int block, int expert, int layers) {
        LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
        for (int l = 0; l < layers; l++) {
            for (LayerTensor t : LayerTensor.values()) m.put(expertLayer(block, expert, l, t), t.shape(c));
        }
        return m;
    }

    /**
     * A parsed layer tensor name.
     *
     * @param block  MoDE block, or -1 for a backbone layer
     * @param expert expert within the block, or -1 for a backbone layer
     * @param layer  layer index (backbone layer, or layer within the expert)
     * @param tensor which tensor of the layer
     */
    public record LayerName(int block, int expert, int layer, LayerTensor tensor) {
        /** Whether this names a backbone layer tensor ({@code model.layers...}). */
        public boolean isBackbone() {
            return block < 0;
        }
    }

    private static final Pattern BACKBONE = Pattern.compile("model\\.layers\\.(\\d{1,9})\\.(.+)");
    private static final Pattern EXPERT =
            Pattern.compile("mode\\.blocks\\.(\\d{1,9})\\.experts\\.(\\d{1,9})\\.layers\\.(\\d{1,9})\\.(.+)");

    /** Parses a backbone or expert layer tensor name; null for any other name (embedding, norm, head, gate...). */
    public static LayerName parseLayer(String name) {
        Matcher m = BACKBONE.matcher(name);
        if (m.matches()) {
            LayerTensor t = LayerTensor.ofSuffix(m.group(2));
            return t == null ? null : new LayerName(-1, -1, Integer.parseInt(m.group(1)), t);
        }
        m = EXPERT.matcher(name);
        if (m.matches()) {
            LayerTensor t = LayerTensor.ofSuffix(m.group(4));
            return t == null
                    ? null
                    : new LayerName(
                            Integer.parseInt(m.group(1)),
                            Integer.parseInt(m.group(2)),
                            Integer.parseInt(m.group(3)),
                            t);
        }
        return null;
    }
}
