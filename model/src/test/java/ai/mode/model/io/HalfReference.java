// Independent float64/BigDecimal reference for IEEE binary16 and bfloat16: decoding from the bit fields by the
// textbook formula, and float32 -> 16-bit encoding by searching all representable values (nearest, ties to even).
package ai.mode.model.io;

import java.math.BigDecimal;

final class HalfReference {
    private HalfReference() {}

    /** A 16-bit float format: exponent and mantissa widths. */
    enum Format {
        F16(5, 10),
        BF16(8, 7);
        final int expBits, manBits, bias, maxExp;
        final double[] finiteNonNegative; // value of bits 0 .. largest finite, ascending

        Format(int expBits, int manBits) {
            this.expBits = expBits;
            this.manBits = manBits;
            this.bias = (1 << (expBits - 1)) - 1;
            this.maxExp = (1 << expBits) - 1;
            int count = maxExp << manBits; // bits of +inf
            finiteNonNegative = new double[count];
            for (int b = 0; b < count; b++) finiteNonNegative[b] = decode(b);
        }

        /** The value of a bit pattern by the IEEE formula (NaN for any NaN). */
        double decode(int bits) {
            int sign = (bits >>> (expBits + manBits)) & 1;
            int e = (bits >>> manBits) & maxExp;
            int m = bits & ((1 << manBits) - 1);
            double s = sign == 1 ? -1.0 : 1.0;
            if (e == 0) return s * m * Math.pow(2, 1 - bias - manBits);
            if (e == maxExp) return m == 0 ? s * Double.POSITIVE_INFINITY : Double.NaN;
            return s * (1.0 + m / (double) (1 << manBits)) * Math.pow(2, e - bias);
        }

        int signBit() {
            return 1 << (expBits + manBits);
        }

        int infBits() {
            return maxExp << manBits;
        }

        /** Nearest representable value's bits to {@code x}, ties to even mantissa, overflow to infinity. */
        int encode(float x) {
            if (Float.isNaN(x)) return infBits() | 1 << (manBits - 1);
            int sign = (Float.floatToRawIntBits(x) < 0) ? signBit() : 0;
            double ax = Math.abs((double) x);
            if (Double.isInfinite(ax)) return sign | infBits();
            int lo = 0, hi = finiteNonNegative.length - 1; // largest index with value <= ax
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (finiteNonNegative[mid] <= ax) lo = mid;
                else hi = mid - 1;
            }
            int below = lo;
            int above = below + 1; // may be the infinity pattern
            double belowValue = finiteNonNegative[below];
            if (belowValue == ax) return sign | below;
            // the would-be next value past the largest finite one is 2^(maxExp - bias)
            double aboveValue =
                    above < finiteNonNegative.length ? finiteNonNegative[above] : Math.pow(2, maxExp - bias);
            BigDecimal d1 = new BigDecimal(ax).subtract(new BigDecimal(belowValue));
            BigDecimal d2 = new BigDecimal(aboveValue).subtract(new BigDecimal(ax));
            int c = d1.compareTo(d2);
            int chosen = c < 0 ? below : c > 0 ? above : ((below & 1) == 0 ? below : above);
            return sign | chosen;
        }
    }
}
