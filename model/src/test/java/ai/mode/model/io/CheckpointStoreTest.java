// A run's checkpoint folder: retention, the `latest` pointer and its fallbacks, leftovers of interrupted writes,
// and a writer process killed (SIGKILL) at random moments, after which the newest complete checkpoint loads.
package ai.mode.model.io;

import static ai.mode.model.io.SafeTensorsTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointStoreTest {

    @TempDir
    Path tmp;

    private static Checkpoint.Builder contents(long step) {
        NamedTensors w = CheckpointTest.randomWeights(CheckpointTest.CFG, step);
        return Checkpoint.builder()
                .config(CheckpointTest.CFG)
                .model(w)
                .trainerState(new TrainerState(step, CheckpointTest.zerosLike(w), CheckpointTest.zerosLike(w), "{}"));
    }

    private static List<Long> steps(CheckpointStore s) throws IOException {
        return s.list().stream().map(CheckpointStore::stepOf).toList();
    }

    @Test
    void keepsTheNewestAndPointsLatestAtThem() throws IOException {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ckpts"), 2);
        assertTrue(store.latest().isEmpty());
        for (long step : new long[] {10, 20, 30, 40, 100_000_000_5L}) store.save(step, contents(step));
        assertEquals(List.of(40L, 100_000_000_5L), steps(store));
        assertEquals(
                "step-1000000005",
                Files.readString(store.root().resolve(CheckpointStore.LATEST)).strip());
        Checkpoint latest = store.latest().orElseThrow();
        assertEquals(100_000_000_5L, latest.step().orElseThrow());
        assertTrue(latest.readModel().bitwiseEquals(CheckpointTest.randomWeights(CheckpointTest.CFG, 100_000_000_5L)));
        assertEquals("step-00000040", CheckpointStore.dirName(40));

        CheckpointStore all = new CheckpointStore(tmp.resolve("all"), 0);
        for (long step = 1; step <= 4; step++) all.save(step, contents(step));
        assertEquals(List.of(1L, 2L, 3L, 4L), steps(all));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointStore(tmp, -1));
    }

    @Test
    void latestFallsBackToTheNewestValidCheckpoint() throws IOException {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ckpts"), 0);
        for (long step = 1; step <= 3; step++) store.save(step, contents(step));
        Path pointer = store.root().resolve(CheckpointStore.LATEST);

        Files.writeString(pointer, "garbage");
        assertEquals(3, store.latest().orElseThrow().step().orElseThrow());
        Files.delete(pointer);
        assertEquals(3, store.latest().orElseThrow().step().orElseThrow());

        // newest directory damaged (truncated model): the previous one is used
        Path model3 = store.root().resolve("step-00000003").resolve(Checkpoint.MODEL);
        byte[] b = Files.readAllBytes(model3);
        Files.write(model3, Arrays.copyOf(b, b.length - 1));
        Files.writeString(pointer, "step-00000003\n");
        assertEquals(2, store.latest().orElseThrow().step().orElseThrow());

        Files.writeString(pointer, "step-00000099\n"); // points at a directory that does not exist
        assertEquals(2, store.latest().orElseThrow().step().orElseThrow());
    }

    @Test
    void leftoversOfInterruptedWritesAreIgnoredAndCleaned() throws IOException {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ckpts"), 3);
        store.save(1, contents(1));
        // what a crash mid-save leaves: a half-written temporary directory and temporary pointer file
        Path partial = Files.createDirectories(store.root().resolve(".tmp-step-00000002-abc123"));
        Files.write(partial.resolve(Checkpoint.MODEL), new byte[] {1, 2, 3});
        Files.writeString(store.root().resolve(".tmp-latest-def456"), "step-000");
        assertEquals(List.of(1L), steps(store));
        assertEquals(1, store.latest().orElseThrow().step().orElseThrow());

        store.save(2, contents(2));
        try (Stream<Path> s = Files.list(store.root())) {
            assertEquals(
                    List.of("latest", "step-00000001", "step-00000002"),
                    s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void failedSaveKeepsPointerAndPreviousCheckpoint() throws IOException {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ckpts"), 1);
        store.save(1, contents(1));
        assertThrows(
                IOException.class,
                () -> store.save(2, contents(2).hook(name -> {
                    if (name.equals(Checkpoint.TRAINER_STATE)) throw new IOException("simulated crash");
                })));
        assertEquals(List.of(1L), steps(store));
        assertEquals(
                "step-00000001",
                Files.readString(store.root().resolve(CheckpointStore.LATEST)).strip());
        store.latest().orElseThrow().verifyChecksums();
    }

    @Test
    void resolveAcceptsAStoreOrACheckpointDirectory() throws IOException {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ckpts"), 0);
        store.save(7, contents(7));
        store.save(8, contents(8));
        assertEquals(8, CheckpointStore.resolve(store.root()).step().orElseThrow());
        assertEquals(
                7,
                CheckpointStore.resolve(store.root().resolve("step-00000007"))
                        .step()
                        .orElseThrow());
        Files.createDirectories(tmp.resolve("empty"));
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> CheckpointStore.resolve(tmp.resolve("empty"))),
                "holds no checkpoint");
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> CheckpointStore.resolve(tmp.resolve("absent"))),
                "not found");
    }

    // ------------------------------------------------------------------------------------------ real crashes

    /** Child process: saves checkpoints in a loop (weights filled with the step number) until killed. */
    public static final class KilledWriter {
        static final LlamaConfig CFG = new LlamaConfig(1000, 64, 2, 4, 4, 128, 64, 10000f, 1e-5f, true);

        static NamedTensors filled(float value) {
            NamedTensors w = new NamedTensors();
            TensorNames.llamaShapes(CFG).forEach((n, s) -> {
                float[] d = new float[(int) NamedTensors.numel(s)];
                Arrays.fill(d, value);
                w.put(n, s, d);
            });
            return w;
        }

        public static void main(String[] args) throws IOException {
            CheckpointStore store = new CheckpointStore(Path.of(args[0]), 2);
            long step = store.latest().map(c -> c.step().orElseThrow() + 1).orElse(1L);
            for (; ; step++) {
                TrainerState s = new TrainerState(step, filled(-step), filled(step * 2), "{\"step\":" + step + "}");
                store.save(
                        step,
                        Checkpoint.builder().config(CFG).model(filled(step)).trainerState(s));
                System.out.println("saved " + step);
                System.out.flush();
            }
        }
    }

    @Test
    void killedWriterLeavesALoadableLatestCheckpoint() throws Exception {
        Path root = tmp.resolve("killed");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        SplittableRandom rnd = new SplittableRandom(17);
        long lastSeen = 0;
        for (int round = 0; round < 2; round++) {
            Process p = new ProcessBuilder(
                            java,
                            "-Xshare:auto",
                            "-XX:TieredStopAtLevel=1",
                            "-cp",
                            System.getProperty("java.class.path"),
                            KilledWriter.class.getName(),
                            root.toString())
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            try {
                BufferedReader out =
                        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
                String line = out.readLine();
                assertTrue(line != null && line.startsWith("saved "), "writer failed to start: " + line);
                // a random kill point, mid-save or between saves; no check depends on where it lands, since the
                // writer printed "saved N" only after checkpoint N was complete
                Thread.sleep(rnd.nextInt(1, 120));
            } finally {
                p.destroyForcibly(); // SIGKILL: no cleanup code runs
                assertTrue(p.waitFor(20, TimeUnit.SECONDS));
            }
            CheckpointStore store = new CheckpointStore(root, 2);
            Checkpoint c = store.latest().orElseThrow();
            c.verifyChecksums();
            long step = c.step().orElseThrow();
            assertTrue(step > lastSeen, "no progress after round " + round);
            lastSeen = step;
            NamedTensors w = c.readModel();
            for (NamedTensors.Entry e : w) for (float x : e.data()) assertEquals((float) step, x);
            TrainerState s = c.readTrainerState().orElseThrow();
            assertEquals(step, s.step());
            assertEquals(step, s.state().get("step").getAsLong());
            for (Path d : store.list()) Checkpoint.open(d).verifyChecksums();
            assertFalse(store.list().isEmpty());
        }
    }
}
