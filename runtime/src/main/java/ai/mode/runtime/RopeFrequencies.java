package ai.mode.runtime;

import java.util.Arrays;

/**
 * The rotary embedding's frequency table: one inverse frequency per rotated pair, pair i (elements i and i + hd/2 of a
 * head) turning by {@code position * inverse(i)} radians. A model computes it once from its config (plain RoPE
 * {@code theta^(-2i/hd)}, or a scaled variant) and passes it to {@link Backend#ropeForward} and
 * {@link Backend#ropeBackward} on every backend. Immutable; tables with the same values are equal, so a backend may cache
 * what it derives from one (cos/sin tables, a device copy).
 *
 * <pre>{@code
 * RopeFrequencies f = RopeFrequencies.plain(10000f, 64);   // 32 pairs
 * backend.ropeForward(q, f, 0, q);
 * }</pre>
 */
public final class RopeFrequencies {
    private final double[] inverse; // [hd/2], each positive and finite
    private final int hash;

    private RopeFrequencies(double[] inverse) {
        this.inverse = inverse;
        this.hash = Arrays.hashCode(inverse);
    }

    /**
     * Plain RoPE: {@code inverse(i) = theta^(-2i/hd)}, computed in float64 with {@link StrictMath#pow} (the same
     * bits on every machine).
     *
     * @param theta   the base, positive and finite
     * @param headDim hd, positive and even
     */
    public static RopeFrequencies plain(float theta, int headDim) {
        if (!(theta > 0) || Float.isInfinite(theta))
            throw new IllegalArgumentException("RoPE theta must be a positive finite number, got " + theta);
        if (headDim < 2 || headDim % 2 != 0)
            throw new IllegalArgumentException("RoPE head dimension must be positive and even, got " + headDim);
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = StrictMath.pow(theta, -2.0 * i / headDim);
        return new RopeFrequencies(inv);
    }

    /** A table of given inverse frequencies (radians per position), one per pair: at least one, each positive and finite. */
    public static RopeFrequencies of(double... inverse) {
        if (inverse == null || inverse.length == 0)
            throw new IllegalArgumentException("a RoPE frequency table needs at least one inverse frequency");
        double[] copy = inverse.clone();
        for (int i = 0; i < copy.length; i++) {
            if (!(copy[i] > 0) || Double.isInfinite(copy[i]))
                throw new IllegalArgumentException(
                        "RoPE inverse frequency " + i + " must be a positive finite number, got " + copy[i]);
        }
        return new RopeFrequencies(copy);
    }

    /** Number of rotated pairs, hd/2. */
    public int pairs() {
        return inverse.length;
    }

    /** The head dimension this table rotates, 2 * {@link #pairs()}. */
    public int headDim() {
        return 2 * inverse.length;
    }

    /** Inverse frequency of pair {@code i} in radians per position. */
    public double inverse(int i) {
        return inverse[i];
    }

    /** The inverse frequencies (a copy). */
    public double[] toArray() {
        return inverse.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RopeFrequencies f && hash == f.hash && Arrays.equals(inverse, f.inverse);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return "RopeFrequencies[" + inverse.length + " pairs, " + inverse[0] + " .. " + inverse[inverse.length - 1]
                + "]";
    }
}
