// GEMM problem descriptions: parsing, stored shapes, and the model's shape list.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LmHead;
import java.util.List;
import org.junit.jupiter.api.Test;

class GemmCaseTest {

    @Test
    void parsesSizesAndTransposes() {
        GemmCase g = GemmCase.parse("12x34x56:TN");
        assertEquals(12, g.m());
        assertEquals(34, g.n());
        assertEquals(56, g.k());
        assertTrue(g.transA());
        assertEquals(false, g.transB());
        assertEquals("12x34x56 TN", g.shape());
        assertArrayEquals(new int[] {56, 12}, g.aShape());
        assertArrayEquals(new int[] {56, 34}, g.bShape());
        assertArrayEquals(new int[] {34, 56}, GemmCase.parse("12x34x56:NT").bShape());
        assertEquals(2L * 12 * 34 * 56, g.flops());
    }

    @Test
    void rejectsMalformedShapes() {
        for (String bad : new String[] {"12x34", "12x34x56:XY", "axbxc:NN", "1x2x3:NN:NN", "0x2x3:NN"}) {
            assertThrows(IllegalArgumentException.class, () -> GemmCase.parse(bad), bad);
        }
    }

    @Test
    void modelShapesCoverEveryProjectionInThreePassesWithTheHeadChunked() {
        LlamaConfig c = LlamaConfig.tinyDefault(4096);
        List<GemmCase> cases = GemmCase.modelShapes(c, 2048);
        assertEquals(12, cases.size());
        int chunk = LmHead.CHUNK_ELEMENTS / 4096;
        assertTrue(cases.contains(new GemmCase("ffn gate/up fwd", false, true, 2048, 688, 256)));
        assertTrue(cases.contains(new GemmCase("ffn down dW", true, false, 256, 688, 2048)));
        assertTrue(cases.contains(new GemmCase("lm head fwd", false, true, chunk, 4096, 256)));
        assertTrue(cases.contains(new GemmCase("lm head dx", false, false, chunk, 256, 4096)));
        // grouped-query attention adds the narrower k/v projection
        LlamaConfig gqa = new LlamaConfig(64, 16, 1, 4, 2, 24, 8, 10000f, 1e-5f, true);
        assertTrue(GemmCase.modelShapes(gqa, 8).contains(new GemmCase("attn k/v fwd", false, true, 8, 8, 16)));
    }
}
