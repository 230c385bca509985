package ai.mode.model.mode;

import ai.mode.model.nn.Init;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import java.util.List;

/**
 * A LoRA adapter on one projection matrix: W x becomes W x + (alpha/r) B A x with A [r,in] random and B [out,r] zero,
 * so an adapted model starts exactly at its base; only A and B train.
 *
 * <p>LoRA (Hu et al. 2021) factors for a weight {@code W [out,in]} named {@code <base>.weight}: parameters
 * {@code <base>.lora_A.weight} [r, in] (normal with std 1/sqrt(3·in) at init, the variance of PEFT's
 * Kaiming-uniform default) and
 * {@code <base>.lora_B.weight} [out, r] (zero at init); the update is {@code scale = alpha / r} times {@code B A}.
 */
public final class LoraAdapter implements AutoCloseable {
    private final Parameter a;
    private final Parameter b;
    private final float scale;

    /** New adapter factors for {@code weight}, seeded by (seed, parameter name); both start frozen. */
    public LoraAdapter(Backend backend, Parameter weight, int rank, double alpha, long seed) {
        if (rank < 1) throw new IllegalArgumentException("LoRA rank must be >= 1 (got " + rank + ")");
        if (!(alpha > 0)) throw new IllegalArgumentException("LoRA alpha must be > 0 (got " + alpha + ")");
        if (weight.shape().length != 2)
            throw new IllegalArgumentException("LoRA needs a matrix but " + weight + " is not one");
        int out = weight.shape()[0], in = weight.shape()[1];
        String base = weight.name().endsWith(".weight")
                ? weight.name().substring(0, weight.name().length() - ".weight".length())
                : weight.name();
        a = new Parameter(base + ".lora_A.weight", backend.zeros(rank, in), true);
        b = new Parameter(base + ".lora_B.weight", backend.zeros(out, rank), true);
        Init.normal(a, seed, 1.0 / Math.sqrt(3.0 * in));
        scale = (float) (alpha / rank);
    }

    /** A [r, in]. */
    public Parameter a() {
        return a;
    }

    /** B [out, r]. */
    public Parameter b() {
        return b;
    }

    public int rank() {
        return a.shape()[0];
    }

    /** alpha / r. */
    public float scale() {
        return scale;
    }

    public List<Parameter> parameters() {
        return List.of(a, b);
    }

    @Override
    public void close() {
        a.close();
        b.close();
    }
}
