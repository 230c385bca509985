// Behaviour of whole MoDE models: a gate forced to the backbone reproduces the base model bit for bit; top-k
// routing with k = N+1 equals dense routing; training leaves frozen parameters bitwise unchanged; bad
// configurations fail with clear messages.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ModeModelTest {
    private static final LlamaConfig CFG = ModeTestSupport.TINY;
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static LlamaModel backbone(long seed) {
        return ModeTestSupport.backbone(be, seed);
    }

    private static float[] logits(CausalLm model, int[] ids, int b, int t) {
        return ModeTestSupport.logits(be, model, ids, b, t);
    }

    private static void randomizeAdded(ModeModel m, long seed) {
        ModeTestSupport.randomizeAdded(be, m, seed);
    }

    @Test
    void gateForcedToTheBackboneReproducesTheBaseModelExactly() {
        int b = 2, t = 9;
        int[] ids = ModeTestSupport.tokens(3, b * t, CFG.vocabSize());
        try (LlamaModel base = backbone(1)) {
            float[] expected = logits(base, ids, b, t);
            for (Routing r : List.of(
                    Routing.DENSE,
                    new Routing(Routing.Level.TOKEN, 1),
                    new Routing(Routing.Level.SEQUENCE, 0),
                    new Routing(Routing.Level.SEQUENCE, 2))) {
                try (ModeModel mode = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(2, 1, List.of("code", "math")).withRouting(r),
                        7)) {
                    randomizeAdded(mode, 11); // experts that really differ from the backbone
                    mode.forceGates(0);
                    assertArrayEquals(
                            expected, logits(mode, ids, b, t), r + ": logits must equal the base model's bit for bit");
                    mode.forceGates(1);
                    assertFalse(
                            java.util.Arrays.equals(expected, logits(mode, ids, b, t)),
                            r + ": routing to an expert must change the logits");
                }
            }
        }
    }

    @Test
    void residualRandomModelStartsExactlyAtTheBaseModel() {
        int b = 2, t = 7;
        int[] ids = ModeTestSupport.tokens(8, b * t, CFG.vocabSize());
        try (LlamaModel base = backbone(5)) {
            float[] expected = logits(base, ids, b, t);
            for (Routing r : List.of(Routing.DENSE, new Routing(Routing.Level.SEQUENCE, 0))) {
                for (List<String> domains : List.of(List.of("code"), List.of("code", "math", "law"))) {
                    for (ModeConfig.GateInput in : ModeConfig.GateInput.values()) {
                        ModeConfig mc = ModeConfig.residualRandom(2, 2, domains)
                                .withRouting(r)
                                .withGateInput(in);
                        assertEquals(ModeConfig.Merge.RESIDUAL, mc.merge(), "the residual merge");
                        try (ModeModel mode = ModeModel.create(base, mc, 3)) {
                            assertArrayEquals(
                                    expected,
                                    logits(mode, ids, b, t),
                                    r + ", " + domains + ", gate input " + in
                                            + ": a new MoDE model's logits must equal the base model's bit for bit");
                        }
                    }
                }
            }
        }
    }

    @Test
    void theDefaultModelStartsAtTheBaseWithinRounding() {
        // the defaults are BTX-style: each expert a copy of its whole backbone slice (k = L/B), under the paper's
        // mixture: the block computes (Σ α) f_bb(x), the base up to float32 rounding of the merge
        int b = 2, t = 7;
        int[] ids = ModeTestSupport.tokens(9, b * t, CFG.vocabSize());
        int slice = CFG.numLayers() / 2;
        try (LlamaModel base = backbone(6)) {
            float[] expected = logits(base, ids, b, t);
            for (List<String> domains : List.of(List.of("code"), List.of("code", "math", "law"))) {
                ModeConfig mc = ModeConfig.of(CFG, 2, domains);
                assertEquals(ModeConfig.Merge.MIXTURE, mc.merge(), "the default merge");
                assertEquals(ModeConfig.ExpertInit.COPY, mc.expertInit(), "the default expert init");
                assertEquals(slice, mc.layersPerExpert(), "the default k is the slice depth L/B");
                assertEquals(ModeConfig.GateInput.RMSNORM, mc.gateInput(), "the default gate input");
                assertEquals(0.5, mc.gateInitBackbone(), "the default α_bb at init");
                assertEquals(Routing.DENSE, mc.routing(), "the default routing");
                assertEquals(mc, ModeConfig.of(2, slice, domains), "of(B, k, domains) takes the same defaults");
                try (ModeModel mode = ModeModel.create(base, mc, 3)) {
                    float[] got = logits(mode, ids, b, t);
                    double worst = 0;
                    for (int i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
                    assertTrue(
                            worst < 1e-4,
                            domains + ": copied slices start at the base up to rounding; worst logit difference "
                                    + worst);
                }
            }
        }
    }

    @Test
    void theDefaultExpertDepthIsTheSliceForCopiedExpertsAndOneForRandomOnes() {
        assertEquals(4, ModeConfig.defaultLayersPerExpert(8, 2, ModeConfig.ExpertInit.COPY));
        assertEquals(1, ModeConfig.defaultLayersPerExpert(8, 8, ModeConfig.ExpertInit.COPY));
        assertEquals(1, ModeConfig.defaultLayersPerExpert(8, 2, ModeConfig.ExpertInit.RANDOM_ZERO_OUT));
    }

    @Test
    void zeroOutputExpertsStartAsIdentityAndTheGateAtItsInitialWeight() {
        int b = 1, t = 6;
        int[] ids = ModeTestSupport.tokens(4, b * t, CFG.vocabSize());
        try (LlamaModel base = backbone(2);
                ModeModel mode = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(4, 2, List.of("code")).withMerge(ModeConfig.Merge.MIXTURE),
                        3)) {
            // the paper's mixture with zero-output experts, which compute the identity: y = α_bb f_bb(x) + (1 - α_bb)
            // x,
            // not the base
            float[] expected = logits(base, ids, b, t);
            float[] got = logits(mode, ids, b, t);
            assertFalse(java.util.Arrays.equals(expected, got));
            for (Parameter p : mode.expertParameters()) {
                if (p.name().endsWith("o_proj.weight") || p.name().endsWith("down_proj.weight")) {
                    for (float v : be.toHostFloats(p.value())) assertEquals(0f, v, p.name());
                }
            }
            double[][] stats;
            mode.collectGateStatistics(true);
            logits(mode, ids, b, t);
            stats = mode.gateStatistics();
            for (double[] block : stats)
                assertEquals(ModeConfig.DEFAULT_GATE_INIT_BACKBONE, block[0], 1e-6, "α_bb at initialisation");
        }
    }

    @Test
    void copyInitialisedExpertsCopyTheSliceLastLayers() {
        try (LlamaModel base = backbone(3);
                ModeModel mode = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(2, 1, List.of("a", "b")).withExpertInit(ModeConfig.ExpertInit.COPY),
                        3)) {
            Map<String, Parameter> byName = base.parametersByName();
            for (int block = 0; block < 2; block++) {
                for (int j = 0; j < 2; j++) {
                    for (Parameter p :
                            mode.modeBlocks().get(block).expertWeights().get(0).layerParameters(j)) {
                        String suffix = p.name()
                                .substring(
                                        ModeModel.expertLayerPrefix(block, j, 0).length());
                        Parameter src = byName.get("model.layers." + (block * 2 + 1) + "." + suffix);
                        assertArrayEquals(be.toHostFloats(src.value()), be.toHostFloats(p.value()), p.name());
                    }
                }
            }
        }
    }

    private static Map<String, float[]> grads(CausalLm m) {
        Map<String, float[]> out = new HashMap<>();
        for (Parameter p : m.trainableParameters()) out.put(p.name(), be.toHostFloats(p.grad()));
        return out;
    }

    @Test
    void topKOverAllBranchesEqualsDenseRouting() {
        int b = 3, t = 8;
        int[] ids = ModeTestSupport.tokens(5, b * t, CFG.vocabSize()),
                targets = ModeTestSupport.tokens(6, b * t, CFG.vocabSize());
        for (Routing.Level level : Routing.Level.values()) {
            try (LlamaModel base = backbone(4);
                    ModeModel dense = ModeModel.create(
                            base,
                            ModeConfig.residualRandom(2, 1, List.of("x", "y"))
                                    .withMerge(ModeConfig.Merge.MIXTURE)
                                    .withRouting(new Routing(level, 0)),
                            1);
                    ModeModel sparse = ModeModel.create(
                            base,
                            ModeConfig.residualRandom(2, 1, List.of("x", "y")).withRouting(new Routing(level, 3)),
                            1);
                    Tensor it = be.fromHost(ids, b, t);
                    Tensor tt = be.fromHost(targets, b, t)) {
                randomizeAdded(dense, 9);
                ai.mode.model.io.NamedTensors added = dense.addedTensors();
                for (int j = 0; j < 2; j++) sparse.loadExpert(added, j, j, "dense model");
                sparse.loadGates(added, "dense model");
                assertArrayEquals(logits(dense, ids, b, t), logits(sparse, ids, b, t), 2e-6f, level + ": logits");
                dense.selectTrainable(true);
                sparse.selectTrainable(true);
                double l1 = dense.forwardBackward(it, tt, 1f / (b * t)).meanLoss();
                double l2 = sparse.forwardBackward(it, tt, 1f / (b * t)).meanLoss();
                assertEquals(l1, l2, 1e-6, level + ": loss");
                Map<String, float[]> g1 = grads(dense), g2 = grads(sparse);
                assertEquals(g1.keySet(), g2.keySet());
                for (String n : g1.keySet())
                    assertArrayEquals(g1.get(n), g2.get(n), 2e-5f, level + ": gradient of " + n);
            }
        }
    }

    private static Map<String, float[]> snapshot(List<Parameter> ps) {
        Map<String, float[]> out = new HashMap<>();
        for (Parameter p : ps) out.put(p.name(), be.toHostFloats(p.value()));
        return out;
    }

    static Trainer.Options options(int steps) {
        return new Trainer.Options(steps, 2, 8, 1, LrSchedule.constant(1e-2), AdamW.Config.defaults(), 0, 0, 1);
    }

    @Test
    void trainingLeavesFrozenParametersBitwiseUnchanged() {
        try (LlamaModel base = backbone(6);
                ModeModel mode = ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of("code", "math")), 2)) {
            // stage 1 style: experts and gates train, backbone frozen
            mode.selectTrainable(true);
            Map<String, float[]> backboneBefore = snapshot(base.parameters());
            Map<String, float[]> addedBefore = snapshot(mode.addedParameters());
            new Trainer(
                            mode,
                            new ModeTestSupport.RandomStream(1, 400, CFG.vocabSize()),
                            null,
                            options(3),
                            null,
                            List.of())
                    .run();
            for (Parameter p : base.parameters()) {
                assertArrayEquals(
                        backboneBefore.get(p.name()),
                        be.toHostFloats(p.value()),
                        "frozen backbone parameter " + p.name() + " changed");
            }
            int changed = 0;
            for (Parameter p : mode.addedParameters())
                if (!java.util.Arrays.equals(addedBefore.get(p.name()), be.toHostFloats(p.value()))) changed++;
            assertEquals(mode.addedParameters().size(), changed, "every expert and gate tensor must have been updated");

            // stage 2 --freeze-experts: only the gates move
            mode.selectTrainable(false);
            Map<String, float[]> expertsBefore = snapshot(mode.expertParameters());
            Map<String, float[]> gatesBefore = snapshot(mode.gateParameters());
            new Trainer(
                            mode,
                            new ModeTestSupport.RandomStream(2, 400, CFG.vocabSize()),
                            null,
                            options(2),
                            null,
                            List.of())
                    .run();
            for (Parameter p : mode.expertParameters()) {
                assertArrayEquals(
                        expertsBefore.get(p.name()),
                        be.toHostFloats(p.value()),
                        "frozen expert parameter " + p.name() + " changed");
            }
            for (Parameter p : base.parameters())
                assertArrayEquals(backboneBefore.get(p.name()), be.toHostFloats(p.value()), p.name());
            for (Parameter p : mode.gateParameters()) {
                assertFalse(
                        java.util.Arrays.equals(gatesBefore.get(p.name()), be.toHostFloats(p.value())),
                        p.name() + " must train");
            }
        }
    }

    @Test
    void badConfigurationsFailWithClearMessages() {
        try (LlamaModel base = backbone(8)) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> ModeModel.create(base, ModeConfig.residualRandom(3, 1, List.of("code")), 1));
            assertTrue(
                    e.getMessage().contains("B=3 must divide the backbone's 4 layers")
                            && e.getMessage().contains("1, 2, 4"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ModeConfig.residualRandom(2, 0, List.of("code")));
            assertTrue(e.getMessage().contains("layers per expert k must be >= 1"), e.getMessage());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> ModeConfig.residualRandom(2, 1, List.of("code"))
                            .withRouting(new Routing(Routing.Level.TOKEN, 3)));
            assertTrue(e.getMessage().contains("top-k 3 exceeds the 2 branches"), e.getMessage());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> new ModeConfig(
                            2,
                            1,
                            List.of("code"),
                            ModeConfig.ExpertInit.RANDOM_ZERO_OUT,
                            0.9,
                            new Routing(Routing.Level.TOKEN, 1),
                            ModeConfig.Merge.RESIDUAL,
                            ModeConfig.GateInput.RAW));
            assertTrue(
                    e.getMessage().contains("residual merge") && e.getMessage().contains("--merge mixture"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ModeConfig.Merge.parse("sum"));
            assertTrue(e.getMessage().contains("use 'residual' or 'mixture'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ModeConfig.GateInput.parse("layernorm"));
            assertTrue(e.getMessage().contains("use 'rmsnorm' or 'raw'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ModeConfig.residualRandom(2, 1, List.of()));
            assertTrue(e.getMessage().contains("at least one expert"), e.getMessage());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> ModeModel.create(
                            base,
                            ModeConfig.residualRandom(2, 3, List.of("code")).withExpertInit(ModeConfig.ExpertInit.COPY),
                            1));
            assertTrue(e.getMessage().contains("exceeds the slice's 2 layers"), e.getMessage());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> ModeConfig.residualRandom(1, 1, List.of("code")).withGateInitBackbone(1.0));
            assertTrue(e.getMessage().contains("(0, 1)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Routing.parse("top"));
            assertTrue(e.getMessage().contains("unknown routing"), e.getMessage());
        }
    }

    @Test
    void routingAndInitNamesRoundTrip() {
        for (String r : List.of("dense", "top1", "top3", "sequence-dense", "sequence-top2"))
            assertEquals(r, Routing.parse(r).toString());
        assertEquals(new Routing(Routing.Level.SEQUENCE, 2), Routing.parse("sequence-top2"));
        assertEquals(ModeConfig.ExpertInit.COPY, ModeConfig.ExpertInit.parse(ModeConfig.ExpertInit.COPY.cliName()));
        assertEquals(ModeConfig.ExpertInit.RANDOM_ZERO_OUT, ModeConfig.ExpertInit.parse("random"));
        assertEquals(Composer.GateConstruction.STACKED, Composer.GateConstruction.parse("stacked"));
        for (double p : List.of(0.9, ModeConfig.DEFAULT_GATE_INIT_BACKBONE)) {
            ModeConfig c =
                    ModeConfig.residualRandom(2, 1, List.of("code", "math")).withGateInitBackbone(p);
            assertEquals(
                    p,
                    Math.exp(c.backboneGateBias()) / (Math.exp(c.backboneGateBias()) + 2),
                    1e-12,
                    "bias gives α_bb = " + p + " over N = 2 experts");
        }
        assertEquals(ModeConfig.Merge.RESIDUAL, ModeConfig.Merge.parse(ModeConfig.Merge.RESIDUAL.cliName()));
        assertEquals(ModeConfig.GateInput.RMSNORM, ModeConfig.GateInput.parse("RMSNorm"));
    }
}
