package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The nine weight tensors of E decoder layers that share one shape, stored stacked ([E, out, in] per matrix) so that
 * all E layers' projections run as one batched GEMM; each layer's slice is also a named Parameter (a view into the
 * stack), which is what the optimizer, checkpoints and parameter selection see.
 *
 * <p>Weights of E same-shaped decoder layers. For every {@link LayerTensor} t, {@link #stacked(LayerTensor)} is one
 * contiguous tensor {@code [E, ...t.shape]}; {@link #parameter(int, LayerTensor)} is layer e's slice of it as a
 * {@link Parameter} named {@code prefix_e + t.suffix()} (its gradient buffer is its own, allocated by
 * {@link Parameter#setTrainable}).
 *
 * <p>Created either with fresh storage ({@link #allocate}, owning it) or over an existing single layer's
 * parameters ({@link #wrap}, E = 1, owning nothing), or as a sub-range of another instance ({@link #range}).
 */
public final class StackedLayerWeights implements AutoCloseable {
    private static final LayerTensor[] TENSORS = LayerTensor.values();

    private final int count;
    private final Tensor[] stacked; // per LayerTensor ordinal: [E, ...shape]
    private final Parameter[][] params; // [E][LayerTensor ordinal]
    private final boolean owner;

    private StackedLayerWeights(int count, Tensor[] stacked, Parameter[][] params, boolean owner) {
        this.count = count;
        this.stacked = stacked;
        this.params = params;
        this.owner = owner;
    }

    /** Fresh zero-filled, frozen weights for {@code prefixes.size()} layers named {@code prefix + suffix}. */
    public static StackedLayerWeights allocate(Backend b, LlamaConfig cfg, List<String> prefixes) {
        int e = prefixes.size();
        if (e < 1) throw new IllegalArgumentException("stacked layer weights need at least one layer");
        Tensor[] stacked = new Tensor[TENSORS.length];
        Parameter[][] params = new Parameter[e][TENSORS.length];
        for (LayerTensor t : TENSORS) {
            int[] shape = t.shape(cfg);
            int[] full = new int[shape.length + 1];
            full[0] = e;
            System.arraycopy(shape, 0, full, 1, shape.length);
            Tensor s = b.zeros(full);
            stacked[t.ordinal()] = s;
            for (int j = 0; j < e; j++) {
                Tensor v = b.view(b.slice(s, j, 1), shape);
                params[j][t.ordinal()] = new Parameter(prefixes.get(j) + t.suffix(), v, shape.length >= 2);
            }
        }
        return new StackedLayerWeights(e, stacked, params, true);
    }

    /** E = 1 over an existing layer's nine parameters (in {@link LayerTensor} order); owns nothing. */
    public static StackedLayerWeights wrap(Backend b, List<Parameter> layerParams) {
        if (layerParams.size() != TENSORS.length) {
            throw new IllegalArgumentException(
                    "a decoder layer has " + TENSORS.length + " parameters, got " + layerParams.size());
        }
        Tensor[] stacked = new Tensor[TENSORS.length];
        Parameter[][] params = new Parameter[1][TENSORS.length];
        for (LayerTensor t : TENSORS) {
            Parameter p = layerParams.get(t.ordinal());
            if (!p.name().endsWith(t.suffix())) {
                throw new IllegalArgumentException(
                        "parameter " + p.name() + " is not a " + t.suffix() + " (wrong order?)");
            }
            int[] shape = p.shape();
            int[] full = new int[shape.length + 1];
            full[0] = 1;
            System.arraycopy(shape, 0, full, 1, shape.length);
            stacked[t.ordinal()] = b.view(p.value(), full);
            params[0][t.ordinal()] = p;
        }
        return new StackedLayerWeights(1, stacked, params, false);
    }

    /** Layers {@code [start, start+n)} of this stack, sharing storage and Parameters (owns nothing). */
    public StackedLayerWeights range(int start, int n) {
        if (start < 0 || n < 1 || start + n > count) {
            throw new IllegalArgumentException(
                    "layer range [" + start + ", " + (start + n) + ") outside the stack of " + count);
        }
        Tensor[] st = new Tensor[TENSORS.length];
        Backend b = stacked[0].backend();
        for (int i = 0; i < TENSORS.length; i++) st[i] = b.slice(stacked[i], start, n);
        return new StackedLayerWeights(n, st, Arrays.copyOfRange(params, start, start + n), false);
    }

    /** E, the number of layers in the stack. */
    public int count() {
        return count;
    }

    /** The stacked tensor {@code [E, ...shape]} of one weight kind. */
    public Tensor stacked(LayerTensor t) {
        return stacked[t.ordinal()];
    }

    /** Layer e's parameter of one weight kind. */
    public Parameter parameter(int e, LayerTensor t) {
        return params[e][t.ordinal()];
    }

    /** Layer e's nine parameters, in {@link LayerTensor} order. */
    public List<Parameter> layerParameters(int e) {
        return List.of(params[e]);
    }

    /** All parameters, layer by layer. */
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(count * TENSORS.length);
        for (Parameter[] row : params) out.addAll(Arrays.asList(row));
        return out;
    }

    /** Whether any layer's parameter of this kind is trainable. */
    public boolean anyTrainable(LayerTensor t) {
        for (Parameter[] row : params) if (row[t.ordinal()].trainable()) return true;
        return false;
    }

    /** Frees the storage when this instance allocated it (and the gradients of its parameters). */
    @Override
    public void close() {
        if (!owner) return;
        for (Parameter[] row : params) for (Parameter p : row) p.setTrainable(false);
        for (Tensor t : stacked) t.close();
    }
}
