package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import org.junit.jupiter.api.Test;

/** The generation row's own side on a tiny model: its context grows to hold prompt + new tokens, rates are finite. */
class GenerateBenchTest {
    @Test
    void runsOnATinyModelWithAContextLongEnough() {
        LlamaConfig c = new LlamaConfig(50, 16, 1, 2, 2, 24, 8, 10000f, 1e-5f, true);
        assertEquals(20, GenerateBench.withContext(c, 20).maxSeqLen());
        try (Backend be = Backends.create("cpu", 1)) {
            GenerateBench.Result r = GenerateBench.run(be, c, 6, 14, 2, 3);
            assertEquals(2, r.decodeRuns().length);
            assertTrue(Double.isFinite(r.decodeTokensPerSecond()) && r.decodeTokensPerSecond() > 0, r.toString());
            assertTrue(Double.isFinite(r.prefillTokensPerSecond()) && r.prefillTokensPerSecond() > 0, r.toString());
            assertThrows(IllegalArgumentException.class, () -> GenerateBench.run(be, c, 6, 1, 2, 3));
        }
    }
}
