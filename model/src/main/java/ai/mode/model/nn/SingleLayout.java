package ai.mode.model.nn;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * The {@link WeightLayout} of one decoder layer over its own nine parameters (HF-shaped: q/o [D,D], k/v
 * [Hkv·hd, D], gate/up [F,D], down [D,F], norms [D]), in {@link LayerTensor} order: projections are plain
 * {@link Linear} GEMMs, norms one RMSNorm each.
 */
public final class SingleLayout implements WeightLayout {
    private final Backend backend;
    private final float eps;
    private final BufferPool scratch;
    private final List<Parameter> params;

    /** @param params the layer's nine parameters in {@link LayerTensor} order, checked against {@code cfg} */
    public SingleLayout(Backend backend, LlamaConfig cfg, List<Parameter> params, BufferPool scratch) {
        this.backend = backend;
        this.eps = cfg.rmsNormEps();
        this.scratch = scratch;
        if (params.size() != LayerTensor.values().length)
            throw new IllegalArgumentException("a decoder layer needs 9 parameters, got " + params.size());
        for (LayerTensor t : LayerTensor.values()) {
            Parameter p = params.get(t.ordinal());
            if (!Arrays.equals(p.shape(), t.shape(cfg))) {
                throw new IllegalArgumentException("parameter " + p.name() + " must have shape "
                        + Arrays.toString(t.shape(cfg)) + " but has " + Arrays.toString(p.shape()));
            }
        }
        this.params = List.copyOf(params);
    }

    /** New zero-filled, frozen parameters named {@code prefix + suffix}, in {@link LayerTensor} order. */
    public static List<Parameter> newParameters(Backend b, LlamaConfig cfg, String prefix) {
        return Arrays.stream(LayerTensor.values())
                .map(t -> Parameter.zeros(b, prefix + t.suffix(), t.shape(cfg)))
                .toList();
    }

    private Parameter p(LayerTensor t) {
        return params.get(t.ordinal());
    }

    @Override
    public int count() {
        return 1;
    }

    @Override
    public List<Parameter> parameters() {
        return params;
    }

    @Override
    public void normForward(LayerTensor t, Tensor x2, Tensor out, Tensor rstd) {
        backend.rmsNormForward(x2, p(t).value(), eps, out, rstd);
    }

    @Override
    public void normBackward(LayerTensor t, Tensor dOut, Tensor x2, Tensor rstd, Tensor dx) {
        Parameter g = p(t);
        Tensor dw = g.trainable() ? g.grad() : scratch.get("norm.dweight.discard", g.shape());
        backend.rmsNormBackward(dOut, x2, g.value(), rstd, dx, dw);
    }

    @Override
    public void project(LayerTensor t, Tensor x2, Tensor y2, boolean accumulate) {
        backend.gemm(false, true, 1f, x2, p(t).value(), accumulate ? 1f : 0f, y2); // [N,out]
    }

    @Override
    public void projectGateUp(Tensor x2, Tensor gate, Tensor up, Tensor out) {
        project(LayerTensor.GATE_PROJ, x2, gate, false);
        project(LayerTensor.UP_PROJ, x2, up, false);
        backend.swiGluForward(gate, up, out); // [N,F]
    }

    @Override
    public void projectBackward(LayerTensor t, Tensor dy2, Tensor x2, Tensor dx2, boolean accumulate) {
        Linear.backward(backend, dy2, x2, p(t), dx2, accumulate);
    }
}
