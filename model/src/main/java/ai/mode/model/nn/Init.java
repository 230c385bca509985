package ai.mode.model.nn;

import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic parameter initialisation: each parameter's random stream is derived from the run seed and the
 * parameter's name, so results do not depend on creation order and new parameters (MoDE experts, LoRA) never shift the
 * values of existing ones. Seeded initialisers. GPT-2/Llama style: normal(0, 0.02), output projections scaled by
 * 1/sqrt(2L), norm gains 1.
 */
public final class Init {
    /** Standard deviation of projection and embedding weights. */
    public static final double STD = 0.02;

    private Init() {}

    /**
     * Initialises Llama parameters by name: rank-1 parameters (norm gains) to 1; {@code o_proj} and
     * {@code down_proj} weights to normal(0, 0.02/sqrt(2·numLayers)); every other matrix to normal(0, 0.02).
     */
    public static void llama(List<Parameter> params, long seed, int numLayers) {
        double outStd = STD / Math.sqrt(2.0 * numLayers);
        for (Parameter p : params) {
            if (p.shape().length == 1) {
                constant(p, 1f);
            } else if (p.name().endsWith("o_proj.weight") || p.name().endsWith("down_proj.weight")) {
                normal(p, seed, outStd);
            } else {
                normal(p, seed, STD);
            }
        }
    }

    /** Fills {@code p} with normal(0, std) from a stream seeded by {@link #streamSeed(long, String)}. */
    public static void normal(Parameter p, long seed, double std) {
        SplittableRandom rng = new SplittableRandom(streamSeed(seed, p.name()));
        float[] data = new float[Math.toIntExact(p.numel())];
        for (int i = 0; i < data.length; i++) data[i] = (float) (rng.nextGaussian() * std);
        p.value().backend().copyFromHost(data, p.value());
    }

    /** Fills {@code p} with a constant. */
    public static void constant(Parameter p, float value) {
        p.value().backend().fill(p.value(), value);
    }

    /** The seed of a parameter's random stream: a 64-bit mix of the run seed and the name's characters. */
    public static long streamSeed(long seed, String name) {
        long h = seed * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
        for (int i = 0; i < name.length(); i++) {
            h ^= name.charAt(i);
            h *= 0x100000001B3L;
            h ^= h >>> 29;
        }
        return h;
    }
}
