// float16 / bfloat16 conversions against the independent bit-field reference: every 16-bit pattern decoded, and
// float32 values rounded (random, ties, subnormals, overflow boundaries) compared with an exhaustive nearest search.
package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FloatFormatsTest {

    @Test
    void everyF16PatternDecodesToItsIeeeValue() {
        for (int bits = 0; bits < 1 << 16; bits++) {
            double ref = HalfReference.Format.F16.decode(bits);
            float got = FloatFormats.f16ToFloat((short) bits);
            assertDecoded(ref, got, bits);
        }
    }

    @Test
    void everyBf16PatternDecodesToItsIeeeValue() {
        for (int bits = 0; bits < 1 << 16; bits++) {
            double ref = HalfReference.Format.BF16.decode(bits);
            float got = FloatFormats.bf16ToFloat((short) bits);
            assertDecoded(ref, got, bits);
        }
    }

    private static void assertDecoded(double ref, float got, int bits) {
        if (Double.isNaN(ref)) {
            assertTrue(
                    Float.isNaN(got),
                    () -> "pattern 0x" + Integer.toHexString(bits) + " must decode to NaN, got " + got);
        } else {
            // compare bits so that -0 and +0 are distinguished
            assertEquals(
                    Float.floatToRawIntBits((float) ref),
                    Float.floatToRawIntBits(got),
                    () -> "pattern 0x" + Integer.toHexString(bits) + ": expected " + ref + " got " + got);
            assertEquals(ref, got, 0.0, "decoding must be exact");
        }
    }

    @Test
    void f16EncodingRoundsToNearestEven() {
        checkEncoding(HalfReference.Format.F16, x -> FloatFormats.floatToF16(x) & 0xFFFF, F16_SPECIALS);
    }

    @Test
    void bf16EncodingRoundsToNearestEven() {
        checkEncoding(HalfReference.Format.BF16, x -> FloatFormats.floatToBf16(x) & 0xFFFF, BF16_SPECIALS);
    }

    private static final float[] F16_SPECIALS = {
        0f,
        -0f,
        1f,
        -1f,
        1f / 3,
        0.1f,
        65504f,
        65519.996f,
        65520f,
        65536f,
        -65520f,
        70000f,
        0x1p-24f,
        0x1p-25f,
        0x1.8p-25f,
        0x1.8p-24f,
        0x1p-14f,
        0x1.ff8p-15f,
        0x1p-26f,
        1e-9f,
        1 + 0x1p-11f,
        1 + 0x3p-11f,
        2048 + 1f,
        2048 + 3f,
        Float.MIN_VALUE,
        Float.MAX_VALUE,
        Float.POSITIVE_INFINITY,
        Float.NEGATIVE_INFINITY
    };

    private static final float[] BF16_SPECIALS = {
        0f,
        -0f,
        1f,
        -1f,
        1f / 3,
        0.1f,
        Float.MAX_VALUE,
        -Float.MAX_VALUE,
        0x1.fep127f,
        0x1.ffp127f,
        1 + 0x1p-8f,
        1 + 0x3p-8f,
        Float.MIN_VALUE,
        0x1p-133f,
        0x1p-134f,
        0x1.8p-134f,
        0x1p-126f,
        0x1.01p-126f,
        Float.POSITIVE_INFINITY,
        Float.NEGATIVE_INFINITY
    };

    private interface Encoder {
        int encode(float x);
    }

    private static void checkEncoding(HalfReference.Format format, Encoder encoder, float[] specials) {
        for (float x : specials) checkOne(format, encoder, x);
        SplittableRandom rnd = new SplittableRandom(42);
        for (int i = 0; i < 2_500; i++) {
            // random float bit patterns cover every exponent, including subnormals, overflow and NaN
            checkOne(format, encoder, Float.intBitsToFloat(rnd.nextInt()));
            // exact ties and near-ties: a representable value plus half its spacing, plus or minus one float ulp
            int b = rnd.nextInt(format.finiteNonNegative.length - 1);
            double mid = (format.finiteNonNegative[b] + format.finiteNonNegative[b + 1]) / 2;
            float tie = (float) mid;
            checkOne(format, encoder, tie);
            checkOne(format, encoder, Math.nextUp(tie));
            checkOne(format, encoder, -Math.nextDown(tie));
        }
        checkOne(format, encoder, Float.NaN);
        checkOne(format, encoder, Float.intBitsToFloat(0xFFC0_0001));
    }

    private static void checkOne(HalfReference.Format format, Encoder encoder, float x) {
        int got = encoder.encode(x);
        int ref = format.encode(x);
        if (Float.isNaN(x)) {
            assertTrue(
                    Double.isNaN(format.decode(got)),
                    () -> "NaN must encode to a NaN pattern, got 0x" + Integer.toHexString(got));
            return;
        }
        assertEquals(
                ref,
                got,
                () -> format + " encoding of " + x + " (0x" + Integer.toHexString(Float.floatToRawIntBits(x))
                        + "): expected 0x" + Integer.toHexString(ref) + " got 0x" + Integer.toHexString(got));
    }
}
