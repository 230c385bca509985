// The MoDE rows of the quick suite run end to end on a tiny model (block pass, batched and one-by-one experts,
// MoDE training) and report positive throughputs with the one-by-one run as the peer.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import java.util.List;
import org.junit.jupiter.api.Test;

class ModeBenchTest {

    @Test
    void modeRowsRunOnATinyModel() {
        LlamaConfig tiny = new LlamaConfig(64, 16, 2, 2, 2, 24, 8, 10000f, 1e-5f, true);
        try (Backend be = Backends.create("cpu", 1)) {
            List<BenchReport.Row> rows = ModeBench.rows(be, tiny, 2, 8, new Measure.Budget(0, 0, 1, 1), 1, 1);
            assertEquals(3, rows.size());
            for (BenchReport.Row r : rows) assertTrue(r.value() > 0, r.toString());
            assertEquals("experts one by one", rows.get(1).peer());
            assertTrue(rows.get(1).ratio() > 0);
            assertTrue(
                    rows.get(2).note().startsWith("experts + gates trained"),
                    rows.get(2).note());
        }
    }
}
