package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Embedding;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.LmHead;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.RMSNorm;
import ai.mode.runtime.Backend;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The LoRA baseline: the frozen backbone with low-rank adapters on chosen projections of every layer. Each layer is a
 * BatchedDecoderLayer with E = 1 over the backbone's own weights, carrying the adapters.
 *
 * <p>A backbone with {@link LoraAdapter}s ({@code model.layers.{i}.self_attn.q_proj.lora_A.weight} etc.). Owns the
 * adapters, shares the backbone's parameters.
 */
public final class LoraModel extends CausalLm implements AutoCloseable {

    /**
     * @param rank    r (default 16)
     * @param alpha   scale numerator: the update is (alpha/r)·B·A (default 16, i.e. scale 1 at r = 16)
     * @param targets which projections get adapters (default q, k, v, o: attention only, as in the paper's baseline)
     */
    public record Config(int rank, double alpha, Set<LayerTensor> targets) {
        public static final Set<LayerTensor> ATTENTION =
                EnumSet.of(LayerTensor.Q_PROJ, LayerTensor.K_PROJ, LayerTensor.V_PROJ, LayerTensor.O_PROJ);

        public Config {
            if (rank < 1) throw new IllegalArgumentException("--lora-rank must be >= 1 (got " + rank + ")");
            if (!(alpha > 0)) throw new IllegalArgumentException("--lora-alpha must be > 0 (got " + alpha + ")");
            if (targets.isEmpty())
                throw new IllegalArgumentException("--lora-targets must name at least one projection");
            for (LayerTensor t : targets) {
                if (t == LayerTensor.INPUT_NORM || t == LayerTensor.POST_ATTENTION_NORM) {
                    throw new IllegalArgumentException(
                            "LoRA adapts projection matrices, not norms (" + t.suffix() + ")");
                }
            }
            targets = Set.copyOf(targets);
        }

        public static Config defaults() {
            return new Config(16, 16, ATTENTION);
        }

        /** Parses {@code q,k,v,o,gate,up,down} (also {@code attention} and {@code all}). */
        public static Set<LayerTensor> parseTargets(String spec) {
            Set<LayerTensor> out = EnumSet.noneOf(LayerTensor.class);
            for (String s : spec.split(",")) {
                switch (s.strip().toLowerCase(Locale.ROOT)) {
                    case "q", "q_proj" -> out.add(LayerTensor.Q_PROJ);
                    case "k", "k_proj" -> out.add(LayerTensor.K_PROJ);
                    case "v", "v_proj" -> out.add(LayerTensor.V_PROJ);
                    case "o", "o_proj" -> out.add(LayerTensor.O_PROJ);
                    case "gate", "gate_proj" -> out.add(LayerTensor.GATE_PROJ);
                    case "up", "up_proj" -> out.add(LayerTensor.UP_PROJ);
                    case "down", "down_proj" -> out.add(LayerTensor.DOWN_PROJ);
                    case "attention" -> out.addAll(ATTENTION);
                    case "all" -> out.addAll(EnumSet.range(LayerTensor.Q_PROJ, LayerTensor.DOWN_PROJ));
                    default ->
                        throw new IllegalArgumentException(
                                "unknown LoRA target '" + s + "'; use q,k,v,o,gate,up,down, attention or all");
                }
            }
            out.remove(LayerTensor.POST_ATTENTION_NORM);
            return out;
        }
    }

    private final List<LoraAdapter> adapters;

    private LoraModel(
            Backend backend,
            LlamaConfig cfg,
            Embedding embedding,
            List<BatchedDecoderLayer> layers,
            RMSNorm norm,
            LmHead head,
            BufferPool scratch,
            List<LoraAdapter> adapters) {
        super(backend, cfg, embedding, layers, norm, head, scratch);
        this.adapters = List.copyOf(adapters);
    }

    /** Adapters on every backbone layer; A seeded by (seed, name), B zero, so the model starts equal to the backbone. */
    public static LoraModel create(LlamaModel backbone, Config config, long seed) {
        Backend be = backbone.backend();
        LlamaConfig cfg = backbone.config();
        BufferPool scratch = new BufferPool(be);
        List<BatchedDecoderLayer> layers = new ArrayList<>();
        List<LoraAdapter> adapters = new ArrayList<>();
        for (DecoderLayer l : backbone.layers()) {
            StackedLayerWeights w = StackedLayerWeights.wrap(be, l.parameters());
            Map<LayerTensor, LoraAdapter> ad = new EnumMap<>(LayerTensor.class);
            for (LayerTensor t : config.targets()) {
                LoraAdapter a = new LoraAdapter(be, w.parameter(0, t), config.rank(), config.alpha(), seed);
                ad.put(t, a);
                adapters.add(a);
            }
            layers.add(new BatchedDecoderLayer(be, cfg, w, ad, scratch));
        }
        return new LoraModel(
                be,
                cfg,
                new Embedding(be, backbone.embedding().table()),
                layers,
                new RMSNorm(be, backbone.finalNorm().weight(), cfg.rmsNormEps(), scratch),
                new LmHead(be, backbone.head().weight()),
                scratch,
                adapters);
    }

    /** The adapter factors, layer by layer. */
    public List<Parameter> adapterParameters() {
        List<Parameter> out = new ArrayList<>();
        for (LoraAdapter a : adapters) out.addAll(a.parameters());
        return out;
    }

    /** Freezes everything but the adapters. */
    public void selectTrainable() {
        for (Parameter p : parameters()) p.setTrainable(false);
        for (Parameter p : adapterParameters()) p.setTrainable(true);
    }

    @Override
    public void close() {
        releaseBuffers();
        for (LoraAdapter a : adapters) a.close();
    }
}
