package ai.mode.tests.reference;

import static org.junit.jupiter.api.Assertions.fail;

import ai.mode.runtime.DType;

/**
 * Error measures and assertions against float64 references.
 *
 * <p>The tolerance rule of docs/design.md ({@link #assertWithinNaiveBound}): a fast path passes when its largest
 * absolute error against the float64 reference is at most twice that of a naive float32 implementation (see
 * {@link Ref#F32}) on the same inputs. Because a naive implementation can be exact (copies, tiny reductions), the bound
 * has a floor of one float32 ulp of the largest reference magnitude. The naive-bf16 rule, for kernels that round the
 * operands of their matrix products to bfloat16 (tensor cores), is the same bound with {@link Ref#BF16} as the naive
 * implementation: twice its error, with the same operands in bf16 and float32 arithmetic.
 */
public final class Tolerance {
    private Tolerance() {}

    /** max |got[i] - ref[i]| (infinite if any got element is NaN or the lengths differ). */
    public static double maxAbsError(float[] got, double[] ref) {
        if (got.length != ref.length) return Double.POSITIVE_INFINITY;
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            double e = Math.abs(got[i] - ref[i]);
            if (Double.isNaN(e)) return Double.POSITIVE_INFINITY;
            worst = Math.max(worst, e);
        }
        return worst;
    }

    /** max |naive[i] - ref[i]| for a naive result held in doubles. */
    public static double maxAbsError(double[] naive, double[] ref) {
        double worst = 0;
        for (int i = 0; i < naive.length; i++) {
            double e = Math.abs(naive[i] - ref[i]);
            if (Double.isNaN(e)) return Double.POSITIVE_INFINITY;
            worst = Math.max(worst, e);
        }
        return worst;
    }

    /** max |ref[i]|. */
    public static double maxAbs(double[] ref) {
        double m = 0;
        for (double v : ref) m = Math.max(m, Math.abs(v));
        return m;
    }

    /** max |got[i] - ref[i]| / max |ref| (relative to the largest reference value). */
    public static double maxRelError(float[] got, double[] ref) {
        return maxAbsError(got, ref) / Math.max(maxAbs(ref), Double.MIN_NORMAL);
    }

    /** Asserts |got[i] - ref[i]| <= atol + rtol * |ref[i]| for every i; the message names the worst element. */
    public static void assertClose(String what, float[] got, double[] ref, double atol, double rtol) {
        if (got.length != ref.length) fail(what + ": length " + got.length + " != reference length " + ref.length);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < got.length; i++) {
            double e = Math.abs(got[i] - ref[i]);
            double allowed = atol + rtol * Math.abs(ref[i]);
            if (Double.isNaN(e) || e > allowed) {
                double excess = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e - allowed;
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (worst >= 0) {
            fail(what + ": element " + worst + " is " + got[worst] + " but the reference is " + ref[worst]
                    + " (allowed |error| <= " + atol + " + " + rtol + " * |ref|; max abs error "
                    + maxAbsError(got, ref) + ")");
        }
    }

    /**
     * The tolerance rule of docs/design.md: asserts maxAbsError(got, ref64) <= factor * maxAbsError(naive32, ref64),
     * with a floor of one float32 ulp of max|ref64|. {@code factor} is 2 for the project's rule.
     */
    public static void assertWithinNaiveBound(
            String what, float[] got, double[] naive32, double[] ref64, double factor) {
        double err = maxAbsError(got, ref64);
        double naiveErr = maxAbsError(naive32, ref64);
        double floor = Math.ulp((float) maxAbs(ref64));
        double bound = Math.max(factor * naiveErr, floor);
        if (!(err <= bound)) {
            fail(what + ": max abs error vs float64 " + err + " exceeds " + factor + " x naive float32 error "
                    + naiveErr + " (bound " + bound + ", max |ref| " + maxAbs(ref64) + ")");
        }
    }

    /** {@link #assertWithinNaiveBound} with the project's factor 2. */
    public static void assertWithinNaiveBound(String what, float[] got, double[] naive32, double[] ref64) {
        assertWithinNaiveBound(what, got, naive32, ref64, 2.0);
    }

    /**
     * The rule for an op's output held in {@code storage}: every element finite (outputs start as NaN, so an
     * element never written fails), then for F32 {@link #assertWithinNaiveBound}; for BF16 storage the same bound
     * plus the rounding of the output to bfloat16 (half a bf16 ulp, 2^-9 relative, of each reference value,
     * doubled).
     */
    public static void assertWithinNaiveBound(
            String what, DType storage, float[] got, double[] naive32, double[] ref64) {
        assertWithinNaiveBound(what, storage, got, naive32, ref64, 2.0);
    }

    /** {@link #assertWithinNaiveBound(String, DType, float[], double[], double[])} with another factor than 2. */
    public static void assertWithinNaiveBound(
            String what, DType storage, float[] got, double[] naive32, double[] ref64, double factor) {
        for (int i = 0; i < got.length; i++) {
            if (!Float.isFinite(got[i])) fail(what + ": element " + i + " is " + got[i] + " (not written or overflow)");
        }
        if (storage != DType.BF16) {
            assertWithinNaiveBound(what, got, naive32, ref64, factor);
            return;
        }
        if (got.length != ref64.length) fail(what + ": length " + got.length + " != reference length " + ref64.length);
        double naiveErr = maxAbsError(naive32, ref64);
        double floor = Math.ulp((float) maxAbs(ref64));
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < got.length; i++) {
            double allowed = Math.max(factor * naiveErr, floor) + 2 * Math.abs(ref64[i]) * 0x1p-9;
            double e = Math.abs(got[i] - ref64[i]);
            if (e > allowed && (worst < 0 || e - allowed > worstExcess)) {
                worst = i;
                worstExcess = e - allowed;
            }
        }
        if (worst >= 0) {
            fail(what + " (bf16): element " + worst + " is " + got[worst] + " but float64 gives " + ref64[worst]
                    + " (naive float32 error " + naiveErr + ")");
        }
    }
}
