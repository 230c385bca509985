package ai.mode.model.mode;

import ai.mode.model.train.ChartWriter;
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
 * Router statistics while a MoDE model trains: at every step (every {@code "type":"train"} line of
 * {@code metrics.jsonl}) one {@code "type":"router"} line with, per domain of the step's batch rows and per block, the
 * gate's mean weight per branch, its mean entropy, the tokens counted and, for top-k routing, the load per branch and
 * the tokens over capacity ({@link RouterStatistics}), over the step's micro-batches. At the end it draws the curves
 * as PNGs through the registered {@link ChartWriter}: {@code router-weights.png}, {@code router-entropy.png} and, for
 * top-k, {@code router-load.png}.
 *
 * <p>The statistics come from the gate probabilities and top-k plans the training forward passes produce anyway
 * ({@link GateWatch}: the model on one device, or the ranks of a placed model, which add their sums), labelled by the
 * data loader's domain of each row ({@link Trainer.Listener#onMicroBatch}); rows of a stream that does not know their
 * domain count under {@code "all"}. No extra forward pass runs and no parameter changes. Validation passes are not
 * counted.
 *
 * <pre>
 * {"type":"router","step":20,"domains":{"code":[{"weights":[0.81,0.19],"entropy":0.48,"tokens":1024,"load":[1.0,0.0],"over_capacity":0}, ...]}}
 * </pre>
 */
public final class RouterMonitor implements Trainer.Listener {
    private static final System.Logger LOG = System.getLogger(RouterMonitor.class.getName());

    /** PNG file names in the run folder. */
    public static final String WEIGHTS_PNG = "router-weights.png",
            ENTROPY_PNG = "router-entropy.png",
            LOAD_PNG = "router-load.png";

    private final GateWatch gates;
    private final List<String> domains;
    private final List<String> experts;
    private final MetricsLog log;

    /**
     * @param domains the data stream's sources in order (the names its row labels index)
     * @param experts the model's experts, for the chart legends
     * @param log     the run's metrics log (written to, not owned); null in a process that only takes part in the
     *                statistics' collective (a placed model's other processes)
     */
    public RouterMonitor(GateWatch gates, List<String> domains, List<String> experts, MetricsLog log) {
        this.gates = gates;
        this.domains = List.copyOf(domains);
        this.experts = List.copyOf(experts);
        this.log = log;
    }

    @Override
    public void onStart(int firstStep, int totalSteps, Trainer.Options options) {
        gates.watchGates(domains);
    }

    @Override
    public void onMicroBatch(int step, int[] rowSources) {
        gates.gateRows(rowSources);
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        Map<String, List<RouterStatistics.Summary>> stats = gates.takeGateStatistics();
        if (log != null && !stats.isEmpty()) log.append(line(m.step(), stats));
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
                b.addProperty("tokens", s.tokens());
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
        gates.unwatchGates();
        Optional<ChartWriter> charts = ChartWriter.find();
        if (charts.isEmpty() || log == null) return;
        try {
            plot(charts.get(), log.file(), log.file().toAbsolutePath().getParent(), experts);
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
                "mean gate weight of each expert (training batches, per domain)",
                "mean weight",
                x,
                weights));
        out.add(draw(
                charts,
                dir.resolve(ENTROPY_PNG),
                size,
                "gate entropy (nats, training batches, per domain)",
                "entropy",
                x,
                entropy));
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
