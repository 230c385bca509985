// `mode experiment --sweep` end to end on a tiny pretrained run: every grid point gets its folder, a second run reuses
// them all, a point whose completion marker is gone runs again, and the summary chooses each row's learning rate by
// validation accuracy.
package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExperimentSweepCliTest {
    private static Path corpus(Path dir, String name, String[] words, long seed) throws Exception {
        Path c = dir.resolve(name);
        Files.createDirectories(c);
        SplittableRandom r = new SplittableRandom(seed);
        for (int d = 0; d < 30; d++) {
            StringBuilder sb = new StringBuilder();
            for (int s = 0; s < 20; s++) {
                for (int w = 0; w < 6; w++)
                    sb.append(words[r.nextInt(words.length)]).append(' ');
                sb.append(".\n");
            }
            Files.writeString(c.resolve("doc" + d + ".txt"), sb.toString());
        }
        return c;
    }

    private static long count(String text, String part) {
        return text.lines().filter(l -> l.contains(part)).count();
    }

    @Test
    void sweepRunsEveryPointOnceReusesFinishedOnesAndChoosesByValidation(@TempDir Path dir) throws Exception {
        Path general = corpus(dir, "general", new String[] {"the", "cat", "sat", "on", "a", "mat", "dog", "ran"}, 1);
        Path alpha = corpus(dir, "alpha", new String[] {"one", "two", "three", "four", "plus", "equals"}, 2);
        Path beta = corpus(dir, "beta", new String[] {"def", "return", "if", "else", "print", "x"}, 3);
        Path run = dir.resolve("run");
        String[] r = CliEndToEndTest.run(
                "pretrain",
                "--out",
                run.toString(),
                "--corpus",
                general.toString(),
                "--vocab",
                "300",
                "--config",
                "hidden_size=16,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1,intermediate_size=24",
                "--steps",
                "3",
                "--batch",
                "2",
                "--seq",
                "16",
                "--eval-windows",
                "2",
                "--threads",
                "2",
                "-q");
        assertEquals("0", r[0], r[2]);
        Path grid = dir.resolve("grid.json");
        Files.writeString(
                grid,
                "{\"grids\": [{\"method\": [\"lora\", \"mode\"], \"lr\": [0.001, 0.01]},"
                        + " {\"method\": \"lora\", \"lr\": 0.01, \"merge\": \"mixture\", \"scale\": [1, 2]}]}");
        Path out = dir.resolve("sweep");
        String[] args = {
            "experiment",
            "--checkpoint",
            run.toString(),
            "--out",
            out.toString(),
            "--sweep",
            grid.toString(),
            "--targets",
            alpha + "," + beta,
            "--eval",
            alpha + "," + beta,
            "--stage1-steps",
            "1",
            "--stage2-steps",
            "1",
            "--batch",
            "2",
            "--seq",
            "16",
            "--eval-windows",
            "2",
            "--val-windows",
            "2",
            "--threads",
            "2",
            "-q"
        };
        r = CliEndToEndTest.run(args);
        assertEquals("0", r[0], r[2]);
        // the second grid's budget-1 point is the first grid's LoRA point at 0.01 (merge does not apply to LoRA)
        assertEquals(5, count(r[1], ": running in "), r[1]);
        for (String f : List.of("sweep.json", "sweep.md", "sweep-lr.png", "sweep-curves.png"))
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        List<Path> points;
        try (Stream<Path> s = Files.list(out.resolve("points"))) {
            points = s.sorted().toList();
        }
        assertEquals(5, points.size());
        for (Path p : points) {
            assertTrue(Files.isRegularFile(p.resolve("point.json")), p + " completion marker");
            assertTrue(Files.isRegularFile(p.resolve("results.json")), p + " results");
        }
        String firstSummary = Files.readString(out.resolve("sweep.json"));

        r = CliEndToEndTest.run(args);
        assertEquals("0", r[0], r[2]);
        assertEquals(5, count(r[1], "reusing the finished run"), r[1]);
        assertEquals(0, count(r[1], ": running in "), r[1]);
        assertEquals(
                firstSummary, Files.readString(out.resolve("sweep.json")), "a reused sweep gives the same summary");

        Files.delete(points.get(0).resolve("point.json"));
        r = CliEndToEndTest.run(args);
        assertEquals("0", r[0], r[2]);
        assertEquals(1, count(r[1], ": running in "), r[1]);
        assertEquals(4, count(r[1], "reusing the finished run"), r[1]);

        JsonObject summary = JsonParser.parseString(Files.readString(out.resolve("sweep.json")))
                .getAsJsonObject();
        Map<String, Double> bestVal = new HashMap<>();
        for (JsonElement e : summary.getAsJsonArray("grid")) {
            JsonObject g = e.getAsJsonObject();
            bestVal.merge(
                    g.get("row").getAsString() + " x" + g.get("scale").getAsInt(),
                    g.get("mean_validation_accuracy").getAsDouble(),
                    Math::max);
        }
        List<String> rows = List.of("lora x1", "lora x2", "expert-alpha x1", "expert-beta x1", "mode-2x x1");
        assertEquals(rows.size(), summary.getAsJsonArray("chosen").size());
        for (JsonElement e : summary.getAsJsonArray("chosen")) {
            JsonObject c = e.getAsJsonObject();
            String row = c.get("row").getAsString() + " x" + c.get("scale").getAsInt();
            assertTrue(rows.contains(row), row);
            assertEquals(bestVal.get(row), c.get("mean_validation_accuracy").getAsDouble(), row + ": best validation");
            assertEquals(
                    row.equals("lora x2") ? 1 : 2, c.getAsJsonArray("lrs_tried").size(), row);
            assertTrue(c.getAsJsonObject("test_accuracy").has("alpha"), row + ": test scores of the chosen");
        }
        for (JsonElement e : summary.getAsJsonArray("grid"))
            assertTrue(!e.getAsJsonObject().has("test_accuracy"), "the grid table shows no test score");
    }
}
