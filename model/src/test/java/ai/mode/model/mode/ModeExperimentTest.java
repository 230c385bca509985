// The whole experiment on a tiny model and synthetic domains: every method runs with the equal step budget,
// the table has the paper's columns, and the Markdown, JSON and PNG outputs are written.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModeExperimentTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    /** A domain whose tokens come mostly from its own slice of the vocabulary. */
    @Test
    void everyMethodRunsWithTheSameBudgetAndTheReportIsWritten(@TempDir Path dir) throws Exception {
        Supplier<LlamaModel> load = () -> {
            LlamaModel m = LlamaModel.create(be, ModeTestSupport.TINY);
            Random rnd = new Random(5);
            for (Parameter p : m.parameters()) ModeTestSupport.randomize(be, p, rnd, 0.3);
            return m;
        };
        DomainTokens code = ModeTestSupport.domain("code", 0, 6, 1),
                math = ModeTestSupport.domain("math", 6, 12, 2),
                english = ModeTestSupport.domain("english-retention", 3, 9, 3);
        ModeExperiment.Settings s = new ModeExperiment.Settings(
                dir,
                2,
                3,
                new ModeTraining.Hyper(2, 8, 1e-2, 0.0, 2, 2, 7),
                2,
                1,
                ModeConfig.ExpertInit.RANDOM_ZERO_OUT,
                0.9,
                Composer.GateConstruction.STACKED,
                Routing.DENSE,
                ModeConfig.Merge.RESIDUAL,
                ModeConfig.DEFAULT_GATE_INPUT,
                new LoraModel.Config(4, 8, LoraModel.Config.ATTENTION),
                3,
                EnumSet.allOf(ModeExperiment.Method.class),
                DomainRouter.DEFAULT_TEMPERATURE,
                Map.of(ModeExperiment.Method.FULL_FT, 3e-3, ModeExperiment.Method.MODE, 2e-2));
        DomainTokens general = ModeTestSupport.domain("general", 0, 13, 4);
        ModeExperiment.Report r = ModeExperiment.run(
                load, List.of(code, math), List.of(math, code, english), general, s, new ModeExperiment.Progress() {});
        List<String> ids = r.results().stream().map(MethodResult::id).toList();
        assertEquals(
                List.of(
                        "base",
                        "full-ft",
                        "lora",
                        "expansion",
                        "mode-1x",
                        "expert-code",
                        "expert-math",
                        "mode-2x-frozen",
                        "mode-2x"),
                ids);
        for (MethodResult m : r.results()) {
            switch (m.id()) {
                case "base" -> assertEquals(0, m.steps());
                case "expert-code", "expert-math" -> assertEquals(2, m.steps());
                default -> assertEquals(2 * 2 + 3, m.steps(), m.id() + " must get N*stage1 + stage2 steps");
            }
            assertEquals(3, m.eval().scores().size());
            assertEquals(m.eval().scores().keySet(), m.validation().keySet(), m.id() + ": validation scores");
            for (String d : List.of("math", "code", "english-retention"))
                assertTrue(m.accuracy(d) >= 0 && m.accuracy(d) <= 1, m.id() + " " + d);
        }
        // each method trains at its own peak rate: the first step's rate in its metrics (no warm-up, cosine from the
        // peak)
        Map<String, double[]> peakAndSteps = Map.of(
                "full-ft", new double[] {3e-3, 7},
                "lora", new double[] {1e-2, 7},
                "expert-code", new double[] {2e-2, 2},
                "mode-2x", new double[] {2e-2, 3},
                "mode-2x-frozen", new double[] {1e-2, 3});
        for (Map.Entry<String, double[]> e : peakAndSteps.entrySet()) {
            String first = Files.readAllLines(dir.resolve(e.getKey()).resolve("metrics.jsonl"))
                    .get(0);
            double expected = new ai.mode.model.train.LrSchedule(e.getValue()[0], 0, (int) e.getValue()[1], 0.1).at(1);
            assertEquals(
                    expected,
                    JsonParser.parseString(first).getAsJsonObject().get("lr").getAsDouble(),
                    1e-9,
                    e.getKey() + " learning rate at step 1");
        }
        MethodResult ft = r.results().get(1),
                mode = r.results().get(8),
                frozen = r.results().get(7);
        assertEquals(0, ft.params().added());
        assertEquals(ft.params().total(), ft.params().trainable());
        assertEquals(mode.params().added(), mode.params().trainable(), "MoDE trains exactly what it adds");
        assertEquals(
                2L * 3 * (ModeTestSupport.TINY.hiddenSize() + 1),
                frozen.params().trainable(),
                "gate only: B gates of (N+1) x (D+1)");
        assertEquals(
                r.results().get(3).params().added(),
                mode.params().added() - 2L * 3 * (ModeTestSupport.TINY.hiddenSize() + 1),
                "block expansion adds as many layer parameters as the two experts");
        double[][] gates = mode.gateWeights().get("math");
        assertEquals(2, gates.length);
        assertEquals(1.0, gates[0][0] + gates[0][1] + gates[0][2], 1e-5);

        assertEquals(
                List.of("mode-2x-frozen", "mode-2x"), List.copyOf(r.optOut().keySet()));
        for (Map<String, ModeTraining.Evaluation> byRemoved : r.optOut().values()) {
            assertEquals(List.of("code", "math"), List.copyOf(byRemoved.keySet()));
            for (ModeTraining.Evaluation e : byRemoved.values()) {
                assertEquals(3, e.scores().size());
                for (double[][] g : e.gateWeights().values())
                    for (double[] blk : g) assertEquals(1.0, blk[0] + blk[1] + blk[2], 1e-5);
            }
            assertEquals(0.0, byRemoved.get("code").gateWeights().get("math")[0][1], "code's branch removed");
            assertEquals(0.0, byRemoved.get("math").gateWeights().get("code")[1][2], "math's branch removed");
        }

        assertEquals(
                List.of("router-fresh", "router-stacked", "router-domain"),
                r.routers().stream().map(ModeExperiment.RouterResult::id).toList());
        for (double[] blk : r.routers().get(0).eval().gateWeights().get("code"))
            assertEquals(s.gateInit(), blk[0], 1e-6, "a fresh gate gives the backbone exactly α_bb");
        for (ModeExperiment.RouterResult rr : r.routers()) {
            assertEquals(3, rr.eval().scores().size(), rr.id());
            double share = ExperimentReport.ownExpertShare(rr.eval(), "code", 0);
            assertTrue(share >= 0 && share <= 1, rr.id() + " " + share);
        }
        assertEquals(0.5, ExperimentReport.ownExpertShare(r.routers().get(0).eval(), "math", 1), 1e-6);

        List<Path> files = ExperimentReport.write(r, "test run");
        for (Path f : files) assertTrue(Files.size(f) > 0, f.toString());
        String md = Files.readString(dir.resolve(ExperimentReport.MARKDOWN));
        assertTrue(md.contains("| method | params | added | trainable | Math | Code | English | Avg |"), md);
        assertTrue(md.contains("MoDE 2× experts (gate + experts)"), md);
        assertTrue(md.contains("| method | expert removed | Math | Code | English | Avg |"), md);
        assertTrue(md.contains("| MoDE 2× experts (gate + experts) | math |"), md);
        JsonObject json = JsonParser.parseString(Files.readString(dir.resolve(ExperimentReport.JSON)))
                .getAsJsonObject();
        assertEquals(9, json.getAsJsonArray("results").size());
        assertEquals(4, json.getAsJsonArray("opt_out").size(), "2 composed methods x 2 experts removed");
        assertEquals(3, json.getAsJsonArray("routers").size());
        assertTrue(md.contains("| router | stage-2 steps | Math | Code | English | Avg | own expert on Math |"), md);
        assertTrue(md.contains("| trained: MoDE 2× experts (frozen experts, gate only) | 3 |"), md);
        assertTrue(md.contains("| domain-embedding router (τ 1.0, backbone row from general) | 0 |"), md);
        assertEquals(7, json.getAsJsonObject("settings").get("total_steps").getAsInt());
        assertTrue(Files.isRegularFile(dir.resolve("gate-weights-mode-2x.png")));
        assertTrue(Files.isRegularFile(dir.resolve("mode-2x").resolve(RouterMonitor.WEIGHTS_PNG)));
        assertTrue(Files.readString(dir.resolve("mode-2x").resolve("metrics.jsonl"))
                .contains("\"type\":\"router\""));
        String lossChart = Files.readString(dir.resolve(ExperimentReport.LOSS_PNG));
        assertTrue(lossChart.contains("expert-code (own domain)") && lossChart.contains("mode-2x"), lossChart);
        assertTrue(Files.isRegularFile(dir.resolve("expert-code").resolve(ExpertFile.FILE_NAME)));
        for (Map.Entry<String, Double> e : r.stageSeconds().entrySet()) assertTrue(e.getValue() >= 0, e.getKey());
    }
}
