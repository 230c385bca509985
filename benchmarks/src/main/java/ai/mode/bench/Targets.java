package ai.mode.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Summary lines comparing measured ratios with the performance targets: SGEMM at the model's shapes at least 0.9x
 * OpenBLAS as a geometric mean with no shape below 0.75x, and training at least 1.25x PyTorch. The lines state the
 * ratios whatever they are, and the SGEMM ratio against any other peer (PyTorch's MKL) as a reference line.
 */
public final class Targets {
    public static final double SGEMM_TARGET = 0.9;
    /** No single shape may fall below this ratio. */
    public static final double SGEMM_FLOOR = 0.75;

    public static final double TRAIN_TARGET = 1.25;

    private Targets() {}

    /** Geometric mean of positive values. */
    static double geomean(List<Double> xs) {
        if (xs.isEmpty()) return Double.NaN;
        double s = 0;
        for (double x : xs) s += Math.log(x);
        return Math.exp(s / xs.size());
    }

    public static String summary(BenchReport report) {
        StringBuilder sb = new StringBuilder();
        Map<String, List<BenchReport.Row>> byPeer = new LinkedHashMap<>();
        for (BenchReport.Row r : report.rows()) {
            if (r.group().equals("sgemm") && !r.name().equals("square") && Double.isFinite(r.ratio())) {
                byPeer.computeIfAbsent(r.peer(), k -> new ArrayList<>()).add(r);
            }
        }
        for (Map.Entry<String, List<BenchReport.Row>> e : byPeer.entrySet()) {
            List<Double> ratios = new ArrayList<>();
            List<String> below = new ArrayList<>();
            for (BenchReport.Row r : e.getValue()) {
                ratios.add(r.ratio());
                if (r.ratio() < SGEMM_TARGET) below.add(String.format(Locale.ROOT, "%s %.2fx", r.name(), r.ratio()));
            }
            double g = geomean(ratios);
            if (!e.getKey().startsWith("OpenBLAS")) {
                // The target is set against OpenBLAS; other peers (PyTorch's MKL) are stated for reference.
                sb.append(String.format(
                        Locale.ROOT, "reference SGEMM vs %s at the model's shapes: geomean %.2fx%n", e.getKey(), g));
                continue;
            }
            double lowest =
                    ratios.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
            sb.append(String.format(
                    Locale.ROOT,
                    "target SGEMM >= %.2fx %s at the model's shapes: geomean %.2fx, %d of %d shapes met%s;"
                            + " lowest %.2fx (floor %.2fx) -> %s%n",
                    SGEMM_TARGET,
                    e.getKey(),
                    g,
                    ratios.size() - below.size(),
                    ratios.size(),
                    below.isEmpty() ? "" : " (below: " + String.join(", ", below) + ")",
                    lowest,
                    SGEMM_FLOOR,
                    g >= SGEMM_TARGET && lowest >= SGEMM_FLOOR ? "met" : "NOT met"));
        }
        for (BenchReport.Row r : report.rows()) {
            if (r.group().equals("train") && Double.isFinite(r.ratio())) {
                sb.append(String.format(
                        Locale.ROOT,
                        "target training >= %.2fx %s (%s): %.2fx (%s vs %s tokens/s) -> %s%n",
                        TRAIN_TARGET,
                        r.peer(),
                        r.name(),
                        r.ratio(),
                        BenchReport.num(r.value()),
                        BenchReport.num(r.peerValue()),
                        r.ratio() >= TRAIN_TARGET ? "met" : "NOT met"));
            }
        }
        return sb.toString();
    }
}
