// End to end through the CLI on a tiny user corpus: pretrain (tokenizer + model), resume of a finished
// run, eval, grads (checked against an independent recomputation), one-line user errors, and refusal of damaged
// (bit flip, truncation) or diverged (NaN weights, NaN loss) checkpoints.
package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.cli.Main;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.io.TrainerState;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class CliEndToEndTest {
    private static final String SHAPE =
            "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,num_key_value_heads=2,intermediate_size=48";

    /** Runs the CLI; returns exit code, stdout and stderr. */
    static String[] run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        PrintStream oldOut = System.out;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setOut(o);
            CommandLine cl = Main.commandLine();
            cl.setErr(new java.io.PrintWriter(e, true));
            int code = cl.execute(args);
            return new String[] {
                Integer.toString(code), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)
            };
        } finally {
            System.setOut(oldOut);
        }
    }

    private static Path corpus(Path dir) throws Exception {
        Path c = dir.resolve("corpus");
        Files.createDirectories(c);
        SplittableRandom r = new SplittableRandom(1);
        String[] words = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "ball"};
        for (int d = 0; d < 40; d++) {
            StringBuilder sb = new StringBuilder();
            for (int s = 0; s < 30; s++) {
                for (int w = 0; w < 6; w++)
                    sb.append(words[r.nextInt(words.length)]).append(' ');
                sb.append(".\n");
            }
            Files.writeString(c.resolve("doc" + d + ".txt"), sb.toString());
        }
        return c;
    }

    @Test
    void pretrainEvalGradsAndErrors(@TempDir Path dir) throws Exception {
        Path corpus = corpus(dir), out = dir.resolve("run");
        String[] common = {
            "--out",
            out.toString(),
            "--corpus",
            corpus.toString(),
            "--vocab",
            "300",
            "--config",
            SHAPE,
            "--steps",
            "6",
            "--batch",
            "4",
            "--seq",
            "16",
            "--eval-windows",
            "8",
            "--threads",
            "2",
            "-q"
        };
        String[] r = run(concat(new String[] {"pretrain"}, common));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("unigram baseline"), r[1]);
        for (String f : List.of(
                "tokenizer.json",
                "metrics.jsonl",
                "loss.png",
                "summary.json",
                "checkpoints/latest",
                "checkpoints/step-00000006/model.safetensors",
                "checkpoints/step-00000006/config.json",
                "checkpoints/step-00000006/tokenizer.json",
                "checkpoints/step-00000006/trainer_state.safetensors")) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(6, lines.stream().filter(l -> l.contains("\"train\"")).count());
        JsonObject summary = JsonParser.parseString(Files.readString(out.resolve("summary.json")))
                .getAsJsonObject();
        assertEquals(6, summary.get("steps").getAsInt());

        // again without --resume: refused; with --resume on a finished run: re-evaluates, same loss
        r = run(concat(new String[] {"pretrain"}, common));
        assertEquals("1", r[0]);
        assertTrue(
                r[2].contains("already holds checkpoints")
                        && r[2].strip().lines().count() == 1,
                r[2]);
        r = run(concat(new String[] {"pretrain", "--resume"}, common));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("already trained to step 6"), r[1]);

        r = run("eval", "--checkpoint", out.toString(), "--corpus", corpus.toString(), "--seq", "16", "--threads", "2");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("validation") && r[1].contains("test"), r[1]);

        // grads: compare with an independent forward/backward of the saved model
        Path toks = dir.resolve("toks.txt"), g = dir.resolve("g.safetensors");
        Files.writeString(toks, "5 9 14 3 7 21 2 8 40\n1 2 3 4 5 6 7 8 9\n");
        r = run(
                "grads",
                "--checkpoint",
                out.toString(),
                "--tokens",
                toks.toString(),
                "--out",
                g.toString(),
                "--threads",
                "2");
        assertEquals("0", r[0], r[2]);
        NamedTensors dump = SafeTensors.read(g);
        try (Backend be = Backends.create("cpu", 2);
                LlamaModel m = SavedModels.load(be, SavedModels.resolve(out));
                Tensor ids = be.fromHost(new int[] {5, 9, 14, 3, 7, 21, 2, 8, 1, 2, 3, 4, 5, 6, 7, 8}, 2, 8);
                Tensor tg = be.fromHost(new int[] {9, 14, 3, 7, 21, 2, 8, 40, 2, 3, 4, 5, 6, 7, 8, 9}, 2, 8)) {
            for (Parameter p : m.parameters()) p.setTrainable(true);
            LossStats s = m.forwardBackward(ids, tg, 1f / 16);
            assertEquals((float) s.meanLoss(), dump.data("loss")[0]);
            assertArrayEquals(new int[] {2, 8, m.config().vocabSize()}, dump.shape("logits"));
            for (Parameter p : m.parameters())
                assertArrayEquals(be.toHostFloats(p.grad()), dump.data("grad." + p.name()), p.name());
            assertEquals(m.parameters().size() + 4, dump.size());
        }

        // user errors are one line, exit code != 0
        Files.writeString(toks, "1 2 3\n4 5\n");
        r = run("grads", "--checkpoint", out.toString(), "--tokens", toks.toString(), "--out", g.toString());
        assertEquals("1", r[0]);
        assertTrue(
                r[2].contains("sequence 2 has 2 tokens") && r[2].strip().lines().count() == 1, r[2]);
        r = run("pretrain", "--out", dir.resolve("x").toString(), "--config", "hidden_size=30", "--steps", "2");
        assertTrue(
                r[2].contains("divisible by num_attention_heads")
                        && r[2].strip().lines().count() == 1,
                r[2]);
        r = run("pretrain", "--steps", "many");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("--steps") && r[2].strip().lines().count() == 1, r[2]);

        // resuming with more --steps trains on (warned, and recorded in the checkpoints that follow); a changed
        // --accum is refused with its fix, and goes through with --allow-changed accum
        String[] more = common.clone();
        more[Arrays.asList(more).indexOf("--steps") + 1] = "8";
        r = run(concat(new String[] {"pretrain", "--resume"}, more));
        assertEquals("0", r[0], r[2]);
        assertEquals(
                8,
                Files.readAllLines(out.resolve("metrics.jsonl")).stream()
                        .filter(l -> l.contains("\"train\""))
                        .count());
        JsonObject settings = TrainerState.read(
                        out.resolve("checkpoints/step-00000008").resolve(TrainerState.FILE))
                .state()
                .getAsJsonObject("settings");
        assertEquals("8", settings.getAsJsonObject("values").get("--steps").getAsString());
        assertEquals(
                "{\"step\":6,\"setting\":\"--steps\",\"from\":\"6\",\"to\":\"8\"}",
                settings.getAsJsonArray("changes").get(0).toString());
        r = run(concat(new String[] {"pretrain", "--resume", "--accum", "2"}, more));
        assertEquals("1", r[0]);
        assertEquals(
                "mode pretrain: cannot resume at step 8: --accum is 2 but the run was trained with 1, so every"
                        + " remaining step would differ from the uninterrupted run's; resume with --accum 1, or pass"
                        + " --allow-changed accum to continue with 2 (recorded in the checkpoints)",
                r[2].strip());
        r = run(concat(new String[] {"pretrain", "--resume", "--accum", "2", "--allow-changed", "accum"}, more));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("already trained to step 8"), r[1]);
    }

    @Test
    void damagedOrDivergedCheckpointsAreRefused(@TempDir Path dir) throws Exception {
        Path corpus = corpus(dir), out = dir.resolve("run");
        String[] common = {
            "--out",
            out.toString(),
            "--corpus",
            corpus.toString(),
            "--vocab",
            "300",
            "--config",
            SHAPE,
            "--steps",
            "4",
            "--batch",
            "2",
            "--seq",
            "16",
            "--eval-windows",
            "4",
            "--checkpoint-every",
            "2",
            "--threads",
            "2",
            "-q"
        };
        String[] r = run(concat(new String[] {"pretrain"}, common));
        assertEquals("0", r[0], r[2]);
        Path checkpoints = out.resolve("checkpoints"), latest = checkpoints.resolve("step-00000004");
        Path good = copyOf(latest, dir.resolve("good")), model = latest.resolve("model.safetensors");

        // one flipped bit inside the weights of the latest checkpoint, same size: resume and eval refuse it
        byte[] b = Files.readAllBytes(model);
        b[b.length - 3] ^= 0x10;
        Files.write(model, b);
        r = run(concat(new String[] {"pretrain", "--resume"}, common));
        assertOneLineError(
                r, model + ": CRC32C ", "use the earlier checkpoint " + checkpoints.resolve("step-00000002"));
        r = run("eval", "--checkpoint", out.toString(), "--corpus", corpus.toString(), "--seq", "16", "--threads", "2");
        assertOneLineError(r, model + ": CRC32C ", "recorded in checkpoint.json; the file is corrupted");

        // a truncated file fails the size check before anything is read
        Files.write(model, Arrays.copyOf(b, b.length - 5));
        r = run(
                "eval",
                "--checkpoint",
                latest.toString(),
                "--corpus",
                corpus.toString(),
                "--seq",
                "16",
                "--threads",
                "2");
        assertOneLineError(r, "size " + (b.length - 5) + " bytes differs from the " + b.length, "step-00000002");

        // a NaN weight (with a manifest that matches it) is refused by name
        Path nan = copyOf(good, dir.resolve("nan"));
        String first = rewriteModel(nan, t -> t.data(t.names().get(0))[7] = Float.NaN);
        r = run("eval", "--checkpoint", nan.toString(), "--corpus", corpus.toString(), "--seq", "16", "--threads", "2");
        assertOneLineError(r, "tensor " + first + " holds NaN at element 7", "saved from a diverged run");

        // finite weights whose forward pass overflows: the loss is NaN, eval exits 1 naming corpus and split
        Path huge = copyOf(good, dir.resolve("huge"));
        SplittableRandom rnd = new SplittableRandom(3);
        rewriteModel(
                huge,
                t -> t.forEach(e -> {
                    for (int i = 0; i < e.data().length; i++) e.data()[i] = rnd.nextBoolean() ? 1e10f : -1e10f;
                }));
        r = run(
                "eval",
                "--checkpoint",
                huge.toString(),
                "--corpus",
                corpus.toString(),
                "--seq",
                "16",
                "--threads",
                "2");
        assertOneLineError(r, "loss is NaN on corpus corpus, split validation", "evaluate an earlier checkpoint");
    }

    private static void assertOneLineError(String[] r, String... parts) {
        assertEquals("1", r[0], r[1] + r[2]);
        for (String p : parts) assertTrue(r[2].contains(p), r[2]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
    }

    private static Path copyOf(Path checkpoint, Path to) throws Exception {
        Files.createDirectories(to);
        try (var files = Files.list(checkpoint)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    /** Rewrites model.safetensors of a checkpoint and its manifest entry, so only the change tells; returns the first tensor's name. */
    private static String rewriteModel(Path checkpoint, java.util.function.Consumer<NamedTensors> change)
            throws Exception {
        Path f = checkpoint.resolve("model.safetensors"), manifest = checkpoint.resolve("checkpoint.json");
        NamedTensors t = SafeTensors.read(f);
        change.accept(t);
        SafeTensors.write(f, t, java.util.Map.of("format", "pt"), SafeDType.F32);
        CRC32C crc = new CRC32C();
        crc.update(Files.readAllBytes(f));
        JsonObject m = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
        JsonObject entry = m.getAsJsonObject("files").getAsJsonObject("model.safetensors");
        entry.addProperty("bytes", Files.size(f));
        entry.addProperty("crc32c", HexFormat.of().toHexDigits((int) crc.getValue()));
        Files.writeString(manifest, m.toString());
        return t.names().get(0);
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = new String[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
