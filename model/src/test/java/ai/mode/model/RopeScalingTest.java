// RopeScaling: linear divides every frequency, llama3 keeps short wavelengths, divides long ones and blends between
// (values worked out independently in Python from Meta's rule for theta 100, head dim 16, original context 32), plain
// RoPE gives the plain table, and bad parameters fail in one line naming the field.
package ai.mode.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.RopeFrequencies;
import org.junit.jupiter.api.Test;

class RopeScalingTest {
    /** Meta's llama3 rule evaluated in Python for theta 100, hd 16, factor 8, low 1, high 4, original context 32. */
    private static final double[] LLAMA3_THETA100_HD16 = {
        1.0,
        0.37601575877682075,
        0.09583998588296266,
        0.022228492625486537,
        0.0125,
        0.007029266564879364,
        0.003952847075210474,
        0.0022228492625486537
    };

    @Test
    void llama3KeepsBlendsAndDivides() {
        RopeFrequencies f = new RopeScaling.Llama3(8, 1, 4, 32).frequencies(100f, 16);
        assertEquals(LLAMA3_THETA100_HD16.length, f.pairs());
        for (int i = 0; i < f.pairs(); i++)
            assertEquals(LLAMA3_THETA100_HD16[i], f.inverse(i), 1e-15 * LLAMA3_THETA100_HD16[i], "pair " + i);
        RopeFrequencies plain = RopeFrequencies.plain(100f, 16);
        assertEquals(plain.inverse(0), f.inverse(0), 0.0, "wavelength 6.3 < 32/4 is kept");
        assertEquals(plain.inverse(7) / 8, f.inverse(7), 0.0, "wavelength 353 > 32 is divided by the factor");
    }

    @Test
    void linearDividesEveryFrequencyAndNoneIsPlain() {
        RopeFrequencies plain = RopeFrequencies.plain(5000f, 12);
        RopeFrequencies linear = new RopeScaling.Linear(4).frequencies(5000f, 12);
        for (int i = 0; i < plain.pairs(); i++) assertEquals(plain.inverse(i) / 4, linear.inverse(i), 0.0);
        assertEquals(plain, RopeScaling.NONE.frequencies(5000f, 12));
        LlamaConfig c = new LlamaConfig(10, 24, 1, 2, 2, 8, 16, 5000f, 1e-5f, true);
        assertEquals(RopeScaling.NONE, c.ropeScaling());
        assertEquals(plain, c.ropeFrequencies());
        assertEquals(linear, c.withRopeScaling(new RopeScaling.Linear(4)).ropeFrequencies());
        assertEquals(
                new RopeScaling.Linear(4),
                c.withRopeScaling(new RopeScaling.Linear(4))
                        .withOverrides("rope_theta=100")
                        .ropeScaling(),
                "overrides keep the scaling");
    }

    @Test
    void badParametersFailInOneLine() {
        assertMessage(
                "rope_scaling linear: factor must be a positive finite number (got 0.0)",
                () -> new RopeScaling.Linear(0));
        assertMessage(
                "rope_scaling llama3: low_freq_factor must be a positive finite number (got NaN)",
                () -> new RopeScaling.Llama3(8, Double.NaN, 4, 8192));
        assertMessage(
                "rope_scaling llama3: high_freq_factor 1.0 must be greater than low_freq_factor 1.0",
                () -> new RopeScaling.Llama3(8, 1, 1, 8192));
        assertMessage(
                "rope_scaling llama3: original_max_position_embeddings must be >= 1 (got 0)",
                () -> new RopeScaling.Llama3(8, 1, 4, 0));
    }

    private static void assertMessage(String expected, Runnable r) {
        String m = assertThrows(IllegalArgumentException.class, r::run).getMessage();
        assertTrue(m.contains(expected), m);
    }
}
