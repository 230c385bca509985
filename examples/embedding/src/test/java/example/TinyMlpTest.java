package example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.BackendSpec;
import org.junit.jupiter.api.Test;

/** Training through the embedded backend lowers the loss, from about ln(4) for four classes. */
class TinyMlpTest {
    @Test
    void lossFalls() {
        try (TinyMlp m = new TinyMlp(BackendSpec.of("cpu", 2), 7)) {
            double first = m.trainStep(0.02f);
            assertEquals(Math.log(TinyMlp.C), first, 0.7, "an untrained model is near chance");
            double last = first;
            for (int i = 0; i < 39; i++) last = m.trainStep(0.02f);
            assertTrue(last < 0.6 * first, "loss " + first + " -> " + last + " after 40 steps");
        }
    }
}
