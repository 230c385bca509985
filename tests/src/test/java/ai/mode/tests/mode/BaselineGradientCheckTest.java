// Gradient checks of the baselines against the float64 reference: LoRA as the base model with merged weights
// W + (alpha/r) B A (finite differences through the merge), and serial block expansion as a longer layer stack.
package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.mode.ExpandedModel;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class BaselineGradientCheckTest {
    private static final LlamaConfig CFG = new LlamaConfig(11, 8, 2, 2, 1, 12, 8, 10000f, 1e-5f, false);
    private static final int B = 2, T = 4;
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static void randomize(Parameter p, Random rnd, double std) {
        float[] v = new float[(int) p.numel()];
        for (int i = 0; i < v.length; i++)
            v[i] = (float) (p.shape().length == 1 ? 1 + 0.3 * rnd.nextGaussian() : std * rnd.nextGaussian());
        be.copyFromHost(v, p.value());
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    private static double[] fd(double[] target, DoubleSupplier f) {
        double h = 1e-5;
        double[] g = new double[target.length];
        for (int i = 0; i < target.length; i++) {
            double old = target[i];
            target[i] = old + h;
            double up = f.getAsDouble();
            target[i] = old - h;
            double down = f.getAsDouble();
            target[i] = old;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    private static void assertClose(String what, float[] a, double[] ref, double tol) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (a[i] - ref[i]) * (a[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        assertTrue(Math.sqrt(den) > 1e-7, what + ": reference gradient is zero, the check would be vacuous");
        assertTrue(Math.sqrt(num) / Math.sqrt(den) < tol, what + ": relative error " + Math.sqrt(num) / Math.sqrt(den));
    }

    private static LossStats step(CausalLm m, int[] ids, int[] targets) {
        try (Tensor it = be.fromHost(ids, B, T);
                Tensor tt = be.fromHost(targets, B, T)) {
            m.zeroGrad();
            return m.forwardBackward(it, tt, 1f / (B * T));
        }
    }

    private static Map<String, double[]> host(List<Parameter> ps) {
        Map<String, double[]> m = new HashMap<>();
        for (Parameter p : ps) m.put(p.name(), widen(be.toHostFloats(p.value())));
        return m;
    }

    @Test
    void loraGradientsMatchTheMergedWeightReference() {
        Random rnd = new Random(3);
        int[] ids = new int[B * T], targets = new int[B * T];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(11);
            targets[i] = rnd.nextInt(11);
        }
        int rank = 3;
        double alpha = 6;
        EnumSet<LayerTensor> targetsSet =
                EnumSet.of(LayerTensor.Q_PROJ, LayerTensor.V_PROJ, LayerTensor.O_PROJ, LayerTensor.DOWN_PROJ);
        try (LlamaModel base = LlamaModel.create(be, CFG)) {
            for (Parameter p : base.parameters()) randomize(p, rnd, 0.4);
            try (LoraModel lora = LoraModel.create(base, new LoraModel.Config(rank, alpha, targetsSet), 9)) {
                for (Parameter p : lora.adapterParameters()) randomize(p, rnd, 0.4); // B != 0, so A gets gradients too
                lora.selectTrainable();
                LossStats s = step(lora, ids, targets);
                Map<String, double[]> params = host(lora.parameters());
                // merged[W] = W + alpha/r * B A, recomputed from the (perturbed) factors on every evaluation
                Map<String, double[]> merged = new HashMap<>(params);
                DoubleSupplier f = () -> {
                    for (int l = 0; l < CFG.numLayers(); l++) {
                        for (LayerTensor t : targetsSet) {
                            String w = "model.layers." + l + "." + t.suffix(),
                                    stem = w.substring(0, w.length() - ".weight".length());
                            double[] base0 = params.get(w),
                                    a = params.get(stem + ".lora_A.weight"),
                                    bm = params.get(stem + ".lora_B.weight");
                            int out = t.shape(CFG)[0], in = t.shape(CFG)[1];
                            double[] m = new double[out * in];
                            for (int o = 0; o < out; o++) {
                                for (int c = 0; c < in; c++) {
                                    double sum = 0;
                                    for (int k = 0; k < rank; k++) sum += bm[o * rank + k] * a[k * in + c];
                                    m[o * in + c] = base0[o * in + c] + alpha / rank * sum;
                                }
                            }
                            merged.put(w, m);
                        }
                    }
                    List<String> prefixes = new ArrayList<>();
                    for (int l = 0; l < CFG.numLayers(); l++) prefixes.add("model.layers." + l + ".");
                    return new ModeRef64(CFG, merged, new ModeRef64.Spec(1, 1, 0, false, 0))
                            .lossThroughLayers(prefixes, ids, targets, B, T);
                };
                double ref = f.getAsDouble();
                assertEquals(ref, s.meanLoss(), 2e-5 * Math.max(1, ref), "loss vs merged-weight float64 reference");
                for (Parameter p : lora.parameters()) {
                    if (!p.trainable()) {
                        assertNull(p.grad(), p.name());
                        continue;
                    }
                    assertClose("d " + p.name(), be.toHostFloats(p.grad()), fd(params.get(p.name()), f), 1e-3);
                }
                assertEquals(
                        CFG.numLayers() * targetsSet.size() * 2,
                        lora.trainableParameters().size());
            }
        }
    }

    @Test
    void blockExpansionGradientsMatchTheLayerStackReference() {
        Random rnd = new Random(4);
        int[] ids = new int[B * T], targets = new int[B * T];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(11);
            targets[i] = rnd.nextInt(11);
        }
        try (LlamaModel base = LlamaModel.create(be, CFG)) {
            for (Parameter p : base.parameters()) randomize(p, rnd, 0.4);
            try (ExpandedModel m = ExpandedModel.create(base, 2, 1)) {
                for (Parameter p : m.addedParameters()) randomize(p, rnd, 0.4); // non-zero outputs: a real check
                m.selectTrainable();
                LossStats s = step(m, ids, targets);
                Map<String, double[]> params = host(m.parameters());
                List<String> order = List.of(
                        "model.layers.0.",
                        ExpandedModel.layerPrefix(0),
                        "model.layers.1.",
                        ExpandedModel.layerPrefix(1));
                ModeRef64 ref = new ModeRef64(CFG, params, new ModeRef64.Spec(1, 1, 0, false, 0));
                DoubleSupplier f = () -> ref.lossThroughLayers(order, ids, targets, B, T);
                assertEquals(
                        f.getAsDouble(),
                        s.meanLoss(),
                        2e-5 * Math.max(1, f.getAsDouble()),
                        "loss vs float64 reference");
                int checked = 0;
                for (Parameter p : m.parameters()) {
                    if (!p.trainable()) {
                        assertNull(p.grad(), p.name());
                        continue;
                    }
                    assertTrue(p.name().startsWith("expansion.layers."), p.name());
                    assertClose("d " + p.name(), be.toHostFloats(p.grad()), fd(params.get(p.name()), f), 1e-3);
                    checked++;
                }
                assertEquals(18, checked);
            }
        }
    }
}
