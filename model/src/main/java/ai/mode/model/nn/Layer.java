package ai.mode.model.nn;

import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * The contract of a sequence-to-sequence layer with explicit forward and backward passes (no autograd tape): decoder
 * layers, MoDE blocks and norms all implement it, so models compose them freely.
 *
 * <p>A layer mapping hidden states {@code x [B,T,D]} to {@code y [B,T,D']} with a hand-written backward.
 *
 * <p>Protocol, per training micro-batch: {@code y = forward(x)}, later {@code dx = backward(dy)}.
 * <ul>
 *   <li>{@code forward} keeps a reference to {@code x} and whatever else its backward needs; the caller must
 *       leave {@code x} unchanged until {@code backward} has run.</li>
 *   <li>The returned {@code y} and {@code dx} are buffers owned by the layer, valid until its next
 *       {@code forward} / {@code backward} call (consume or copy them before that).</li>
 *   <li>{@code backward} accumulates ({@code +=}) into the gradient buffers of its trainable
 *       {@link Parameter}s and skips the weight-gradient work of frozen ones; it always returns the input
 *       gradient, also when every parameter is frozen (MoDE experts sit behind frozen backbone layers).</li>
 *   <li>{@code backward(dy)} does not modify {@code dy}.</li>
 * </ul>
 * Buffers are reused across steps while the batch shape stays the same; {@link #releaseBuffers()} frees them.
 */
public interface Layer {

    /** Forward pass; x [B,T,D] → y [B,T,D']. */
    Tensor forward(Tensor x);

    /** Backward pass of the last forward; dy [B,T,D'] → dx [B,T,D]; accumulates trainable parameter grads. */
    Tensor backward(Tensor dy);

    /** Whether {@link #forwardCached} works for this layer (its output at a position depends only on earlier ones). */
    default boolean supportsCache() {
        return false;
    }

    /**
     * Generation with a key/value cache: x [B,t,D] are t new positions after the {@code cache.length()} positions
     * already cached; the layer appends what it needs of them to {@code cache} and returns y [B,t,D], equal (up to
     * float32 rounding) to the last t rows of {@link #forward} over the whole sequence. Leaves no state for
     * {@link #backward}. Layers without {@link #supportsCache()} throw.
     */
    default Tensor forwardCached(Tensor x, KvCache cache) {
        throw new UnsupportedOperationException(
                getClass().getSimpleName() + " has no key/value cache; generate by recomputing the sequence");
    }

    /** This layer's parameters (including frozen ones), in a fixed order. */
    List<Parameter> parameters();

    /** Frees saved activations and output buffers (re-allocated on next use). */
    void releaseBuffers();
}
