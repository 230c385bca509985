// RopeFrequencies: plain RoPE's table is theta^(-2i/hd) as the cpu backend always computed it (same bits), custom
// tables are validated and copied, equal tables are equal (backends cache by it).
package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class RopeFrequenciesTest {
    @Test
    void plainIsThetaToTheMinusTwoIOverHd() {
        RopeFrequencies f = RopeFrequencies.plain(10000f, 8);
        assertEquals(4, f.pairs());
        assertEquals(8, f.headDim());
        for (int i = 0; i < 4; i++) {
            assertEquals(
                    Double.doubleToLongBits(StrictMath.pow(10000.0, -2.0 * i / 8)),
                    Double.doubleToLongBits(f.inverse(i)));
            assertEquals(Math.pow(10000.0, -i / 4.0), f.inverse(i), 1e-15);
        }
        assertEquals(1.0, f.inverse(0));
    }

    @Test
    void customTablesAreCopiedAndCompareByValue() {
        double[] v = {0.5, 0.01};
        RopeFrequencies f = RopeFrequencies.of(v);
        v[0] = 9;
        assertEquals(0.5, f.inverse(0));
        double[] copy = f.toArray();
        copy[1] = 9;
        assertEquals(0.01, f.inverse(1));
        assertEquals(RopeFrequencies.of(0.5, 0.01), f);
        assertEquals(RopeFrequencies.of(0.5, 0.01).hashCode(), f.hashCode());
        assertNotEquals(RopeFrequencies.of(0.5, 0.02), f);
        assertEquals(
                RopeFrequencies.plain(500f, 6),
                RopeFrequencies.of(RopeFrequencies.plain(500f, 6).toArray()));
    }

    @Test
    void badTablesFailInOneLine() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RopeFrequencies.of())
                .getMessage()
                .contains("at least one inverse frequency"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RopeFrequencies.of(1, Double.NaN))
                .getMessage()
                .contains("inverse frequency 1 must be a positive finite number, got NaN"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RopeFrequencies.of(0.0))
                .getMessage()
                .contains("inverse frequency 0 must be a positive finite number"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RopeFrequencies.plain(-1f, 4))
                .getMessage()
                .contains("theta must be a positive finite number"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RopeFrequencies.plain(1e4f, 5))
                .getMessage()
                .contains("head dimension must be positive and even, got 5"));
    }
}
