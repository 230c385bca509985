package ai.mode.runtime.device;

/** bfloat16 conversions on the host: the upper 16 bits of a float32, rounded to nearest even. */
public final class Bf16 {
    private Bf16() {}

    /** Rounds to nearest even; NaN stays a quiet NaN (the same rule as the kernels' {@code __float2bfloat16}). */
    public static short fromFloat(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (short) ((u >>> 16) | 0x40);
        u += 0x7fff + ((u >>> 16) & 1);
        return (short) (u >>> 16);
    }

    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** {@code f} rounded through bfloat16. */
    public static float round(float f) {
        return toFloat(fromFloat(f));
    }
}
