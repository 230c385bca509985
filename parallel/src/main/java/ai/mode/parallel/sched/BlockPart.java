package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.mode.DenseMerge;
import ai.mode.model.mode.ExpertStack;
import ai.mode.model.mode.GateRouter;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.StackedLayerWeights;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The parts of one MoDE block that one rank holds, built from the model package's pieces: on the block's merge
 * group the backbone slice, the gate ({@link GateRouter}) and the {@link DenseMerge}; on an expert group the
 * experts placed there as one {@link ExpertStack} (and one stack per expert for top-k routing). Also the state of
 * the block's last forward on this rank, which its backward reads.
 */
final class BlockPart {
    final int index;
    /** Whether this rank is in the block's merge group (backbone slice, gate, merge). */
    final boolean merge;
    /** Global expert numbers placed on this rank's group, in their local order. */
    final int[] experts;

    final boolean backboneTrainable, gateTrainable, expertsTrainable;
    final List<DecoderLayer> backbone = new ArrayList<>();
    GateRouter router;
    DenseMerge dense;
    ExpertStack stack;
    List<StackedLayerWeights> weights;
    private ExpertStack[] singles;

    // the last forward
    Tensor x, probs, expertOut;
    SparseDispatch sparse;

    /** Block {@code index}'s parts on a rank, with which of them train as in the snapshot. */
    BlockPart(int index, boolean merge, int[] experts, ModelSnapshot snap) {
        this.index = index;
        this.merge = merge;
        this.experts = experts;
        Set<String> tr = snap.trainable();
        ModeConfig mode = snap.mode();
        int slice = mode.sliceLayers(snap.config());
        boolean bb = false, ex = false;
        for (int l = index * slice; l < (index + 1) * slice; l++)
            for (String n : DecoderLayer.parameterNames(LlamaModel.layerPrefix(l))) bb |= tr.contains(n);
        for (int j = 0; j < mode.numExperts(); j++)
            for (int l = 0; l < mode.layersPerExpert(); l++)
                for (LayerTensor t : LayerTensor.values()) ex |= tr.contains(TensorNames.expertLayer(index, j, l, t));
        this.backboneTrainable = bb;
        this.gateTrainable = tr.contains(TensorNames.gateWeight(index)) || tr.contains(TensorNames.gateBias(index));
        this.expertsTrainable = ex;
    }

    /** Local position of global expert j on this rank, or -1. */
    int localPosition(int expert) {
        for (int e = 0; e < experts.length; e++) if (experts[e] == expert) return e;
        return -1;
    }

    /** The expert at local position e alone (top-k routing runs each expert on its own tokens). */
    ExpertStack single(Backend be, LlamaConfig cfg, BufferPool scratch, int e) {
        if (singles == null) singles = new ExpertStack[experts.length];
        if (singles[e] == null) {
            List<StackedLayerWeights> ws = new ArrayList<>();
            for (StackedLayerWeights w : weights) ws.add(w.range(e, 1));
            singles[e] = new ExpertStack(be, cfg, ws, scratch);
        }
        return singles[e];
    }

    Tensor runBackbone(Tensor h) {
        for (DecoderLayer l : backbone) h = l.forward(h);
        return h;
    }

    Tensor backboneBackward(Tensor g) {
        for (int l = backbone.size() - 1; l >= 0; l--) g = backbone.get(l).backward(g);
        return g;
    }

    List<Parameter> backboneParameters() {
        List<Parameter> out = new ArrayList<>();
        for (DecoderLayer l : backbone) out.addAll(l.parameters());
        return out;
    }

    List<Parameter> expertParameters() {
        return stack == null ? List.of() : stack.parameters();
    }

    /** Closes the index tensors of the last top-k dispatch. */
    void closeSparse() {
        if (sparse != null) sparse.close();
        sparse = null;
    }

    void releaseBuffers() {
        closeSparse();
        for (DecoderLayer l : backbone) l.releaseBuffers();
        if (router != null) router.releaseBuffers();
        if (dense != null) dense.releaseBuffers();
        if (stack != null) stack.releaseBuffers();
        if (singles != null) for (ExpertStack s : singles) if (s != null) s.releaseBuffers();
        x = probs = expertOut = null;
    }
}
