// Checkpoints and resume of the MoDE stages and baselines: a run stopped by a crash after a checkpoint and resumed
// ends with the straight run's bits (weights and metrics), for stage 1, stage 2 and every single-stage baseline;
// changed settings on resume are refused, allowed or warned as docs/checkpoints.md says; a folder holding a run
// is not started over.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.CheckpointStore;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.StoreLock;
import ai.mode.model.io.TrainerState;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.RunSettings;
import ai.mode.model.train.Trainer;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StageResumeTest {
    private static final int STEPS = 8, CRASH_AT = 6; // checkpoints every 2 steps: the crash loses step 5's work
    private static Backend be;
    private static List<DomainTokens> domains;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
        domains = List.of(ModeTestSupport.domain("code", 0, 6, 1), ModeTestSupport.domain("math", 6, 12, 2));
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static ModeTraining.Hyper hyper(double lr) {
        return new ModeTraining.Hyper(2, 8, lr, 0.25, 4, 2, 7);
    }

    /** Stops the run like a kill would, when step {@code at} has been logged (its checkpoint not yet written). */
    private static final class Crash extends RuntimeException {
        Crash(int at) {
            super("crash at step " + at);
        }
    }

    private static Trainer.Listener crashAt(int at) {
        return new Trainer.Listener() {
            @Override
            public void onStep(Trainer.StepMetrics m) {
                if (m.step() == at) throw new Crash(at);
            }
        };
    }

    private static ModeTraining.Checkpoints checkpoints(boolean resume, Set<String> allow) {
        return new ModeTraining.Checkpoints(2, 0, resume, allow, false);
    }

    /** A stage run: builds its model over a fresh backbone, trains it in {@code dir}, returns its trainable bits. */
    private static NamedTensors stage(
            Path dir,
            Function<LlamaModel, ModeModel> build,
            List<DomainTokens> data,
            ModeTraining.Hyper h,
            int steps,
            ModeTraining.Checkpoints ck,
            List<Trainer.Listener> listeners) {
        try (LlamaModel base = ModeTestSupport.backbone(be, 5);
                ModeModel m = build.apply(base)) {
            m.selectTrainable(true);
            ModeTraining.train(
                    "run",
                    m,
                    data,
                    h.seed(),
                    ModeTraining.validationWindows(data, h),
                    steps,
                    h,
                    dir,
                    listeners,
                    ck,
                    ModeTraining.modeSettings(m));
            return Weights.export(m.trainableParameters());
        }
    }

    /** The deterministic fields of every line of a metrics file (no times or speeds), in order. */
    private static List<String> metrics(Path file) throws Exception {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            o.remove("tokens_per_s");
            o.remove("time_s");
            out.add(o.toString());
        }
        return out;
    }

    private static void sameBits(NamedTensors want, NamedTensors got) {
        assertEquals(want.names(), got.names());
        for (String n : want.names()) assertArrayEquals(want.data(n), got.data(n), n);
    }

    /** Straight, then crashed at {@link #CRASH_AT} and resumed: same trainable bits, same metrics. */
    private static void crashAndResumeMatchesStraight(
            Path dir, Function<LlamaModel, ModeModel> build, List<DomainTokens> data) throws Exception {
        ModeTraining.Hyper h = hyper(1e-2);
        NamedTensors straight =
                stage(dir.resolve("straight"), build, data, h, STEPS, checkpoints(false, Set.of()), List.of());
        assertThrows(
                Crash.class,
                () -> stage(
                        dir.resolve("crashed"),
                        build,
                        data,
                        h,
                        STEPS,
                        checkpoints(false, Set.of()),
                        List.of(crashAt(CRASH_AT))));
        assertEquals(
                4,
                new CheckpointStore(dir.resolve("crashed/checkpoints"), 0)
                        .latest()
                        .orElseThrow()
                        .step()
                        .orElseThrow());
        NamedTensors resumed =
                stage(dir.resolve("crashed"), build, data, h, STEPS, checkpoints(true, Set.of()), List.of());
        sameBits(straight, resumed);
        List<String> want = metrics(dir.resolve("straight/metrics.jsonl"));
        assertTrue(want.stream().anyMatch(l -> l.contains("\"router\"")) && want.size() > STEPS, want.toString());
        assertEquals(want, metrics(dir.resolve("crashed/metrics.jsonl")));
    }

    @Test
    void stageOneResumesBitwise(@TempDir Path dir) throws Exception {
        crashAndResumeMatchesStraight(
                dir,
                base -> ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of("code")), 3),
                domains.subList(0, 1));
    }

    @Test
    void stageTwoResumesBitwise(@TempDir Path dir) throws Exception {
        List<ExpertFile> files = new ArrayList<>();
        try (LlamaModel base = ModeTestSupport.backbone(be, 5)) {
            for (int i = 0; i < 2; i++) {
                String d = domains.get(i).name();
                try (ModeModel e = ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of(d)), 3)) {
                    ModeTestSupport.randomizeAdded(be, e, 10 + i);
                    Path f = dir.resolve(d + ".safetensors");
                    ExpertFile.write(f, e);
                    files.add(ExpertFile.read(f));
                }
            }
        }
        crashAndResumeMatchesStraight(
                dir,
                base -> Composer.compose(base, files, Routing.DENSE, 0.9, Composer.GateConstruction.FRESH),
                domains);
    }

    /** {@code mode baseline}'s path for each single-stage method: crashed and resumed equals straight. */
    @Test
    void everyBaselineResumesBitwise(@TempDir Path dir) throws Exception {
        for (ModeExperiment.Method method : EnumSet.of(
                ModeExperiment.Method.FULL_FT,
                ModeExperiment.Method.LORA,
                ModeExperiment.Method.EXPANSION,
                ModeExperiment.Method.MODE_1X)) {
            Path straight = dir.resolve("straight"), crashed = dir.resolve("crashed");
            baseline(method, straight, checkpoints(false, Set.of()), List.of());
            assertThrows(
                    Crash.class, () -> baseline(method, crashed, checkpoints(false, Set.of()), List.of(crashAt(5))));
            MethodResult r = baseline(method, crashed, checkpoints(true, Set.of()), List.of());
            Path a = straight.resolve(method.id()), b = crashed.resolve(method.id());
            assertEquals(metrics(a.resolve("metrics.jsonl")), metrics(b.resolve("metrics.jsonl")), method.id());
            Checkpoint last =
                    new CheckpointStore(b.resolve("checkpoints"), 0).latest().orElseThrow();
            assertEquals(STEPS, last.step().orElseThrow());
            sameBits(
                    new CheckpointStore(a.resolve("checkpoints"), 0)
                            .latest()
                            .orElseThrow()
                            .readExperts()
                            .orElseThrow(),
                    last.readExperts().orElseThrow());
            assertTrue(r.eval().scores().containsKey("code"), method.id());
        }
    }

    private static MethodResult baseline(
            ModeExperiment.Method method, Path out, ModeTraining.Checkpoints ck, List<Trainer.Listener> listeners)
            throws Exception {
        ModeExperiment.Settings s = new ModeExperiment.Settings(
                out,
                1,
                1,
                hyper(1e-2),
                2,
                1,
                ModeConfig.ExpertInit.RANDOM_ZERO_OUT,
                0.9,
                Composer.GateConstruction.FRESH,
                Routing.DENSE,
                ModeConfig.Merge.RESIDUAL,
                ModeConfig.DEFAULT_GATE_INPUT,
                new LoraModel.Config(2, 4, LoraModel.Config.defaults().targets()),
                4,
                Set.of(method));
        ModeExperiment.Progress progress = new ModeExperiment.Progress() {
            @Override
            public List<Trainer.Listener> listeners(String runId, int steps) {
                return listeners;
            }
        };
        return ModeExperiment.runSingle(
                method, STEPS, () -> ModeTestSupport.backbone(be, 5), domains, domains, s, progress, ck);
    }

    /**
     * Resume compares the run's settings with the checkpoint's: a fixed one (batch) and a refused one (lr) end it
     * with one line naming both values and the fix, before anything is loaded; lr goes through with
     * --allow-changed and is recorded; more steps are warned about; an unknown --allow-changed name is an error.
     */
    @Test
    void changedSettingsAreRefusedAllowedOrWarned(@TempDir Path dir) throws Exception {
        Function<LlamaModel, ModeModel> build =
                base -> ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of("code")), 3);
        List<DomainTokens> data = domains.subList(0, 1);
        Path run = dir.resolve("run");
        assertThrows(
                Crash.class,
                () -> stage(run, build, data, hyper(1e-2), STEPS, checkpoints(false, Set.of()), List.of(crashAt(3))));
        String lr = assertThrows(
                        IllegalArgumentException.class,
                        () -> stage(run, build, data, hyper(2e-2), STEPS, checkpoints(true, Set.of()), List.of()))
                .getMessage();
        assertEquals(
                "cannot resume at step 2: --lr is 0.02 but the run was trained with 0.01, so every remaining step"
                        + " would differ from the uninterrupted run's; resume with --lr 0.01, or pass --allow-changed"
                        + " lr to continue with 0.02 (recorded in the checkpoints)",
                lr);
        ModeTraining.Hyper bigger = new ModeTraining.Hyper(4, 8, 1e-2, 0.25, 4, 2, 7);
        String batch = assertThrows(
                        IllegalArgumentException.class,
                        () -> stage(run, build, data, bigger, STEPS, checkpoints(true, Set.of()), List.of()))
                .getMessage();
        assertEquals(
                "cannot resume at step 2: --batch is 4 but the run was started with 2, and its saved state only"
                        + " continues with that; resume with --batch 2, or start a new run with another --out",
                batch);
        String unknown = assertThrows(
                        IllegalArgumentException.class,
                        () -> stage(
                                run, build, data, hyper(1e-2), STEPS, checkpoints(true, Set.of("batch")), List.of()))
                .getMessage();
        assertEquals(
                "--allow-changed batch names no setting that may change on resume; use lr, warmup-frac or all",
                unknown);
        String fresh = assertThrows(
                        IllegalArgumentException.class,
                        () -> stage(run, build, data, hyper(1e-2), STEPS, checkpoints(false, Set.of()), List.of()))
                .getMessage();
        assertEquals(
                run + " already holds checkpoints; pass --resume to continue that run, or choose another --out", fresh);
        assertEquals(
                2,
                Checkpoint.open(run.resolve("checkpoints/step-00000002")).step().orElseThrow());

        List<String> warnings = warnings(
                () -> stage(run, build, data, hyper(2e-2), STEPS + 2, checkpoints(true, Set.of("--lr")), List.of()));
        assertEquals(2, warnings.size(), warnings.toString());
        assertTrue(
                warnings.get(0)
                        .startsWith("resuming at step 2 with --steps 10 (the checkpoint has 8): the run"
                                + " continues correctly but not bit for bit"),
                warnings.get(0));
        assertTrue(
                warnings.get(1)
                        .startsWith("resuming at step 2 with --lr 0.02 (the checkpoint has 0.01): as"
                                + " --allow-changed asks"),
                warnings.get(1));
        TrainerState last = new CheckpointStore(run.resolve("checkpoints"), 0)
                .latest()
                .orElseThrow()
                .readTrainerState()
                .orElseThrow();
        assertEquals(STEPS + 2, last.step());
        JsonObject settings = last.state().getAsJsonObject("settings");
        assertEquals("0.02", settings.getAsJsonObject("values").get("--lr").getAsString());
        JsonArray changes = settings.getAsJsonArray("changes");
        assertEquals(2, changes.size());
        JsonObject c = changes.get(1).getAsJsonObject();
        assertEquals(2, c.get("step").getAsInt());
        assertEquals("--lr", c.get("setting").getAsString());
        assertEquals("0.01", c.get("from").getAsString());
        assertEquals("0.02", c.get("to").getAsString());
    }

    /** A folder with an earlier run's metrics but no checkpoint is refused unless forced; a held store refused. */
    @Test
    void foldersHoldingARunAreNotStartedOver(@TempDir Path dir) throws Exception {
        Function<LlamaModel, ModeModel> build =
                base -> ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of("code")), 3);
        List<DomainTokens> data = domains.subList(0, 1);
        Path run = dir.resolve("run");
        Files.createDirectories(run);
        Files.writeString(run.resolve("metrics.jsonl"), "{\"type\":\"train\",\"step\":1,\"loss\":2.5}\n");
        String m = assertThrows(
                        IllegalArgumentException.class,
                        () -> stage(run, build, data, hyper(1e-2), 2, checkpoints(false, Set.of()), List.of()))
                .getMessage();
        assertEquals(
                run + " already holds the metrics of an earlier run (metrics.jsonl) and no checkpoint to resume it"
                        + " from; pass --force to start again and replace them, or choose another --out",
                m);
        assertEquals(1, Files.readAllLines(run.resolve("metrics.jsonl")).size(), "the earlier metrics are kept");
        stage(run, build, data, hyper(1e-2), 2, new ModeTraining.Checkpoints(2, 0, false, Set.of(), true), List.of());
        assertEquals(
                2,
                metrics(run.resolve("metrics.jsonl")).stream()
                        .filter(l -> l.contains("\"train\""))
                        .count());
        try (StoreLock held = StoreLock.acquire(run.resolve("checkpoints"))) {
            String busy = assertThrows(
                            IllegalStateException.class,
                            () -> stage(run, build, data, hyper(1e-2), 2, checkpoints(true, Set.of()), List.of()))
                    .getMessage();
            assertTrue(
                    busy.startsWith(
                            "checkpoint store " + run.resolve("checkpoints") + " is in use by another run (pid "),
                    busy);
        }
    }

    private static List<String> warnings(Runnable r) {
        java.util.logging.Logger jul = java.util.logging.Logger.getLogger(RunSettings.class.getName());
        List<String> out = new CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord rec) {
                if (rec.getLevel() == java.util.logging.Level.WARNING) out.add(rec.getMessage());
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        jul.addHandler(capture);
        try {
            r.run();
        } finally {
            jul.removeHandler(capture);
        }
        return out;
    }
}
