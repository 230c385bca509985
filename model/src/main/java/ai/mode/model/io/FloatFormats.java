package ai.mode.model.io;

/**
 * Conversions between float32 and the 16-bit storage formats (IEEE binary16 and bfloat16), rounding to nearest even,
 * used by the safetensors reader and writer.
 */
public final class FloatFormats {
    private FloatFormats() {}

    /** IEEE binary16 bits to float32 (exact: every half value is a float). */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** float32 to IEEE binary16 bits, round to nearest even; overflow to infinity; NaN stays NaN. */
    public static short floatToF16(float value) {
        return Float.floatToFloat16(value);
    }

    /** bfloat16 bits to float32 (exact: bfloat16 is the upper half of a float32). */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** float32 to bfloat16 bits, round to nearest even; overflow to infinity; NaN stays a quiet NaN of the same sign. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) { // NaN: keep sign and top payload bits, force the quiet bit
            return (short) ((bits >>> 16) | 0x0040);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
