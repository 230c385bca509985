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
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * PNG loss curves from metrics.jsonl with XChart (train loss, validation loss, optional baselines). Renders loss curves
 * (headless).
 */
public final class LossPlot {
    private LossPlot() {}

    /**
     * Writes {@code png}: training loss per step (thin), validation loss (markers), and each baseline as a
     * horizontal line (e.g. {@code "unigram" -> 6.1}).
     */
    public static void write(Path metricsJsonl, Path png, String title, Map<String, Double> baselines)
            throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<Double> ts = new ArrayList<>(), tl = new ArrayList<>(), vs = new ArrayList<>(), vl = new ArrayList<>();
        for (String line : Files.readAllLines(metricsJsonl, StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            double step = o.get("step").getAsDouble();
            if ("val".equals(o.get("type").getAsString())) {
                vs.add(step);
                vl.add(o.get("val_loss").getAsDouble());
            } else {
                ts.add(step);
                tl.add(o.get("loss").getAsDouble());
            }
        }
        if (ts.isEmpty()) throw new IOException(metricsJsonl + " holds no training steps to plot");
        XYChart chart = new XYChartBuilder()
                .width(900)
                .height(520)
                .title(title)
                .xAxisTitle("step")
                .yAxisTitle("loss (nats/token)")
                .build();
        chart.getStyler().setMarkerSize(6);
        XYSeries train = chart.addSeries("train loss", ts, tl);
        train.setMarker(SeriesMarkers.NONE);
        if (!vs.isEmpty()) {
            XYSeries val = chart.addSeries("validation loss", vs, vl);
            val.setMarker(SeriesMarkers.CIRCLE);
        }
        double first = ts.get(0), last = ts.get(ts.size() - 1);
        for (Map.Entry<String, Double> b : new LinkedHashMap<>(baselines).entrySet()) {
            XYSeries s =
                    chart.addSeries(b.getKey(), new double[] {first, last}, new double[] {b.getValue(), b.getValue()});
            s.setMarker(SeriesMarkers.NONE);
        }
        if (png.getParent() != null) Files.createDirectories(png.getParent());
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
