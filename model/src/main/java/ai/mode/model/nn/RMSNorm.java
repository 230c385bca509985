package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * Root-mean-square normalisation over the last dimension as a Layer (used for the model's final norm).
 *
 * <p>{@code y = x / sqrt(mean(x^2) + eps) * weight}; weight [D] (HF name e.g. {@code model.norm.weight}).
 */
public final class RMSNorm implements Layer {
    private final Backend backend;
    private final Parameter weight;
    private final float eps;
    private final BufferPool own;
    private final BufferPool scratch;
    private Tensor x;

    /**
     * @param weight  gain [D] (shared, not owned)
     * @param scratch shared scratch pool (for the discarded weight gradient of a frozen gain)
     */
    public RMSNorm(Backend backend, Parameter weight, float eps, BufferPool scratch) {
        this.backend = backend;
        this.weight = weight;
        this.eps = eps;
        this.own = new BufferPool(backend);
        this.scratch = scratch;
    }

    public Parameter weight() {
        return weight;
    }

    @Override
    public Tensor forward(Tensor x) {
        int d = weight.shape()[0];
        if (x.dim(-1) != d)
            throw new IllegalArgumentException(
                    "RMSNorm " + weight.name() + ": input " + x.describe() + " last dim must be " + d);
        this.x = x;
        int n = Math.toIntExact(x.numel() / d);
        Tensor y = own.get("y", x.shape());
        backend.rmsNormForward(backend.view(x, n, d), weight.value(), eps, backend.view(y, n, d), own.get("rstd", n));
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (x == null) throw new IllegalStateException("RMSNorm " + weight.name() + ": backward before forward");
        int d = weight.shape()[0];
        int n = Math.toIntExact(x.numel() / d);
        Tensor dx = own.get("dx", x.shape());
        Tensor dw = weight.trainable() ? weight.grad() : scratch.get("norm.dweight.discard", d);
        backend.rmsNormBackward(
                backend.view(dy, n, d),
                backend.view(x, n, d),
                weight.value(),
                own.get("rstd", n),
                backend.view(dx, n, d),
                dw);
        return dx;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(weight);
    }

    @Override
    public void releaseBuffers() {
        own.release();
        x = null;
    }
}
