package ai.mode.model;

import java.util.ArrayList;
import java.util.List;

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
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int numLayers, int numHeads, int numKvHeads,
                          int intermediateSize, int maxSeqLen, float ropeTheta, float rmsNormEps,
                          boolean tieEmbeddings) {

    public LlamaConfig {
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
            errors.add("head dimension hidden_size/num_attention_heads = " + hiddenSize / numHeads + " must be even for RoPE");
        }
        if (numKvHeads >= 1 && numHeads % numKvHeads != 0) {
            errors.add("num_attention_heads " + numHeads + " must be divisible by num_key_value_heads " + numKvHeads);
        }
        if (!(ropeTheta > 0) || Float.isInfinite(ropeTheta)) errors.add("rope_theta must be a positive number (got " + ropeTheta + ")");
        if (!(rmsNormEps > 0) || Float.isInfinite(rmsNormEps)) errors.add("rms_norm_eps must be a positive number (got " + rmsNormEps + ")");
        if (!errors.isEmpty()) {
            throw new IllegalArgumentException("invalid model config: " + String.join("; ", errors));
        }
    }

    /** Per-head width hd = D / H. */
    public int headDim() { return hiddenSize / numHeads; }

    /** Width of the key/value projections, Hkv * hd. */
    public int kvDim() { return numKvHeads * headDim(); }

    /** Parameter count of the whole model (embedding counted once when tied). */
    public long parameterCount() {
        long d = hiddenSize, f = intermediateSize, v = vocabSize;
        long perLayer = d * d * 2 + d * kvDim() * 2 + 3 * d * f + 2 * d;
        return v * d * (tieEmbeddings ? 1 : 2) + numLayers * perLayer + d;
    }

    /** The embedded default base model: a few million parameters, trainable on 2 CPU cores in minutes. */
    public static LlamaConfig tinyDefault(int vocabSize) {
        return new LlamaConfig(vocabSize, 256, 4, 4, 4, 688, 256, 10000f, 1e-5f, true);
    }
}
