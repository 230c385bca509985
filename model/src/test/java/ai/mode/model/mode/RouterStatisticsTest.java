package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Router statistics ({@link RouterStatistics}, {@link RouterProbe}): mean weights, entropy, top-k load and tokens
 * over capacity on hand-checkable inputs and on a model whose gates are forced onto one branch; the training probe
 * writes router lines at its interval and the last step, draws its charts, and leaves training bitwise unchanged.
 */
class RouterStatisticsTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    @Test
    void meansEntropyLoadAndOverCapacityOfKnownRows() {
        RouterStatistics s = new RouterStatistics(2);
        s.addProbabilities(new float[] {0.5f, 0.5f, 1f, 0f, 0.25f, 0.75f, 1f, 0f});
        s.addRouted(0, 3, 1);
        s.addRouted(1, 1, 1);
        RouterStatistics.Summary r = s.summary();
        assertEquals(4, r.tokens());
        assertArrayEquals(new double[] {2.75 / 4, 1.25 / 4}, r.meanWeight(), 1e-12);
        double h = (Math.log(2) + 0 + -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)) + 0) / 4;
        assertEquals(h, r.entropy(), 1e-7);
        assertArrayEquals(new double[] {0.75, 0.25}, r.load(), 1e-12);
        assertEquals(1, r.overCapacity(), "3 tokens on a branch whose even share is 2");
        s.reset();
        assertTrue(Double.isNaN(s.summary().entropy()));
        assertNull(s.summary().load(), "dense routing has no load");
    }

    @Test
    void gatesForcedOntoOneExpertHaveZeroEntropyAndAllTheLoad() {
        int b = 2, t = 6, tokens = b * t;
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = ModeModel.create(
                        base,
                        ModeConfig.of(2, 1, List.of("code", "math")).withRouting(new Routing(Routing.Level.TOKEN, 1)),
                        3)) {
            m.forceGates(2);
            m.collectGateStatistics(true);
            try (Tensor ids = be.fromHost(ModeTestSupport.tokens(4, tokens, 13), b, t);
                    Tensor out = be.zeros(tokens, 13)) {
                m.logits(ids, out);
            }
            for (RouterStatistics.Summary s : m.routerStatistics()) {
                assertArrayEquals(new double[] {0, 0, 1}, s.meanWeight(), 0);
                assertEquals(0, s.entropy(), 0);
                assertArrayEquals(new double[] {0, 0, 1}, s.load(), 0);
                assertEquals(tokens - 4, s.overCapacity(), "all tokens on one branch, 4 = 12/3 within capacity");
            }
        }
    }

    @Test
    void trainingProbeWritesRouterLinesDrawsThemAndLeavesTrainingUnchanged(@TempDir Path dir) throws Exception {
        ModeTraining.Hyper h = new ModeTraining.Hyper(2, 8, 1e-2, 0.0, 0, 0, 7);
        List<DomainTokens> domains =
                List.of(ModeTestSupport.domain("code", 0, 6, 1), ModeTestSupport.domain("math", 6, 12, 2));
        Map<String, List<int[]>> probe = ModeTraining.probeWindows(domains, h);
        assertEquals(List.of("code", "math"), List.copyOf(probe.keySet()));
        int steps = 45; // probe every 45 / 20 = 2 steps, and at step 45
        List<float[]> withProbe = train(dir.resolve("probed"), domains, probe, h, steps);
        List<float[]> without = train(dir.resolve("plain"), domains, Map.of(), h, steps);
        for (int i = 0; i < without.size(); i++)
            assertArrayEquals(without.get(i), withProbe.get(i), "parameter " + i + " must not depend on the probe");

        List<Integer> probed = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("probed").resolve("metrics.jsonl"))) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (!o.get("type").getAsString().equals("router")) continue;
            probed.add(o.get("step").getAsInt());
            for (String d : List.of("code", "math")) {
                JsonArray blocks = o.getAsJsonObject("domains").getAsJsonArray(d);
                assertEquals(2, blocks.size());
                for (var blk : blocks) {
                    JsonArray w = blk.getAsJsonObject().getAsJsonArray("weights");
                    assertEquals(
                            1.0,
                            w.get(0).getAsDouble()
                                    + w.get(1).getAsDouble()
                                    + w.get(2).getAsDouble(),
                            1e-6);
                    double e = blk.getAsJsonObject().get("entropy").getAsDouble();
                    assertTrue(e >= 0 && e <= Math.log(3) + 1e-9, "entropy " + e);
                }
            }
        }
        List<Integer> expected = new ArrayList<>();
        for (int s = 2; s <= 44; s += 2) expected.add(s);
        expected.add(45);
        assertEquals(expected, probed);
        assertTrue(Files.readAllLines(dir.resolve("plain").resolve("metrics.jsonl")).stream()
                .noneMatch(l -> l.contains("\"router\"")));
        String chart = Files.readString(dir.resolve("probed").resolve(RouterProbe.WEIGHTS_PNG));
        assertTrue(chart.contains("code block 1: math"), chart);
        assertTrue(Files.readString(dir.resolve("probed").resolve(RouterProbe.ENTROPY_PNG))
                .contains("math block 0"));
        assertTrue(Files.notExists(dir.resolve("probed").resolve(RouterProbe.LOAD_PNG)), "dense: no load chart");
    }

    private static List<float[]> train(
            Path dir, List<DomainTokens> domains, Map<String, List<int[]>> probe, ModeTraining.Hyper h, int steps) {
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = ModeModel.create(base, ModeConfig.of(2, 1, List.of("code", "math")), 5)) {
            m.selectTrainable(true);
            ModeTraining.train(
                    "run",
                    m,
                    domains,
                    3,
                    List.of(),
                    probe,
                    steps,
                    h,
                    dir,
                    List.of(),
                    ModeTraining.Checkpoints.NONE,
                    new ai.mode.model.train.RunSettings());
            List<float[]> out = new ArrayList<>();
            for (Parameter p : m.addedParameters()) out.add(be.toHostFloats(p.value()));
            return out;
        }
    }
}
