// Whole-layer and whole-model gradient checks: float32 backward of DecoderLayer / LlamaModel on the cpu
// backend against central finite differences of the independent float64 reference (LlamaRef64).
package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LayerGradientCheckTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    /** Random values on a parameter (norm gains around 1, matrices ~ N(0, std)). */
    private static void randomize(Parameter p, Random rnd, double std) {
        float[] v = new float[(int) p.numel()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (p.shape().length == 1 ? 1 + 0.3 * rnd.nextGaussian() : std * rnd.nextGaussian());
        }
        be.copyFromHost(v, p.value());
    }

    private static Map<String, double[]> toDouble(List<Parameter> ps) {
        Map<String, double[]> m = new HashMap<>();
        for (Parameter p : ps) m.put(p.name(), widen(be.toHostFloats(p.value())));
        return m;
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    /** Central finite-difference gradient of f with respect to every element of {@code target}. */
    private static double[] finiteDifference(double[] target, ToDoubleFunction<Void> f) {
        double h = 1e-5;
        double[] g = new double[target.length];
        for (int i = 0; i < target.length; i++) {
            double old = target[i];
            target[i] = old + h;
            double up = f.applyAsDouble(null);
            target[i] = old - h;
            double down = f.applyAsDouble(null);
            target[i] = old;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    /** ||a - ref|| / max(||ref||, floor) must be below tol. */
    private static void assertClose(String what, float[] a, double[] ref, double tol) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (a[i] - ref[i]) * (a[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        double rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-6);
        System.out.printf("%-55s relative error %.2e%n", what, rel); // kept in the surefire output file
        assertTrue(rel < tol, what + ": relative error " + rel + " (|ref| = " + Math.sqrt(den) + ")");
        assertTrue(Math.sqrt(den) > 1e-7, what + ": reference gradient is zero, the check would be vacuous");
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    @Test
    void decoderLayerMatchesFloat64ForwardAndFiniteDifferences() {
        LlamaConfig cfg = new LlamaConfig(11, 16, 1, 4, 2, 24, 8, 10000f, 1e-5f, true);
        int b = 2, t = 5, d = 16;
        Random rnd = new Random(7);
        String prefix = "model.layers.0.";
        try (BufferPool scratch = new BufferPool(be)) {
            DecoderLayer layer = new DecoderLayer(be, cfg, prefix, scratch);
            for (Parameter p : layer.parameters()) randomize(p, rnd, 0.3);
            double[] x = new double[b * t * d], r = new double[b * t * d];
            for (int i = 0; i < x.length; i++) {
                x[i] = rnd.nextGaussian();
                r[i] = rnd.nextGaussian();
            }
            float[] xf = new float[x.length], rf = new float[r.length];
            for (int i = 0; i < x.length; i++) {
                xf[i] = (float) x[i];
                rf[i] = (float) r[i];
            }

            for (Parameter p : layer.parameters()) p.setTrainable(true);
            Tensor xt = be.fromHost(xf, b, t, d), dy = be.fromHost(rf, b, t, d);
            float[] y = be.toHostFloats(layer.forward(xt));
            float[] dx = be.toHostFloats(layer.backward(dy));

            Map<String, double[]> params = toDouble(layer.parameters());
            LlamaRef64 ref = new LlamaRef64(cfg, params);
            assertClose("forward y", y, ref.layer(prefix, x, b, t), 1e-5);
            ToDoubleFunction<Void> f = unused -> dot(ref.layer(prefix, x, b, t), r); // scalar loss = <y, R>
            assertClose("dx", dx, finiteDifference(x, f), 3e-5);
            for (Parameter p : layer.parameters()) {
                assertClose(
                        "d " + p.name(), be.toHostFloats(p.grad()), finiteDifference(params.get(p.name()), f), 3e-5);
            }

            // Frozen: no gradient buffers, the same input gradient bit for bit.
            for (Parameter p : layer.parameters()) p.setTrainable(false);
            layer.forward(xt);
            assertArrayEquals(
                    dx, be.toHostFloats(layer.backward(dy)), "frozen layer must give the same input gradient");
            for (Parameter p : layer.parameters()) assertNull(p.grad());
            xt.close();
            dy.close();
            for (Parameter p : layer.parameters()) p.close();
        }
    }

    private static void checkModel(LlamaConfig cfg) {
        int b = 2, t = 6;
        Random rnd = new Random(11);
        int[] ids = new int[b * t], targets = new int[b * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(cfg.vocabSize());
            targets[i] = rnd.nextInt(cfg.vocabSize());
        }
        try (LlamaModel model = LlamaModel.create(be, cfg)) {
            for (Parameter p : model.parameters()) {
                randomize(p, rnd, 0.4);
                p.setTrainable(true);
            }
            LossStats s;
            try (Tensor it = be.fromHost(ids, b, t);
                    Tensor tt = be.fromHost(targets, b, t)) {
                s = model.forwardBackward(it, tt, 1f / (b * t));
            }
            Map<String, double[]> params = toDouble(model.parameters());
            LlamaRef64 ref = new LlamaRef64(cfg, params);
            double refLoss = ref.loss(ids, targets, b, t);
            assertEquals(refLoss, s.meanLoss(), 1e-5 * Math.max(1, refLoss), "loss vs float64 reference");
            assertEquals(b * t, s.count());
            ToDoubleFunction<Void> f = unused -> ref.loss(ids, targets, b, t);
            for (Parameter p : model.parameters()) {
                assertClose(
                        "d " + p.name(), be.toHostFloats(p.grad()), finiteDifference(params.get(p.name()), f), 3e-5);
            }
        }
    }

    @Test
    void tiedModelGradientsMatchFiniteDifferences() {
        checkModel(new LlamaConfig(13, 8, 2, 2, 1, 12, 8, 10000f, 1e-5f, true));
    }

    @Test
    void untiedModelGradientsMatchFiniteDifferences() {
        checkModel(new LlamaConfig(13, 8, 2, 2, 2, 12, 8, 500f, 1e-5f, false));
    }

    @Test
    void backwardStopsBelowTheLowestTrainableLayerWithIdenticalGradients() {
        LlamaConfig cfg = new LlamaConfig(13, 8, 3, 2, 1, 12, 8, 10000f, 1e-5f, true);
        int b = 2, t = 4;
        Random rnd = new Random(3);
        int[] ids = new int[b * t], targets = new int[b * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(13);
            targets[i] = rnd.nextInt(13);
        }
        try (LlamaModel model = LlamaModel.create(be, cfg);
                Tensor it = be.fromHost(ids, b, t);
                Tensor tt = be.fromHost(targets, b, t)) {
            for (Parameter p : model.parameters()) {
                randomize(p, rnd, 0.4);
                p.setTrainable(true);
            }
            model.forwardBackward(it, tt, 0.125f);
            List<Parameter> upper = model.layers().get(2).parameters();
            Map<String, float[]> full = new HashMap<>();
            for (Parameter p : upper) full.put(p.name(), be.toHostFloats(p.grad()));
            for (Parameter p : model.parameters()) p.setTrainable(upper.contains(p));
            model.zeroGrad();
            model.forwardBackward(it, tt, 0.125f);
            for (Parameter p : upper) assertArrayEquals(full.get(p.name()), be.toHostFloats(p.grad()), p.name());
            assertNull(model.layers().get(0).parameters().get(1).grad());
        }
    }
}
