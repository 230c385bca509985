// Router statistics of multi-device MoDE training: on every placement of the equivalence tests and under dense,
// top-k and sequence-level top-k routing, the ranks that hold the gates count their rows and the sums over the world
// give, at every step, the router line of single-device training on the same labelled data (per domain and block:
// mean weights, entropy, tokens, top-k load and tokens over capacity), with weights summing to 1, loads to k and
// each domain's tokens equal to its rows in the step's batches.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.RouterMonitor;
import ai.mode.model.mode.Routing;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.Trainer;
import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import ai.mode.parallel.sched.ModelSnapshot;
import ai.mode.parallel.sched.ParallelModeModel;
import ai.mode.parallel.sched.ParallelTrainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ParallelRouterStatisticsTest {
    private static final int BATCH = 5, SEQ = 6, ACCUM = 2, STEPS = 3;
    private static final List<String> DOMAINS = List.of("x", "y", "z");

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Routing r : List.of(Routing.DENSE, Routing.parse("top2"), Routing.parse("sequence-top1"))) {
            ParallelEquivalenceTest.placements()
                    .forEach(a -> out.add(Arguments.of(r, a.get()[0], a.get()[1], a.get()[2])));
        }
        return out.stream();
    }

    /** {@link TinyMode.Stream} whose rows come from domains drawn from a seeded generator per row number. */
    static final class Labelled implements ai.mode.model.train.TokenStream {
        private final TinyMode.Stream tokens;
        private long rows;
        private int[] last;

        Labelled(long seed) {
            tokens = new TinyMode.Stream(seed, TinyMode.CFG.vocabSize());
        }

        static int domainOf(long row) {
            return new SplittableRandom(row * 31 + 7).nextInt(DOMAINS.size());
        }

        @Override
        public void next(int batch, int seqLen, int[] dst) {
            tokens.next(batch, seqLen, dst);
            last = new int[batch];
            for (int r = 0; r < batch; r++) last[r] = domainOf(rows++);
        }

        @Override
        public int[] rowSources() {
            return last.clone();
        }

        @Override
        public JsonElement state() {
            return tokens.state();
        }

        @Override
        public void restore(JsonElement state) {
            tokens.restore(state);
        }
    }

    @ParameterizedTest(name = "{0} / {1}")
    @MethodSource("cases")
    void everyStepMatchesOneDevice(
            Routing routing, String name, int devices, Function<List<DeviceId>, Placement> place, @TempDir Path dir)
            throws Exception {
        Trainer.Options opt = new Trainer.Options(
                STEPS, BATCH, SEQ, ACCUM, LrSchedule.constant(3e-3), AdamW.Config.defaults(), 0, 0, 11);
        Path one = dir.resolve("one").resolve("metrics.jsonl"),
                many = dir.resolve("many").resolve("metrics.jsonl");
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, routing, 9)) {
            ref.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            List<String> experts = ref.modeConfig().domains();
            try (MetricsLog log = new MetricsLog(one)) {
                new Trainer(
                                ref,
                                new Labelled(5),
                                null,
                                opt,
                                null,
                                List.of(log, new RouterMonitor(ref, DOMAINS, experts, log)))
                        .run();
            }
            Placement pl = place.apply(DeviceSpec.parse("cpu:0-" + (devices - 1)));
            try (ParallelModeModel pm = ParallelModeModel.inProcess(
                            pl, TinyMode.cpus(devices), snap, AdamW.Config.defaults(), Duration.ofSeconds(20));
                    MetricsLog log = new MetricsLog(many)) {
                new ParallelTrainer(
                                pm,
                                new Labelled(5),
                                null,
                                opt,
                                List.of(log, new RouterMonitor(pm, DOMAINS, experts, log)))
                        .run();
            }
        }
        List<JsonObject> want = routerLines(one), got = routerLines(many);
        assertEquals(STEPS, got.size(), name + ": a router line at every step");
        int k = routing.dense() ? 0 : routing.topK();
        for (int s = 0; s < STEPS; s++) {
            assertEquals(s + 1, got.get(s).get("step").getAsInt());
            JsonObject gd = got.get(s).getAsJsonObject("domains"),
                    wd = want.get(s).getAsJsonObject("domains");
            assertEquals(wd.keySet(), gd.keySet(), name + " step " + (s + 1));
            long[] rows = new long[DOMAINS.size()];
            for (long r = (long) s * ACCUM * BATCH; r < (long) (s + 1) * ACCUM * BATCH; r++)
                rows[Labelled.domainOf(r)]++;
            for (String d : gd.keySet()) {
                JsonArray gb = gd.getAsJsonArray(d), wb = wd.getAsJsonArray(d);
                assertEquals(2, gb.size());
                for (int b = 0; b < gb.size(); b++) {
                    JsonObject g = gb.get(b).getAsJsonObject(), w = wb.get(b).getAsJsonObject();
                    String where = name + " step " + (s + 1) + " " + d + " block " + b;
                    double[] weights = doubles(g.getAsJsonArray("weights"));
                    assertArrayEquals(doubles(w.getAsJsonArray("weights")), weights, 1e-5, where + ": weights");
                    assertEquals(1.0, Arrays.stream(weights).sum(), 1e-6, where + ": weights sum to 1");
                    double h = g.get("entropy").getAsDouble();
                    assertEquals(w.get("entropy").getAsDouble(), h, 1e-5, where + ": entropy");
                    assertTrue(h > 0 && h <= Math.log(weights.length), where + ": entropy " + h);
                    assertEquals(rows[DOMAINS.indexOf(d)] * SEQ, g.get("tokens").getAsLong(), where + ": tokens");
                    assertEquals(w.get("tokens").getAsLong(), g.get("tokens").getAsLong());
                    assertEquals(k == 0, !g.has("load"), where + ": load only for top-k");
                    if (k == 0) continue;
                    double[] load = doubles(g.getAsJsonArray("load"));
                    assertArrayEquals(doubles(w.getAsJsonArray("load")), load, 0, where + ": load");
                    assertEquals(k, Arrays.stream(load).sum(), 1e-12, where + ": loads sum to k");
                    assertEquals(
                            w.get("over_capacity").getAsLong(),
                            g.get("over_capacity").getAsLong(),
                            where);
                }
            }
        }
        assertTrue(Files.isRegularFile(many.resolveSibling(RouterMonitor.WEIGHTS_PNG)), name + ": weights chart");
        assertEquals(k == 0, Files.notExists(many.resolveSibling(RouterMonitor.LOAD_PNG)), name + ": load chart");
    }

    private static List<JsonObject> routerLines(Path metrics) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (o.get("type").getAsString().equals("router")) out.add(o);
        }
        return out;
    }

    private static double[] doubles(JsonArray a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsDouble();
        return out;
    }
}
