package ai.mode.runtime.cpu;

/**
 * Scalar float math shared by both kernel paths, built only from IEEE-exact operations (+, *, fma, bit moves)
 * so it gives the same bits in the interpreter, C1 and C2 and the same bits as the lane-wise version in
 * {@link VectorKernels#exp}. (The Vector API's own EXP and {@code Math.exp} may differ by an ulp between
 * compiled and interpreted code, which would break run-to-run determinism.)
 */
final class CpuMath {
    private CpuMath() {}

    /** log2(e). */
    static final float LOG2E = 1.44269504088896341f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to an integer held in the low mantissa bits. */
    static final float ROUND_MAGIC = 12582912f;

    static final int ROUND_MAGIC_BITS = Float.floatToRawIntBits(ROUND_MAGIC);
    /** ln 2 split into a 15-bit head (so n * LN2_HI is exact) and the float nearest the remainder. */
    static final float LN2_HI = Float.intBitsToFloat(0x3f317200);

    static final float LN2_LO = (float) (0.6931471805599453 - LN2_HI);
    /** exp(x) is 0 in float below this and +inf above {@link #EXP_HI}; clamping keeps n in range. */
    static final float EXP_LO = -104f;

    static final float EXP_HI = 89f;
    /** Taylor coefficients 1/k! of e^r on |r| <= ln2/2 (degree 7: truncation below 1e-8 relative). */
    static final float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720, C7 = 1f / 5040;

    /**
     * e^x to about 1 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, times 2^n applied as
     * two exact power-of-two factors (so results near the float range limits neither overflow early nor lose
     * subnormals). NaN gives NaN, -inf gives 0, +inf gives +inf.
     */
    static float exp(float x) {
        float xc = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float t = Math.fma(xc, LOG2E, ROUND_MAGIC);
        float n = t - ROUND_MAGIC;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(C7, r, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int ni = Float.floatToRawIntBits(t) - ROUND_MAGIC_BITS;
        int n1 = ni >> 1;
        int n2 = ni - n1;
        return p * Float.intBitsToFloat((n1 + 127) << 23) * Float.intBitsToFloat((n2 + 127) << 23);
    }

    /** 1 / (1 + e^-x). */
    static float sigmoid(float x) {
        return 1f / (1f + exp(-x));
    }
}
