// Gradient checks through MoDE blocks (gate, merge, experts, and the frozen backbone's input gradient): the
// float32 model on the cpu backend against central finite differences of the float64 reference ModeRef64, for
// dense / top-k routing, per token and per sequence.
package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ModeGradientCheckTest {
    private static final LlamaConfig CFG = new LlamaConfig(11, 8, 2, 2, 1, 12, 8, 10000f, 1e-5f, true);
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
            v[i] = (float)
                    (p.shape().length == 1 && !p.name().endsWith("gate.bias")
                            ? 1 + 0.3 * rnd.nextGaussian()
                            : std * rnd.nextGaussian());
        be.copyFromHost(v, p.value());
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    /**
     * ||a - ref|| / ||ref|| below tol; where the reference gradient vanishes (an expert no token was routed to)
     * the analytic one must vanish too (up to float32 noise). Returns whether the reference was non-zero.
     */
    private static boolean assertClose(String what, float[] a, double[] ref, double tol) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (a[i] - ref[i]) * (a[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        if (Math.sqrt(den) < 1e-9) {
            // e.g. an expert no token was routed to, or q of an expert whose only routed token attends to itself
            double norm = 0;
            for (float v : a) norm += (double) v * v;
            assertTrue(
                    Math.sqrt(norm) < 1e-6,
                    what + ": the reference gradient vanishes but this one has norm " + Math.sqrt(norm));
            return false;
        }
        double rel = Math.sqrt(num) / Math.sqrt(den);
        assertTrue(rel < tol, what + ": relative error " + rel + " (|ref| = " + Math.sqrt(den) + ")");
        return true;
    }

    private static double[] finiteDifference(double[] target, java.util.function.DoubleSupplier f) {
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

    /** The paper's formulation (mixture merge, raw gate input): the only one with top-k routing. */
    private static void check(Routing routing, int experts) {
        check(routing, experts, ModeConfig.Merge.MIXTURE, ModeConfig.GateInput.RAW);
    }

    private static void check(Routing routing, int experts, ModeConfig.Merge merge, ModeConfig.GateInput gateInput) {
        int b = 2, t = 5;
        Random rnd = new Random(17 + routing.topK() * 7L + routing.level().ordinal());
        int[] ids = new int[b * t], targets = new int[b * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(CFG.vocabSize());
            targets[i] = rnd.nextInt(CFG.vocabSize());
        }
        List<String> domains = experts == 2 ? List.of("code", "math") : List.of("code", "math", "legal");
        ModeConfig mc = ModeConfig.residualRandom(2, 1, domains)
                .withMerge(merge)
                .withRouting(routing)
                .withGateInput(gateInput);
        try (LlamaModel base = LlamaModel.create(be, CFG)) {
            for (Parameter p : base.parameters()) randomize(p, rnd, 0.4);
            try (ModeModel model = ModeModel.create(base, mc, 5)) {
                for (Parameter p : model.addedParameters())
                    randomize(p, rnd, p.name().contains("gate") ? 0.8 : 0.3);
                model.selectTrainable(true);
                base.embedding().table().setTrainable(true); // checks the input gradient through every block
                LossStats s;
                try (Tensor it = be.fromHost(ids, b, t);
                        Tensor tt = be.fromHost(targets, b, t)) {
                    model.zeroGrad();
                    s = model.forwardBackward(it, tt, 1f / (b * t));
                }
                Map<String, double[]> params = new HashMap<>();
                for (Parameter p : model.parameters()) params.put(p.name(), widen(be.toHostFloats(p.value())));
                ModeRef64 ref = new ModeRef64(
                        CFG,
                        params,
                        new ModeRef64.Spec(
                                2,
                                1,
                                experts,
                                routing.level() == Routing.Level.SEQUENCE,
                                routing.topK(),
                                merge == ModeConfig.Merge.RESIDUAL,
                                gateInput == ModeConfig.GateInput.RMSNORM));
                double refLoss = ref.loss(ids, targets, b, t);
                assertEquals(
                        refLoss, s.meanLoss(), 2e-5 * Math.max(1, refLoss), routing + ": loss vs float64 reference");
                java.util.function.DoubleSupplier f = () -> ref.loss(ids, targets, b, t);
                int checked = 0, trainable = 0;
                for (Parameter p : model.parameters()) {
                    if (!p.trainable()) {
                        assertNull(p.grad(), p.name() + " is frozen and must have no gradient");
                        continue;
                    }
                    if (routing.topK() == 1 && p.name().contains(".gate.")) {
                        // one chosen branch renormalises to weight 1: the gate gets no gradient (documented)
                        for (float g : be.toHostFloats(p.grad())) assertEquals(0f, g, p.name());
                        continue;
                    }
                    trainable++;
                    if (assertClose(
                            routing + " d " + p.name(),
                            be.toHostFloats(p.grad()),
                            finiteDifference(params.get(p.name()), f),
                            1e-3)) checked++;
                }
                // Sparse routing may leave an expert without tokens; most tensors must still carry a real gradient.
                assertTrue(
                        checked * 2 > trainable,
                        routing + ": only " + checked + " of " + trainable
                                + " trainable tensors had a non-zero gradient");
                base.embedding().table().setTrainable(false);
            }
        }
    }

    @Test
    void denseTokenRoutingGradientsMatchFiniteDifferences() {
        check(Routing.DENSE, 2);
    }

    @Test
    void residualMergeWithNormalisedGateInputMatchesFiniteDifferences() {
        check(Routing.DENSE, 3, ModeConfig.Merge.RESIDUAL, ModeConfig.GateInput.RMSNORM);
    }

    @Test
    void residualMergePerSequenceWithRawGateInputMatchesFiniteDifferences() {
        check(new Routing(Routing.Level.SEQUENCE, 0), 2, ModeConfig.Merge.RESIDUAL, ModeConfig.GateInput.RAW);
    }

    @Test
    void mixtureWithNormalisedGateInputPerSequenceMatchesFiniteDifferences() {
        check(new Routing(Routing.Level.SEQUENCE, 0), 2, ModeConfig.Merge.MIXTURE, ModeConfig.GateInput.RMSNORM);
    }

    @Test
    void denseSequenceRoutingGradientsMatchFiniteDifferences() {
        check(new Routing(Routing.Level.SEQUENCE, 0), 2);
    }

    @Test
    void sparseTopTwoOfThreeTokenRoutingMatchesReferenceAndFiniteDifferences() {
        check(new Routing(Routing.Level.TOKEN, 2), 2);
    }

    @Test
    void sparseTopOneTokenRoutingWithThreeExperts() {
        check(new Routing(Routing.Level.TOKEN, 1), 3);
    }

    @Test
    void sparseTopTwoSequenceRouting() {
        check(new Routing(Routing.Level.SEQUENCE, 2), 3);
    }
}
