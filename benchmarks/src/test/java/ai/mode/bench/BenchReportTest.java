// The report's table, Markdown and JSON renderings and its peer ratios.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchReportTest {

    private static BenchReport sample() {
        return new BenchReport()
                .meta("cpu", "test cpu")
                .ceiling("GFLOP/s", 100)
                .add(BenchReport.Row.of("sgemm", "attn q/o fwd", "8x8x8 NT", 0.002, 45, "GFLOP/s", 0.45)
                        .withPeer("OpenBLAS", 50))
                .add(BenchReport.Row.of("call", "ffm", "", 1e-8, 10, "ns/call", Double.NaN)
                        .withPeer("JNI", 20))
                .add(BenchReport.Row.skipped("gpu", "kernels", "no CUDA device: none | here"));
    }

    @Test
    void ratioIsOursOverPeerAndInvertedForCallLatency() {
        BenchReport r = sample();
        assertEquals(0.9, r.rows().get(0).ratio(), 1e-12);
        assertEquals(2.0, r.rows().get(1).ratio(), 1e-12);
        assertTrue(Double.isNaN(r.rows().get(2).ratio()));
    }

    @Test
    void tableHasMetadataHeaderAndOneLinePerRow() {
        String[] lines = sample().table().split("\n");
        assertEquals("cpu: test cpu", lines[0]);
        assertEquals("measured peak GFLOP/s: 100.0", lines[1]);
        assertTrue(lines[2].startsWith("group"));
        assertTrue(lines[3].matches("-+"));
        assertTrue(lines[4].contains("attn q/o fwd") && lines[4].contains("0.90x") && lines[4].contains("45%"));
        assertTrue(lines[6].endsWith("no CUDA device: none | here"));
        assertEquals(7, lines.length);
        // columns align: every row's "benchmark" column starts at the same offset as the header's
        int col = lines[2].indexOf("benchmark");
        assertEquals(col, lines[4].indexOf("attn q/o fwd"));
        assertEquals(col, lines[6].indexOf("kernels"));
    }

    @Test
    void jsonCarriesEveryFiniteFieldAndOmitsTheRest(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sub/r.json");
        sample().writeJson(file);
        JsonObject root = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        assertEquals("test cpu", root.getAsJsonObject("meta").get("cpu").getAsString());
        assertEquals(100.0, root.getAsJsonObject("ceilings").get("GFLOP/s").getAsDouble());
        JsonObject first = root.getAsJsonArray("rows").get(0).getAsJsonObject();
        assertEquals(45.0, first.get("value").getAsDouble());
        assertEquals(0.9, first.get("ratio").getAsDouble(), 1e-12);
        assertEquals("OpenBLAS", first.get("peer").getAsString());
        JsonObject skipped = root.getAsJsonArray("rows").get(2).getAsJsonObject();
        assertFalse(skipped.has("value"));
        assertFalse(skipped.has("seconds"));
        assertEquals("no CUDA device: none | here", skipped.get("note").getAsString());
    }

    @Test
    void jsonReadsBackToTheSameTable() {
        BenchReport r = sample();
        BenchReport back = BenchReport.fromJson(r.toJson());
        assertEquals(r.table(), back.table());
        assertEquals(r.toMarkdown(), back.toMarkdown());
        org.junit.jupiter.api.Assertions.assertThrows(
                IllegalArgumentException.class, () -> BenchReport.fromJson("{\"meta\": {}}"));
        org.junit.jupiter.api.Assertions.assertThrows(
                IllegalArgumentException.class, () -> BenchReport.fromJson("not json"));
    }

    @Test
    void markdownEscapesPipesInCells() {
        String md = sample().toMarkdown();
        assertTrue(md.contains("| group | benchmark |"));
        assertTrue(md.contains("no CUDA device: none \\| here"));
        assertEquals(3 + 2, md.lines().filter(l -> l.startsWith("|")).count());
    }

    @Test
    void repeatedRunsMergeToMediansWithPerRunRatios() {
        java.util.List<BenchReport> runs = new java.util.ArrayList<>();
        double[][] v = {{40, 50}, {45, 50}, {60, 40}};
        for (double[] x : v) {
            runs.add(new BenchReport()
                    .meta("cpu", "c")
                    .ceiling("GFLOP/s", x[0] * 2)
                    .add(BenchReport.Row.of("sgemm", "s", "1x1x1 NN", 1 / x[0], x[0], "GFLOP/s", x[0] / 100)
                            .withPeer("OpenBLAS", x[1]))
                    .add(BenchReport.Row.of("op", "o", "", 1, x[1], "GB/s", Double.NaN))
                    .add(BenchReport.Row.skipped("gpu", "kernels", "no CUDA device")));
        }
        BenchReport m = BenchReport.medianOf(runs);
        assertEquals(90, m.ceilingOf("GFLOP/s"));
        BenchReport.Row s = m.rows().get(0);
        assertEquals(45, s.value());
        assertEquals(50, s.peerValue());
        assertEquals("ours/peer per run: 0.80x 0.90x 1.50x", s.note());
        assertEquals(0.9, s.ratio(), 1e-12);
        assertEquals("range 40.00 - 50.00", m.rows().get(1).note());
        assertEquals("no CUDA device", m.rows().get(2).note());
        assertEquals(runs.get(0), BenchReport.medianOf(runs.subList(0, 1)));
    }

    @Test
    void mergedRatioIsTheMedianOfPairedRunRatiosAndSurvivesJson() {
        // The machine slows down over the runs for both: the medians pair ours of one run with the peer of
        // another (47 / 42.5 = 1.106), while the runs' own ratios (1.2, 1.111, 1.1, 1.2) have the median 1.156.
        java.util.List<BenchReport> runs = new java.util.ArrayList<>();
        double[][] v = {{60, 50}, {50, 45}, {44, 40}, {36, 30}};
        for (double[] x : v) {
            runs.add(new BenchReport()
                    .add(BenchReport.Row.of("train", "t", "8x256", 1, x[0], "tokens/s", Double.NaN)
                            .withPeer("P", x[1])));
        }
        BenchReport merged = BenchReport.medianOf(runs);
        BenchReport.Row m = merged.rows().get(0);
        assertEquals(47, m.value());
        assertEquals(42.5, m.peerValue());
        assertEquals((50.0 / 45 + 1.2) / 2, m.ratio(), 1e-12);
        assertEquals(
                m.ratio(), BenchReport.fromJson(merged.toJson()).rows().get(0).ratio(), 1e-12);
        assertTrue(Double.isNaN(runs.get(0).rows().get(0).runRatio()));
        assertEquals(60.0 / 50, runs.get(0).rows().get(0).ratio(), 1e-12);
    }

    @Test
    void numbersKeepThreeToFourSignificantDigits() {
        assertEquals("1,235", BenchReport.num(1234.6));
        assertEquals("123.5", BenchReport.num(123.46));
        assertEquals("12.35", BenchReport.num(12.346));
        assertEquals("1.235", BenchReport.num(1.2346));
        assertEquals("", BenchReport.num(Double.NaN));
        assertEquals("2.50 ms", BenchReport.time(0.0025));
        assertEquals("12.0 ns", BenchReport.time(1.2e-8));
    }
}
