package ai.mode.model.nn;

import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * How the weights of a {@link DecoderLayer} are laid out, and so how its projections and norms run: one layer's
 * own parameters ({@link SingleLayout}: plain GEMMs), or E same-shaped layers stacked {@code [E, out, in]} and
 * computed together (the MoDE experts: one batched GEMM per projection). The layer graph is written once, in
 * {@link DecoderLayer}; the layout supplies its weighted operations over rows {@code [E·M, ·]}, where rows
 * {@code [e·M, (e+1)·M)} belong to layer e.
 */
public interface WeightLayout {
    /** E, the number of layers computed together. */
    int count();

    /** The layers' parameters (and any adapters'), in a fixed order. */
    List<Parameter> parameters();

    /** out = RMSNorm(x2)·gain per layer; x2, out {@code [E·M, D]}, rstd {@code [E·M]}. */
    void normForward(LayerTensor t, Tensor x2, Tensor out, Tensor rstd);

    /** Backward of {@link #normForward}: dx {@code [E·M, D]} (overwritten); the gains' gradients accumulate when trainable. */
    void normBackward(LayerTensor t, Tensor dOut, Tensor x2, Tensor rstd, Tensor dx);

    /** y2 {@code [E·M, out]} (= or += with {@code accumulate}) x2 {@code [E·M, in]} W^T per layer. */
    void project(LayerTensor t, Tensor x2, Tensor y2, boolean accumulate);

    /**
     * The SwiGLU FFN's first half: gate {@code [E·M, F]} and up (the gate and up projections of x2 {@code [E·M, D]},
     * saved for backward) and out = silu(gate) · up.
     */
    void projectGateUp(Tensor x2, Tensor gate, Tensor up, Tensor out);

    /**
     * Backward of {@link #project}: {@code dx2 (=|+=) dy2 W} when dx2 is not null, and the weight gradients
     * {@code += dy2^T x2} of trainable layers.
     */
    void projectBackward(LayerTensor t, Tensor dy2, Tensor x2, Tensor dx2, boolean accumulate);

    /**
     * Whether {@link #projectRows} is available: one layer (E = 1) whose projections run as grouped expert GEMMs,
     * which read their operand rows through a token list.
     */
    default boolean readsRows() {
        return false;
    }

    /**
     * {@link #project} of the gathered operand {@code src[rows[r]]}: y2 {@code [R, out]} = src {@code [S, in]} rows
     * {@code rows} (I32 [R]) times W^T, the rows read in place (the grouped GEMM's gather). Only when {@link
     * #readsRows()}.
     */
    default void projectRows(LayerTensor t, Tensor src, Tensor rows, Tensor y2) {
        throw new UnsupportedOperationException(
                "this weight layout has no token-list projections (readsRows() is false); use project");
    }

    /**
     * Backward of {@link #projectRows}: {@code dx2 [R, in] (=|+=) dy2 W} in operand-row order when dx2 is not null,
     * and the weight gradients {@code += dy2^T src[rows]} of trainable layers. Only when {@link #readsRows()}.
     */
    default void projectRowsBackward(
            LayerTensor t, Tensor dy2, Tensor src, Tensor rows, Tensor dx2, boolean accumulate) {
        throw new UnsupportedOperationException(
                "this weight layout has no token-list projections (readsRows() is false); use projectBackward");
    }

    /** Frees buffers the layout keeps between forward and backward (re-allocated on next use). */
    default void releaseBuffers() {}
}
