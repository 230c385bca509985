package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.mode.DenseMerge;
import ai.mode.model.mode.ExpertStack;
import ai.mode.model.mode.Gate;
import ai.mode.model.mode.GateRouter;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.StackedLayerWeights;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Embedding;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.LmHead;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.RMSNorm;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The layers and parameters of a MoDE model that one rank holds under a {@link Placement}, as copies of a
 * {@link ModelSnapshot}'s values on the rank's backend: the embedding on the stem group, final norm and LM head on
 * the head group, and per block a {@link BlockPart}. Parameters keep the snapshot's names and trainable flags.
 */
final class ShardParameters implements AutoCloseable {
    private final Backend be;
    private final int rank;
    private final List<Parameter> params = new ArrayList<>();
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    private final List<StackedLayerWeights> storage = new ArrayList<>();
    private final List<Gate> gates = new ArrayList<>();
    final Embedding stem;
    final RMSNorm finalNorm;
    final LmHead head;
    final BlockPart[] blocks;
    /** As {@code CausalLm}: -1 embedding trains; else the lowest block with a trainable part; B final norm; B+1 head; B+2 nothing. */
    final int lowest;

    ShardParameters(Placement pl, int rank, Backend be, ModelSnapshot snap, BufferPool scratch) {
        this.be = be;
        this.rank = rank;
        LlamaConfig cfg = snap.config();
        ModeConfig mode = snap.mode();
        int myGroup = pl.groupOf(rank);
        int nb = mode.numBlocks(), ne = mode.numExperts();
        if (pl.numBlocks() != nb || pl.numExperts() != ne) {
            throw new IllegalArgumentException("the placement is for " + pl.numBlocks() + " blocks x " + pl.numExperts()
                    + " experts but the model has " + nb + " x " + ne);
        }
        Set<String> tr = snap.trainable();
        // embedding and head
        boolean stemHere = pl.stemGroup() == myGroup, headHere = pl.headGroup() == myGroup;
        int v = cfg.vocabSize(), d = cfg.hiddenSize();
        Parameter embed =
                stemHere || (headHere && cfg.tieEmbeddings()) ? param(snap, TensorNames.EMBED_TOKENS, v, d) : null;
        if (cfg.tieEmbeddings() && pl.stemGroup() != pl.headGroup() && tr.contains(TensorNames.EMBED_TOKENS)) {
            throw new IllegalArgumentException(
                    "tied embeddings can train only when the embedding and the LM head share a device group; "
                            + "put block 0's and the last block's backbone on one group, or freeze the embedding");
        }
        this.stem = stemHere ? new Embedding(be, embed) : null;
        this.finalNorm =
                headHere ? new RMSNorm(be, param(snap, TensorNames.FINAL_NORM, d), cfg.rmsNormEps(), scratch) : null;
        this.head =
                headHere ? new LmHead(be, cfg.tieEmbeddings() ? embed : param(snap, TensorNames.LM_HEAD, v, d)) : null;
        // blocks
        int slice = mode.sliceLayers(cfg);
        this.blocks = new BlockPart[nb];
        for (int i = 0; i < nb; i++) {
            BlockPart p = new BlockPart(i, pl.mergeGroup(i) == myGroup, pl.expertsOn(i, myGroup), snap);
            blocks[i] = p;
            if (p.merge) {
                for (int l = i * slice; l < (i + 1) * slice; l++) {
                    String prefix = LlamaModel.layerPrefix(l);
                    List<Parameter> lp = new ArrayList<>();
                    List<String> names = DecoderLayer.parameterNames(prefix);
                    for (int t = 0; t < names.size(); t++)
                        lp.add(param(snap, names.get(t), LayerTensor.values()[t].shape(cfg)));
                    p.backbone.add(new DecoderLayer(be, cfg, prefix, scratch, lp));
                }
                Gate gate = new Gate(be, i, mode.numBranches(), d, mode.gateInput(), cfg.rmsNormEps(), scratch);
                gates.add(gate);
                adopt(snap, gate.weight());
                adopt(snap, gate.bias());
                p.router = new GateRouter(be, gate, mode.routing().level());
                p.dense = new DenseMerge(be, mode.numBranches(), mode.merge());
            }
            if (p.experts.length > 0) {
                p.weights = new ArrayList<>();
                for (int l = 0; l < mode.layersPerExpert(); l++) {
                    List<String> prefixes = new ArrayList<>();
                    for (int j : p.experts) prefixes.add(ModeModel.expertLayerPrefix(i, j, l));
                    StackedLayerWeights w = StackedLayerWeights.allocate(be, cfg, prefixes);
                    storage.add(w);
                    p.weights.add(w);
                }
                for (int e = 0; e < p.experts.length; e++) {
                    for (StackedLayerWeights w : p.weights) for (Parameter q : w.layerParameters(e)) adopt(snap, q);
                }
                p.stack = new ExpertStack(be, cfg, p.weights, scratch);
            }
        }
        this.lowest = lowestTrainable(tr, nb);
    }

    /** A new parameter on this backend with the snapshot's values (trainable as in the snapshot). */
    private Parameter param(ModelSnapshot snap, String name, int... shape) {
        Parameter existing = byName.get(name);
        if (existing != null) return existing;
        Parameter p = new Parameter(name, be.fromHost(snap.values(name, shape), shape), shape.length >= 2);
        if (snap.trainable().contains(name)) p.setTrainable(true);
        register(p);
        return p;
    }

    /** Fills a parameter created by a model class with the snapshot's values. */
    private void adopt(ModelSnapshot snap, Parameter p) {
        be.copyFromHost(snap.values(p.name(), p.shape()), p.value());
        if (snap.trainable().contains(p.name())) p.setTrainable(true);
        register(p);
    }

    private void register(Parameter p) {
        if (byName.put(p.name(), p) != null)
            throw new IllegalStateException("parameter " + p.name() + " registered twice on rank " + rank);
        params.add(p);
    }

    private int lowestTrainable(Set<String> tr, int nb) {
        if (tr.contains(TensorNames.EMBED_TOKENS)) return -1;
        for (BlockPart p : blocks) if (p.backboneTrainable || p.gateTrainable || p.expertsTrainable) return p.index;
        if (tr.contains(TensorNames.FINAL_NORM)) return nb;
        if (tr.contains(TensorNames.LM_HEAD)) return nb + 1;
        return nb + 2;
    }

    /** Every parameter held here, in construction order. */
    List<Parameter> all() {
        return params;
    }

    void releaseBuffers() {
        for (BlockPart p : blocks) p.releaseBuffers();
        if (stem != null) stem.releaseBuffers();
        if (finalNorm != null) finalNorm.releaseBuffers();
        if (head != null) head.releaseBuffers();
    }

    @Override
    public void close() {
        releaseBuffers();
        for (Gate g : gates) g.close();
        for (StackedLayerWeights w : storage) w.close();
        Set<String> owned = new LinkedHashSet<>();
        for (Gate g : gates) for (Parameter p : g.parameters()) owned.add(p.name());
        for (StackedLayerWeights w : storage) for (Parameter p : w.parameters()) owned.add(p.name());
        for (Parameter p : params) if (!owned.contains(p.name())) p.close();
    }
}
