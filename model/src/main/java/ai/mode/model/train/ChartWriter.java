package ai.mode.model.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Draws the PNG charts that pretraining and the MoDE experiment write (loss curves, gate weights). The model artifact
 * carries no plotting library: an implementation registers in {@code META-INF/services/ai.mode.model.train.ChartWriter}
 * (the CLI's, {@code ai.mode.cli.XChartWriter}, draws with XChart). Without one {@link #find()} is empty and the
 * PNGs are skipped; the numbers they show are still written ({@code metrics.jsonl}, {@code results.json}).
 */
public interface ChartWriter {
    /** Pixel size of a chart. */
    record Size(int width, int height) {}

    /** One line of an XY chart: {@code x[i], y[i]} points; {@code markers} draws a marker at each point. */
    record Line(String name, double[] x, double[] y, boolean markers) {}

    /** One series of a stacked bar chart: one value per category, in the categories' order. */
    record Bars(String name, List<Double> values) {}

    /** Writes an XY line chart to {@code png}. */
    void lines(Path png, Size size, String title, String xTitle, String yTitle, List<Line> lines) throws IOException;

    /** Writes a stacked bar chart (y axis from 0 to {@code yMax}) to {@code png}. */
    void stackedBars(
            Path png,
            Size size,
            String title,
            String xTitle,
            String yTitle,
            List<String> categories,
            List<Bars> series,
            double yMax)
            throws IOException;

    /** The first registered implementation, or empty when none is on the class or module path. */
    static Optional<ChartWriter> find() {
        return ServiceLoader.load(ChartWriter.class).findFirst();
    }
}
