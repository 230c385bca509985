package ai.mode.tests.reference;

import java.util.Random;

/**
 * Seeded random test inputs. Values are never all zero (Gaussian or uniform on a non-degenerate interval),
 * so an op that ignores its input or writes nothing cannot pass. Also float/double conversions.
 */
public final class TestData {
    private TestData() {}

    /** n samples of N(0, std^2) as float32. */
    public static float[] normal(long seed, int n, double std) {
        Random rnd = new Random(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = (float) (rnd.nextGaussian() * std);
        return out;
    }

    /** n samples of N(0, 1) as float32. */
    public static float[] normal(long seed, int n) {
        return normal(seed, n, 1.0);
    }

    /** n samples uniform in [lo, hi) as float32 (lo < hi). */
    public static float[] uniform(long seed, int n, double lo, double hi) {
        if (!(lo < hi)) throw new IllegalArgumentException("uniform needs lo < hi, got " + lo + ", " + hi);
        Random rnd = new Random(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
        return out;
    }

    /** n ints uniform in [0, bound). */
    public static int[] ints(long seed, int n, int bound) {
        Random rnd = new Random(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = rnd.nextInt(bound);
        return out;
    }

    /** A row-stochastic [rows, e] matrix: softmax of N(0,1) logits, so every entry is > 0. */
    public static float[] probabilities(long seed, int rows, int e) {
        float[] logits = normal(seed, rows * e);
        float[] out = new float[rows * e];
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < e; j++) max = Math.max(max, logits[r * e + j]);
            for (int j = 0; j < e; j++) sum += Math.exp(logits[r * e + j] - max);
            for (int j = 0; j < e; j++) out[r * e + j] = (float) (Math.exp(logits[r * e + j] - max) / sum);
        }
        return out;
    }

    public static double[] toDouble(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = x[i];
        return out;
    }

    public static float[] toFloat(double[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) out[i] = (float) x[i];
        return out;
    }

    /**
     * x rounded to bfloat16 (nearest even) and back: the operands a tensor-core product with bf16 inputs multiplies,
     * for the naive-bf16 references (finite inputs).
     */
    public static float[] bf16(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            int u = Float.floatToRawIntBits(x[i]);
            u += 0x7fff + ((u >>> 16) & 1);
            out[i] = Float.intBitsToFloat(u & 0xffff0000);
        }
        return out;
    }

    /** A copy of x with every element NaN: "poison" for outputs that must be fully overwritten. */
    public static float[] nans(int n) {
        float[] out = new float[n];
        java.util.Arrays.fill(out, Float.NaN);
        return out;
    }
}
