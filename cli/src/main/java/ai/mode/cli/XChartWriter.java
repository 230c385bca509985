package ai.mode.cli;

import ai.mode.model.train.ChartWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The CLI's {@link ChartWriter}: headless XChart PNGs. It lives here, not in the model, so that the model artifact
 * does not pull a plotting library into the frameworks that embed it.
 */
public final class XChartWriter implements ChartWriter {
    @Override
    public void lines(Path png, Size size, String title, String xTitle, String yTitle, List<Line> lines)
            throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder()
                .width(size.width())
                .height(size.height())
                .title(title)
                .xAxisTitle(xTitle)
                .yAxisTitle(yTitle)
                .build();
        chart.getStyler().setMarkerSize(6);
        for (Line l : lines) {
            XYSeries s = chart.addSeries(l.name(), l.x(), l.y());
            s.setMarker(l.markers() ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
        }
        save(chart, png);
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
        System.setProperty("java.awt.headless", "true");
        CategoryChart chart = new CategoryChartBuilder()
                .width(size.width())
                .height(size.height())
                .title(title)
                .xAxisTitle(xTitle)
                .yAxisTitle(yTitle)
                .build();
        chart.getStyler().setStacked(true);
        chart.getStyler().setYAxisMax(yMax);
        for (Bars b : series) chart.addSeries(b.name(), categories, b.values());
        save(chart, png);
    }

    private static void save(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart, Path png) throws IOException {
        if (png.getParent() != null) Files.createDirectories(png.getParent());
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
