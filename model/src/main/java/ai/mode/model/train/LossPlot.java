package ai.mode.model.train;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * PNG loss curves from metrics.jsonl (train loss, validation loss, optional baselines), drawn by the registered
 * {@link ChartWriter}; without one the PNG is skipped.
 */
public final class LossPlot {
    private static final System.Logger LOG = System.getLogger(LossPlot.class.getName());

    private LossPlot() {}

    /**
     * Writes {@code png}: training loss per step (thin), validation loss (markers), and each baseline as a
     * horizontal line (e.g. {@code "unigram" -> 6.1}).
     */
    public static void write(Path metricsJsonl, Path png, String title, Map<String, Double> baselines)
            throws IOException {
        List<Double> ts = new ArrayList<>(), tl = new ArrayList<>(), vs = new ArrayList<>(), vl = new ArrayList<>();
        for (String line : Files.readAllLines(metricsJsonl, StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            double step = o.get("step").getAsDouble();
            String type = o.get("type").getAsString();
            if ("val".equals(type)) {
                vs.add(step);
                vl.add(o.get("val_loss").getAsDouble());
            } else if ("train".equals(type)) {
                ts.add(step);
                tl.add(o.get("loss").getAsDouble());
            }
        }
        if (ts.isEmpty()) throw new IOException(metricsJsonl + " holds no training steps to plot");
        Optional<ChartWriter> writer = ChartWriter.find();
        if (writer.isEmpty()) {
            LOG.log(System.Logger.Level.DEBUG, "no ChartWriter on the classpath; {0} not drawn", png);
            return;
        }
        List<ChartWriter.Line> lines = new ArrayList<>();
        lines.add(new ChartWriter.Line("train loss", doubles(ts), doubles(tl), false));
        if (!vs.isEmpty()) lines.add(new ChartWriter.Line("validation loss", doubles(vs), doubles(vl), true));
        double first = ts.get(0), last = ts.get(ts.size() - 1);
        for (Map.Entry<String, Double> b : new LinkedHashMap<>(baselines).entrySet()) {
            lines.add(new ChartWriter.Line(
                    b.getKey(), new double[] {first, last}, new double[] {b.getValue(), b.getValue()}, false));
        }
        writer.get().lines(png, new ChartWriter.Size(900, 520), title, "step", "loss (nats/token)", lines);
    }

    private static double[] doubles(List<Double> v) {
        return v.stream().mapToDouble(Double::doubleValue).toArray();
    }
}
