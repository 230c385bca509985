// Trainer behaviour on the cpu backend with a tiny model: learning, determinism, exact resume, frozen
// parameters, divergence message, gradient accumulation, option validation.
package ai.mode.model.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.cpu.CpuBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    static final LlamaConfig CFG = new LlamaConfig(32, 32, 2, 4, 2, 48, 16, 10000f, 1e-5f, true);
    static Backend be;
    static int[] corpus;

    @BeforeAll
    static void setUp() {
        be = Backends.create("cpu", 2);
        // a learnable corpus: a noisy repeating pattern of 12 tokens
        SplittableRandom r = new SplittableRandom(5);
        corpus = new int[4000];
        for (int i = 0; i < corpus.length; i++) corpus[i] = r.nextInt(10) == 0 ? r.nextInt(32) : (i * 7) % 12 + 3;
    }

    @AfterAll
    static void tearDown() {
        be.close();
    }

    static Trainer.Options options(int steps, int accum, int batch) {
        return new Trainer.Options(
                steps, batch, 12, accum, new LrSchedule(3e-3, 3, steps, 0.1), AdamW.Config.defaults(), 0, 0, 42);
    }

    static LlamaModel model() {
        LlamaModel m = LlamaModel.create(be, CFG).initialize(42);
        ParameterSelection.all().apply(m.parameters());
        return m;
    }

    static Map<String, float[]> snapshot(LlamaModel m) {
        Map<String, float[]> out = new HashMap<>();
        for (Parameter p : m.parameters()) out.put(p.name(), be.toHostFloats(p.value()));
        return out;
    }

    static void assertSameBits(Map<String, float[]> a, Map<String, float[]> b) {
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), k);
    }

    @Test
    void lossFallsOnATinyCorpus() {
        try (LlamaModel m = model()) {
            List<Double> losses = new ArrayList<>();
            Trainer t = new Trainer(
                    m,
                    new RandomWindowStream(corpus, 1),
                    null,
                    options(40, 1, 8),
                    null,
                    List.of(new Trainer.Listener() {
                        @Override
                        public void onStep(Trainer.StepMetrics s) {
                            losses.add(s.loss());
                        }
                    }));
            t.run();
            assertEquals(40, losses.size());
            assertTrue(losses.get(0) > Math.log(32) - 0.3, "initial loss near log(V): " + losses.get(0));
            double tail = losses.subList(35, 40).stream()
                    .mapToDouble(Double::doubleValue)
                    .average()
                    .orElseThrow();
            assertTrue(tail < losses.get(0) - 1.0, "loss should fall by > 1 nat: " + losses.get(0) + " -> " + tail);
        }
    }

    @Test
    void sameSeedGivesBitwiseIdenticalParameters() {
        Map<String, float[]> a, b;
        try (LlamaModel m = model()) {
            new Trainer(m, new RandomWindowStream(corpus, 1), null, options(6, 2, 4), null, List.of()).run();
            a = snapshot(m);
        }
        try (LlamaModel m = model()) {
            new Trainer(m, new RandomWindowStream(corpus, 1), null, options(6, 2, 4), null, List.of()).run();
            b = snapshot(m);
        }
        assertSameBits(a, b);
    }

    /**
     * Exact resume with the default (Vector API) cpu kernels: this is what users run. It also needs the
     * backend's results not to depend on JIT compilation state, since the resumed half runs in a fresh state.
     */
    @Test
    void resumeContinuesExactly(@TempDir Path dir) throws Exception {
        resumeCheck(dir);
    }

    /** The same check on the scalar cpu kernels, isolating the trainer/checkpoint logic from vector-math effects. */
    @Test
    void resumeContinuesExactlyOnScalarKernels(@TempDir Path dir) throws Exception {
        Backend saved = be;
        try (Backend scalar = new CpuBackend(2, false)) {
            be = scalar;
            resumeCheck(dir);
        } finally {
            be = saved;
        }
    }

    /**
     * A checkpoint records the numerics (kernels, GEMM provider, CPU) that computed it; resuming on other numerics
     * (here the scalar kernels) warns once, naming both, trains on, and the next checkpoint records the new ones.
     */
    @Test
    void resumeOnOtherNumericsWarnsAndRecordsThem(@TempDir Path dir) throws Exception {
        java.util.logging.Logger jul = java.util.logging.Logger.getLogger(RunSettings.class.getName());
        List<java.util.logging.LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        jul.addHandler(capture);
        Backend saved = be;
        try (Backend scalar = new CpuBackend(2, false)) {
            try (LlamaModel m = model()) {
                new Trainer(
                                m,
                                new RandomWindowStream(corpus, 9),
                                null,
                                options(4, 1, 4),
                                new ModelCheckpointing(dir, 0, null),
                                List.of())
                        .run(2);
            }
            assertEquals(saved.numerics(), savedNumerics(dir.resolve("step-00000002")));
            assertNotEquals(saved.numerics(), scalar.numerics());
            be = scalar;
            try (LlamaModel m = model()) {
                Trainer t = new Trainer(
                        m,
                        new RandomWindowStream(corpus, 9),
                        null,
                        options(4, 1, 4),
                        new ModelCheckpointing(dir, 0, null),
                        List.of());
                assertTrue(t.resume());
                t.run();
            }
            List<String> warnings = records.stream()
                    .filter(r -> r.getLevel() == java.util.logging.Level.WARNING)
                    .map(java.util.logging.LogRecord::getMessage)
                    .toList();
            assertEquals(1, warnings.size(), warnings.toString());
            assertTrue(
                    warnings.get(0).contains(saved.numerics())
                            && warnings.get(0).contains(scalar.numerics()),
                    warnings.get(0));
            assertEquals(scalar.numerics(), savedNumerics(dir.resolve("step-00000004")));
        } finally {
            be = saved;
            jul.removeHandler(capture);
        }
    }

    private static String savedNumerics(Path checkpoint) throws Exception {
        return ai.mode.model.io.TrainerState.read(checkpoint.resolve(ai.mode.model.io.TrainerState.FILE))
                .state()
                .get("numerics")
                .getAsString();
    }

    private static void resumeCheck(Path dir) throws Exception {
        int n = 4;
        Map<String, float[]> straight;
        try (LlamaModel m = model()) {
            new Trainer(
                            m,
                            new RandomWindowStream(corpus, 9),
                            null,
                            options(2 * n, 2, 4),
                            new ModelCheckpointing(dir.resolve("a"), 0, null),
                            List.of())
                    .run();
            straight = snapshot(m);
        }
        try (LlamaModel m = model()) {
            Trainer first = new Trainer(
                    m,
                    new RandomWindowStream(corpus, 9),
                    null,
                    options(2 * n, 2, 4),
                    new ModelCheckpointing(dir.resolve("b"), 0, null),
                    List.of());
            assertFalse(first.resume());
            first.run(n);
        }
        try (LlamaModel m = model()) { // fresh process state: re-initialised model, new stream
            Trainer second = new Trainer(
                    m,
                    new RandomWindowStream(corpus, 9),
                    null,
                    options(2 * n, 2, 4),
                    new ModelCheckpointing(dir.resolve("b"), 0, null),
                    List.of());
            assertTrue(second.resume());
            assertEquals(n, second.step());
            second.run();
            assertSameBits(straight, snapshot(m));
        }
        assertTrue(Files.isDirectory(dir.resolve("b/step-00000008")));
    }

    @Test
    void frozenParametersStayBitwiseUnchanged() {
        try (LlamaModel m = model()) {
            Map<String, float[]> before = snapshot(m);
            long n = ParameterSelection.prefixes("model.layers.1.mlp.").apply(m.parameters());
            assertEquals(3L * 32 * 48, n);
            new Trainer(m, new RandomWindowStream(corpus, 2), null, options(3, 1, 4), null, List.of()).run();
            Map<String, float[]> after = snapshot(m);
            for (Parameter p : m.parameters()) {
                boolean same = java.util.Arrays.equals(before.get(p.name()), after.get(p.name()));
                assertEquals(
                        !p.trainable(), same, p.name() + (p.trainable() ? " should change" : " should stay unchanged"));
            }
        }
    }

    @Test
    void nonFiniteLossStopsWithStepAndLastCheckpoint(@TempDir Path dir) {
        try (LlamaModel m = model()) {
            Parameter victim = m.parameters().get(1);
            Trainer t = new Trainer(
                    m,
                    new RandomWindowStream(corpus, 3),
                    null,
                    new Trainer.Options(5, 4, 12, 1, LrSchedule.constant(1e-3), AdamW.Config.defaults(), 0, 1, 42),
                    new ModelCheckpointing(dir, 2, null),
                    List.of(new Trainer.Listener() {
                        @Override
                        public void onCheckpoint(int step, Path where) {
                            if (step == 2) be.fill(victim.value(), Float.NaN);
                        }
                    }));
            TrainingDivergedException e = assertThrows(TrainingDivergedException.class, t::run);
            assertEquals(3, e.step());
            assertTrue(e.getMessage().contains("at step 3"), e.getMessage());
            assertTrue(e.getMessage().contains("step-00000002"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
        }
        try (LlamaModel m = model()) {
            be.fill(m.parameters().get(0).value(), Float.POSITIVE_INFINITY);
            TrainingDivergedException e = assertThrows(
                    TrainingDivergedException.class,
                    () -> new Trainer(m, new RandomWindowStream(corpus, 3), null, options(3, 1, 2), null, List.of())
                            .run());
            assertTrue(
                    e.getMessage().contains("at step 1") && e.getMessage().contains("no checkpoint"), e.getMessage());
        }
    }

    @Test
    void nonFiniteWeightsAreNeverCheckpointed(@TempDir Path dir) throws Exception {
        try (LlamaModel m = model()) {
            Parameter victim = m.parameters().get(2);
            Trainer t = new Trainer(
                    m,
                    new RandomWindowStream(corpus, 3),
                    null,
                    new Trainer.Options(5, 4, 12, 1, LrSchedule.constant(1e-3), AdamW.Config.defaults(), 0, 1, 42),
                    new ModelCheckpointing(dir, 0, null),
                    List.of(new Trainer.Listener() {
                        @Override
                        public void onStep(Trainer.StepMetrics sm) {
                            if (sm.step() == 3) be.fill(victim.value(), Float.NaN); // after the update, before the save
                        }
                    }));
            TrainingDivergedException e = assertThrows(TrainingDivergedException.class, t::run);
            assertEquals(3, e.step());
            assertTrue(
                    e.getMessage().contains("tensor " + victim.name() + " holds NaN at element 0")
                            && e.getMessage().contains("last good checkpoint: " + dir.resolve("step-00000002")),
                    e.getMessage());
            assertFalse(Files.exists(dir.resolve("step-00000003")));
            assertEquals(
                    "step-00000002", Files.readString(dir.resolve("latest")).strip());
        }
    }

    @Test
    void accumulationMatchesOneLargeBatch() {
        // rows drawn by the stream are the same for (batch 4, accum 2) and (batch 8, accum 1)
        Map<String, float[]> a, b;
        try (LlamaModel m = model()) {
            new Trainer(m, new RandomWindowStream(corpus, 4), null, options(1, 2, 4), null, List.of()).run();
            a = snapshot(m);
        }
        try (LlamaModel m = model()) {
            new Trainer(m, new RandomWindowStream(corpus, 4), null, options(1, 1, 8), null, List.of()).run();
            b = snapshot(m);
        }
        for (String k : a.keySet()) {
            float[] x = a.get(k), y = b.get(k);
            for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], 2e-6f, k + "[" + i + "]");
        }
    }

    @Test
    void invalidOptionsAndConfigsGetClearMessages() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> new LlamaConfig(100, 30, 2, 4, 4, 64, 16, 10000f, 1e-5f, true));
        assertTrue(e.getMessage().contains("divisible by num_attention_heads"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> new Trainer.Options(0, 4, 12, 1, LrSchedule.constant(1e-3), AdamW.Config.defaults(), 0, 0, 1));
        assertTrue(e.getMessage().contains("--steps"), e.getMessage());
        try (LlamaModel m = model()) {
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> new Trainer(
                            m,
                            new RandomWindowStream(corpus, 1),
                            null,
                            new Trainer.Options(
                                    2, 2, 64, 1, LrSchedule.constant(1e-3), AdamW.Config.defaults(), 0, 0, 1),
                            null,
                            List.of()));
            assertTrue(e.getMessage().contains("max_position_embeddings"), e.getMessage());
            ParameterSelection.none().apply(m.parameters());
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> new Trainer(m, new RandomWindowStream(corpus, 1), null, options(2, 1, 2), null, List.of()));
            assertTrue(e.getMessage().contains("nothing to train"), e.getMessage());
        }
    }

    @Test
    void scheduleWarmsUpThenDecaysByCosine() {
        LrSchedule s = new LrSchedule(1.0, 10, 110, 0.1);
        assertEquals(0.1, s.at(1), 1e-12);
        assertEquals(1.0, s.at(10), 1e-12);
        assertEquals(0.1 + 0.9 * 0.5, s.at(60), 1e-12);
        assertEquals(0.1, s.at(110), 1e-12);
        assertEquals(0.1, s.at(500), 1e-12);
    }
}
