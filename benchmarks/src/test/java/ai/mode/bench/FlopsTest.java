// Checks the work counts that turn timings into GFLOP/s against brute-force counts of naive loops.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.model.LlamaConfig;
import org.junit.jupiter.api.Test;

class FlopsTest {

    @Test
    void gemmCountsTwoFlopsPerMultiplyAddOfTheNaiveLoop() {
        int m = 3, n = 5, k = 7;
        long madds = 0;
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) for (int p = 0; p < k; p++) madds++;
        assertEquals(2 * madds, Flops.gemm(m, n, k));
    }

    @Test
    void causalAttentionCountsOnlyTheKeptPairs() {
        int b = 2, t = 9, h = 3, hd = 4;
        long pairs = 0;
        for (int q = 0; q < t; q++) for (int key = 0; key <= q; key++) pairs++;
        assertEquals(pairs, Flops.causalPairs(t));
        // forward: scores (hd multiply-adds) and weighted values (hd multiply-adds) per kept pair
        assertEquals(b * h * pairs * (2L * hd + 2L * hd), Flops.attentionForward(b, t, h, hd));
        assertEquals(Flops.attentionForward(b, t, h, hd) * 5 / 2, Flops.attentionBackward(b, t, h, hd));
    }

    @Test
    void trainStepIsSixFlopsPerMatmulWeightPerTokenPlusAttention() {
        LlamaConfig c = new LlamaConfig(50, 8, 2, 2, 1, 12, 16, 10000f, 1e-5f, true);
        int batch = 3, seq = 5;
        long tokens = (long) batch * seq;
        long q = 8 * 8, kv = 8 * 4, o = 8 * 8, ffn = 3 * 8 * 12, head = 50 * 8;
        long weights = 2 * (q + 2 * kv + o + ffn) + head;
        long attnPerLayer = 0;
        for (int s = 0; s < batch; s++)
            for (int hh = 0; hh < 2; hh++) for (int i = 0; i < seq; i++) attnPerLayer += (i + 1) * 4L * 4 * 7 / 2;
        assertEquals(weights, Flops.matmulParameters(c));
        assertEquals(6 * weights * tokens + 2 * attnPerLayer, Flops.trainStep(c, batch, seq));
    }

    @Test
    void memoryBoundOpsCountEachTensorOnce() {
        assertEquals(4L * (2 * 10 * 6 + 6 + 10), Flops.rmsNormForwardBytes(10, 6));
        assertEquals(4L * 3 * 10 * 6, Flops.swiGluForwardBytes(10, 6));
        assertEquals(4L * 5 * 10 * 6, Flops.swiGluBackwardBytes(10, 6));
        assertEquals(4L * 7 * 100, Flops.adamWBytes(100));
        assertEquals(4L * (2 * 3 * 11 + 3), Flops.crossEntropyBytes(3, 11));
        // bf16 activations: half the activation traffic, float32 weight and statistics
        assertEquals(2L * 2 * 10 * 6 + 4L * (6 + 10), Flops.rmsNormForwardBytes(10, 6, 2));
        assertEquals(2L * 3 * 10 * 6 + 4L * (3 * 6 + 10), Flops.rmsNormBackwardBytes(10, 6, 2));
        assertEquals(Flops.swiGluBackwardBytes(10, 6) / 2, Flops.swiGluBackwardBytes(10, 6, 2));
    }
}
