package ai.mode.model;

import ai.mode.runtime.RopeFrequencies;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Shape of a Llama-style decoder (RMSNorm, RoPE, grouped-query causal attention, SwiGLU FFN).
 * Field names follow Hugging Face's {@code config.json} for {@code LlamaForCausalLM}; validated on construction.
 *
 * @param vocabSize         vocabulary size V
 * @param hiddenSize        model width D
 * @param numLayers         decoder layers L
 * @param numHeads          query heads H (D must be divisible by H)
 * @param numKvHeads        key/value heads Hkv (H must be divisible by Hkv)
 * @param intermediateSize  SwiGLU width F
 * @param maxSeqLen         longest sequence T the model accepts
 * @param ropeTheta         RoPE base
 * @param rmsNormEps        RMSNorm epsilon
 * @param tieEmbeddings     whether the LM head shares the embedding matrix
 * @param ropeScaling       how RoPE's frequencies are scaled ({@link RopeScaling#NONE} for plain RoPE; null means none)
 */
public record LlamaConfig(
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int intermediateSize,
        int maxSeqLen,
        float ropeTheta,
        float rmsNormEps,
        boolean tieEmbeddings,
        RopeScaling ropeScaling) {

    /** A config with plain RoPE. */
    public LlamaConfig(
            int vocabSize,
            int hiddenSize,
            int numLayers,
            int numHeads,
            int numKvHeads,
            int intermediateSize,
            int maxSeqLen,
            float ropeTheta,
            float rmsNormEps,
            boolean tieEmbeddings) {
        this(
                vocabSize,
                hiddenSize,
                numLayers,
                numHeads,
                numKvHeads,
                intermediateSize,
                maxSeqLen,
                ropeTheta,
                rmsNormEps,
                tieEmbeddings,
                RopeScaling.NONE);
    }

    public LlamaConfig {
        if (ropeScaling == null) ropeScaling = RopeScaling.NONE;
        List<String> errors = new ArrayList<>();
        if (vocabSize < 2) errors.add("vocab_size must be >= 2 (got " + vocabSize + ")");
        if (hiddenSize < 1) errors.add("hidden_size must be >= 1 (got " + hiddenSize + ")");
        if (numLayers < 1) errors.add("num_hidden_layers must be >= 1 (got " + numLayers + ")");
        if (numHeads < 1) errors.add("num_attention_heads must be >= 1 (got " + numHeads + ")");
        if (numKvHeads < 1) errors.add("num_key_value_heads must be >= 1 (got " + numKvHeads + ")");
        if (intermediateSize < 1) errors.add("intermediate_size must be >= 1 (got " + intermediateSize + ")");
        if (maxSeqLen < 1) errors.add("max_position_embeddings must be >= 1 (got " + maxSeqLen + ")");
        if (numHeads >= 1 && hiddenSize % numHeads != 0) {
            errors.add("hidden_size " + hiddenSize + " must be divisible by num_attention_heads " + numHeads);
        } else if (numHeads >= 1 && (hiddenSize / numHeads) % 2 != 0) {
            errors.add("head dimension hidden_size/num_attention_heads = " + hiddenSize / numHeads
                    + " must be even for RoPE");
        }
        if (numKvHeads >= 1 && numHeads % numKvHeads != 0) {
            errors.add("num_attention_heads " + numHeads + " must be divisible by num_key_value_heads " + numKvHeads);
        }
        if (!(ropeTheta > 0) || Float.isInfinite(ropeTheta))
            errors.add("rope_theta must be a positive number (got " + ropeTheta + ")");
        if (!(rmsNormEps > 0) || Float.isInfinite(rmsNormEps))
            errors.add("rms_norm_eps must be a positive number (got " + rmsNormEps + ")");
        if (!errors.isEmpty()) {
            throw new IllegalArgumentException("invalid model config: " + String.join("; ", errors));
        }
    }

    /** Per-head width hd = D / H. */
    public int headDim() {
        return hiddenSize / numHeads;
    }

    /** The RoPE frequency table of this config (theta, head dimension and scaling): what every layer rotates by. */
    public RopeFrequencies ropeFrequencies() {
        return ropeScaling.frequencies(ropeTheta, headDim());
    }

    /** The same config with another RoPE scaling. */
    public LlamaConfig withRopeScaling(RopeScaling scaling) {
        return new LlamaConfig(
                vocabSize,
                hiddenSize,
                numLayers,
                numHeads,
                numKvHeads,
                intermediateSize,
                maxSeqLen,
                ropeTheta,
                rmsNormEps,
                tieEmbeddings,
                scaling);
    }

    /** Width of the key/value projections, Hkv * hd. */
    public int kvDim() {
        return numKvHeads * headDim();
    }

    /** Parameter count of the whole model (embedding counted once when tied). */
    public long parameterCount() {
        long d = hiddenSize, v = vocabSize;
        return v * d * (tieEmbeddings ? 1 : 2) + numLayers * layerParameterCount() + d;
    }

    /** Parameter count of one decoder layer (attention, SwiGLU MLP and the two norm gains). */
    public long layerParameterCount() {
        long d = hiddenSize, f = intermediateSize;
        return d * d * 2 + d * kvDim() * 2 + 3 * d * f + 2 * d;
    }

    /** Keys accepted by {@link #withOverrides} (Hugging Face config.json names). */
    public static final List<String> OVERRIDE_KEYS = List.of(
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
            "max_position_embeddings",
            "rope_theta",
            "rms_norm_eps",
            "tie_word_embeddings");

    /**
     * This config with fields replaced from a {@code key=value[,key=value...]} list of Hugging Face config
     * names (see {@link #OVERRIDE_KEYS}); validated like any config. Empty or null spec: unchanged.
     */
    public LlamaConfig withOverrides(String spec) {
        if (spec == null || spec.isBlank()) return this;
        Map<String, String> kv = new java.util.LinkedHashMap<>();
        for (String part : spec.split(",")) {
            String p = part.strip();
            if (p.isEmpty()) continue;
            int eq = p.indexOf('=');
            if (eq <= 0)
                throw new IllegalArgumentException(
                        "model override '" + p + "' must be key=value, e.g. hidden_size=256");
            String key = p.substring(0, eq).strip();
            if (!OVERRIDE_KEYS.contains(key)) {
                throw new IllegalArgumentException(
                        "unknown model config key '" + key + "'; known: " + String.join(", ", OVERRIDE_KEYS));
            }
            kv.put(key, p.substring(eq + 1).strip());
        }
        try {
            return new LlamaConfig(
                    intOr(kv, "vocab_size", vocabSize),
                    intOr(kv, "hidden_size", hiddenSize),
                    intOr(kv, "num_hidden_layers", numLayers),
                    intOr(kv, "num_attention_heads", numHeads),
                    intOr(kv, "num_key_value_heads", numKvHeads),
                    intOr(kv, "intermediate_size", intermediateSize),
                    intOr(kv, "max_position_embeddings", maxSeqLen),
                    kv.containsKey("rope_theta") ? Float.parseFloat(kv.get("rope_theta")) : ropeTheta,
                    kv.containsKey("rms_norm_eps") ? Float.parseFloat(kv.get("rms_norm_eps")) : rmsNormEps,
                    kv.containsKey("tie_word_embeddings") ? parseBool(kv.get("tie_word_embeddings")) : tieEmbeddings,
                    ropeScaling);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("model override has a malformed number: " + e.getMessage());
        }
    }

    private static int intOr(Map<String, String> kv, String key, int fallback) {
        return kv.containsKey(key) ? Integer.parseInt(kv.get(key)) : fallback;
    }

    private static boolean parseBool(String v) {
        if (v.equalsIgnoreCase("true")) return true;
        if (v.equalsIgnoreCase("false")) return false;
        throw new IllegalArgumentException("tie_word_embeddings must be true or false (got '" + v + "')");
    }

    /**
     * The embedded default base model that {@code mode pretrain} and {@code mode demo} train, sized by
     * measurement (docs/training.md): width 192, 4 layers of 4 heads (head dim 48), SwiGLU width 512,
     * sequences up to 256 tokens, tied embeddings; 2.56M parameters with a 4096-token vocabulary. 600 steps of
     * 16 x 128 tokens take about 590 s of CPU time and reach a validation loss about 2 nats below the unigram
     * baseline on the English corpus.
     */
    public static LlamaConfig baseDefault(int vocabSize) {
        return new LlamaConfig(vocabSize, 192, 4, 4, 4, 512, 256, 10000f, 1e-5f, true);
    }

    /**
     * The benchmarks' reference shape (issue 6's peer comparison: 4 layers, width 256, 4 heads, SwiGLU width
     * 688, sequences up to 256, tied embeddings; 4.2M parameters with a 4096-token vocabulary). Slightly
     * larger than {@link #baseDefault}, which is what pretraining uses by default.
     */
    public static LlamaConfig tinyDefault(int vocabSize) {
        return new LlamaConfig(vocabSize, 256, 4, 4, 4, 688, 256, 10000f, 1e-5f, true);
    }
}
