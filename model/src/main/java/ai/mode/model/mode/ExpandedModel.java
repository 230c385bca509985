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
import java.util.List;

/**
 * The serial block-expansion baseline (LLaMA-Pro style, the parameter-matched control reviewers asked for): new decoder
 * layers inserted in series into the frozen backbone, each starting as the identity.
 *
 * <p>The backbone cut into {@code groups} slices of L/groups layers, with {@code perGroup} new layers
 * ({@code expansion.layers.{m}.*}, m counting from 0 bottom-up) inserted after each slice. A new layer starts
 * as a copy of the backbone layer just before it with {@code o_proj} and {@code down_proj} zeroed (LLaMA-Pro),
 * so it computes the identity and the expanded model starts equal to the backbone. Only new layers train.
 */
public final class ExpandedModel extends CausalLm implements AutoCloseable {
    private final List<DecoderLayer> added;

    private ExpandedModel(
            Backend backend,
            LlamaConfig cfg,
            Embedding embedding,
            List<DecoderLayer> layers,
            RMSNorm norm,
            LmHead head,
            BufferPool scratch,
            List<DecoderLayer> added) {
        super(backend, cfg, embedding, layers, norm, head, scratch);
        this.added = List.copyOf(added);
    }

    /** {@code expansion.layers.{m}.} */
    public static String layerPrefix(int m) {
        return "expansion.layers." + m + ".";
    }

    /**
     * @param groups   number of insertion points (must divide L); MoDE's B gives the matching placement
     * @param perGroup new layers per insertion point; N·k matches the layers of N MoDE experts of k layers
     */
    public static ExpandedModel create(LlamaModel backbone, int groups, int perGroup) {
        LlamaConfig cfg = backbone.config();
        int l = cfg.numLayers();
        if (groups < 1 || l % groups != 0)
            throw new IllegalArgumentException(
                    "expansion groups " + groups + " must divide the backbone's " + l + " layers");
        if (perGroup < 1)
            throw new IllegalArgumentException("layers inserted per group must be >= 1 (got " + perGroup + ")");
        Backend be = backbone.backend();
        BufferPool scratch = new BufferPool(be);
        List<DecoderLayer> layers = new ArrayList<>(), added = new ArrayList<>();
        int slice = l / groups, m = 0;
        for (int i = 0; i < l; i++) {
            DecoderLayer src = backbone.layers().get(i);
            layers.add(new DecoderLayer(be, cfg, src.prefix(), scratch, src.parameters()));
            if ((i + 1) % slice != 0) continue;
            for (int j = 0; j < perGroup; j++) {
                DecoderLayer n = new DecoderLayer(be, cfg, layerPrefix(m++), scratch);
                List<Parameter> from = src.parameters(), to = n.parameters();
                for (int t = 0; t < to.size(); t++) {
                    boolean out = to.get(t).name().endsWith(LayerTensor.O_PROJ.suffix())
                            || to.get(t).name().endsWith(LayerTensor.DOWN_PROJ.suffix());
                    if (out) be.fill(to.get(t).value(), 0f);
                    else be.copy(from.get(t).value(), to.get(t).value());
                }
                layers.add(n);
                added.add(n);
            }
        }
        return new ExpandedModel(
                be,
                cfg,
                new Embedding(be, backbone.embedding().table()),
                layers,
                new RMSNorm(be, backbone.finalNorm().weight(), cfg.rmsNormEps(), scratch),
                new LmHead(be, backbone.head().weight()),
                scratch,
                added);
    }

    /** The inserted layers' parameters. */
    public List<Parameter> addedParameters() {
        List<Parameter> out = new ArrayList<>();
        for (DecoderLayer d : added) out.addAll(d.parameters());
        return out;
    }

    /** Freezes everything but the inserted layers. */
    public void selectTrainable() {
        for (Parameter p : parameters()) p.setTrainable(false);
        for (Parameter p : addedParameters()) p.setTrainable(true);
    }

    @Override
    public void close() {
        releaseBuffers();
        for (Parameter p : addedParameters()) p.close();
    }
}
