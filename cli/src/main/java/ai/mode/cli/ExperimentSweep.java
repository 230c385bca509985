package ai.mode.cli;

import ai.mode.model.io.AtomicFiles;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.json.JsonMessages;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExperimentReport;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeExperiment;
import ai.mode.model.mode.ModeExperiment.Method;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import ai.mode.model.train.ChartWriter;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code mode experiment --sweep FILE}: a grid of experiment runs (method x learning rate x budget x options), one
 * folder per grid point with a completion marker, so an interrupted sweep resumes and finished points are reused; the
 * learning rate of each method is chosen on the validation split and only the chosen runs' test scores are reported.
 * The sweep file is JSON: one grid object, or {@code {"grids": [..]}};
 * every key of a grid takes a value or a list of values, and the grid is their cross product:
 *
 * <pre>{@code
 * {"grids": [
 *   {"method": ["full-ft", "lora", "expansion", "mode"], "lr": [3e-4, 1e-3, 3e-3], "scale": [1, 4]},
 *   {"method": "mode", "lr": [3e-4, 1e-3, 3e-3], "merge": ["residual", "mixture"], "gate_input": ["rmsnorm", "raw"]}
 * ]}
 * }</pre>
 *
 * <p>{@code method}: a method id or a comma-separated set run together (e.g. {@code "mode,mode-frozen"} shares the
 * stage-1 experts); {@code lr}: peak learning rate (default: the command's {@code --lr}); {@code scale}: multiplier of
 * the command's stage-1 and stage-2 steps (default 1); and the options of {@link #OPTIONS}, each applying only to the
 * methods it changes (a LoRA option does not multiply the MoDE points). Points that come out identical are run once.
 *
 * <p>Each point runs in {@code OUT/points/NAME/} ({@code results.json}, {@code results.md}, plots, per-run folders)
 * and is complete when its {@code point.json} (the point's full settings and the backbone's weights hash, written last
 * and atomically) matches: a rerun of the sweep reuses it, anything else is run again. The summary
 * ({@code sweep.json}, {@code sweep.md}, {@code sweep-lr.png}, {@code sweep-curves.png}) groups every result row by
 * (row, budget, options), chooses the learning rate with the best mean validation accuracy over the evaluated
 * domains, and reports the test split only for the chosen one.
 */
final class ExperimentSweep {
    static final String JSON = "sweep.json",
            MARKDOWN = "sweep.md",
            LR_PNG = "sweep-lr.png",
            CURVES_PNG = "sweep-curves.png";
    static final String POINT = "point.json";

    /** Grid options besides method, lr and scale, with the methods each one changes. */
    static final Map<String, Set<Method>> OPTIONS = options();

    private static Map<String, Set<Method>> options() {
        Set<Method> mode = EnumSet.of(Method.MODE, Method.MODE_FROZEN, Method.MODE_1X);
        Set<Method> modeAndExpansion = EnumSet.of(Method.MODE, Method.MODE_FROZEN, Method.MODE_1X, Method.EXPANSION);
        Set<Method> trained = EnumSet.complementOf(EnumSet.of(Method.BASE));
        Map<String, Set<Method>> o = new LinkedHashMap<>();
        o.put("lora_rank", EnumSet.of(Method.LORA));
        o.put("lora_alpha", EnumSet.of(Method.LORA));
        o.put("lora_targets", EnumSet.of(Method.LORA));
        o.put("blocks", modeAndExpansion);
        o.put("expert_layers", modeAndExpansion);
        o.put("expert_init", mode);
        o.put("gate_init", mode);
        o.put("merge", mode);
        o.put("gate_input", mode);
        o.put("routing", mode);
        o.put("gate_construction", EnumSet.of(Method.MODE, Method.MODE_FROZEN));
        o.put("train_tokens", trained);
        return o;
    }

    /**
     * One grid point.
     *
     * @param methods the methods run together
     * @param lr      peak learning rate
     * @param scale   budget multiplier of the stage steps
     * @param options option values (canonical strings), only those that apply to {@code methods}, by key
     */
    record Point(Set<Method> methods, double lr, int scale, Map<String, String> options) {
        Point {
            methods = Set.copyOf(methods);
            options = new TreeMap<>(options);
        }

        /** e.g. {@code lora_lr0.001_x1_lora_alpha-32}: readable, and unique with the settings hash added. */
        String label() {
            StringBuilder b = new StringBuilder(methodIds(methods).replace(',', '+'));
            b.append("_lr").append(number(lr)).append("_x").append(scale);
            options.forEach((k, v) -> b.append('_').append(k).append('-').append(v));
            return b.toString().replaceAll("[^A-Za-z0-9_.+-]", "-");
        }
    }

    /**
     * The sweep's fixed settings: what the command line gives every point.
     *
     * @param sliceLayers the backbone's L when the command left {@code --expert-layers} at {@code slice}, so that a
     *                    point without {@code expert_layers} takes k = L/B of its own blocks with copied experts, 1
     *                    with random ones; 0 when the command gave k, which every such point keeps
     */
    record Base(
            Path out,
            int stage1,
            int stage2,
            ModeTraining.Hyper hyper,
            ModeConfig arch,
            Composer.GateConstruction gates,
            LoraModel.Config lora,
            int evalWindows,
            int sliceLayers) {}

    private ExperimentSweep() {}

    // ================================================================= the grid

    /**
     * The points of a sweep file, in file order, with option values written canonically and those equal to the
     * command's own setting dropped, so that points which run the same settings are one point.
     */
    static List<Point> parse(Path file, Base base) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("sweep file " + file + " is not valid JSON (" + JsonMessages.of(e)
                    + "); write one grid object or {\"grids\": [...]} (docs/mode.md, \"Sweeps\")");
        }
        if (!root.isJsonObject())
            throw new IllegalArgumentException(
                    "sweep file " + file + " must hold a JSON object (one grid, or {\"grids\": [...]})");
        List<JsonObject> grids = new ArrayList<>();
        JsonObject o = root.getAsJsonObject();
        if (o.has("grids")) {
            for (JsonElement g : o.getAsJsonArray("grids")) {
                if (!g.isJsonObject())
                    throw new IllegalArgumentException(
                            "sweep file " + file + ": every entry of \"grids\" must be an object");
                grids.add(g.getAsJsonObject());
            }
        } else {
            grids.add(o);
        }
        Map<String, Point> points = new LinkedHashMap<>();
        for (JsonObject g : grids) for (Point p : expand(file, g, base)) points.putIfAbsent(p.label(), p);
        if (points.isEmpty()) throw new IllegalArgumentException("sweep file " + file + " has no grid point");
        return List.copyOf(points.values());
    }

    private static List<Point> expand(Path file, JsonObject g, Base base) {
        for (String k : g.keySet()) {
            if (!k.equals("method") && !k.equals("lr") && !k.equals("scale") && !OPTIONS.containsKey(k))
                throw new IllegalArgumentException("sweep file " + file + ": unknown key '" + k
                        + "'; use method, lr, scale, " + String.join(", ", OPTIONS.keySet()));
        }
        if (!g.has("method"))
            throw new IllegalArgumentException(
                    "sweep file " + file + ": a grid needs \"method\" (e.g. \"mode\" or [\"lora\", \"full-ft\"])");
        List<Point> out = new ArrayList<>();
        for (String m : values(g, "method")) {
            Set<Method> methods = Method.parse(m);
            for (String lr : g.has("lr")
                    ? values(g, "lr")
                    : List.of(Double.toString(base.hyper().lr()))) {
                for (String sc : g.has("scale") ? values(g, "scale") : List.of("1")) {
                    List<Map<String, String>> combos = new ArrayList<>();
                    combos.add(new TreeMap<>());
                    for (Map.Entry<String, Set<Method>> opt : OPTIONS.entrySet()) {
                        if (!g.has(opt.getKey()) || methods.stream().noneMatch(opt.getValue()::contains)) continue;
                        List<Map<String, String>> next = new ArrayList<>();
                        for (Map<String, String> c : combos) {
                            for (String v : values(g, opt.getKey())) {
                                Map<String, String> n = new TreeMap<>(c);
                                String value = canonical(file, opt.getKey(), v);
                                // with k following the slice, a point's k is its own even where it equals the command's
                                boolean sliceK = opt.getKey().equals("expert_layers") && base.sliceLayers() > 0;
                                if (sliceK || !value.equals(baseValue(opt.getKey(), base))) n.put(opt.getKey(), value);
                                next.add(n);
                            }
                        }
                        combos = next;
                    }
                    for (Map<String, String> c : combos)
                        out.add(new Point(methods, parseDouble(file, "lr", lr), parseInt(file, "scale", sc), c));
                }
            }
        }
        return out;
    }

    /** An option value written one way: enums by their CLI names, numbers without trailing zeros. */
    static String canonical(Path file, String key, String v) {
        try {
            return switch (key) {
                case "merge" -> ModeConfig.Merge.parse(v).cliName();
                case "gate_input" -> ModeConfig.GateInput.parse(v).cliName();
                case "expert_init" -> ModeConfig.ExpertInit.parse(v).cliName();
                case "routing" -> Routing.parse(v).toString();
                case "gate_construction" ->
                    Composer.GateConstruction.parse(v).name().toLowerCase(Locale.ROOT);
                case "lora_targets" -> targetsName(LoraModel.Config.parseTargets(v));
                case "lora_rank", "blocks", "expert_layers", "train_tokens" -> Long.toString(Long.parseLong(v));
                default -> number(Double.parseDouble(v));
            };
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("sweep file " + file + ": " + key + " '" + v + "': " + e.getMessage());
        }
    }

    /** The command's own value of an option, written as {@link #canonical} writes it. */
    static String baseValue(String key, Base b) {
        return switch (key) {
            case "merge" -> b.arch().merge().cliName();
            case "gate_input" -> b.arch().gateInput().cliName();
            case "expert_init" -> b.arch().expertInit().cliName();
            case "routing" -> b.arch().routing().toString();
            case "gate_construction" -> b.gates().name().toLowerCase(Locale.ROOT);
            case "lora_targets" -> targetsName(b.lora().targets());
            case "lora_rank" -> Integer.toString(b.lora().rank());
            case "lora_alpha" -> number(b.lora().alpha());
            case "blocks" -> Integer.toString(b.arch().numBlocks());
            case "expert_layers" -> Integer.toString(b.arch().layersPerExpert());
            case "gate_init" -> number(b.arch().gateInitBackbone());
            case "train_tokens" -> "0";
            default -> throw new IllegalArgumentException("unknown sweep option " + key);
        };
    }

    private static String targetsName(Set<?> targets) {
        return String.join("+", targets.stream().map(Object::toString).sorted().toList());
    }

    private static List<String> values(JsonObject g, String key) {
        JsonElement e = g.get(key);
        List<String> out = new ArrayList<>();
        if (e.isJsonArray()) for (JsonElement x : e.getAsJsonArray()) out.add(x.getAsString());
        else out.add(e.getAsString());
        return out;
    }

    private static double parseDouble(Path file, String key, String v) {
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("sweep file " + file + ": " + key + " '" + v + "' is not a number");
        }
    }

    private static int parseInt(Path file, String key, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n < 1) throw new NumberFormatException();
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "sweep file " + file + ": " + key + " '" + v + "' must be a whole number >= 1");
        }
    }

    /** The experiment settings of a point over the command's base settings. */
    static ModeExperiment.Settings settings(Base b, Point p, Path dir) {
        Map<String, String> o = p.options();
        ModeConfig a = b.arch();
        Routing routing = o.containsKey("routing") ? Routing.parse(o.get("routing")) : a.routing();
        ModeConfig.Merge merge = o.containsKey("merge")
                ? ModeConfig.Merge.parse(o.get("merge"))
                : routing.dense() ? a.merge() : ModeConfig.Merge.MIXTURE;
        LoraModel.Config lora = new LoraModel.Config(
                o.containsKey("lora_rank")
                        ? Integer.parseInt(o.get("lora_rank"))
                        : b.lora().rank(),
                o.containsKey("lora_alpha")
                        ? Double.parseDouble(o.get("lora_alpha"))
                        : b.lora().alpha(),
                o.containsKey("lora_targets")
                        ? LoraModel.Config.parseTargets(o.get("lora_targets"))
                        : b.lora().targets());
        ModeTraining.Hyper h = b.hyper();
        int blocks = o.containsKey("blocks") ? Integer.parseInt(o.get("blocks")) : a.numBlocks();
        ModeConfig.ExpertInit init =
                o.containsKey("expert_init") ? ModeConfig.ExpertInit.parse(o.get("expert_init")) : a.expertInit();
        int k = o.containsKey("expert_layers")
                ? Integer.parseInt(o.get("expert_layers"))
                : b.sliceLayers() > 0
                        ? ModeConfig.defaultLayersPerExpert(b.sliceLayers(), blocks, init)
                        : a.layersPerExpert();
        return new ModeExperiment.Settings(
                dir,
                b.stage1() * p.scale(),
                b.stage2() * p.scale(),
                new ModeTraining.Hyper(
                        h.batch(), h.seqLen(), p.lr(), h.warmupFrac(), h.valWindows(), h.valPoints(), h.seed()),
                blocks,
                k,
                init,
                o.containsKey("gate_init") ? Double.parseDouble(o.get("gate_init")) : a.gateInitBackbone(),
                o.containsKey("gate_construction")
                        ? Composer.GateConstruction.parse(o.get("gate_construction"))
                        : b.gates(),
                routing,
                merge,
                o.containsKey("gate_input") ? ModeConfig.GateInput.parse(o.get("gate_input")) : a.gateInput(),
                lora,
                b.evalWindows(),
                p.methods());
    }

    /**
     * The domains with a user corpus path renamed to its last path element (characters an expert name cannot hold
     * become '_'), so that the experiment can name an expert after it; built-in names are kept.
     */
    static List<DomainTokens> named(List<DomainTokens> domains) {
        List<DomainTokens> out = new ArrayList<>();
        for (DomainTokens d : domains) {
            String n = domainName(d.name());
            out.add(n.equals(d.name()) ? d : new DomainTokens(n, d.train(), d.validation(), d.test()));
        }
        return out;
    }

    /** A corpus name as an expert name: itself, or for a path its last element with other characters as '_'. */
    static String domainName(String corpus) {
        if (corpus.matches("[A-Za-z0-9_.+-]+")) return corpus;
        Path file = Path.of(corpus).getFileName();
        return (file == null ? corpus : file.toString()).replaceAll("[^A-Za-z0-9_.+-]", "_");
    }

    /** The first {@code tokens} training tokens of each target (all of them for 0 or more than there are). */
    static List<DomainTokens> limitTraining(List<DomainTokens> targets, long tokens) {
        if (tokens <= 0) return targets;
        List<DomainTokens> out = new ArrayList<>();
        for (DomainTokens d : targets) {
            int[] t = d.train().length > tokens ? Arrays.copyOf(d.train(), (int) tokens) : d.train();
            out.add(new DomainTokens(d.name(), t, d.validation(), d.test()));
        }
        return out;
    }

    // ================================================================= running

    /** Runs (or reuses) every point and writes the summary; returns the summary JSON. */
    static JsonObject run(
            Base base,
            List<Point> points,
            Checkpoint c,
            List<DomainTokens> targets,
            List<DomainTokens> evalData,
            String backboneHash,
            CommonOptions common,
            String command,
            PrintStream out,
            PrintStream err)
            throws IOException {
        List<String> targetNames = targets.stream().map(DomainTokens::name).toList();
        List<String> evalNames = evalData.stream().map(DomainTokens::name).toList();
        List<JsonObject> done = new ArrayList<>();
        int i = 0;
        for (Point p : points) {
            i++;
            ModeExperiment.Settings s0 = settings(base, p, Path.of("."));
            JsonObject marker = new JsonObject();
            marker.add("settings", ExperimentReport.settingsJson(s0, targetNames, evalNames));
            marker.addProperty("train_tokens", trainTokens(p));
            marker.addProperty("backbone_weights_hash", backboneHash);
            String name = p.label() + "_" + shortHash(marker.toString());
            Path dir = base.out().resolve("points").resolve(name);
            ModeExperiment.Settings s = settings(base, p, dir);
            JsonObject result = reusable(dir, marker);
            if (result != null) {
                out.printf("[%d/%d] %s: reusing the finished run in %s%n", i, points.size(), p.label(), dir);
            } else {
                out.printf("[%d/%d] %s: running in %s%n", i, points.size(), p.label(), dir);
                Files.deleteIfExists(dir.resolve(POINT));
                ModeExperimentCommand.runLoaded(
                        c, limitTraining(targets, trainTokens(p)), evalData, null, s, common, command, 0, out, err);
                AtomicFiles.writeString(dir.resolve(POINT), pretty(marker));
                result = reusable(dir, marker);
                if (result == null)
                    throw new IllegalStateException("sweep point " + dir + " left no readable results; this is a bug");
            }
            JsonObject entry = new JsonObject();
            entry.addProperty("point", name);
            entry.addProperty("methods", methodIds(p.methods()));
            entry.addProperty("lr", p.lr());
            entry.addProperty("scale", p.scale());
            JsonObject opts = new JsonObject();
            p.options().forEach(opts::addProperty);
            entry.add("options", opts);
            entry.add("results", result);
            done.add(entry);
        }
        JsonObject summary = summarize(done, targetNames, evalNames, base);
        writeSummary(base.out(), summary, targetNames, evalNames, command);
        return summary;
    }

    private static long trainTokens(Point p) {
        return p.options().containsKey("train_tokens")
                ? Long.parseLong(p.options().get("train_tokens"))
                : 0;
    }

    /** The results.json of a completed point whose marker matches, or null. */
    private static JsonObject reusable(Path dir, JsonObject marker) {
        Path m = dir.resolve(POINT), r = dir.resolve(ExperimentReport.JSON);
        if (!Files.isRegularFile(m) || !Files.isRegularFile(r)) return null;
        try {
            if (!JsonParser.parseString(Files.readString(m)).equals(marker)) return null;
            return JsonParser.parseString(Files.readString(r)).getAsJsonObject();
        } catch (IOException | RuntimeException unreadable) {
            return null;
        }
    }

    // ================================================================= the summary

    /**
     * Groups every result row of every point by (row id, scale, options), chooses in each group the learning rate
     * with the best mean validation accuracy over the evaluated domains, and keeps the chosen row's test scores.
     */
    static JsonObject summarize(List<JsonObject> points, List<String> targets, List<String> evalNames, Base base) {
        Map<String, List<JsonObject>> groups = new LinkedHashMap<>();
        for (JsonObject p : points) {
            JsonObject settings = p.getAsJsonObject("results").getAsJsonObject("settings");
            for (JsonElement re : p.getAsJsonObject("results").getAsJsonArray("results")) {
                JsonObject row = re.getAsJsonObject();
                JsonObject g = new JsonObject();
                g.addProperty("row", row.get("id").getAsString());
                g.addProperty("method", row.get("method").getAsString());
                g.addProperty("scale", p.get("scale").getAsInt());
                g.add("options", p.get("options"));
                g.addProperty("lr", p.get("lr").getAsDouble());
                g.addProperty("steps", row.get("steps").getAsInt());
                g.addProperty(
                        "train_tokens_seen",
                        (long) row.get("steps").getAsInt()
                                * settings.get("batch").getAsInt()
                                * settings.get("seq_len").getAsInt());
                g.addProperty("point", p.get("point").getAsString());
                g.addProperty("params_trainable", row.get("params_trainable").getAsLong());
                g.addProperty("params_added", row.get("params_added").getAsLong());
                g.add("validation_accuracy", row.get("validation_accuracy"));
                g.add("test_accuracy", row.get("accuracy"));
                g.add("test_loss", row.get("loss"));
                g.addProperty(
                        "mean_validation_accuracy", meanOf(row.getAsJsonObject("validation_accuracy"), evalNames));
                if (row.has("gate_weights")) g.add("gate_weights", row.get("gate_weights"));
                String key = row.get("id").getAsString() + " x" + p.get("scale").getAsInt() + " " + p.get("options");
                groups.computeIfAbsent(key, k -> new ArrayList<>()).add(g);
            }
        }
        JsonArray all = new JsonArray(), chosen = new JsonArray();
        for (List<JsonObject> g : groups.values()) {
            g.sort((a, b) ->
                    Double.compare(a.get("lr").getAsDouble(), b.get("lr").getAsDouble()));
            JsonObject best = null;
            for (JsonObject r : g) {
                JsonObject grid = r.deepCopy();
                grid.remove("test_accuracy");
                grid.remove("test_loss");
                grid.remove("gate_weights");
                all.add(grid);
                double v = r.get("mean_validation_accuracy").getAsDouble();
                if (best == null || v > best.get("mean_validation_accuracy").getAsDouble()) best = r;
            }
            JsonObject c = best.deepCopy();
            JsonArray tried = new JsonArray();
            for (JsonObject r : g) tried.add(r.get("lr").getAsDouble());
            c.add("lrs_tried", tried);
            c.addProperty("test_target_accuracy", meanOf(c.getAsJsonObject("test_accuracy"), targets));
            List<String> others =
                    evalNames.stream().filter(d -> !targets.contains(d)).toList();
            if (!others.isEmpty())
                c.addProperty("test_other_accuracy", meanOf(c.getAsJsonObject("test_accuracy"), others));
            c.addProperty("test_mean_accuracy", meanOf(c.getAsJsonObject("test_accuracy"), evalNames));
            chosen.add(c);
        }
        JsonObject o = new JsonObject();
        JsonObject b = new JsonObject();
        b.addProperty("stage1_steps", base.stage1());
        b.addProperty("stage2_steps", base.stage2());
        b.addProperty("batch", base.hyper().batch());
        b.addProperty("seq_len", base.hyper().seqLen());
        b.addProperty("seed", base.hyper().seed());
        b.addProperty("eval_windows", base.evalWindows());
        o.add("base", b);
        o.addProperty(
                "selection",
                "per (row, scale, options): the learning rate with the best mean validation accuracy over "
                        + String.join(", ", evalNames) + "; test scores only for that one");
        o.add("grid", all);
        o.add("chosen", chosen);
        return o;
    }

    private static double meanOf(JsonObject byDomain, List<String> domains) {
        double s = 0;
        for (String d : domains) s += byDomain.has(d) ? byDomain.get(d).getAsDouble() : Double.NaN;
        return s / domains.size();
    }

    private static void writeSummary(
            Path out, JsonObject summary, List<String> targets, List<String> evalNames, String command)
            throws IOException {
        AtomicFiles.writeString(out.resolve(JSON), pretty(summary));
        AtomicFiles.writeString(out.resolve(MARKDOWN), markdown(summary, targets, evalNames, command));
        var charts = ChartWriter.find();
        if (charts.isEmpty()) return;
        lrPlot(charts.get(), summary, out.resolve(LR_PNG));
        curvesPlot(charts.get(), summary, targets, evalNames, out.resolve(CURVES_PNG));
    }

    /** The summary as Markdown: the grid's validation accuracy per learning rate, then the chosen runs' test scores. */
    static String markdown(JsonObject summary, List<String> targets, List<String> evalNames, String command) {
        StringBuilder b = new StringBuilder("# Sweep\n\n");
        b.append("Obtained with `")
                .append(command)
                .append("`. Selection: ")
                .append(summary.get("selection").getAsString())
                .append(".\n\n");
        b.append("## Validation accuracy (mean over ")
                .append(String.join(
                        ", ", evalNames.stream().map(ExperimentReport::title).toList()))
                .append(", %) per learning rate\n\n");
        b.append("| row | options | budget | lr | steps | validation Avg |\n|---|---|---:|---:|---:|---:|\n");
        for (JsonElement e : summary.getAsJsonArray("grid")) {
            JsonObject r = e.getAsJsonObject();
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | x%d | %s | %d | %.2f |%n",
                    r.get("row").getAsString(),
                    options(r),
                    r.get("scale").getAsInt(),
                    number(r.get("lr").getAsDouble()),
                    r.get("steps").getAsInt(),
                    100 * r.get("mean_validation_accuracy").getAsDouble()));
        }
        b.append(
                "\n## At the chosen learning rate: test accuracy (%)\n\n| row | options | budget | tokens | lr (of) | ");
        for (String d : evalNames) b.append(ExperimentReport.title(d)).append(" | ");
        b.append("Avg | validation Avg |\n|---|---|---:|---:|---|");
        b.append("---:|".repeat(evalNames.size() + 2)).append('\n');
        for (JsonElement e : summary.getAsJsonArray("chosen")) {
            JsonObject r = e.getAsJsonObject();
            List<String> tried = new ArrayList<>();
            for (JsonElement t : r.getAsJsonArray("lrs_tried")) tried.add(number(t.getAsDouble()));
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | x%d | %s | %s (%s) | ",
                    r.get("row").getAsString(),
                    options(r),
                    r.get("scale").getAsInt(),
                    ExperimentReport.compact(r.get("train_tokens_seen").getAsLong()),
                    number(r.get("lr").getAsDouble()),
                    String.join(", ", tried)));
            for (String d : evalNames)
                b.append(String.format(
                        Locale.ROOT,
                        "%.2f | ",
                        100 * r.getAsJsonObject("test_accuracy").get(d).getAsDouble()));
            b.append(String.format(
                    Locale.ROOT,
                    "%.2f | %.2f |%n",
                    100 * r.get("test_mean_accuracy").getAsDouble(),
                    100 * r.get("mean_validation_accuracy").getAsDouble()));
        }
        boolean gates = false;
        for (JsonElement e : summary.getAsJsonArray("chosen"))
            gates |= e.getAsJsonObject().has("gate_weights");
        if (gates) {
            b.append("\n## Mean gate weights per block of the chosen MoDE runs (backbone first)\n\n");
            b.append("| row | options | budget | test domain | block weights |\n|---|---|---:|---|---|\n");
            for (JsonElement e : summary.getAsJsonArray("chosen")) {
                JsonObject r = e.getAsJsonObject();
                if (!r.has("gate_weights")) continue;
                for (Map.Entry<String, JsonElement> d :
                        r.getAsJsonObject("gate_weights").entrySet()) {
                    List<String> blocks = new ArrayList<>();
                    for (JsonElement blk : d.getValue().getAsJsonArray()) {
                        List<String> w = new ArrayList<>();
                        for (JsonElement x : blk.getAsJsonArray())
                            w.add(String.format(Locale.ROOT, "%.3f", x.getAsDouble()));
                        blocks.add(String.join(" / ", w));
                    }
                    b.append(String.format(
                            Locale.ROOT,
                            "| %s | %s | x%d | %s | %s |%n",
                            r.get("row").getAsString(),
                            options(r),
                            r.get("scale").getAsInt(),
                            ExperimentReport.title(d.getKey()),
                            String.join("; ", blocks)));
                }
            }
        }
        return b.toString();
    }

    private static String options(JsonObject r) {
        List<String> o = new ArrayList<>();
        r.getAsJsonObject("options")
                .entrySet()
                .forEach(e -> o.add(e.getKey() + "=" + e.getValue().getAsString()));
        return o.isEmpty() ? "defaults" : String.join(", ", o);
    }

    private static String series(JsonObject r) {
        String o = options(r);
        return r.get("row").getAsString() + (o.equals("defaults") ? "" : " (" + o + ")");
    }

    /** Mean validation accuracy against log10(lr), one line per (row, scale, options). */
    static void lrPlot(ChartWriter charts, JsonObject summary, Path png) throws IOException {
        Map<String, List<double[]>> lines = new LinkedHashMap<>();
        for (JsonElement e : summary.getAsJsonArray("grid")) {
            JsonObject r = e.getAsJsonObject();
            lines.computeIfAbsent(series(r) + " x" + r.get("scale").getAsInt(), k -> new ArrayList<>())
                    .add(new double[] {
                        Math.log10(r.get("lr").getAsDouble()),
                        100 * r.get("mean_validation_accuracy").getAsDouble()
                    });
        }
        List<ChartWriter.Line> out = new ArrayList<>();
        lines.forEach((name, pts) -> out.add(line(name, pts)));
        charts.lines(
                png,
                new ChartWriter.Size(1000, 600),
                "validation accuracy against learning rate",
                "log10(peak learning rate)",
                "mean validation accuracy (%)",
                out);
    }

    /**
     * At the chosen rates: target and other-domain test accuracy against training tokens, per (row, options) run at
     * more than one budget (stage-1 expert rows, which train on one domain, are left out).
     */
    static void curvesPlot(
            ChartWriter charts, JsonObject summary, List<String> targets, List<String> evalNames, Path png)
            throws IOException {
        Map<String, List<double[]>> lines = new LinkedHashMap<>();
        List<String> others =
                evalNames.stream().filter(d -> !targets.contains(d)).toList();
        for (JsonElement e : summary.getAsJsonArray("chosen")) {
            JsonObject r = e.getAsJsonObject();
            if (r.get("steps").getAsInt() == 0 || r.get("row").getAsString().startsWith("expert-")) continue;
            double x = r.get("train_tokens_seen").getAsDouble();
            lines.computeIfAbsent(series(r) + " target", k -> new ArrayList<>())
                    .add(new double[] {x, 100 * r.get("test_target_accuracy").getAsDouble()});
            if (!others.isEmpty())
                lines.computeIfAbsent(
                                series(r) + " "
                                        + String.join(
                                                "+",
                                                others.stream()
                                                        .map(ExperimentReport::title)
                                                        .toList()),
                                k -> new ArrayList<>())
                        .add(new double[] {x, 100 * r.get("test_other_accuracy").getAsDouble()});
        }
        List<ChartWriter.Line> out = new ArrayList<>();
        lines.forEach((name, pts) -> {
            if (pts.size() < 2) return; // one budget: no curve
            pts.sort((a, b) -> Double.compare(a[0], b[0]));
            out.add(line(name, pts));
        });
        if (out.isEmpty()) return;
        charts.lines(
                png,
                new ChartWriter.Size(1100, 650),
                "test accuracy at the chosen learning rate against training tokens",
                "training tokens per method",
                "test accuracy (%)",
                out);
    }

    private static ChartWriter.Line line(String name, List<double[]> pts) {
        double[] x = new double[pts.size()], y = new double[pts.size()];
        for (int i = 0; i < pts.size(); i++) {
            x[i] = pts.get(i)[0];
            y[i] = pts.get(i)[1];
        }
        return new ChartWriter.Line(name, x, y, true);
    }

    // ================================================================= helpers

    static String methodIds(Set<Method> methods) {
        return String.join(",", methods.stream().sorted().map(Method::id).toList());
    }

    /** 0.001, 3e-04 → 0.0003: the shortest plain decimal. */
    static String number(double v) {
        return java.math.BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
    }

    private static String shortHash(String s) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(h, 0, 4);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String pretty(JsonObject o) {
        return new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n";
    }
}
