package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Embedding;
import ai.mode.model.nn.Init;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.LmHead;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.RMSNorm;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * A MoDE language model: the backbone's frozen embedding, final norm and head around B MoDE blocks, each holding a
 * slice of the backbone's layers, N experts and a gate. Owns the experts and gates, shares (never frees or modifies)
 * the backbone's parameters.
 *
 * <p>{@code ids → embedding → ModeBlock 0..B-1 → final norm → head}. Block i runs backbone layers
 * {@code [i·L/B, (i+1)·L/B)} (the backbone's own {@link Parameter}s), experts
 * {@code mode.blocks.{i}.experts.{j}.layers.{l}.*} and gate {@code mode.blocks.{i}.gate.*}.
 *
 * <p>Which parameters train is set by the caller (see {@link #selectTrainable}); the usual MoDE choice keeps
 * the backbone frozen. Backward skips the frozen backbone slice of the lowest block entirely when the
 * embedding is frozen.
 */
public final class ModeModel extends CausalLm implements AutoCloseable, GateWatch {
    private final ModeConfig mode;
    private final List<ModeBlock> modeBlocks;
    private final List<StackedLayerWeights> expertStorage;
    private final List<Gate> gates;
    private final List<Parameter> backboneParameters;
    private final BackboneFingerprint fingerprint;
    private List<String> activeExperts;
    private GateStatistics gateStatistics; // watched by every block; null = none

    private ModeModel(
            Backend backend,
            LlamaConfig cfg,
            Embedding embedding,
            List<ModeBlock> blocks,
            RMSNorm norm,
            LmHead head,
            BufferPool scratch,
            ModeConfig mode,
            List<StackedLayerWeights> storage,
            List<Gate> gates,
            List<Parameter> backboneParameters,
            BackboneFingerprint fingerprint) {
        super(backend, cfg, embedding, blocks, norm, head, scratch);
        this.mode = mode;
        this.modeBlocks = List.copyOf(blocks);
        this.expertStorage = List.copyOf(storage);
        this.gates = List.copyOf(gates);
        this.backboneParameters = List.copyOf(backboneParameters);
        this.fingerprint = fingerprint;
        this.activeExperts = mode.domains();
    }

    /**
     * A MoDE model over {@code backbone} with new experts initialised per {@link ModeConfig#expertInit()}
     * (random streams seeded by (seed, parameter name)) and gates per {@link ModeConfig#gateInitBackbone()}.
     * Every parameter starts frozen.
     */
    public static ModeModel create(LlamaModel backbone, ModeConfig mode, long seed) {
        ModeModel m = assemble(backbone, mode);
        m.initializeExperts(backbone, seed);
        for (Gate g : m.gates) g.initialize(mode.backboneGateBias());
        return m;
    }

    private static ModeModel assemble(LlamaModel backbone, ModeConfig mode) {
        LlamaConfig cfg = backbone.config();
        mode.validateAgainst(cfg);
        Backend be = backbone.backend();
        BufferPool scratch = new BufferPool(be);
        int slice = mode.sliceLayers(cfg);
        List<ModeBlock> blocks = new ArrayList<>();
        List<StackedLayerWeights> storage = new ArrayList<>();
        List<Gate> gates = new ArrayList<>();
        for (int i = 0; i < mode.numBlocks(); i++) {
            List<DecoderLayer> bb = new ArrayList<>();
            for (int l = i * slice; l < (i + 1) * slice; l++) {
                DecoderLayer src = backbone.layers().get(l);
                bb.add(new DecoderLayer(be, cfg, src.prefix(), scratch, src.parameters()));
            }
            List<StackedLayerWeights> depths = new ArrayList<>();
            for (int l = 0; l < mode.layersPerExpert(); l++) {
                List<String> prefixes = new ArrayList<>();
                for (int j = 0; j < mode.numExperts(); j++) prefixes.add(expertLayerPrefix(i, j, l));
                depths.add(StackedLayerWeights.allocate(be, cfg, prefixes));
            }
            storage.addAll(depths);
            Gate g = new Gate(be, i, mode.numBranches(), cfg.hiddenSize(), mode.gateInput(), cfg.rmsNormEps(), scratch);
            gates.add(g);
            blocks.add(new ModeBlock(be, cfg, i, bb, depths, g, mode.routing(), mode.merge(), scratch));
        }
        Embedding emb = new Embedding(be, backbone.embedding().table());
        RMSNorm norm = new RMSNorm(be, backbone.finalNorm().weight(), cfg.rmsNormEps(), scratch);
        LmHead head = new LmHead(be, backbone.head().weight());
        return new ModeModel(
                be,
                cfg,
                emb,
                blocks,
                norm,
                head,
                scratch,
                mode,
                storage,
                gates,
                backbone.parameters(),
                BackboneFingerprint.of(cfg, backbone.parameters()));
    }

    /** {@code mode.blocks.{i}.experts.{j}.layers.{l}.} */
    public static String expertLayerPrefix(int block, int expert, int layer) {
        String full = TensorNames.expertLayer(block, expert, layer, LayerTensor.INPUT_NORM);
        return full.substring(0, full.length() - LayerTensor.INPUT_NORM.suffix().length());
    }

    private void initializeExperts(LlamaModel backbone, long seed) {
        int slice = mode.sliceLayers(config), k = mode.layersPerExpert();
        for (ModeBlock b : modeBlocks) {
            for (int l = 0; l < k; l++) {
                StackedLayerWeights w = b.expertWeights().get(l);
                for (int j = 0; j < w.count(); j++) {
                    if (mode.expertInit() == ModeConfig.ExpertInit.COPY) {
                        List<Parameter> src = backbone.layers()
                                .get(b.index() * slice + slice - k + l)
                                .parameters();
                        List<Parameter> dst = w.layerParameters(j);
                        for (int t = 0; t < dst.size(); t++)
                            backend.copy(src.get(t).value(), dst.get(t).value());
                    } else {
                        initializeZeroOut(w.layerParameters(j), seed);
                    }
                }
            }
        }
    }

    /** Norm gains 1, o_proj/down_proj 0, other matrices normal(0, 0.02): the layer computes the identity. */
    static void initializeZeroOut(List<Parameter> layer, long seed) {
        for (Parameter p : layer) {
            if (p.shape().length == 1) Init.constant(p, 1f);
            else if (p.name().endsWith(LayerTensor.O_PROJ.suffix())
                    || p.name().endsWith(LayerTensor.DOWN_PROJ.suffix())) Init.constant(p, 0f);
            else Init.normal(p, seed, Init.STD);
        }
    }

    public ModeConfig modeConfig() {
        return mode;
    }

    public List<ModeBlock> modeBlocks() {
        return modeBlocks;
    }

    public List<Gate> gates() {
        return gates;
    }

    public BackboneFingerprint fingerprint() {
        return fingerprint;
    }

    /** The backbone's parameters (shared; includes embedding, norm, head), in backbone order. */
    public List<Parameter> backboneParameters() {
        return backboneParameters;
    }

    /** Every expert parameter, block by block, expert by expert, layer by layer. */
    public List<Parameter> expertParameters() {
        List<Parameter> out = new ArrayList<>();
        for (ModeBlock b : modeBlocks) out.addAll(b.expertParameters());
        return out;
    }

    /** Expert j's parameters across all blocks. */
    public List<Parameter> expertParameters(int expert) {
        List<Parameter> out = new ArrayList<>();
        for (ModeBlock b : modeBlocks)
            for (StackedLayerWeights w : b.expertWeights()) out.addAll(w.layerParameters(expert));
        return out;
    }

    /** Every gate parameter, block by block. */
    public List<Parameter> gateParameters() {
        List<Parameter> out = new ArrayList<>();
        for (Gate g : gates) out.addAll(g.parameters());
        return out;
    }

    /** Expert and gate parameters: everything a MoDE model adds to its backbone. */
    public List<Parameter> addedParameters() {
        List<Parameter> out = new ArrayList<>(expertParameters());
        out.addAll(gateParameters());
        return out;
    }

    /** Freezes everything, then makes the gates (and, when {@code experts}, the experts) trainable. */
    public void selectTrainable(boolean experts) {
        for (Parameter p : parameters()) p.setTrainable(false);
        for (Parameter p : gateParameters()) p.setTrainable(true);
        if (experts) for (Parameter p : expertParameters()) p.setTrainable(true);
    }

    /**
     * Freezes everything, then makes trainable only the gate rows of experts {@code firstExpert..N-1} (weight rows
     * and biases; see {@link Parameter#trainOnlyRows}): what adding experts to a composed model trains, leaving every
     * expert and the other gate rows bitwise unchanged.
     */
    public void selectGateRows(int firstExpert) {
        if (firstExpert < 0 || firstExpert >= mode.numExperts())
            throw new IllegalArgumentException(
                    "first new expert " + firstExpert + " outside the model's " + mode.numExperts() + " experts");
        for (Parameter p : parameters()) p.setTrainable(false);
        int rows = mode.numExperts() - firstExpert;
        for (Parameter p : gateParameters()) p.trainOnlyRows(1 + firstExpert, rows);
    }

    /** Sets every block's gate to route everything to one branch (0 = backbone); see {@link Gate#forceBranch}. */
    public void forceGates(int branch) {
        for (Gate g : gates) g.forceBranch(branch);
    }

    /**
     * Domain opt-out at inference: every block routes only to the backbone and the experts named in
     * {@code experts} (domain names of {@link ModeConfig#domains()}), with each gate renormalised over those
     * branches. All the model's experts restores the full model, bit for bit.
     *
     * @throws IllegalArgumentException for an empty set or a name that is not one of the model's experts
     */
    public void useExperts(Collection<String> experts) {
        List<String> domains = mode.domains();
        if (experts.isEmpty())
            throw new IllegalArgumentException("the expert set is empty; keep at least one of " + domains
                    + " (the backbone always stays; to drop them all, evaluate the base model with 'mode eval')");
        boolean[] kept = new boolean[domains.size()];
        for (String e : experts) {
            int j = domains.indexOf(e);
            if (j < 0)
                throw new IllegalArgumentException(
                        "expert '" + e + "' is not in this model; use names from its experts " + domains);
            kept[j] = true;
        }
        boolean all = true;
        for (boolean k : kept) all &= k;
        for (ModeBlock b : modeBlocks) b.keepExperts(all ? null : kept);
        List<String> active = new ArrayList<>();
        for (int j = 0; j < kept.length; j++) if (kept[j]) active.add(domains.get(j));
        activeExperts = List.copyOf(active);
    }

    /** The model's experts except {@code removed} (each must be one of them), for {@link #useExperts}. */
    public List<String> expertsWithout(Collection<String> removed) {
        List<String> domains = mode.domains();
        for (String r : removed)
            if (!domains.contains(r))
                throw new IllegalArgumentException(
                        "expert '" + r + "' is not in this model; use names from its experts " + domains);
        return domains.stream().filter(d -> !removed.contains(d)).toList();
    }

    /** The experts the gates route to (all of the model's, unless {@link #useExperts} narrowed them). */
    public List<String> activeExperts() {
        return activeExperts;
    }

    @Override
    public LossStats forwardBackward(Tensor ids, Tensor targets, float gradScale) {
        modeBlocks.get(0).setInputGradient(embedding.table().trainable());
        return super.forwardBackward(ids, targets, gradScale);
    }

    // ================================================================= router statistics

    /**
     * Starts (true, with fresh sums) or stops counting router statistics of every forward pass in every block, all
     * rows under {@link GateStatistics#ALL}; what was counted stays readable ({@link #routerStatistics}).
     */
    public void collectGateStatistics(boolean on) {
        if (on) {
            watchGates(List.of());
            gateRows(null);
        } else if (gateStatistics != null) {
            gateStatistics.pause();
        }
    }

    /** Router statistics per block (mean weights, entropy, top-k load) of what {@link #collectGateStatistics} counted. */
    public List<RouterStatistics.Summary> routerStatistics() {
        if (gateStatistics == null)
            throw new IllegalStateException("no router statistics: call collectGateStatistics(true) first");
        return gateStatistics.blocks(GateStatistics.ALL);
    }

    /** Mean gate weights [block][branch] of what {@link #collectGateStatistics} counted. */
    public double[][] gateStatistics() {
        return routerStatistics().stream()
                .map(RouterStatistics.Summary::meanWeight)
                .toArray(double[][]::new);
    }

    @Override
    public void watchGates(List<String> domains) {
        gateStatistics = new GateStatistics(modeBlocks.size(), mode.numBranches(), domains);
        for (ModeBlock b : modeBlocks) b.watchGates(gateStatistics);
    }

    @Override
    public void gateRows(int[] rowDomain) {
        if (gateStatistics == null) throw new IllegalStateException("gateRows before watchGates");
        gateStatistics.open(rowDomain);
    }

    @Override
    public Map<String, List<RouterStatistics.Summary>> takeGateStatistics() {
        if (gateStatistics == null) throw new IllegalStateException("takeGateStatistics before watchGates");
        Map<String, List<RouterStatistics.Summary>> out = gateStatistics.summaries();
        gateStatistics.reset();
        gateStatistics.pause();
        return out;
    }

    @Override
    public void unwatchGates() {
        for (ModeBlock b : modeBlocks) b.watchGates(null);
        gateStatistics = null;
    }

    // ================================================================= expert tensors in and out

    /** Expert and gate tensors copied to the host, under their file names, in model order. */
    public NamedTensors addedTensors() {
        NamedTensors out = new NamedTensors();
        for (Parameter p : addedParameters()) out.put(p.name(), p.shape(), backend.toHostFloats(p.value()));
        return out;
    }

    /**
     * Copies expert {@code srcExpert} of a tensor set (named as in expert files) into this model's expert
     * {@code dstExpert}; every tensor must be present with the right shape.
     */
    public void loadExpert(NamedTensors src, int srcExpert, int dstExpert, String source) {
        for (ModeBlock b : modeBlocks) {
            for (int l = 0; l < mode.layersPerExpert(); l++) {
                for (LayerTensor t : LayerTensor.values()) {
                    String from = TensorNames.expertLayer(b.index(), srcExpert, l, t);
                    Parameter to = b.expertWeights().get(l).parameter(dstExpert, t);
                    copyIn(src, from, to, source);
                }
            }
        }
    }

    /** Loads every block's gate from tensors named {@code mode.blocks.{i}.gate.*} with this model's N+1 rows. */
    public void loadGates(NamedTensors src, String source) {
        for (Gate g : gates) {
            copyIn(src, g.weight().name(), g.weight(), source);
            copyIn(src, g.bias().name(), g.bias(), source);
        }
    }

    private void copyIn(NamedTensors src, String name, Parameter to, String source) {
        if (!src.contains(name))
            throw new IllegalArgumentException(
                    source + " has no tensor " + name + "; is it a complete MoDE expert file for this configuration?");
        int[] shape = src.shape(name);
        if (!Arrays.equals(shape, to.shape())) {
            throw new IllegalArgumentException(
                    source + ": tensor " + name + " has shape " + Arrays.toString(shape) + " but the model needs "
                            + Arrays.toString(to.shape()) + " (was it trained on another backbone shape?)");
        }
        backend.copyFromHost(src.data(name), to.value());
    }

    /** Frees the experts, gates and all buffers; the backbone's parameters stay untouched. */
    @Override
    public void close() {
        releaseBuffers();
        for (Gate g : gates) g.close();
        for (StackedLayerWeights w : expertStorage) w.close();
    }
}
