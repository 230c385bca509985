// The MoDE stages through the CLI, killed with SIGKILL in the middle of a run and resumed with --resume: `mode
// expert`, `mode compose` and `mode baseline` each end with the bits of a run that was never interrupted (the
// file they write and every deterministic field of metrics.jsonl), and a rerun without --resume leaves the
// earlier run's metrics as they were.
package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.cli.Main;
import ai.mode.model.io.CheckpointStore;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.SafeTensors;
import ai.mode.tests.parallel.RendezvousTest;
import ai.mode.tests.parallel.TrainCliTest;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StageKillTest {
    private static final int STEPS = 40;
    private static final Pattern STEP_LINE = Pattern.compile(": step (\\d+)/" + STEPS + " ");

    @TempDir
    static Path dir;

    static Path corpus, backbone;

    @BeforeAll
    static void backbone() throws Exception {
        String[] words = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "ball"};
        corpus = TrainCliTest.writeCorpus(dir.resolve("stories"), words, 16, 3);
        backbone = TrainCliTest.pretrainTiny(dir.resolve("base"), corpus);
    }

    /** The options every run of a stage shares: tiny batches, a checkpoint every 2 steps. */
    private static List<String> args(String command, Path out, String... extra) {
        List<String> a =
                new ArrayList<>(List.of(command, "--checkpoint", backbone.toString(), "--out", out.toString()));
        a.addAll(List.of(extra));
        a.addAll(List.of(
                "--steps",
                Integer.toString(STEPS),
                "--checkpoint-every",
                "2",
                "--batch",
                "4",
                "--seq",
                "12",
                "--val-windows",
                "4",
                "--eval-windows",
                "4",
                "--threads",
                "1"));
        return a;
    }

    private static String[] quiet(List<String> args, String... more) {
        List<String> a = new ArrayList<>(args);
        a.add("-q");
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    /**
     * Runs {@code args} straight into {@code straight}; in a child JVM into {@code killed}, killed (SIGKILL) once its
     * progress shows a step after the first checkpoint; then resumed in this JVM. {@code run} is where the stage
     * writes (the out folder, or its method's sub-folder), {@code file} the file it writes at the end.
     */
    private static void killAndResume(List<String> straight, List<String> killed, Path run, Path killedRun, String file)
            throws Exception {
        String[] r = TrainCliTest.run(quiet(straight));
        assertEquals("0", r[0], r[2]);
        Process p = new ProcessBuilder(RendezvousTest.childJvm(Main.class.getName(), killed.toArray(String[]::new)))
                .redirectErrorStream(true)
                .start();
        int seen = 0;
        try (BufferedReader out =
                new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; seen < 3 && (line = out.readLine()) != null; ) {
                Matcher m = STEP_LINE.matcher(line);
                if (m.find()) seen = Integer.parseInt(m.group(1)); // step 2's checkpoint is complete
            }
        } finally {
            p.destroyForcibly(); // SIGKILL: no cleanup code runs, a checkpoint may be half written
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        }
        assertTrue(seen >= 3, "the child never got past its first checkpoint");
        long at = new CheckpointStore(killedRun.resolve("checkpoints"), 0)
                .latest()
                .orElseThrow()
                .step()
                .orElseThrow();
        assertTrue(at >= 2 && at < STEPS, "killed at step " + at + " of " + STEPS + ": raise STEPS");

        // a rerun without --resume is refused and leaves the killed run's metrics as they were
        List<String> before = Files.readAllLines(killedRun.resolve("metrics.jsonl"));
        r = TrainCliTest.run(quiet(killed));
        assertEquals("1", r[0]);
        assertTrue(
                r[2].contains("already holds checkpoints; pass --resume")
                        && r[2].strip().lines().count() == 1,
                r[2]);
        assertEquals(before, Files.readAllLines(killedRun.resolve("metrics.jsonl")));

        r = TrainCliTest.run(quiet(killed, "--resume"));
        assertEquals("0", r[0], r[2]);
        NamedTensors want = SafeTensors.read(run.resolve(file)), got = SafeTensors.read(killedRun.resolve(file));
        assertEquals(want.names(), got.names());
        for (String n : want.names()) assertArrayEquals(want.data(n), got.data(n), n);
        assertEquals(metrics(run.resolve("metrics.jsonl")), metrics(killedRun.resolve("metrics.jsonl")));
        try (Stream<Path> s = Files.list(killedRun.resolve("checkpoints"))) {
            assertTrue(s.noneMatch(f -> f.getFileName().toString().startsWith(".tmp-")), "leftovers removed");
        }
    }

    /** The deterministic fields of every metrics line (no times or speeds), in order. */
    private static List<String> metrics(Path file) throws Exception {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            o.remove("tokens_per_s");
            o.remove("time_s");
            out.add(o.toString());
        }
        assertTrue(out.size() > STEPS, "a line per step and more: " + out.size());
        return out;
    }

    @Test
    void expertKilledAndResumedEqualsTheStraightRun() throws Exception {
        String[] stage = {"--domain", corpus.toString(), "--name", "stories"};
        Path a = dir.resolve("expert-a"), b = dir.resolve("expert-b");
        killAndResume(args("expert", a, stage), args("expert", b, stage), a, b, "experts.safetensors");
    }

    @Test
    void composeKilledAndResumedEqualsTheStraightRun() throws Exception {
        Path expert = dir.resolve("expert-for-compose");
        String[] r = TrainCliTest.run(quiet(args("expert", expert, "--domain", corpus.toString(), "--name", "s")));
        assertEquals("0", r[0], r[2]);
        String[] stage = {"--experts", expert.resolve("experts.safetensors").toString(), "--domains", corpus.toString()
        };
        Path a = dir.resolve("compose-a"), b = dir.resolve("compose-b");
        killAndResume(args("compose", a, stage), args("compose", b, stage), a, b, "experts.safetensors");
    }

    @Test
    void baselineKilledAndResumedEqualsTheStraightRun() throws Exception {
        String[] stage = {"--method", "lora", "--domains", corpus.toString()};
        Path a = dir.resolve("baseline-a"), b = dir.resolve("baseline-b");
        killAndResume(
                args("baseline", a, stage),
                args("baseline", b, stage),
                a.resolve("lora"),
                b.resolve("lora"),
                "adapters.safetensors");
    }
}
