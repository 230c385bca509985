package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.Arrays;

/**
 * A named model weight with its optional gradient buffer; the unit the optimizer, checkpoints and trainable-parameter
 * selection work on. Names follow Hugging Face Llama tensor names.
 *
 * <p>One named weight tensor (float32) plus, while trainable, a float32 gradient buffer of the same shape.
 *
 * <p>Names are the Hugging Face Llama tensor names ({@code model.layers.0.self_attn.q_proj.weight},
 * {@code model.embed_tokens.weight}, ...) or, for MoDE parameters, the {@code mode.blocks...} names of the
 * design. Linear weights are stored HF-style as {@code [out, in]}.
 *
 * <p>A frozen parameter ({@link #trainable()} false) has no gradient buffer: layers skip its weight-gradient
 * GEMMs entirely and the optimizer never touches it, so its bits stay unchanged. Layers still compute
 * input gradients through frozen weights. {@link #setTrainable(boolean)} allocates (zeroed) or frees the
 * gradient buffer. {@link #decay()} says whether AdamW weight decay applies (matrices yes, norm gains no).
 *
 * <p>The creator of a parameter owns it and closes it; models that share parameters (tied embeddings,
 * MoDE over a backbone) do not close the shared ones.
 *
 * <p>A trainable parameter may train only some of its rows ({@link #trainOnlyRows}): the optimizer then reads the
 * gradient of, and updates, only rows {@code [from, from+count)} of dimension 0, and the other rows keep their bits
 * (MoDE adds an expert by training only its new gate rows).
 */
public final class Parameter implements AutoCloseable {
    private final String name;
    private final Tensor value;
    private final boolean decay;
    private Tensor grad;
    private int rowFrom, rowCount = -1; // rows of dimension 0 that train; -1 = all

    /** A frozen parameter wrapping {@code value}; {@code decay} is whether weight decay applies. */
    public Parameter(String name, Tensor value, boolean decay) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("parameter name must not be empty");
        this.name = name;
        this.value = value;
        this.decay = decay;
    }

    /** A new zero-filled, frozen parameter; weight decay applies to rank-2 (matrix) parameters only. */
    public static Parameter zeros(Backend backend, String name, int... shape) {
        return new Parameter(name, backend.zeros(shape), shape.length >= 2);
    }

    public String name() {
        return name;
    }

    /** The weight values (float32). */
    public Tensor value() {
        return value;
    }

    /** The gradient buffer, or null while frozen. Layers accumulate into it; {@link #zeroGrad()} clears it. */
    public Tensor grad() {
        return grad;
    }

    public boolean trainable() {
        return grad != null;
    }

    public boolean decay() {
        return decay;
    }

    public int[] shape() {
        return value.shape();
    }

    public long numel() {
        return value.numel();
    }

    /**
     * Makes the parameter trainable (allocating a zeroed gradient buffer) or frozen (freeing it, and lifting any
     * {@link #trainOnlyRows} restriction).
     */
    public Parameter setTrainable(boolean on) {
        if (on && grad == null) {
            grad = value.backend().zeros(value.shape());
        } else if (!on && grad != null) {
            grad.close();
            grad = null;
        }
        if (!on) rowCount = -1;
        return this;
    }

    /**
     * Makes the parameter trainable in rows {@code [from, from+count)} of dimension 0 only: {@link #trained} gives
     * the optimizer those rows of the value, gradient and moments, so the other rows never change.
     */
    public Parameter trainOnlyRows(int from, int count) {
        int rows = value.shape()[0];
        if (from < 0 || count < 1 || from + count > rows)
            throw new IllegalArgumentException(
                    name + ": rows [" + from + ", " + (from + count) + ") outside its " + rows + " rows");
        setTrainable(true);
        rowFrom = from;
        rowCount = count;
        return this;
    }

    /**
     * The part of {@code full} (this parameter's value, gradient or an optimizer moment of its shape) that training
     * updates: all of it, or the rows of {@link #trainOnlyRows} as a view.
     */
    public Tensor trained(Tensor full) {
        return rowCount < 0 ? full : full.backend().slice(full, rowFrom, rowCount);
    }

    /** Clears the gradient buffer (no-op when frozen). */
    public void zeroGrad() {
        if (grad != null) value.backend().fill(grad, 0f);
    }

    /** Frees the value and gradient storage. */
    @Override
    public void close() {
        setTrainable(false);
        value.close();
    }

    @Override
    public String toString() {
        return name + Arrays.toString(value.shape()) + (trainable() ? " trainable" : " frozen");
    }
}
