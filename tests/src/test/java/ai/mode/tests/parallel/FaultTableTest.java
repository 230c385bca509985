package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.cli.Main;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.io.StoreLock;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.SavedModels;
import ai.mode.parallel.net.HubServer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keeps the table of bad inputs and faults in docs/faults.md current (issue 14): runs every row (the CLI in
 * process, a child JVM for what depends on the environment, the hub for network faults) and checks that the
 * message the user reads is one line and matches the table's, where "…" stands for what differs between machines
 * and runs (sizes, ports, paths). A row without a case, or a case without a row, fails with the row to paste.
 */
class FaultTableTest {
    private static final String SHAPE =
            "hidden_size=16,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1,intermediate_size=24";

    @TempDir
    static Path dir;

    static Path corpus, run;

    /** The options of the small expert run in DIR/expert, after its --out. */
    private static final String STAGE = " --checkpoint RUN --domain CORPUS --name c --steps 2 --batch 2 --seq 16"
            + " --val-windows 2 --eval-windows 2 --threads 1 -q";

    @BeforeAll
    static void smallRun() throws Exception {
        corpus = dir.resolve("corpus");
        Files.createDirectories(corpus);
        SplittableRandom r = new SplittableRandom(5);
        String[] words = {"a", "cat", "sat", "on", "the", "mat", "and", "ran"};
        for (int d = 0; d < 12; d++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < 200; w++)
                sb.append(words[r.nextInt(words.length)]).append(w % 9 == 8 ? ".\n" : " ");
            Files.writeString(corpus.resolve("doc" + d + ".txt"), sb.toString());
        }
        run = dir.resolve("run");
        String[] res = TrainCliTest.run(cli("mode pretrain --out RUN --corpus CORPUS --vocab 270 --config " + SHAPE
                + " --steps 2 --batch 2 --seq 16 --eval-windows 2 --threads 1 -q"));
        assertEquals("0", res[0], res[2]);
        res = TrainCliTest.run(cli("mode expert --out DIR/expert" + STAGE));
        assertEquals("0", res[0], res[2]);
        Files.createDirectories(dir.resolve("m")); // an expert run that left metrics and no checkpoint
        Files.writeString(dir.resolve("m").resolve(OutputGuard.MARKER), "expert\n");
        Files.writeString(dir.resolve("m").resolve("metrics.jsonl"), "{\"type\":\"train\",\"step\":1}\n");
        modeModels();
        Files.writeString(dir.resolve("toks.txt"), "1 2 3 4\n");
        Files.writeString(dir.resolve("frac.txt"), "1 2.5 3 4\n");
        Files.writeString(dir.resolve("bad.json"), "{\"model\": }");
        Files.writeString(dir.resolve("long.txt"), "the cat sat on the mat. ".repeat(2000));
        // a one-expert MoDE model "c" over RUN, for the expert-set rows of mode generate
        try (Backend be = Backends.create("cpu", 1);
                LlamaModel base = SavedModels.load(be, SavedModels.resolve(run));
                ModeModel m = ModeModel.create(
                        base,
                        new ModeConfig(1, 1, List.of("c"), ModeConfig.ExpertInit.RANDOM_ZERO_OUT, 0.9, Routing.DENSE),
                        1)) {
            ExpertFile.write(dir.resolve("expert.safetensors"), m);
        }
    }

    /**
     * For the MoDE rows: stage-1 experts a and b over RUN and their composition DIR/m2; experts over backbones of
     * another width (DIR/ew), vocabulary (DIR/ev) and weights (DIR/eo); a corpus of one short document (DIR/tiny).
     */
    private static void modeModels() throws Exception {
        String small = " --steps 1 --batch 2 --seq 16 --val-windows 0 --eval-windows 1 --eval CORPUS --threads 1 -q";
        String tiny = " --corpus CORPUS --steps 2 --seq 16 --eval-windows 2 --threads 1 -q --config ";
        for (String c : List.of(
                "mode pretrain --out DIR/wide --vocab 270" + tiny + SHAPE.replace("hidden_size=16", "hidden_size=24"),
                "mode pretrain --out DIR/vocab --vocab 260" + tiny + SHAPE,
                "mode pretrain --out DIR/other --vocab 270 --seed 99" + tiny + SHAPE,
                "mode expert --checkpoint RUN --domain CORPUS --name a --out DIR/ea" + small,
                "mode expert --checkpoint RUN --domain CORPUS --name b --out DIR/eb" + small,
                "mode expert --checkpoint DIR/wide --domain CORPUS --name w --out DIR/ew" + small,
                "mode expert --checkpoint DIR/vocab --domain CORPUS --name v --out DIR/ev" + small,
                "mode expert --checkpoint DIR/other --domain CORPUS --name o --out DIR/eo" + small,
                "mode compose --checkpoint RUN --experts DIR/ea,DIR/eb --domains CORPUS --out DIR/m2" + small)) {
            String[] res = TrainCliTest.run(cli(c));
            assertEquals("0", res[0], c + ": " + res[2]);
        }
        Files.createDirectories(dir.resolve("tiny"));
        Files.writeString(dir.resolve("tiny").resolve("only.txt"), "a cat sat.\n");
        // a Hugging Face folder (no manifest) of the run's model whose config asks for YaRN rope scaling
        Path step = run.resolve("checkpoints").resolve("step-00000002"), yarn = dir.resolve("yarn");
        Files.createDirectories(yarn);
        for (String f : List.of("model.safetensors", "tokenizer.json")) Files.copy(step.resolve(f), yarn.resolve(f));
        Files.writeString(
                yarn.resolve("config.json"),
                Files.readString(step.resolve("config.json"))
                        .replaceFirst("\\{", "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0},"));
    }

    /** The command as the table shows it, with RUN, CORPUS and DIR for the test's folders. */
    private static String[] cli(String shown) {
        String s = shown.replace("RUN", run.toString())
                .replace("CORPUS", corpus.toString())
                .replace("DIR", dir.toString());
        List<String> args = new ArrayList<>(List.of(s.split(" ")));
        assertEquals("mode", args.remove(0));
        return args.toArray(String[]::new);
    }

    /** A row's case: the fault's class, the command as shown, and what produces the message the user reads. */
    private record Fault(String kind, String command, Case message) {}

    @FunctionalInterface
    private interface Case {
        String message() throws Exception;
    }

    /** Runs the CLI in process: a non-zero exit with exactly one line on stderr, which is returned. */
    private static Fault mode(String kind, String command) {
        return new Fault(kind, "`" + command + "`", () -> {
            String[] r = TrainCliTest.run(cli(command));
            assertNotEquals("0", r[0], command + ": " + r[1]);
            assertEquals(1, r[2].strip().lines().count(), command + ": " + r[2]);
            return r[2].strip();
        });
    }

    private static List<Fault> faults() {
        String tiny = " --corpus CORPUS --vocab 270 --config " + SHAPE + " --steps 2 --seq 16 --threads 1 -q";
        return List.of(
                mode(
                        "resources: a batch too large for the heap",
                        "mode pretrain --out DIR/a --batch 2000000000" + tiny),
                mode(
                        "resources: a model too large for the heap",
                        "mode pretrain --out DIR/b --corpus CORPUS --vocab 270 --config hidden_size=8192,"
                                + "num_hidden_layers=64,num_attention_heads=64,num_key_value_heads=64,"
                                + "intermediate_size=32768 --steps 2 --seq 16 --threads 1 -q"),
                mode(
                        "resources: evaluation batch too large",
                        "mode eval --checkpoint RUN --corpus CORPUS --batch 2000000000"),
                mode("resources: absurd thread count", "mode eval --checkpoint RUN --corpus CORPUS --threads 100000"),
                mode("usage: an option that is not a number", "mode pretrain --steps many"),
                mode("usage: an impossible model shape", "mode pretrain --out DIR/c --config hidden_size=30 --steps 2"),
                mode("outputs: a run folder that holds checkpoints", "mode pretrain --out RUN" + tiny),
                new Fault(
                        "concurrency: a second writer on a checkpoint store",
                        "`mode pretrain --out RUN --resume ...` while another run holds RUN's checkpoint store",
                        () -> {
                            try (StoreLock held = StoreLock.acquire(run.resolve("checkpoints"))) {
                                return mode("", "mode pretrain --out RUN --resume" + tiny)
                                        .message()
                                        .message();
                            }
                        }),
                mode(
                        "resume: a changed learning rate",
                        "mode pretrain --out RUN --resume --lr 0.01 --corpus CORPUS --vocab 270 --config " + SHAPE
                                + " --steps 2 --batch 2 --seq 16 --eval-windows 2 --threads 1 -q"),
                mode("outputs: a stage's run folder that holds checkpoints", "mode expert --out DIR/expert" + STAGE),
                mode(
                        "outputs: a stage's run folder with an earlier run's metrics and no checkpoint",
                        "mode expert --out DIR/m" + STAGE),
                mode(
                        "resume: a stage with a changed learning rate",
                        "mode expert --out DIR/expert --resume --lr 0.01" + STAGE),
                mode(
                        "resume: a stage with a changed batch",
                        "mode expert --out DIR/expert --resume" + STAGE.replace("--batch 2", "--batch 4")),
                mode(
                        "resume: a setting that --allow-changed cannot let through",
                        "mode expert --out DIR/expert --resume --allow-changed batch" + STAGE),
                mode(
                        "resume: --allow-changed without --resume",
                        "mode expert --out DIR/expert --allow-changed lr" + STAGE),
                new Fault(
                        "concurrency: a second writer on a stage's checkpoint store",
                        "`mode expert --out DIR/expert --resume ...` while another run holds its checkpoint store",
                        () -> {
                            try (StoreLock held =
                                    StoreLock.acquire(dir.resolve("expert").resolve("checkpoints"))) {
                                return mode("", "mode expert --out DIR/expert --resume" + STAGE)
                                        .message()
                                        .message();
                            }
                        }),
                mode(
                        "resources: a parallel run's batch too large for the heap",
                        "mode train --checkpoint RUN --domains CORPUS --out DIR/t --batch 2000000000 --threads 1 -q"),
                new Fault(
                        "concurrency: a second writer on a parallel run's folder",
                        "`mode train --out DIR/t ...` while another run holds that folder",
                        () -> {
                            try (StoreLock held = StoreLock.acquire(dir.resolve("t"))) {
                                return mode(
                                                "",
                                                "mode train --checkpoint RUN --domains CORPUS --out DIR/t --threads 1 -q")
                                        .message()
                                        .message();
                            }
                        }),
                mode("options: a negative warm-up", "mode pretrain --out DIR/d --warmup -5" + tiny),
                mode("options: a zero checkpoint interval", "mode pretrain --out DIR/e --checkpoint-every 0" + tiny),
                mode("options: a negative number of checkpoints to keep", "mode pretrain --out DIR/f --keep -1" + tiny),
                mode(
                        "options: a negative number of evaluation windows",
                        "mode eval --checkpoint RUN --corpus CORPUS --max-windows -1"),
                mode(
                        "inputs: a folder given as the tokenizer file",
                        "mode pretrain --out DIR/g --tokenizer CORPUS" + tiny),
                mode(
                        "inputs: a tokenizer.json that is not JSON",
                        "mode pretrain --out DIR/h --tokenizer DIR/bad.json" + tiny),
                mode(
                        "options: a sampling temperature that is not a finite number",
                        "mode generate --checkpoint RUN --prompt the --temperature NaN"),
                mode("options: top-p outside (0, 1]", "mode generate --checkpoint RUN --prompt the --top-p 1.5"),
                mode("options: a negative top-k", "mode generate --checkpoint RUN --prompt the --top-k -1"),
                mode(
                        "inputs: a prompt longer than the model's context",
                        "mode generate --checkpoint RUN --prompt-file DIR/long.txt"),
                mode(
                        "inputs: an expert name the MoDE model does not have",
                        "mode generate --checkpoint RUN --experts DIR/expert.safetensors --keep poetry --prompt the"),
                mode(
                        "inputs: an empty expert set",
                        "mode generate --checkpoint RUN --experts DIR/expert.safetensors --without c --prompt the"),
                mode(
                        "inputs: a checkpoint whose rope_scaling type is not supported",
                        "mode eval --checkpoint DIR/yarn --corpus CORPUS"),
                mode(
                        "inputs: a fractional token id",
                        "mode grads --checkpoint RUN --tokens DIR/frac.txt --out DIR/g.safetensors"),
                mode(
                        "outputs: an output inside an input (the checkpoint's weights)",
                        "mode grads --checkpoint RUN --tokens DIR/toks.txt --out RUN/checkpoints/step-00000002/model.safetensors"),
                mode(
                        "outputs: an output inside an input (the checkpoint's config)",
                        "mode eval --checkpoint RUN --corpus CORPUS --json RUN/checkpoints/step-00000002/config.json"),
                mode(
                        "outputs: an existing file the command did not write",
                        "mode eval --checkpoint RUN --corpus CORPUS --json DIR/toks.txt"),
                mode(
                        "options: top-k routing with the residual merge",
                        "mode expert --checkpoint RUN --domain CORPUS --name c --out DIR/m --routing top1 --merge residual"),
                mode(
                        "inputs: a sweep file that is not JSON",
                        "mode experiment --checkpoint RUN --out DIR/s --sweep DIR/bad.json"),
                mode(
                        "outputs: another command's run folder",
                        "mode expert --checkpoint RUN --domain CORPUS --name c --out RUN"),
                mode(
                        "MoDE: an expert name that is not in the model",
                        "mode eval-mode --checkpoint RUN --experts DIR/m2 --without poetry --eval CORPUS"),
                mode(
                        "MoDE: adding an expert trained on a backbone of another width",
                        "mode compose --checkpoint RUN --from DIR/m2 --add DIR/ew --domains CORPUS --eval CORPUS"
                                + " --out DIR/m3"),
                mode(
                        "MoDE: adding an expert trained on a backbone with another vocabulary",
                        "mode compose --checkpoint RUN --from DIR/m2 --add DIR/ev --domains CORPUS --eval CORPUS"
                                + " --out DIR/m3"),
                mode(
                        "MoDE: adding an expert trained on other backbone weights",
                        "mode compose --checkpoint RUN --from DIR/m2 --add DIR/eo --domains CORPUS --eval CORPUS"
                                + " --out DIR/m3"),
                mode(
                        "MoDE: no data for a domain of the domain-embeddings router",
                        "mode compose --checkpoint RUN --experts DIR/ea,DIR/eb --gate-construction domain-embeddings"
                                + " --steps 0 --seq 16 --domains CORPUS,DIR/tiny --backbone-domain CORPUS --eval CORPUS"
                                + " --out DIR/r0"),
                new Fault(
                        "launch: several processes without a job secret",
                        "`MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 RANK=0 WORLD_SIZE=2 mode train ...` (no"
                                + " MODE_JOB_SECRET)",
                        FaultTableTest::withoutSecret),
                new Fault(
                        "network: a forged HELLO (RANK 1, a proof made without the secret)",
                        "a client that sends HELLO and a made-up AUTH to MASTER_PORT",
                        () -> stranger(true)),
                new Fault(
                        "network: an empty connection (port scan, health probe)",
                        "a client that connects to MASTER_PORT and closes",
                        () -> stranger(false)),
                new Fault(
                        "network: a frozen peer (SIGSTOP: connected, silent)",
                        "rank 1 stops before a collective; rank 0's `--comm-timeout` passes",
                        RendezvousTest::frozenPeer));
    }

    /** `mode train` in a child JVM with the launch variables but no secret: its one line on stderr. */
    private static String withoutSecret() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(RendezvousTest.childJvm(
                Main.class.getName(), "train", "--checkpoint", run.toString(), "--domains", corpus.toString()));
        pb.environment().keySet().removeIf(k -> k.startsWith("MODE_JOB_SECRET"));
        pb.environment()
                .putAll(Map.of("MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "29500", "RANK", "0", "WORLD_SIZE", "2"));
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), err);
        List<String> lines = err.lines()
                .filter(l -> !l.startsWith("WARNING: Using incubator"))
                .toList();
        assertEquals(1, lines.size(), err);
        return lines.get(0);
    }

    /** A stranger at a pending rendezvous: the reason it was dropped, as rank 0 logs it. */
    private static String stranger(boolean forged) throws Exception {
        CompletableFuture<String> dropped = new CompletableFuture<>();
        HubServer.Hooks hooks = new HubServer.Hooks() {
            @Override
            public void dropped(InetSocketAddress remote, String why) {
                dropped.complete(why);
            }
        };
        try (HubServer hub =
                HubServer.start("127.0.0.1", 0, 2, Duration.ofMinutes(5), new byte[0], HubStrangerTest.SECRET, hooks)) {
            try (Socket s = new Socket("127.0.0.1", hub.port())) {
                if (forged) {
                    ByteArrayOutputStream b = new ByteArrayOutputStream();
                    DataOutputStream o = new DataOutputStream(b);
                    o.writeByte(1);
                    o.writeInt(0x4D6F4402);
                    o.writeInt(1);
                    o.writeInt(2);
                    o.writeInt(1);
                    o.writeUTF("forger");
                    o.write(new byte[32]);
                    o.writeByte(8);
                    o.write(new byte[32]);
                    s.getOutputStream().write(b.toByteArray());
                }
                s.shutdownOutput();
                return "WARNING: dropped the connection from /127.0.0.1:… to the rendezvous port …: "
                        + dropped.get(20, TimeUnit.SECONDS);
            }
        }
    }

    /** The table's rows: command column to message column (without the backquotes around the message). */
    private static Map<String, String> table() throws IOException {
        Path doc = Path.of("..", "docs", "faults.md");
        Map<String, String> rows = new LinkedHashMap<>();
        for (String line : Files.readAllLines(doc)) {
            if (!line.startsWith("| ") || line.startsWith("| class ")) continue;
            String[] cells = line.substring(2, line.length() - 2).split(" \\| ", -1);
            assertEquals(3, cells.length, "a row of 3 cells: " + line);
            rows.put(cells[1], cells[2].replaceAll("^`|`$", ""));
        }
        return rows;
    }

    /** Whether {@code actual} is {@code pattern} where every "…" stands for any text. */
    private static boolean matches(String pattern, String actual) {
        StringBuilder re = new StringBuilder();
        for (String part : pattern.split("…", -1)) {
            if (!re.isEmpty()) re.append(".*?");
            re.append(Pattern.quote(part));
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL).matcher(actual).matches();
    }

    /** `--help` of every command prints its usage and no picocli warning (a stray % in a description did). */
    @Test
    void helpPrintsNoWarnings() {
        for (String command : Main.commandLine().getSubcommands().keySet()) {
            String[] r = TrainCliTest.run(command, "--help");
            assertEquals("0", r[0], command);
            assertTrue(r[1].contains("Usage: mode " + command), command + ": " + r[1]);
            assertFalse(r[1].contains("WARN") || r[2].contains("WARN"), command + ": " + r[1] + r[2]);
        }
    }

    @Test
    void everyRowOfTheFaultTableGivesItsMessage() throws Exception {
        Map<String, String> table = table();
        List<String> problems = new ArrayList<>();
        List<String> commands = new ArrayList<>();
        for (Fault f : faults()) {
            commands.add(f.command());
            String actual = f.message().message().replace(dir.toString(), "DIR");
            assertFalse(actual.contains("\n"), actual);
            String expected = table.get(f.command());
            if (expected == null || !matches(expected, actual))
                problems.add("| " + f.kind() + " | " + f.command() + " | `" + actual + "` |"
                        + (expected == null ? "  (no row)" : "  (the table says `" + expected + "`)"));
        }
        for (String row : table.keySet()) if (!commands.contains(row)) problems.add("a row without a case: " + row);
        assertTrue(problems.isEmpty(), "docs/faults.md is out of date:\n" + String.join("\n", problems));
    }
}
