package ai.mode.model;

import ai.mode.runtime.RopeFrequencies;

/**
 * How a Llama config scales its rotary embedding (Hugging Face's {@code rope_scaling}): {@link #NONE}, {@link Linear}
 * (position interpolation: every frequency divided by a factor) or {@link Llama3} (Llama 3.1's rule: long wavelengths
 * divided by the factor, short ones kept, a smooth blend between). {@link #frequencies} turns it into the table every
 * backend rotates by; the rules follow transformers' {@code modeling_rope_utils} ({@code linear} and {@code llama3}),
 * computed in float64.
 *
 * <pre>{@code
 * RopeScaling s = new RopeScaling.Llama3(8, 1, 4, 8192);
 * RopeFrequencies f = s.frequencies(500000f, 128);
 * }</pre>
 */
public sealed interface RopeScaling {

    /** Plain RoPE. */
    RopeScaling NONE = new None();

    /** The rope types that can be loaded, as Hugging Face names them. */
    String SUPPORTED = "linear, llama3 (or none)";

    /** Hugging Face's {@code rope_type} name: {@code default}, {@code linear} or {@code llama3}. */
    String type();

    /** The inverse frequencies of a head of width {@code headDim} over base {@code theta}, scaled by this rule. */
    RopeFrequencies frequencies(float theta, int headDim);

    /** Plain RoPE: {@link RopeFrequencies#plain}. */
    record None() implements RopeScaling {
        @Override
        public String type() {
            return "default";
        }

        @Override
        public RopeFrequencies frequencies(float theta, int headDim) {
            return RopeFrequencies.plain(theta, headDim);
        }
    }

    /**
     * Linear scaling (position interpolation): every inverse frequency divided by {@code factor}.
     *
     * @param factor positive and finite (Hugging Face's {@code factor})
     */
    record Linear(double factor) implements RopeScaling {
        public Linear {
            requirePositive("linear", "factor", factor);
        }

        @Override
        public String type() {
            return "linear";
        }

        @Override
        public RopeFrequencies frequencies(float theta, int headDim) {
            double[] inv = RopeFrequencies.plain(theta, headDim).toArray();
            for (int i = 0; i < inv.length; i++) inv[i] /= factor;
            return RopeFrequencies.of(inv);
        }
    }

    /**
     * Llama 3.1's scaling: with wavelength {@code 2 pi / f} of each plain frequency f, wavelengths longer than
     * {@code originalMaxPositions / lowFreqFactor} are divided by {@code factor}, those shorter than
     * {@code originalMaxPositions / highFreqFactor} kept, and those between blended: {@code (1 - s) f / factor + s f}
     * with {@code s = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor)}.
     *
     * @param factor               positive and finite (Llama 3.1: 8)
     * @param lowFreqFactor        positive and finite (Llama 3.1: 1)
     * @param highFreqFactor       greater than lowFreqFactor and finite (Llama 3.1: 4)
     * @param originalMaxPositions the pretraining context length, positive (Llama 3.1: 8192)
     */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
            implements RopeScaling {
        public Llama3 {
            requirePositive("llama3", "factor", factor);
            requirePositive("llama3", "low_freq_factor", lowFreqFactor);
            requirePositive("llama3", "high_freq_factor", highFreqFactor);
            if (!(highFreqFactor > lowFreqFactor))
                throw new IllegalArgumentException("rope_scaling llama3: high_freq_factor " + highFreqFactor
                        + " must be greater than low_freq_factor " + lowFreqFactor);
            if (originalMaxPositions < 1)
                throw new IllegalArgumentException("rope_scaling llama3: original_max_position_embeddings must be >= 1"
                        + " (got " + originalMaxPositions + ")");
        }

        @Override
        public String type() {
            return "llama3";
        }

        @Override
        public RopeFrequencies frequencies(float theta, int headDim) {
            double[] inv = RopeFrequencies.plain(theta, headDim).toArray();
            double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
            double highFreqWavelen = originalMaxPositions / highFreqFactor;
            for (int i = 0; i < inv.length; i++) {
                double f = inv[i], wavelen = 2 * Math.PI / f;
                if (wavelen > lowFreqWavelen) {
                    inv[i] = f / factor;
                } else if (!(wavelen < highFreqWavelen)) {
                    double s = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                    inv[i] = (1 - s) * f / factor + s * f;
                }
            }
            return RopeFrequencies.of(inv);
        }
    }

    private static void requirePositive(String type, String field, double v) {
        if (!(v > 0) || Double.isInfinite(v))
            throw new IllegalArgumentException(
                    "rope_scaling " + type + ": " + field + " must be a positive finite number (got " + v + ")");
    }
}
