package ai.mode.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The result of one {@code mode bench} run: machine facts, the measured ceilings and one row per benchmark, rendered as
 * one aligned text table ({@link #table()}) and as JSON with the same content ({@link #toJson()}) for later comparison.
 */
public final class BenchReport {

    /**
     * One measurement.
     *
     * @param group     section, e.g. {@code sgemm}, {@code op}, {@code train}
     * @param name      what ran, e.g. {@code attention fwd}
     * @param shape     its shape, e.g. {@code 2048x256x688 NT}
     * @param seconds   median seconds per call (NaN when not timed)
     * @param value     our throughput in {@code unit}
     * @param unit      {@code GFLOP/s}, {@code GB/s}, {@code tokens/s}, {@code ns/call}
     * @param ofPeak    value / the machine's measured ceiling for that unit (NaN when none applies)
     * @param peer      the peer's name (empty when none)
     * @param peerValue the peer's throughput in the same unit (NaN when none)
     * @param note      anything the reader must know (empty when nothing)
     * @param runRatio  for a row merged from repeated runs, the median of the per-run ratios ours/peer; NaN otherwise
     */
    public record Row(
            String group,
            String name,
            String shape,
            double seconds,
            double value,
            String unit,
            double ofPeak,
            String peer,
            double peerValue,
            String note,
            double runRatio) {

        /**
         * Ours divided by the peer's (for ns/call, the peer's divided by ours, so > 1 always means we are faster).
         * A merged row gives the median of its runs' ratios: each run measures ours and the peer moments apart,
         * so its ratio cancels the machine's drift between runs, which the ratio of the two medians does not.
         */
        public double ratio() {
            if (Double.isFinite(runRatio)) return runRatio;
            if (!(peerValue > 0) || !(value > 0)) return Double.NaN;
            return unit.equals("ns/call") ? peerValue / value : value / peerValue;
        }

        public static Row of(
                String group, String name, String shape, double seconds, double value, String unit, double ofPeak) {
            return new Row(group, name, shape, seconds, value, unit, ofPeak, "", Double.NaN, "", Double.NaN);
        }

        public Row withPeer(String peerName, double peerVal) {
            return new Row(group, name, shape, seconds, value, unit, ofPeak, peerName, peerVal, note, runRatio);
        }

        public Row withNote(String n) {
            return new Row(group, name, shape, seconds, value, unit, ofPeak, peer, peerValue, n, runRatio);
        }

        /** A row that says why something did not run. */
        public static Row skipped(String group, String name, String why) {
            return new Row(group, name, "", Double.NaN, Double.NaN, "", Double.NaN, "", Double.NaN, why, Double.NaN);
        }
    }

    private final Map<String, String> meta = new LinkedHashMap<>();
    private final Map<String, Double> ceilings = new LinkedHashMap<>();
    private final List<Row> rows = new ArrayList<>();

    /** Records a fact about the run (machine, date, command, library versions). */
    public BenchReport meta(String key, String value) {
        meta.put(key, value);
        return this;
    }

    public Map<String, String> meta() {
        return meta;
    }

    /** Records a measured ceiling, e.g. {@code GFLOP/s} -> 180. */
    public BenchReport ceiling(String unit, double value) {
        ceilings.put(unit, value);
        return this;
    }

    /** The measured ceiling for {@code unit}, or NaN. */
    public double ceilingOf(String unit) {
        return ceilings.getOrDefault(unit, Double.NaN);
    }

    public BenchReport add(Row r) {
        rows.add(r);
        return this;
    }

    public List<Row> rows() {
        return List.copyOf(rows);
    }

    /**
     * Merges repeated runs of the same suite: metadata of the first run, the median of every ceiling, and per
     * row (matched by group, name, shape and peer) the median time, value, fraction of peak and peer value, and
     * as ours/peer the median of the runs' ratios. With more than one run, rows with a peer note ours/peer of
     * every run, others the range of values.
     */
    public static BenchReport medianOf(List<BenchReport> runs) {
        if (runs.isEmpty()) throw new IllegalArgumentException("no runs to merge");
        BenchReport first = runs.getFirst();
        if (runs.size() == 1) return first;
        BenchReport out = new BenchReport();
        first.meta.forEach(out::meta);
        for (String unit : first.ceilings.keySet()) {
            out.ceiling(
                    unit,
                    Stats.median(runs.stream()
                            .mapToDouble(r -> r.ceilingOf(unit))
                            .filter(Double::isFinite)
                            .toArray()));
        }
        for (Row r : first.rows) {
            List<Row> same = new ArrayList<>();
            for (BenchReport run : runs) {
                for (Row x : run.rows) {
                    if (x.group.equals(r.group)
                            && x.name.equals(r.name)
                            && x.shape.equals(r.shape)
                            && x.peer.equals(r.peer)) {
                        same.add(x);
                        break;
                    }
                }
            }
            double[] values = same.stream()
                    .mapToDouble(Row::value)
                    .filter(Double::isFinite)
                    .toArray();
            if (values.length == 0) {
                out.add(r);
                continue;
            }
            double seconds =
                    medianFinite(same.stream().mapToDouble(Row::seconds).toArray());
            double ofPeak = medianFinite(same.stream().mapToDouble(Row::ofPeak).toArray());
            double peerValue =
                    medianFinite(same.stream().mapToDouble(Row::peerValue).toArray());
            String spread;
            double[] ratios = same.stream()
                    .mapToDouble(Row::ratio)
                    .filter(Double::isFinite)
                    .toArray();
            double runRatio = ratios.length > 0 ? Stats.median(ratios) : Double.NaN;
            if (ratios.length > 0) {
                StringBuilder sb = new StringBuilder("ours/peer per run:");
                for (double x : ratios) sb.append(' ').append(ratio(x));
                spread = sb.toString();
            } else {
                double lo = java.util.Arrays.stream(values).min().orElseThrow(),
                        hi = java.util.Arrays.stream(values).max().orElseThrow();
                spread = "range " + num(lo) + " - " + num(hi);
            }
            String note = r.note.isEmpty() ? spread : r.note + "; " + spread;
            out.add(new Row(
                    r.group,
                    r.name,
                    r.shape,
                    seconds,
                    Stats.median(values),
                    r.unit,
                    ofPeak,
                    r.peer,
                    peerValue,
                    note,
                    runRatio));
        }
        return out;
    }

    /** Reads a report written by {@link #writeJson}; absent numbers come back as NaN. */
    public static BenchReport fromJson(String json) {
        JsonObject root;
        try {
            root = com.google.gson.JsonParser.parseString(json).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("not a mode bench JSON report: " + e.getMessage(), e);
        }
        if (!root.has("rows")) throw new IllegalArgumentException("not a mode bench JSON report: no \"rows\"");
        BenchReport r = new BenchReport();
        if (root.has("meta"))
            root.getAsJsonObject("meta")
                    .entrySet()
                    .forEach(e -> r.meta(e.getKey(), e.getValue().getAsString()));
        if (root.has("ceilings"))
            root.getAsJsonObject("ceilings")
                    .entrySet()
                    .forEach(e -> r.ceiling(e.getKey(), e.getValue().getAsDouble()));
        for (com.google.gson.JsonElement el : root.getAsJsonArray("rows")) {
            JsonObject o = el.getAsJsonObject();
            r.add(new Row(
                    str(o, "group"),
                    str(o, "name"),
                    str(o, "shape"),
                    dbl(o, "seconds"),
                    dbl(o, "value"),
                    str(o, "unit"),
                    dbl(o, "of_peak"),
                    str(o, "peer"),
                    dbl(o, "peer_value"),
                    str(o, "note"),
                    dbl(o, "median_run_ratio")));
        }
        return r;
    }

    private static String str(JsonObject o, String key) {
        return o.has(key) ? o.get(key).getAsString() : "";
    }

    private static double dbl(JsonObject o, String key) {
        return o.has(key) ? o.get(key).getAsDouble() : Double.NaN;
    }

    private static double medianFinite(double[] xs) {
        double[] f = java.util.Arrays.stream(xs).filter(Double::isFinite).toArray();
        return f.length == 0 ? Double.NaN : Stats.median(f);
    }

    // ------------------------------------------------------------------ rendering

    private static final String[] HEADER = {
        "group", "benchmark", "shape", "median", "ours", "unit", "of peak", "peer", "peer value", "ours/peer", "note"
    };

    /** One aligned plain-text table: metadata lines, then a header and one line per row. */
    public String table() {
        List<String[]> cells = new ArrayList<>();
        cells.add(HEADER);
        for (Row r : rows) {
            cells.add(new String[] {
                r.group(),
                r.name(),
                r.shape(),
                time(r.seconds()),
                num(r.value()),
                r.unit(),
                pct(r.ofPeak()),
                r.peer(),
                num(r.peerValue()),
                ratio(r.ratio()),
                r.note()
            });
        }
        int[] w = new int[HEADER.length];
        for (String[] c : cells) for (int i = 0; i < c.length; i++) w[i] = Math.max(w[i], c[i].length());
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : meta.entrySet())
            sb.append(e.getKey()).append(": ").append(e.getValue()).append('\n');
        for (Map.Entry<String, Double> e : ceilings.entrySet()) {
            sb.append("measured peak ")
                    .append(e.getKey())
                    .append(": ")
                    .append(num(e.getValue()))
                    .append('\n');
        }
        for (int r = 0; r < cells.size(); r++) {
            String[] c = cells.get(r);
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < c.length; i++) {
                boolean right = i >= 3 && i <= 9 && i != 5 && i != 7;
                line.append(right ? pad(c[i], w[i], true) : pad(c[i], w[i], false))
                        .append(i + 1 < c.length ? "  " : "");
            }
            sb.append(line.toString().stripTrailing()).append('\n');
            if (r == 0) {
                int total = 0;
                for (int x : w) total += x + 2;
                sb.append("-".repeat(Math.max(0, total - 2))).append('\n');
            }
        }
        return sb.toString();
    }

    /** The same content as JSON: {@code meta}, {@code ceilings}, {@code rows} (NaN fields omitted). */
    public String toJson() {
        JsonObject root = new JsonObject();
        JsonObject m = new JsonObject();
        meta.forEach(m::addProperty);
        root.add("meta", m);
        JsonObject c = new JsonObject();
        ceilings.forEach(c::addProperty);
        root.add("ceilings", c);
        JsonArray arr = new JsonArray();
        for (Row r : rows) {
            JsonObject o = new JsonObject();
            o.addProperty("group", r.group());
            o.addProperty("name", r.name());
            if (!r.shape().isEmpty()) o.addProperty("shape", r.shape());
            putFinite(o, "seconds", r.seconds());
            putFinite(o, "value", r.value());
            if (!r.unit().isEmpty()) o.addProperty("unit", r.unit());
            putFinite(o, "of_peak", r.ofPeak());
            if (!r.peer().isEmpty()) o.addProperty("peer", r.peer());
            putFinite(o, "peer_value", r.peerValue());
            putFinite(o, "ratio", r.ratio());
            putFinite(o, "median_run_ratio", r.runRatio());
            if (!r.note().isEmpty()) o.addProperty("note", r.note());
            arr.add(o);
        }
        root.add("rows", arr);
        return new GsonBuilder().setPrettyPrinting().create().toJson(root) + "\n";
    }

    /** Writes {@link #toJson()} to {@code file}, creating its folder. */
    public void writeJson(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        Files.writeString(file, toJson(), StandardCharsets.UTF_8);
    }

    /** The table as Markdown: metadata as a bullet list, then one pipe table. */
    public String toMarkdown() {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : meta.entrySet())
            sb.append("- ").append(e.getKey()).append(": ").append(e.getValue()).append('\n');
        for (Map.Entry<String, Double> e : ceilings.entrySet()) {
            sb.append("- measured peak ")
                    .append(e.getKey())
                    .append(": ")
                    .append(num(e.getValue()))
                    .append('\n');
        }
        sb.append('\n').append('|');
        for (String h : HEADER) sb.append(' ').append(h).append(" |");
        sb.append("\n|");
        for (int i = 0; i < HEADER.length; i++) sb.append(i >= 3 && i <= 9 && i != 5 && i != 7 ? "---:|" : "---|");
        sb.append('\n');
        for (Row r : rows) {
            String[] c = {
                r.group(),
                r.name(),
                r.shape(),
                time(r.seconds()),
                num(r.value()),
                r.unit(),
                pct(r.ofPeak()),
                r.peer(),
                num(r.peerValue()),
                ratio(r.ratio()),
                r.note()
            };
            sb.append('|');
            for (String x : c) sb.append(' ').append(x.replace("|", "\\|")).append(" |");
            sb.append('\n');
        }
        return sb.toString();
    }

    /** Writes {@link #toMarkdown()} to {@code file}, creating its folder. */
    public void writeMarkdown(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        Files.writeString(file, toMarkdown(), StandardCharsets.UTF_8);
    }

    private static void putFinite(JsonObject o, String key, double v) {
        if (Double.isFinite(v)) o.addProperty(key, v);
    }

    private static String pad(String s, int width, boolean right) {
        String fill = " ".repeat(Math.max(0, width - s.length()));
        return right ? fill + s : s + fill;
    }

    /** A throughput with 3-4 significant digits. */
    static String num(double v) {
        if (!Double.isFinite(v)) return "";
        double a = Math.abs(v);
        if (a >= 1000) return String.format(Locale.ROOT, "%,.0f", v);
        if (a >= 100) return String.format(Locale.ROOT, "%.1f", v);
        if (a >= 10) return String.format(Locale.ROOT, "%.2f", v);
        return String.format(Locale.ROOT, "%.3f", v);
    }

    static String time(double seconds) {
        if (!Double.isFinite(seconds)) return "";
        if (seconds >= 1) return String.format(Locale.ROOT, "%.2f s", seconds);
        if (seconds >= 1e-3) return String.format(Locale.ROOT, "%.2f ms", seconds * 1e3);
        if (seconds >= 1e-6) return String.format(Locale.ROOT, "%.2f us", seconds * 1e6);
        return String.format(Locale.ROOT, "%.1f ns", seconds * 1e9);
    }

    static String pct(double fraction) {
        return Double.isFinite(fraction) ? String.format(Locale.ROOT, "%.0f%%", fraction * 100) : "";
    }

    static String ratio(double r) {
        return Double.isFinite(r) ? String.format(Locale.ROOT, "%.2fx", r) : "";
    }
}
