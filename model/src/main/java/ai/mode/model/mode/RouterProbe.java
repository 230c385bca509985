package ai.mode.model.mode;

import ai.mode.model.train.ChartWriter;
import ai.mode.model.train.Evaluator;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.Trainer;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Router statistics while a MoDE model trains: every {@code every} steps (and at the last step) it runs the model
 * forward, without gradients, on a fixed set of windows of each domain and appends one {@code "type":"router"} line to
 * {@code metrics.jsonl} with, per domain and block, the gate's mean weight per branch, its mean entropy and, for top-k
 * routing, the load per branch and the tokens over capacity ({@link RouterStatistics}). At the end it draws the curves
 * as PNGs through the registered {@link ChartWriter}: {@code router-weights.png}, {@code router-entropy.png} and, for
 * top-k, {@code router-load.png}.
 *
 * <p>Training batches mix domains without labels, so the statistics come from these probe windows (the same ones at
 * every step, so the curves compare like with like). A probe only runs forward passes: the training path is
 * unchanged bit for bit.
 *
 * <pre>
 * {"type":"router","step":20,"domains":{"code":[{"weights":[0.81,0.19],"entropy":0.48,"load":[1.0,0.0],"over_capacity":0}, ...]}}
 * </pre>
 */
public final class RouterProbe implements Trainer.Listener {
    private static final System.Logger LOG = System.getLogger(RouterProbe.class.getName());

    /** PNG file names in the run folder. */
    public static final String WEIGHTS_PNG = "router-weights.png",
            ENTROPY_PNG = "router-entropy.png",
            LOAD_PNG = "router-load.png";

    private final ModeModel model;
    private final Map<String, List<int[]>> windows;
    private final int batch;
    private final int every;
    private final MetricsLog log;
    private int totalSteps;

    /**
     * @param windows per domain, the probe windows (rows of T+1 tokens); domains without windows are left out
     * @param every   probe interval in steps (the last step is always probed)
     * @param log     the run's metrics log (written to, not owned)
     */
    public RouterProbe(ModeModel model, Map<String, List<int[]>> windows, int batch, int every, MetricsLog log) {
        if (every < 1)
            throw new IllegalArgumentException("router statistics interval must be >= 1 (got " + every + ")");
        this.model = model;
        this.windows = new LinkedHashMap<>();
        windows.forEach((d, w) -> {
            if (!w.isEmpty()) this.windows.put(d, List.copyOf(w));
        });
        this.batch = batch;
        this.every = every;
        this.log = log;
    }

    @Override
    public void onStart(int firstStep, int totalSteps, Trainer.Options options) {
        this.totalSteps = totalSteps;
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        if (windows.isEmpty() || (m.step() % every != 0 && m.step() != totalSteps)) return;
        log.append(line(m.step(), measure()));
    }

    /** Router statistics per domain (one per block) on the probe windows, measured now. */
    public Map<String, List<RouterStatistics.Summary>> measure() {
        Map<String, List<RouterStatistics.Summary>> out = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, List<int[]>> d : windows.entrySet()) {
                model.collectGateStatistics(true);
                Evaluator.evaluate(model, d.getValue(), batch);
                out.put(d.getKey(), model.routerStatistics());
            }
        } finally {
            model.collectGateStatistics(false);
        }
        return out;
    }

    static JsonObject line(int step, Map<String, List<RouterStatistics.Summary>> stats) {
        JsonObject o = new JsonObject();
        o.addProperty("type", "router");
        o.addProperty("step", step);
        JsonObject domains = new JsonObject();
        stats.forEach((d, blocks) -> {
            JsonArray a = new JsonArray();
            for (RouterStatistics.Summary s : blocks) {
                JsonObject b = new JsonObject();
                b.add("weights", array(s.meanWeight()));
                b.addProperty("entropy", s.entropy());
                if (s.load() != null) {
                    b.add("load", array(s.load()));
                    b.addProperty("over_capacity", s.overCapacity());
                }
                a.add(b);
            }
            domains.add(d, a);
        });
        o.add("domains", domains);
        return o;
    }

    private static JsonArray array(double[] v) {
        JsonArray a = new JsonArray();
        for (double x : v) a.add(x);
        return a;
    }

    @Override
    public void onEnd(int lastStep) {
        Optional<ChartWriter> charts = ChartWriter.find();
        if (charts.isEmpty() || windows.isEmpty()) return;
        try {
            plot(
                    charts.get(),
                    log.file(),
                    log.file().toAbsolutePath().getParent(),
                    model.modeConfig().domains());
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "could not draw the router statistics of " + log.file() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Draws the router lines of {@code metrics} into {@code dir}: mean weight of every expert branch (the backbone's
     * is one minus their sum) per domain and block, entropy per domain and block, and top-k load when present.
     * Returns the PNGs written.
     */
    public static List<Path> plot(ChartWriter charts, Path metrics, Path dir, List<String> experts) throws IOException {
        Map<String, List<double[]>> weights = new LinkedHashMap<>(),
                entropy = new LinkedHashMap<>(),
                load = new LinkedHashMap<>();
        List<Double> steps = new ArrayList<>();
        for (String text : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
            if (text.isBlank()) continue;
            JsonObject o = JsonParser.parseString(text).getAsJsonObject();
            if (!"router".equals(o.get("type").getAsString())) continue;
            int at = steps.size();
            steps.add(o.get("step").getAsDouble());
            for (Map.Entry<String, JsonElement> d : o.getAsJsonObject("domains").entrySet()) {
                JsonArray blocks = d.getValue().getAsJsonArray();
                for (int b = 0; b < blocks.size(); b++) {
                    JsonObject s = blocks.get(b).getAsJsonObject();
                    String where = d.getKey() + " block " + b;
                    point(entropy, where, at, s.get("entropy").getAsDouble());
                    JsonArray w = s.getAsJsonArray("weights"), l = s.has("load") ? s.getAsJsonArray("load") : null;
                    for (int j = 1; j < w.size(); j++) {
                        String branch =
                                where + ": " + (j - 1 < experts.size() ? experts.get(j - 1) : "expert " + (j - 1));
                        point(weights, branch, at, w.get(j).getAsDouble());
                        if (l != null) point(load, branch, at, l.get(j).getAsDouble());
                    }
                    if (l != null)
                        point(load, where + ": backbone", at, l.get(0).getAsDouble());
                }
            }
        }
        List<Path> out = new ArrayList<>();
        if (steps.isEmpty()) return out;
        double[] x = steps.stream().mapToDouble(Double::doubleValue).toArray();
        ChartWriter.Size size = new ChartWriter.Size(1000, 560);
        out.add(draw(
                charts,
                dir.resolve(WEIGHTS_PNG),
                size,
                "mean gate weight of each expert (probe windows)",
                "mean weight",
                x,
                weights));
        out.add(draw(
                charts, dir.resolve(ENTROPY_PNG), size, "gate entropy (nats, probe windows)", "entropy", x, entropy));
        if (!load.isEmpty())
            out.add(draw(
                    charts,
                    dir.resolve(LOAD_PNG),
                    size,
                    "top-k load: fraction of tokens routed to each branch",
                    "load",
                    x,
                    load));
        LOG.log(System.Logger.Level.DEBUG, "router statistics drawn: {0}", out);
        return out;
    }

    private static void point(Map<String, List<double[]>> series, String name, int at, double v) {
        series.computeIfAbsent(name, k -> new ArrayList<>()).add(new double[] {at, v});
    }

    private static Path draw(
            ChartWriter charts,
            Path png,
            ChartWriter.Size size,
            String title,
            String yTitle,
            double[] steps,
            Map<String, List<double[]>> series)
            throws IOException {
        List<ChartWriter.Line> lines = new ArrayList<>();
        series.forEach((name, pts) -> {
            double[] x = new double[pts.size()], y = new double[pts.size()];
            for (int i = 0; i < pts.size(); i++) {
                x[i] = steps[(int) pts.get(i)[0]];
                y[i] = pts.get(i)[1];
            }
            lines.add(new ChartWriter.Line(name, x, y, true));
        });
        charts.lines(png, size, title, "step", yTitle, lines);
        return png;
    }
}
