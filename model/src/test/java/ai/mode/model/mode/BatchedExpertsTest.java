// The experts of a block run as one batched GEMM per projection: same results as running each expert as its
// own DecoderLayer, and the GEMM count does not grow with the number of experts.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class BatchedExpertsTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static List<String> prefixes(int e) {
        List<String> out = new ArrayList<>();
        for (int j = 0; j < e; j++) out.add(ModeModel.expertLayerPrefix(0, j, 0));
        return out;
    }

    @Test
    void batchedLayerEqualsEachExpertRunAlone() {
        LlamaConfig cfg = ModeTestSupport.TINY;
        int e = 3, b = 2, t = 7, d = cfg.hiddenSize(), m = b * t;
        Random rnd = new Random(5);
        try (BufferPool scratch = new BufferPool(be);
                StackedLayerWeights w = StackedLayerWeights.allocate(be, cfg, prefixes(e))) {
            for (Parameter p : w.parameters()) {
                ModeTestSupport.randomize(be, p, rnd, 0.3);
                p.setTrainable(true);
            }
            DecoderLayer batched = StackedLayout.layer(be, cfg, w, Map.of(), scratch);
            float[] xs = new float[e * m * d], dys = new float[e * m * d];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) rnd.nextGaussian();
                dys[i] = (float) rnd.nextGaussian();
            }
            try (Tensor x = be.fromHost(xs, e * b, t, d);
                    Tensor dy = be.fromHost(dys, e * b, t, d)) {
                float[] y = be.toHostFloats(batched.forward(x));
                float[] dx = be.toHostFloats(batched.backward(dy));
                Map<String, float[]> grads = new HashMap<>();
                for (Parameter p : w.parameters()) grads.put(p.name(), be.toHostFloats(p.grad()));
                for (Parameter p : w.parameters()) p.zeroGrad();

                for (int j = 0; j < e; j++) {
                    DecoderLayer single = new DecoderLayer(be, cfg, prefixes(e).get(j), scratch, w.layerParameters(j));
                    Tensor xj = be.view(be.slice(be.view(x, e * m, d), j * m, m), b, t, d);
                    Tensor dyj = be.view(be.slice(be.view(dy, e * m, d), j * m, m), b, t, d);
                    float[] yj = be.toHostFloats(single.forward(xj));
                    float[] dxj = be.toHostFloats(single.backward(dyj));
                    assertArrayEquals(
                            java.util.Arrays.copyOfRange(y, j * m * d, (j + 1) * m * d),
                            yj,
                            1e-6f,
                            "forward of expert " + j);
                    assertArrayEquals(
                            java.util.Arrays.copyOfRange(dx, j * m * d, (j + 1) * m * d),
                            dxj,
                            1e-6f,
                            "input gradient of expert " + j);
                    for (Parameter p : w.layerParameters(j)) {
                        assertArrayEquals(
                                grads.get(p.name()), be.toHostFloats(p.grad()), 1e-6f, "gradient of " + p.name());
                    }
                    single.releaseBuffers();
                }
            }
        }
    }

    /** Counts the GEMM calls (plain and grouped) of a backend through a dynamic proxy. */
    private static Backend counting(Backend target, AtomicInteger gemms) {
        return (Backend) Proxy.newProxyInstance(
                Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
                    if (method.getName().equals("gemm") || method.getName().startsWith("grouped"))
                        gemms.incrementAndGet();
                    try {
                        return method.invoke(target, args);
                    } catch (InvocationTargetException ex) {
                        throw ex.getCause();
                    }
                });
    }

    @Test
    void gemmCountPerLayerDoesNotGrowWithTheNumberOfExperts() {
        LlamaConfig cfg = ModeTestSupport.TINY;
        int[] counts = new int[2];
        int[] experts = {1, 4};
        for (int c = 0; c < 2; c++) {
            AtomicInteger gemms = new AtomicInteger();
            Backend cb = counting(be, gemms);
            int e = experts[c];
            try (BufferPool scratch = new BufferPool(cb);
                    StackedLayerWeights w = StackedLayerWeights.allocate(cb, cfg, prefixes(e))) {
                Random rnd = new Random(1);
                for (Parameter p : w.parameters()) {
                    ModeTestSupport.randomize(cb, p, rnd, 0.3);
                    p.setTrainable(true);
                }
                DecoderLayer layer = StackedLayout.layer(cb, cfg, w, Map.of(), scratch);
                try (Tensor x = cb.fromHost(new float[e * 2 * 3 * cfg.hiddenSize()], e * 2, 3, cfg.hiddenSize())) {
                    gemms.set(0);
                    Tensor y = layer.forward(x);
                    layer.backward(y);
                    counts[c] = gemms.get();
                }
            }
        }
        assertEquals(
                6 + 7 + 7,
                counts[0],
                "one expert: 7 projections forward in 6 grouped GEMMs (gate and up fused with SwiGLU), 7 input-gradient"
                        + " and 7 weight-gradient grouped GEMMs backward");
        assertEquals(counts[0], counts[1], "four experts must use the same number of (batched) GEMM calls as one");
    }
}
