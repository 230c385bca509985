package ai.mode.model.mode;

import ai.mode.model.train.ChartWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A {@link ChartWriter} for the model's tests, which run without a plotting library: instead of a PNG it writes the
 * chart's title and series names as text, so a test can check what the report asked to draw.
 */
public final class RecordingChartWriter implements ChartWriter {
    @Override
    public void lines(Path png, Size size, String title, String xTitle, String yTitle, List<Line> lines)
            throws IOException {
        for (Line l : lines) {
            if (l.x().length != l.y().length) throw new IllegalArgumentException("line " + l.name() + " x/y lengths");
        }
        write(png, title, lines.stream().map(Line::name).collect(Collectors.toList()));
    }

    @Override
    public void stackedBars(
            Path png,
            Size size,
            String title,
            String xTitle,
            String yTitle,
            List<String> categories,
            List<Bars> series,
            double yMax)
            throws IOException {
        for (Bars b : series) {
            if (b.values().size() != categories.size()) throw new IllegalArgumentException("bars " + b.name());
        }
        write(png, title, series.stream().map(Bars::name).collect(Collectors.toList()));
    }

    private static void write(Path png, String title, List<String> names) throws IOException {
        Files.writeString(png, title + "\n" + String.join("\n", names) + "\n");
    }
}
