package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Router statistics ({@link RouterStatistics}, {@link GateStatistics}, {@link RouterMonitor}): mean weights, entropy,
 * top-k load and tokens over capacity on hand-checkable inputs and on a model whose gates are forced onto one branch;
 * while training, a router line at every step whose numbers equal a float64 computation from the gate probabilities
 * of that step's forward pass, per domain of the batch rows; validation passes not counted; charts drawn; training
 * bitwise unchanged by the monitor.
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
        s.addRouted(0, 3);
        s.addRouted(1, 1);
        RouterStatistics.Summary r = s.summary();
        assertEquals(4, r.tokens());
        assertArrayEquals(new double[] {2.75 / 4, 1.25 / 4}, r.meanWeight(), 1e-12);
        double h = (Math.log(2) + 0 + -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)) + 0) / 4;
        assertEquals(h, r.entropy(), 1e-7);
        assertArrayEquals(new double[] {0.75, 0.25}, r.load(), 1e-12);
        assertEquals(1, r.overCapacity(), "3 tokens on a branch whose even share is 2");
        double[] flat = new double[RouterStatistics.size(2)];
        s.writeTo(flat, 0);
        RouterStatistics twice = new RouterStatistics(2);
        twice.addFrom(flat, 0);
        twice.addFrom(flat, 0);
        assertArrayEquals(r.meanWeight(), twice.summary().meanWeight(), 1e-15);
        assertEquals(8, twice.summary().tokens());
        assertEquals(2, twice.summary().overCapacity(), "6 tokens on a branch whose even share is 4");
        s.reset();
        assertTrue(Double.isNaN(s.summary().entropy()));
        assertNull(s.summary().load(), "dense routing has no load");
    }

    @Test
    void rowsCountUnderTheirDomainAndOnlyWhileOpen() {
        GateStatistics g = new GateStatistics(1, 2, List.of("code", "math"));
        try (Tensor probs = be.fromHost(new float[] {1f, 0f, 1f, 0f, 0.5f, 0.5f, 0.5f, 0.5f}, 4, 2)) {
            g.observe(0, be, probs, null, 0, 2);
            assertTrue(g.summaries().isEmpty(), "nothing counts before open");
            g.open(new int[] {1, 0});
            g.observe(0, be, probs, null, 0, 2); // row 0 (math): tokens 0-1, row 1 (code): tokens 2-3
            g.pause();
            g.observe(0, be, probs, null, 0, 2);
        }
        Map<String, List<RouterStatistics.Summary>> s = g.summaries();
        assertEquals(List.of("code", "math"), List.copyOf(s.keySet()));
        assertArrayEquals(new double[] {0.5, 0.5}, s.get("code").get(0).meanWeight(), 0);
        assertEquals(Math.log(2), s.get("code").get(0).entropy(), 1e-15);
        assertArrayEquals(new double[] {1, 0}, s.get("math").get(0).meanWeight(), 0);
        assertEquals(2, s.get("math").get(0).tokens());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.open(new int[] {2}));
        assertTrue(e.getMessage().contains("not one of the 2 domains"), e.getMessage());
    }

    @Test
    void gatesForcedOntoOneExpertHaveZeroEntropyAndAllTheLoad() {
        int b = 2, t = 6, tokens = b * t;
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(2, 1, List.of("code", "math"))
                                .withRouting(new Routing(Routing.Level.TOKEN, 1)),
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

    /**
     * A MoDE run with validation every 2 steps: one router line right after every train line, whose numbers per
     * domain and block equal a float64 computation from that step's gate probabilities (read from the gates after
     * the step's forward pass) and the loader's domain of each row.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"dense", "top1", "top2"})
    void everyStepHasRouterStatisticsOfItsBatchPerDomain(String routing, @TempDir Path dir) throws Exception {
        ModeTraining.Hyper h = new ModeTraining.Hyper(4, 8, 1e-2, 0.0, 2, 3, 7);
        List<DomainTokens> domains =
                List.of(ModeTestSupport.domain("code", 0, 6, 1), ModeTestSupport.domain("math", 6, 12, 2));
        int steps = 7, blocks = 2;
        Routing r = Routing.parse(routing);
        List<JsonObject> expected = new ArrayList<>();
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(blocks, 1, List.of("code", "math"))
                                .withRouting(r),
                        5)) {
            ModeTestSupport.randomizeAdded(be, m, 11);
            m.selectTrainable(true);
            Trainer.Listener reference = new Trainer.Listener() {
                int[] rows;

                @Override
                public void onMicroBatch(int step, int[] rowSources) {
                    rows = rowSources.clone();
                }

                @Override
                public void onStep(Trainer.StepMetrics s) {
                    List<float[]> probs = new ArrayList<>();
                    for (Gate g : m.gates()) probs.add(be.toHostFloats(g.probs()));
                    expected.add(reference(s.step(), probs, rows, h.seqLen(), r.dense() ? 0 : r.topK()));
                }
            };
            ModeTraining.train(
                    "run",
                    m,
                    domains,
                    3,
                    ModeTraining.validationWindows(domains, h),
                    steps,
                    h,
                    dir,
                    List.of(reference),
                    ModeTraining.Checkpoints.NONE,
                    new ai.mode.model.train.RunSettings());
        }
        List<JsonObject> lines = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl")))
            lines.add(JsonParser.parseString(line).getAsJsonObject());
        assertTrue(lines.stream().anyMatch(o -> o.get("type").getAsString().equals("val")), "validation ran");
        List<JsonObject> router = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            JsonObject o = lines.get(i);
            if (!o.get("type").getAsString().equals("router")) continue;
            JsonObject before = lines.get(i - 1);
            assertEquals("train", before.get("type").getAsString(), "a router line follows its step's train line");
            assertEquals(before.get("step").getAsInt(), o.get("step").getAsInt());
            router.add(o);
        }
        assertEquals(steps, router.size(), "one router line per step");
        for (int s = 0; s < steps; s++) {
            JsonObject got = router.get(s), want = expected.get(s);
            assertEquals(s + 1, got.get("step").getAsInt());
            JsonObject gd = got.getAsJsonObject("domains"), wd = want.getAsJsonObject("domains");
            assertEquals(wd.keySet(), gd.keySet(), "step " + (s + 1) + ": the domains of the batch rows");
            long tokens = 0;
            for (String d : wd.keySet()) {
                JsonArray gb = gd.getAsJsonArray(d), wb = wd.getAsJsonArray(d);
                assertEquals(blocks, gb.size());
                for (int b = 0; b < blocks; b++) {
                    JsonObject g = gb.get(b).getAsJsonObject(), w = wb.get(b).getAsJsonObject();
                    String where = "step " + (s + 1) + " " + d + " block " + b;
                    double[] weights = doubles(g.getAsJsonArray("weights"));
                    assertArrayEquals(doubles(w.getAsJsonArray("weights")), weights, 1e-12, where + ": weights");
                    assertEquals(1.0, Arrays.stream(weights).sum(), 1e-6, where + ": weights sum to 1");
                    assertEquals(
                            w.get("entropy").getAsDouble(), g.get("entropy").getAsDouble(), 1e-12, where);
                    assertEquals(w.get("tokens").getAsLong(), g.get("tokens").getAsLong(), where + ": tokens");
                    if (b == 0) tokens += g.get("tokens").getAsLong();
                    assertEquals(r.dense(), !g.has("load"), where + ": load only for top-k");
                    if (r.dense()) continue;
                    double[] load = doubles(g.getAsJsonArray("load"));
                    assertArrayEquals(doubles(w.getAsJsonArray("load")), load, 1e-12, where + ": load");
                    assertEquals(r.topK(), Arrays.stream(load).sum(), 1e-12, where + ": loads sum to k");
                    assertEquals(
                            w.get("over_capacity").getAsLong(),
                            g.get("over_capacity").getAsLong(),
                            where);
                }
            }
            assertEquals(h.batch() * h.seqLen(), tokens, "step " + (s + 1) + ": the step's tokens, no validation's");
        }
        String chart = Files.readString(dir.resolve(RouterMonitor.WEIGHTS_PNG));
        assertTrue(chart.contains("code block 1: math"), chart);
        assertTrue(Files.readString(dir.resolve(RouterMonitor.ENTROPY_PNG)).contains("math block 0"));
        assertEquals(r.dense(), Files.notExists(dir.resolve(RouterMonitor.LOAD_PNG)), "a load chart only for top-k");
    }

    /**
     * The router line of one step computed in float64 from the gate probabilities {@code [B·T, N+1]} of each block:
     * per domain of the rows, the mean weight, mean entropy, tokens, and for top-k the fraction of tokens whose k
     * largest probabilities include each branch and the tokens beyond the even share k·tokens/(N+1).
     */
    private static JsonObject reference(int step, List<float[]> probs, int[] rows, int seq, int k) {
        int branches = probs.get(0).length / (rows.length * seq);
        JsonObject domains = new JsonObject();
        for (int d = 0; d < 2; d++) {
            JsonArray blocks = new JsonArray();
            for (float[] p : probs) {
                double[] w = new double[branches], routed = new double[branches];
                double entropy = 0;
                int tokens = 0;
                for (int row = 0; row < rows.length; row++) {
                    if (rows[row] != d) continue;
                    for (int t = row * seq; t < (row + 1) * seq; t++) {
                        Integer[] order = new Integer[branches];
                        for (int j = 0; j < branches; j++) {
                            double v = p[t * branches + j];
                            w[j] += v;
                            if (v > 0) entropy -= v * Math.log(v);
                            order[j] = j;
                        }
                        int tok = t;
                        Arrays.sort(order, (a, c) -> Float.compare(p[tok * branches + c], p[tok * branches + a]));
                        for (int j = 0; j < k; j++) routed[order[j]]++;
                        tokens++;
                    }
                }
                if (tokens == 0) continue;
                JsonObject o = new JsonObject();
                JsonArray mean = new JsonArray(), load = new JsonArray();
                long over = 0;
                for (int j = 0; j < branches; j++) {
                    mean.add(w[j] / tokens);
                    load.add(routed[j] / tokens);
                    over += (long) Math.max(0, routed[j] - Math.ceil((double) k * tokens / branches));
                }
                o.add("weights", mean);
                o.addProperty("entropy", entropy / tokens);
                o.addProperty("tokens", tokens);
                if (k > 0) {
                    o.add("load", load);
                    o.addProperty("over_capacity", over);
                }
                blocks.add(o);
            }
            if (!blocks.isEmpty()) domains.add(d == 0 ? "code" : "math", blocks);
        }
        JsonObject line = new JsonObject();
        line.addProperty("step", step);
        line.add("domains", domains);
        return line;
    }

    private static double[] doubles(JsonArray a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsDouble();
        return out;
    }

    /** Rows from a stream that does not know their domain count under "all"; the monitor changes no parameter. */
    @Test
    void unlabelledRowsCountUnderAllAndTrainingIsUnchanged(@TempDir Path dir) throws Exception {
        List<float[]> watched = train(dir.resolve("watched"), true), plain = train(dir.resolve("plain"), false);
        for (int i = 0; i < plain.size(); i++)
            assertArrayEquals(plain.get(i), watched.get(i), "parameter " + i + " must not depend on the monitor");
        List<Integer> steps = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("watched").resolve("metrics.jsonl"))) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (!o.get("type").getAsString().equals("router")) continue;
            steps.add(o.get("step").getAsInt());
            JsonObject d = o.getAsJsonObject("domains");
            assertEquals(List.of(GateStatistics.ALL), List.copyOf(d.keySet()));
            for (var blk : d.getAsJsonArray(GateStatistics.ALL))
                assertEquals(2 * 2 * 8, blk.getAsJsonObject().get("tokens").getAsLong(), "2 micro-batches of 2 x 8");
        }
        assertEquals(List.of(1, 2, 3, 4), steps);
        assertTrue(Files.readAllLines(dir.resolve("plain").resolve("metrics.jsonl")).stream()
                .noneMatch(l -> l.contains("\"router\"")));
    }

    private static List<float[]> train(Path dir, boolean watch) throws Exception {
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of("code", "math")), 5);
                MetricsLog log = new MetricsLog(dir.resolve("metrics.jsonl"))) {
            m.selectTrainable(true);
            List<Trainer.Listener> listeners = new ArrayList<>(List.of(log));
            if (watch)
                listeners.add(new RouterMonitor(m, List.of(), m.modeConfig().domains(), log));
            Trainer.Options opt =
                    new Trainer.Options(4, 2, 8, 2, LrSchedule.constant(1e-2), AdamW.Config.defaults(), 0, 0, 3);
            new Trainer(m, new ModeTestSupport.RandomStream(9, 400, 13), null, opt, null, listeners).run();
            List<float[]> out = new ArrayList<>();
            for (Parameter p : m.addedParameters()) out.add(be.toHostFloats(p.value()));
            return out;
        }
    }
}
