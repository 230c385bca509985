package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Parameter;
import ai.mode.model.nn.WeightLayout;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link WeightLayout} of E same-shaped decoder layers over {@link StackedLayerWeights}: a projection
 * {@code y_e = x_e W_e^T} for all e is one grouped expert GEMM over E equal groups of M = B·T rows ({@link
 * Backend#groupedGemmForward}: one tensor-core launch on a GPU, the batched {@code gemm(x [E,M,in], W [E,out,in]^T)}
 * on cpu), the gate and up projections one grouped launch with the SwiGLU activation fused; input and weight
 * gradients likewise come from one grouped call each (weight gradients into a scratch stack when E > 1, then added to
 * each layer's gradient buffer); the per-layer RMSNorm gains are applied slice by slice. Optional {@link
 * LoraAdapter}s (E = 1 only, e.g. over a backbone layer's own weights) add {@code scale · (x A^T) B^T} to a
 * projection; such a layout keeps the backbone's plain float32 {@code gemm} for its own weights.
 */
public final class StackedLayout implements WeightLayout {
    private final Backend backend;
    private final float eps;
    private final StackedLayerWeights w;
    private final Map<LayerTensor, LoraAdapter> lora;
    private final BufferPool own; // LoRA's low-rank activations, saved for backward
    private final BufferPool scratch;
    private final int count;
    /** Whether the base weights' products run as grouped expert GEMMs (no LoRA adapters: the experts). */
    private final boolean grouped;

    /**
     * @param weights the E layers' stacked weights (not owned)
     * @param lora    adapters by projection (empty for none; only allowed with E = 1)
     * @param scratch shared pool for backward temporaries
     */
    public StackedLayout(
            Backend backend,
            LlamaConfig cfg,
            StackedLayerWeights weights,
            Map<LayerTensor, LoraAdapter> lora,
            BufferPool scratch) {
        this.backend = backend;
        this.eps = cfg.rmsNormEps();
        this.w = weights;
        this.count = weights.count();
        this.lora = lora.isEmpty() ? Map.of() : new EnumMap<>(lora);
        this.grouped = lora.isEmpty();
        this.own = new BufferPool(backend);
        this.scratch = scratch;
        if (!lora.isEmpty() && count != 1)
            throw new IllegalArgumentException("LoRA adapters need a single layer (E = 1), got E = " + count);
        for (Map.Entry<LayerTensor, LoraAdapter> e : this.lora.entrySet()) {
            int[] s = e.getKey().shape(cfg);
            if (s.length != 2
                    || e.getValue().a().shape()[1] != s[1]
                    || e.getValue().b().shape()[0] != s[0]) {
                throw new IllegalArgumentException(
                        "LoRA adapter " + e.getValue().a().name() + " does not fit "
                                + e.getKey().suffix());
            }
        }
        for (LayerTensor t : LayerTensor.values()) {
            int[] expect = t.shape(cfg);
            int[] got = weights.stacked(t).shape();
            if (got.length != expect.length + 1
                    || got[0] != count
                    || !Arrays.equals(Arrays.copyOfRange(got, 1, got.length), expect)) {
                throw new IllegalArgumentException("stacked weight " + t.suffix() + " must be [" + count + ", "
                        + Arrays.toString(expect).replaceAll("[\\[\\]]", "") + "] but is "
                        + Arrays.toString(got));
            }
        }
    }

    /** The decoder-layer graph over E stacked layers: x {@code [E·B, T, D]} → y {@code [E·B, T, D]}. */
    public static DecoderLayer layer(
            Backend backend,
            LlamaConfig cfg,
            StackedLayerWeights weights,
            Map<LayerTensor, LoraAdapter> lora,
            BufferPool scratch) {
        String name = weights.parameter(0, LayerTensor.INPUT_NORM).name();
        name = name.substring(0, name.length() - LayerTensor.INPUT_NORM.suffix().length());
        return new DecoderLayer(
                backend,
                cfg,
                weights.count() == 1 ? name : name + " (+" + (weights.count() - 1) + " stacked)",
                new StackedLayout(backend, cfg, weights, lora, scratch),
                scratch);
    }

    public StackedLayerWeights weights() {
        return w;
    }

    @Override
    public int count() {
        return count;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(w.parameters());
        for (LoraAdapter a : lora.values()) out.addAll(a.parameters());
        return out;
    }

    // ---------------------------------------------------------------- per-layer RMSNorm

    @Override
    public void normForward(LayerTensor t, Tensor x2, Tensor out, Tensor rstd) {
        int m = x2.dim(0) / count;
        for (int e = 0; e < count; e++) {
            backend.rmsNormForward(
                    backend.slice(x2, e * m, m),
                    w.parameter(e, t).value(),
                    eps,
                    backend.slice(out, e * m, m),
                    backend.slice(rstd, e * m, m));
        }
    }

    @Override
    public void normBackward(LayerTensor t, Tensor dOut, Tensor x2, Tensor rstd, Tensor dx) {
        int m = x2.dim(0) / count;
        for (int e = 0; e < count; e++) {
            Parameter p = w.parameter(e, t);
            Tensor dw = p.trainable() ? p.grad() : scratch.get("norm.dweight.discard", p.shape());
            backend.rmsNormBackward(
                    backend.slice(dOut, e * m, m),
                    backend.slice(x2, e * m, m),
                    p.value(),
                    backend.slice(rstd, e * m, m),
                    backend.slice(dx, e * m, m),
                    dw);
        }
    }

    // ---------------------------------------------------------------- batched projections

    /** [E·M, cols] as [E, M, cols]. */
    private Tensor per(Tensor t) {
        return backend.view(t, count, t.dim(0) / count, t.dim(-1));
    }

    @Override
    public boolean readsRows() {
        return grouped && count == 1;
    }

    @Override
    public void projectRows(LayerTensor t, Tensor src, Tensor rows, Tensor y2) {
        requireRows();
        backend.groupedGemmForward(src, rows, w.stacked(t), null, 0f, y2); // [R,out], rows read in place
    }

    @Override
    public void projectRowsBackward(
            LayerTensor t, Tensor dy2, Tensor src, Tensor rows, Tensor dx2, boolean accumulate) {
        requireRows();
        if (dx2 != null) backend.groupedGemmBackwardData(dy2, w.stacked(t), null, accumulate ? 1f : 0f, dx2);
        if (w.anyTrainable(t)) weightGradient(t, dy2, src, rows);
    }

    private void requireRows() {
        if (!readsRows())
            throw new UnsupportedOperationException("token-list projections need one layer without LoRA adapters, got "
                    + count + " layer(s)" + (grouped ? "" : " with adapters"));
    }

    @Override
    public void project(LayerTensor t, Tensor x2, Tensor y2, boolean accumulate) {
        Tensor x3 = per(x2), y3 = per(y2);
        if (grouped) backend.groupedGemmForward(x2, null, w.stacked(t), null, accumulate ? 1f : 0f, y2);
        else backend.gemm(false, true, 1f, x3, w.stacked(t), accumulate ? 1f : 0f, y3); // [E,M,out]
        LoraAdapter ad = lora.get(t);
        if (ad != null) {
            Tensor low = own.get("lora." + t.name(), 1, x3.dim(1), ad.rank());
            backend.gemm(
                    false, true, 1f, x3, backend.view(ad.a().value(), 1, ad.rank(), x3.dim(2)), 0f, low); // [1,M,r]
            backend.gemm(false, true, ad.scale(), low, backend.view(ad.b().value(), 1, y3.dim(2), ad.rank()), 1f, y3);
        }
    }

    @Override
    public void projectGateUp(Tensor x2, Tensor gate, Tensor up, Tensor out) {
        if (grouped) {
            backend.groupedSwiGluForward(
                    x2, null, w.stacked(LayerTensor.GATE_PROJ), w.stacked(LayerTensor.UP_PROJ), null, gate, up, out);
        } else {
            project(LayerTensor.GATE_PROJ, x2, gate, false);
            project(LayerTensor.UP_PROJ, x2, up, false);
            backend.swiGluForward(gate, up, out);
        }
    }

    @Override
    public void projectBackward(LayerTensor t, Tensor dy2, Tensor x2, Tensor dx2, boolean accumulate) {
        Tensor dy3 = per(dy2), x3 = per(x2);
        float beta = accumulate ? 1f : 0f;
        if (dx2 != null) {
            if (grouped) backend.groupedGemmBackwardData(dy2, w.stacked(t), null, beta, dx2);
            else backend.gemm(false, false, 1f, dy3, w.stacked(t), beta, per(dx2)); // [E,M,in]
        }
        if (w.anyTrainable(t)) {
            if (grouped) weightGradient(t, dy2, x2, null);
            else
                backend.gemm(
                        true,
                        false,
                        1f,
                        dy3,
                        x3,
                        1f,
                        backend.view(w.parameter(0, t).grad(), w.stacked(t).shape()));
        }
        LoraAdapter ad = lora.get(t);
        if (ad != null) {
            int r = ad.rank(), out = dy3.dim(2), in = x3.dim(2), m = x3.dim(1);
            Tensor low = own.get("lora." + t.name(), 1, m, r);
            Tensor bMat = backend.view(ad.b().value(), 1, out, r),
                    aMat = backend.view(ad.a().value(), 1, r, in);
            if (ad.b().trainable())
                backend.gemm(
                        true,
                        false,
                        ad.scale(),
                        dy3,
                        low,
                        1f,
                        backend.view(ad.b().grad(), 1, out, r));
            Tensor dLow = scratch.get("blayer.lora.dlow", 1, m, r);
            backend.gemm(false, false, ad.scale(), dy3, bMat, 0f, dLow); // [1,M,r]
            if (ad.a().trainable())
                backend.gemm(true, false, 1f, dLow, x3, 1f, backend.view(ad.a().grad(), 1, r, in));
            if (dx2 != null) backend.gemm(false, false, 1f, dLow, aMat, 1f, per(dx2));
        }
    }

    /**
     * The trainable layers' gradients {@code += dy2^T x} by one grouped call, x = src or its rows {@code rows}:
     * straight into the gradient for one layer, else into a scratch stack added to each trainable layer's gradient.
     */
    private void weightGradient(LayerTensor t, Tensor dy2, Tensor src, Tensor rows) {
        if (count == 1) {
            Tensor grad = backend.view(w.parameter(0, t).grad(), w.stacked(t).shape());
            backend.groupedGemmBackwardWeight(dy2, src, rows, null, 1f, grad);
            return;
        }
        Tensor stack = scratch.get("blayer.dw." + t.name(), w.stacked(t).shape());
        backend.groupedGemmBackwardWeight(dy2, src, rows, null, 0f, stack); // [E,out,in]
        for (int e = 0; e < count; e++) {
            Parameter p = w.parameter(e, t);
            if (p.trainable()) backend.axpy(1f, backend.view(backend.slice(stack, e, 1), p.shape()), p.grad());
        }
    }

    @Override
    public void releaseBuffers() {
        own.release();
    }
}
