package ai.mode.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import ai.mode.model.train.ChartWriter;
import ai.mode.model.train.LossPlot;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI registers XChart as the model's {@link ChartWriter}, and it writes PNGs of the asked size. */
class XChartWriterTest {
    @Test
    void theCliRegistersXChart() {
        assertInstanceOf(XChartWriter.class, ChartWriter.find().orElseThrow());
    }

    @Test
    void lossPlotWritesAPngOfTheChartSize(@TempDir Path dir) throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        Files.writeString(metrics, """
                {"type":"train","step":1,"loss":5.0}
                {"type":"train","step":2,"loss":4.0}
                {"type":"val","step":2,"val_loss":4.5}
                """);
        Path png = dir.resolve("plots").resolve("loss.png");
        LossPlot.write(metrics, png, "t", Map.of("unigram", 6.0));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());
        assertEquals(520, img.getHeight());
    }

    @Test
    void stackedBarsWriteAPng(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("bars.png");
        new XChartWriter()
                .stackedBars(
                        png,
                        new ChartWriter.Size(300, 200),
                        "gates",
                        "block",
                        "weight",
                        List.of("a", "b"),
                        List.of(new ChartWriter.Bars("backbone", List.of(0.75, 0.5))),
                        1.0);
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(300, img.getWidth());
        assertEquals(200, img.getHeight());
    }
}
