// Checkpoint directories: full round trip of every part, exact (bitwise) resume of a toy AdamW run, failure
// injected after each file leaves the previous checkpoint intact, and truncation/corruption of each file is
// reported in one line.
package ai.mode.model.io;

import static ai.mode.model.io.SafeTensorsTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.mode.model.LlamaConfig;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {

    @TempDir
    Path tmp;

    static final LlamaConfig CFG = new LlamaConfig(10, 8, 2, 2, 1, 12, 32, 10000f, 1e-5f, true);

    /** Random weights with the exact names and shapes of {@code cfg}. */
    static NamedTensors randomWeights(LlamaConfig cfg, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        NamedTensors w = new NamedTensors();
        TensorNames.llamaShapes(cfg).forEach((name, shape) -> {
            float[] d = new float[(int) NamedTensors.numel(shape)];
            for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextGaussian();
            w.put(name, shape, d);
        });
        return w;
    }

    static NamedTensors zerosLike(NamedTensors t) {
        NamedTensors z = new NamedTensors();
        for (NamedTensors.Entry e : t) z.put(e.name(), e.shape(), new float[e.data().length]);
        return z;
    }

    private Checkpoint.Builder fullBuilder(long seed) {
        NamedTensors w = randomWeights(CFG, seed);
        NamedTensors experts = new NamedTensors()
                .put(TensorNames.gateWeight(0), TensorNames.gateWeightShape(1, 8), new float[16])
                .put(TensorNames.gateBias(0), TensorNames.gateBiasShape(1), new float[] {4f, -4f});
        TrainerState state = new TrainerState(
                seed,
                randomWeights(CFG, seed + 1),
                randomWeights(CFG, seed + 2),
                "{\"rng\":" + Long.MIN_VALUE + ",\"data_position\":" + seed + "}");
        return Checkpoint.builder()
                .config(CFG)
                .model(w)
                .tokenizer(("{\"seed\":" + seed + "}").getBytes())
                .trainerState(state)
                .experts(experts, Map.of("mode_config", "{\"experts\":1}"))
                .file("notes.txt", ("run " + seed).getBytes());
    }

    @Test
    void roundTripsEveryPart() throws IOException {
        Path dir = fullBuilder(5).writeTo(tmp.resolve("ckpt"));
        Checkpoint c = Checkpoint.open(dir);
        assertTrue(c.hasManifest());
        assertEquals(5, c.step().orElseThrow());
        assertEquals(CFG, c.config());
        assertEquals("float32", c.hfConfig().torchDtype());
        assertTrue(c.readModel().bitwiseEquals(randomWeights(CFG, 5)));
        TrainerState s = c.readTrainerState().orElseThrow();
        assertEquals(5, s.step());
        assertTrue(s.adamM().bitwiseEquals(randomWeights(CFG, 6)));
        assertTrue(s.adamV().bitwiseEquals(randomWeights(CFG, 7)));
        assertEquals(Long.MIN_VALUE, s.state().get("rng").getAsLong(), "64-bit RNG state survives exactly");
        s.requireMatches(randomWeights(CFG, 0), dir);
        NamedTensors x = c.readExperts().orElseThrow();
        assertArrayEquals(new float[] {4f, -4f}, x.data(TensorNames.gateBias(0)));
        assertEquals("{\"experts\":1}", c.expertsMetadata().get("mode_config"));
        assertEquals("{\"seed\":5}", new String(c.readTokenizer().orElseThrow()));
        assertEquals("run 5", new String(c.readFile("notes.txt")));
        c.verifyChecksums();
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(Checkpoint.MODEL))) {
            assertEquals("pt", r.metadata().get("format"), "transformers requires format=pt");
        }
        assertEquals(TrainerState.class, c.readTrainerState().orElseThrow().getClass());

        Path minimal = Checkpoint.builder().config(CFG).writeTo(tmp.resolve("minimal"));
        Checkpoint m = Checkpoint.open(minimal);
        assertTrue(m.readTrainerState().isEmpty());
        assertTrue(m.readExperts().isEmpty());
        assertTrue(m.readTokenizer().isEmpty());
        assertTrue(m.step().isEmpty());
    }

    @Test
    void bf16ModelStorageRoundsAndIsDeclaredInConfig() throws IOException {
        NamedTensors w = randomWeights(CFG, 9);
        Path dir = Checkpoint.builder().config(CFG).model(w, SafeDType.BF16).writeTo(tmp.resolve("bf16"));
        Checkpoint c = Checkpoint.open(dir);
        assertEquals("bfloat16", c.hfConfig().torchDtype());
        NamedTensors back = c.readModel();
        for (NamedTensors.Entry e : w) {
            float[] got = back.data(e.name());
            for (int i = 0; i < got.length; i++) {
                float expected =
                        (float) HalfReference.Format.BF16.decode(HalfReference.Format.BF16.encode(e.data()[i]));
                assertEquals(expected, got[i], e.name() + "[" + i + "]");
            }
        }
    }

    @Test
    void builderRejectsModelsThatDoNotMatchTheConfig() {
        NamedTensors w = randomWeights(CFG, 1);
        w.remove(TensorNames.FINAL_NORM);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> Checkpoint.builder().config(CFG).model(w).writeTo(tmp.resolve("x")));
        assertTrue(e.getMessage().contains("missing tensor model.norm.weight"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.builder().writeTo(tmp.resolve("empty")));
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.builder().file("../evil", new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.builder().file(Checkpoint.MODEL, new byte[0]));
        assertFalse(Files.exists(tmp.resolve("x")));
    }

    // ------------------------------------------------------------------------------------- exact resume

    /** A deterministic toy trainer: AdamW on a quadratic whose targets come from a seeded xorshift RNG. */
    static final class ToyTrainer {
        NamedTensors params, m, v;
        long step, rng;

        ToyTrainer(NamedTensors params, long seed) {
            this.params = params;
            this.m = zerosLike(params);
            this.v = zerosLike(params);
            this.rng = seed;
        }

        float nextFloat() {
            rng ^= rng >>> 12;
            rng ^= rng << 25;
            rng ^= rng >>> 27;
            return ((rng * 0x2545F4914F6CDD1DL) >>> 40) * 0x1p-24f - 0.5f;
        }

        void train(int steps) {
            final float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
            for (int s = 0; s < steps; s++) {
                step++;
                float c1 = 1 - (float) Math.pow(b1, step), c2 = 1 - (float) Math.pow(b2, step);
                for (NamedTensors.Entry e : params) {
                    float[] p = e.data(), mm = m.data(e.name()), vv = v.data(e.name());
                    for (int i = 0; i < p.length; i++) {
                        float g = 2 * (p[i] - nextFloat());
                        mm[i] = b1 * mm[i] + (1 - b1) * g;
                        vv[i] = b2 * vv[i] + (1 - b2) * g * g;
                        p[i] -= lr * ((mm[i] / c1) / ((float) Math.sqrt(vv[i] / c2) + eps) + wd * p[i]);
                    }
                }
            }
        }

        Checkpoint.Builder checkpoint() {
            String json = "{\"rng\":" + rng + ",\"lr_schedule\":{\"warmup\":3}}";
            return Checkpoint.builder().config(CFG).model(params).trainerState(new TrainerState(step, m, v, json));
        }

        static ToyTrainer resume(Checkpoint c) throws IOException {
            TrainerState s = c.readTrainerState().orElseThrow();
            NamedTensors params = c.readModel();
            s.requireMatches(params, c.dir());
            ToyTrainer t = new ToyTrainer(params, s.state().get("rng").getAsLong());
            t.m = s.adamM();
            t.v = s.adamV();
            t.step = s.step();
            return t;
        }
    }

    @Test
    void resumeIsBitwiseExact() throws IOException {
        ToyTrainer straight = new ToyTrainer(randomWeights(CFG, 3), 0x9E3779B97F4A7C15L);
        straight.train(12);

        ToyTrainer first = new ToyTrainer(randomWeights(CFG, 3), 0x9E3779B97F4A7C15L);
        first.train(6);
        Path dir = first.checkpoint().writeTo(tmp.resolve("resume"));
        ToyTrainer resumed = ToyTrainer.resume(Checkpoint.open(dir));
        resumed.train(6);

        assertEquals(straight.step, resumed.step);
        assertEquals(straight.rng, resumed.rng);
        assertTrue(straight.params.bitwiseEquals(resumed.params), "parameters differ after resume");
        assertTrue(straight.m.bitwiseEquals(resumed.m));
        assertTrue(straight.v.bitwiseEquals(resumed.v));

        // the comparison is sensitive: resuming without the optimizer moments does not reproduce the run
        ToyTrainer lossy = ToyTrainer.resume(Checkpoint.open(dir));
        lossy.m = zerosLike(lossy.params);
        lossy.v = zerosLike(lossy.params);
        lossy.train(6);
        assertFalse(straight.params.bitwiseEquals(lossy.params));
    }

    @Test
    void stateMustMatchTheTrainableParameters() throws IOException {
        Path dir = fullBuilder(2).writeTo(tmp.resolve("c"));
        TrainerState s = Checkpoint.open(dir).readTrainerState().orElseThrow();
        NamedTensors fewer = randomWeights(CFG, 0);
        fewer.remove(TensorNames.FINAL_NORM);
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> s.requireMatches(fewer, dir)),
                "has moments for model.norm.weight, which is not a trainable parameter");
        NamedTensors more = randomWeights(CFG, 0).put("extra", new int[] {1}, new float[1]);
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> s.requireMatches(more, dir)),
                "no optimizer moments for parameter extra");
        assertThrows(IllegalArgumentException.class, () -> new TrainerState(1, fewer, randomWeights(CFG, 0), "{}"));
        assertThrows(IllegalArgumentException.class, () -> new TrainerState(1, fewer, fewer, "[1]"));
        assertThrows(IllegalArgumentException.class, () -> new TrainerState(-1, fewer, fewer, "{}"));
    }

    // ------------------------------------------------------------------------------------- failure and damage

    private long tempEntries(Path parent) throws IOException {
        try (Stream<Path> s = Files.list(parent)) {
            return s.filter(p -> p.getFileName().toString().startsWith(AtomicFiles.TEMP_PREFIX))
                    .count();
        }
    }

    @Test
    void failureAfterAnyFileLeavesThePreviousCheckpointIntact() throws IOException {
        Path dir = tmp.resolve("ckpt");
        fullBuilder(1).writeTo(dir);
        List<String> order = List.of(
                Checkpoint.CONFIG,
                Checkpoint.MODEL,
                Checkpoint.EXPERTS,
                Checkpoint.TOKENIZER,
                Checkpoint.TRAINER_STATE,
                "notes.txt",
                Checkpoint.MANIFEST);
        for (String failAt : order) {
            IOException e = assertThrows(
                    IOException.class,
                    () -> fullBuilder(2)
                            .hook(name -> {
                                if (name.equals(failAt)) throw new IOException("simulated crash after " + name);
                            })
                            .writeTo(dir));
            assertEquals("simulated crash after " + failAt, e.getMessage());
            Checkpoint c = Checkpoint.open(dir);
            c.verifyChecksums();
            assertEquals(1, c.step().orElseThrow(), "previous checkpoint replaced after failure at " + failAt);
            assertTrue(c.readModel().bitwiseEquals(randomWeights(CFG, 1)));
            assertEquals(0, tempEntries(tmp), "temporary directory left after failure at " + failAt);
        }
        // a failure while reading the caller's tokenizer file also leaves nothing behind
        assertThrows(
                IOException.class,
                () -> fullBuilder(3).tokenizer(tmp.resolve("missing.json")).writeTo(tmp.resolve("new")));
        assertFalse(Files.exists(tmp.resolve("new")));
        assertEquals(0, tempEntries(tmp));

        // never replaces something that is not one of our checkpoints
        Path user = Files.createDirectories(tmp.resolve("user-data"));
        Files.writeString(user.resolve("precious.txt"), "keep me");
        assertThrows(
                java.nio.file.FileAlreadyExistsException.class,
                () -> fullBuilder(5).writeTo(user));
        assertEquals("keep me", Files.readString(user.resolve("precious.txt")));
        Files.writeString(tmp.resolve("a-file"), "x");
        assertThrows(
                java.nio.file.FileAlreadyExistsException.class,
                () -> fullBuilder(5).writeTo(tmp.resolve("a-file")));
        fullBuilder(5).writeTo(Files.createDirectories(tmp.resolve("empty-dir"))); // an empty directory is fine

        fullBuilder(4).writeTo(dir); // replacing an existing checkpoint works
        assertEquals(4, Checkpoint.open(dir).step().orElseThrow());
        assertEquals(0, tempEntries(tmp));
    }

    @Test
    void truncatedOrMissingFilesAreCaughtOnOpen() throws IOException {
        for (String name : List.of(
                Checkpoint.CONFIG,
                Checkpoint.MODEL,
                Checkpoint.TOKENIZER,
                Checkpoint.TRAINER_STATE,
                Checkpoint.EXPERTS)) {
            Path dir = fullBuilder(1).writeTo(tmp.resolve("t-" + name));
            Path f = dir.resolve(name);
            byte[] b = Files.readAllBytes(f);
            Files.write(f, Arrays.copyOf(b, b.length / 2));
            CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir));
            assertMessage(e, "truncated or modified");
            assertTrue(e.getMessage().contains(name), e.getMessage());
            Files.delete(f);
            assertMessage(
                    assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir)), "missing, but listed");
        }
    }

    @Test
    void flippedDataBitIsCaughtWhenTheFileIsRead() throws IOException {
        for (String name : List.of(Checkpoint.MODEL, Checkpoint.TRAINER_STATE, Checkpoint.EXPERTS)) {
            CheckpointStore store = new CheckpointStore(tmp.resolve("flip-" + name), 0);
            store.save(1, fullBuilder(1));
            Path dir = store.save(2, fullBuilder(2));
            Path f = dir.resolve(name);
            String recorded = Checkpoint.crc32c(f);
            byte[] b = Files.readAllBytes(f);
            b[b.length - 3] ^= 0x10; // inside the last tensor's data: still a valid file
            Files.write(f, b);
            Checkpoint c = store.latest().orElseThrow(); // sizes still match
            assertEquals(dir, c.dir());
            CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> {
                c.readModel();
                c.readTrainerState();
                c.readExperts();
            });
            assertMessage(e, "CRC32C " + Checkpoint.crc32c(f) + " differs from " + recorded);
            assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
            assertTrue(
                    e.getMessage()
                            .contains(
                                    "use the earlier checkpoint " + store.root().resolve("step-00000001")),
                    e.getMessage());
            assertMessage(
                    assertThrows(CheckpointFormatException.class, c::verifyChecksums), "differs from " + recorded);
        }
    }

    @Test
    void checksumFailureWithoutAnEarlierCheckpointSaysSo() throws IOException {
        Path dir = fullBuilder(1).writeTo(tmp.resolve("only"));
        Path f = dir.resolve(Checkpoint.MODEL);
        byte[] b = Files.readAllBytes(f);
        b[b.length - 1] ^= 0x01;
        Files.write(f, b);
        assertMessage(
                assertThrows(
                        CheckpointFormatException.class,
                        () -> Checkpoint.open(dir).readModel()),
                "no earlier checkpoint is beside it");
    }

    @Test
    void nonFiniteTensorsAreNeitherWrittenNorRead() throws IOException {
        NamedTensors w = randomWeights(CFG, 3);
        w.data(w.names().get(0))[5] = Float.NaN;
        NonFiniteTensorException e = assertThrows(
                NonFiniteTensorException.class,
                () -> Checkpoint.builder().config(CFG).model(w).writeTo(tmp.resolve("nan")));
        assertTrue(
                e.detail().startsWith(Checkpoint.MODEL + " tensor ")
                        && e.detail().endsWith("holds NaN at element 5"),
                e.detail());
        assertFalse(Files.exists(tmp.resolve("nan")));
        NamedTensors m = randomWeights(CFG, 4);
        m.data(m.names().get(0))[0] = Float.POSITIVE_INFINITY;
        assertThrows(
                NonFiniteTensorException.class,
                () -> Checkpoint.builder()
                        .trainerState(new TrainerState(1, m, randomWeights(CFG, 5), "{}"))
                        .writeTo(tmp.resolve("inf")));

        // a NaN that got into a checkpoint some other way (written here without the builder) is refused on read
        CheckpointStore store = new CheckpointStore(tmp.resolve("store"), 0);
        store.save(1, fullBuilder(1));
        Path dir = store.save(2, fullBuilder(2));
        String first = w.names().get(0);
        NamedTensors bad = Checkpoint.open(dir).readModel();
        bad.data(first)[2] = Float.NaN;
        SafeTensors.write(dir.resolve(Checkpoint.MODEL), bad, Map.of("format", "pt"), SafeDType.F32);
        JsonObject manifest = com.google.gson.JsonParser.parseString(Files.readString(dir.resolve(Checkpoint.MANIFEST)))
                .getAsJsonObject();
        manifest.getAsJsonObject("files")
                .getAsJsonObject(Checkpoint.MODEL)
                .addProperty("crc32c", Checkpoint.crc32c(dir.resolve(Checkpoint.MODEL)));
        Files.writeString(dir.resolve(Checkpoint.MANIFEST), manifest.toString());
        Checkpoint c = Checkpoint.open(dir);
        c.verifyChecksums();
        CheckpointFormatException r = assertThrows(CheckpointFormatException.class, c::readModel);
        assertMessage(r, "tensor " + first + " holds NaN at element 2; the checkpoint was saved from a diverged run");
        assertTrue(
                r.getMessage()
                        .contains("use the earlier checkpoint " + store.root().resolve("step-00000001")),
                r.getMessage());
    }

    @Test
    void damagedManifest() throws IOException {
        Path dir = fullBuilder(1).writeTo(tmp.resolve("m"));
        Path mf = dir.resolve(Checkpoint.MANIFEST);
        String good = Files.readString(mf);
        Files.writeString(mf, good.substring(0, good.length() / 2));
        assertMessage(assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir)), "not valid JSON");
        Files.writeString(mf, good.replace("\"version\": 1", "\"version\": 7"));
        assertMessage(assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir)), "not a version-1");
        Files.writeString(mf, good.replace("\"bytes\"", "\"size\""));
        assertMessage(assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir)), "malformed manifest");
        Files.writeString(mf, good.replace("\"notes.txt\"", "\"../notes.txt\""));
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(dir)),
                "invalid checkpoint file name");
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(tmp.resolve("nowhere"))),
                "not found");
        Files.createDirectories(tmp.resolve("emptydir"));
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> Checkpoint.open(tmp.resolve("emptydir"))),
                "not a checkpoint directory");
    }

    @Test
    void everyTruncationOfTrainerStateAndConfigGivesAOneLineError() throws IOException {
        Path dir = Checkpoint.builder()
                .config(CFG)
                .trainerState(new TrainerState(
                        3,
                        new NamedTensors().put("w", new int[] {2}, new float[] {1, 2}),
                        new NamedTensors().put("w", new int[] {2}, new float[] {3, 4}),
                        "{\"rng\":1}"))
                .writeTo(tmp.resolve("s"));
        for (String name : List.of(Checkpoint.TRAINER_STATE, Checkpoint.CONFIG)) {
            byte[] full = Files.readAllBytes(dir.resolve(name));
            for (int len = 0; len < full.length; len++) {
                Path f = tmp.resolve("cut-" + len + "-" + name); // fresh files: in-place rewrites are slow on ext4
                Files.write(f, Arrays.copyOf(full, len));
                try {
                    if (name.equals(Checkpoint.CONFIG)) HfConfig.read(f);
                    else TrainerState.read(f);
                    // a config cut just before its trailing newline is still complete JSON
                    if (!(name.equals(Checkpoint.CONFIG) && len == full.length - 1))
                        fail(name + " cut to " + len + " bytes loaded");
                } catch (CheckpointFormatException e) {
                    assertFalse(e.getMessage().contains("\n"), e.getMessage());
                    assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
                } catch (Throwable t) {
                    fail(name + " cut to " + len + " bytes: expected CheckpointFormatException, got " + t, t);
                }
                Files.delete(f);
            }
        }
    }

    @Test
    void foreignDirectoryWithoutManifestOpens() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("hf"));
        HfConfig.of(CFG).write(dir.resolve(Checkpoint.CONFIG));
        SafeTensors.write(dir.resolve(Checkpoint.MODEL), randomWeights(CFG, 8));
        Checkpoint c = Checkpoint.open(dir);
        assertFalse(c.hasManifest());
        assertTrue(c.readModel().bitwiseEquals(randomWeights(CFG, 8)));
        c.verifyChecksums();
        JsonObject extra = c.hfConfig().extra();
        assertEquals(0, extra.size());
    }
}
