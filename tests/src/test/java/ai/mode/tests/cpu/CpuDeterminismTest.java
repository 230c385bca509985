package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.t;
import static ai.mode.tests.cpu.CpuVariants.ti;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Determinism guarantees of the cpu backend: the same inputs give the same bits on repeated calls and for
 * any thread count (1, 2, 3, 5) on the same kernel path, with our SGEMM or oneMKL's; a frozen layer gives the
 * same input gradient as a trainable one with every GEMM provider; the vector and scalar paths agree to rounding.
 */
class CpuDeterminismTest {

    /** Runs one forward/backward pass through every reducing op and returns every output, flattened. */
    private static List<float[]> pipeline(CpuBackend be) {
        List<float[]> outs = new ArrayList<>();
        int b = 2, t = 70, h = 4, hkv = 2, hd = 16, d = h * hd, f = 150, vocab = 301, n = b * t;
        Tensor table = t(be, TestData.normal(1, vocab * d, 0.5), vocab, d);
        int[] ids = TestData.ints(2, n, vocab);
        Tensor x = be.zeros(n, d);
        be.embeddingForward(table, ti(be, ids, n), x);
        Tensor w = t(be, TestData.normal(3, d), d), xn = be.zeros(n, d), rstd = be.zeros(n);
        be.rmsNormForward(x, w, 1e-5f, xn, rstd);
        Tensor wqkv = t(be, TestData.normal(4, d * (d + 2 * hkv * hd), 0.2), d + 2 * hkv * hd, d);
        Tensor qkv = be.zeros(n, d + 2 * hkv * hd);
        be.gemm(false, true, 1f, xn, wqkv, 0f, qkv);
        float[] qkvHost = host(be, qkv);
        float[] qh = new float[n * d], kh = new float[n * hkv * hd], vh = new float[n * hkv * hd];
        for (int r = 0; r < n; r++) {
            System.arraycopy(qkvHost, r * (d + 2 * hkv * hd), qh, r * d, d);
            System.arraycopy(qkvHost, r * (d + 2 * hkv * hd) + d, kh, r * hkv * hd, hkv * hd);
            System.arraycopy(qkvHost, r * (d + 2 * hkv * hd) + d + hkv * hd, vh, r * hkv * hd, hkv * hd);
        }
        Tensor q = t(be, qh, b, t, h, hd), k = t(be, kh, b, t, hkv, hd), v = t(be, vh, b, t, hkv, hd);
        be.ropeForward(q, RopeFrequencies.plain(10000f, hd), 3, q);
        be.ropeForward(k, RopeFrequencies.plain(10000f, hd), 3, k);
        Tensor att = be.zeros(b, t, h, hd), lse = be.zeros(b, h, t);
        be.attentionForward(q, k, v, att, lse);
        Tensor gate = t(be, TestData.normal(5, n * f), n, f),
                up = t(be, TestData.normal(6, n * f), n, f),
                act = be.zeros(n, f);
        be.swiGluForward(gate, up, act);
        Tensor wOut = t(be, TestData.normal(7, f * vocab, 0.1), f, vocab), logits = be.zeros(n, vocab);
        be.gemm(false, false, 1f, act, wOut, 0f, logits);
        Tensor dLogits = be.zeros(n, vocab);
        int[] targets = TestData.ints(8, n, vocab);
        LossStats st = be.crossEntropy(logits, ti(be, targets, n), dLogits, 1f / n);
        outs.add(new float[] {(float) st.lossSum(), st.correct(), st.count()});
        Tensor dAct = be.zeros(n, f), dW = be.zeros(f, vocab);
        be.gemm(false, true, 1f, dLogits, wOut, 0f, dAct);
        be.gemm(true, false, 1f, act, dLogits, 0f, dW);
        Tensor dq = be.zeros(b, t, h, hd), dk = be.zeros(b, t, hkv, hd), dv = be.zeros(b, t, hkv, hd);
        be.attentionBackward(be.view(t(be, host(be, att), b, t, h, hd), b, t, h, hd), q, k, v, att, lse, dq, dk, dv);
        Tensor dx = be.zeros(n, d), dw = be.zeros(d);
        be.rmsNormBackward(be.view(dq, n, d), x, w, rstd, dx, dw);
        Tensor dTable = be.zeros(vocab, d);
        be.embeddingBackward(dx, ti(be, ids, n), dTable);
        Tensor colSums = be.zeros(vocab);
        be.sumRowsAccumulate(dLogits, colSums);
        Tensor m = be.zeros(f, vocab), vv = be.zeros(f, vocab);
        be.adamW(wOut, dW, m, vv, new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f));
        outs.add(new float[] {(float) be.sumSquares(dTable)});
        for (Tensor o : List.of(
                xn, rstd, qkv, q, k, att, lse, act, logits, dLogits, dAct, dW, dq, dk, dv, dx, dw, dTable, colSums,
                wOut, m, vv)) {
            outs.add(host(be, o));
        }
        return outs;
    }

    private static void assertBitwiseEqual(String what, List<float[]> a, List<float[]> b) {
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) assertArrayEquals(a.get(i), b.get(i), what + ": output " + i + " differs");
    }

    @Test
    void repeatedCallsGiveIdenticalBits() {
        for (CpuBackend be :
                CpuVariants.gemmTiles().map(CpuVariants.Variant::be).toList()) {
            assertBitwiseEqual(CpuVariants.label(be) + " run twice", pipeline(be), pipeline(be));
        }
    }

    @Test
    void threadCountDoesNotChangeBits() {
        for (int path = 0; path < 3; path++) {
            boolean vector = path != 1;
            CpuGemm gemm = path == 2 ? CpuGemm.MKL : CpuGemm.VECTOR;
            if (gemm == CpuGemm.MKL && CpuVariants.MKL == null) continue; // MklGemmTest fails where it should load
            String label = (vector ? "vector" : "scalar") + ", " + gemm.label() + " gemm";
            List<float[]> reference;
            try (CpuBackend one = new CpuBackend(1, vector, gemm)) {
                reference = pipeline(one);
            }
            for (int threads : new int[] {2, 3, 5}) {
                try (CpuBackend be = new CpuBackend(threads, vector, gemm)) {
                    assertBitwiseEqual(label + ": 1 vs " + threads + " threads", reference, pipeline(be));
                }
            }
        }
    }

    /**
     * A frozen decoder layer computes its input gradient with the same products as a trainable one (it only skips
     * the weight gradients), so the bits must match, on every GEMM provider and many random layers. oneMKL without
     * its reproducible mode failed this on an AMD EPYC in about half of the runs.
     */
    @Test
    void frozenLayerGivesTheTrainableInputGradientOnEveryProvider() {
        LlamaConfig cfg = new LlamaConfig(11, 16, 1, 4, 2, 24, 8, 10000f, 1e-5f, true);
        int b = 2, t = 5, d = cfg.hiddenSize();
        for (CpuBackend be :
                CpuVariants.gemmTiles().map(CpuVariants.Variant::be).toList()) {
            for (int layerSeed = 0; layerSeed < 20; layerSeed++) {
                Random rnd = new Random(layerSeed);
                try (BufferPool scratch = new BufferPool(be)) {
                    DecoderLayer layer = new DecoderLayer(be, cfg, "model.layers.0.", scratch);
                    for (Parameter p : layer.parameters()) {
                        be.copyFromHost(TestData.normal(rnd.nextLong(), (int) p.numel(), 0.3), p.value());
                        p.setTrainable(true);
                    }
                    Tensor x = t(be, TestData.normal(rnd.nextLong(), b * t * d), b, t, d);
                    Tensor dy = t(be, TestData.normal(rnd.nextLong(), b * t * d), b, t, d);
                    layer.forward(x);
                    float[] trainable = host(be, layer.backward(dy));
                    for (Parameter p : layer.parameters()) p.setTrainable(false);
                    // a full collection moves the arrays, so the second pass sees other memory alignments
                    System.gc();
                    layer.forward(x);
                    assertArrayEquals(
                            trainable,
                            host(be, layer.backward(dy)),
                            CpuVariants.label(be) + ", layer seed " + layerSeed
                                    + ": frozen vs trainable input gradient");
                    for (Parameter p : layer.parameters()) p.close();
                }
            }
        }
    }

    @Test
    void concurrentCallersOnOneBackendGetTheSameBits() throws Exception {
        // Two threads share one backend (as concurrent model branches would): one of them gets the pool, the
        // other runs its tasks inline; both must finish and match a solo run bit for bit.
        try (CpuBackend be = new CpuBackend(2, true, CpuGemm.AUTO)) {
            List<float[]> solo = pipeline(be);
            java.util.concurrent.ExecutorService ex = java.util.concurrent.Executors.newFixedThreadPool(2);
            try {
                var f1 = ex.submit(() -> pipeline(be));
                var f2 = ex.submit(() -> pipeline(be));
                assertBitwiseEqual("concurrent caller 1", solo, f1.get(60, java.util.concurrent.TimeUnit.SECONDS));
                assertBitwiseEqual("concurrent caller 2", solo, f2.get(60, java.util.concurrent.TimeUnit.SECONDS));
            } finally {
                ex.shutdownNow();
            }
        }
    }

    @Test
    void exponentialIsTheSameFunctionOnBothPaths() {
        // SwiGLU is elementwise, so any bit difference between the paths would come from exp itself. The
        // values include the clamping limits and the non-finite cases.
        int n = 5000;
        float[] g = TestData.uniform(31, n, -120, 120), u = TestData.normal(32, n), d = TestData.normal(33, n);
        float[] special = {
            0f,
            -0f,
            1e-30f,
            -87.5f,
            -103.9f,
            -104.5f,
            88.5f,
            88.8f,
            89.5f,
            Float.NaN,
            Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY,
            Float.MIN_VALUE,
            -Float.MAX_VALUE
        };
        System.arraycopy(special, 0, g, 0, special.length);
        float[][] outs = new float[2][], dGates = new float[2][];
        int i = 0;
        for (CpuBackend be : CpuVariants.all()) {
            Tensor out = be.zeros(n), dg = be.zeros(n), du = be.zeros(n);
            be.swiGluForward(t(be, g, n), t(be, u, n), out);
            be.swiGluBackward(t(be, d, n), t(be, g, n), t(be, u, n), dg, du);
            outs[i] = host(be, out);
            dGates[i++] = host(be, dg);
        }
        assertArrayEquals(outs[0], outs[1], "swiglu forward: vector vs scalar bits");
        assertArrayEquals(dGates[0], dGates[1], "swiglu backward: vector vs scalar bits");
    }

    @Test
    void vectorAndScalarPathsAgree() {
        List<float[]> vec = pipeline(CpuVariants.VECTOR), sca = pipeline(CpuVariants.SCALAR);
        for (int i = 0; i < vec.size(); i++) {
            float[] s = sca.get(i);
            double scale = Tolerance.maxAbs(TestData.toDouble(s));
            Tolerance.assertClose(
                    "vector vs scalar output " + i, vec.get(i), TestData.toDouble(s), 2e-4 * Math.max(scale, 1e-3), 0);
        }
    }
}
