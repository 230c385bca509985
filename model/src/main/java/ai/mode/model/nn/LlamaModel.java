package ai.mode.model.nn;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import java.util.ArrayList;
import java.util.List;

/**
 * The Llama backbone: creates and owns its parameters (HF names) and assembles them into a CausalLm.
 *
 * <p>A Llama-architecture causal LM whose parameters are named exactly as in Hugging Face checkpoints:
 * {@code model.embed_tokens.weight} [V,D], {@code model.layers.{i}.…} (see {@link DecoderLayer}),
 * {@code model.norm.weight} [D] and, unless tied, {@code lm_head.weight} [V,D].
 *
 * <p>Parameters start zero-filled and frozen: call {@link #initialize(long)} (or load a checkpoint) and
 * make the ones to train trainable (see {@code ai.mode.model.train.ParameterSelection}). The model owns its
 * parameters: {@link #close()} frees them together with all buffers.
 */
public final class LlamaModel extends CausalLm implements AutoCloseable {
    private final List<DecoderLayer> layers;

    private LlamaModel(
            Backend backend,
            LlamaConfig cfg,
            Embedding embedding,
            List<DecoderLayer> layers,
            RMSNorm norm,
            LmHead head,
            BufferPool scratch) {
        super(backend, cfg, embedding, layers, norm, head, scratch);
        this.layers = layers;
    }

    /** A new model with zero-filled, frozen parameters. */
    public static LlamaModel create(Backend backend, LlamaConfig cfg) {
        BufferPool scratch = new BufferPool(backend);
        Parameter embed = Parameter.zeros(backend, "model.embed_tokens.weight", cfg.vocabSize(), cfg.hiddenSize());
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < cfg.numLayers(); i++) {
            layers.add(new DecoderLayer(backend, cfg, layerPrefix(i), scratch));
        }
        Parameter normW = Parameter.zeros(backend, "model.norm.weight", cfg.hiddenSize());
        Parameter headW = cfg.tieEmbeddings()
                ? embed
                : Parameter.zeros(backend, "lm_head.weight", cfg.vocabSize(), cfg.hiddenSize());
        return new LlamaModel(
                backend,
                cfg,
                new Embedding(backend, embed),
                List.copyOf(layers),
                new RMSNorm(backend, normW, cfg.rmsNormEps(), scratch),
                new LmHead(backend, headW),
                scratch);
    }

    /** {@code model.layers.{i}.} */
    public static String layerPrefix(int i) {
        return "model.layers." + i + ".";
    }

    /** The decoder layers, bottom first. */
    public List<DecoderLayer> layers() {
        return layers;
    }

    /** Seeded initialisation of every parameter ({@link Init#llama}). */
    public LlamaModel initialize(long seed) {
        Init.llama(parameters(), seed, config.numLayers());
        return this;
    }

    /** Frees buffers and parameters. */
    @Override
    public void close() {
        releaseBuffers();
        for (Parameter p : parameters()) p.close();
    }
}
