// `mode train` end to end on a tiny pretrained backbone: two cpu devices in one process (MPMD) and two
// separate JVM processes joined through the torchrun variables give the single-device run's losses and router
// statistics; the leader writes the expert file, metrics, router charts and placement; bad options are one-line
// errors. Also `mode costmodel`.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.cli.Main;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.RouterMonitor;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

public class TrainCliTest {
    private static final String SHAPE =
            "hidden_size=16,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1,intermediate_size=24";

    @TempDir
    static Path dir;

    static Path corpus, backbone;

    /** Runs the CLI in this JVM: {exit code, stdout, stderr}. */
    public static String[] run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        PrintStream oldOut = System.out, oldErr = System.err;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setOut(o);
            System.setErr(e);
            CommandLine cl = Main.commandLine();
            cl.setErr(new java.io.PrintWriter(e, true));
            int code = cl.execute(args);
            return new String[] {
                Integer.toString(code), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)
            };
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @BeforeAll
    static void backbone() throws Exception {
        String[] words = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "ball"};
        corpus = writeCorpus(dir.resolve("stories"), words, 16, 3);
        backbone = pretrainTiny(dir.resolve("base"), corpus);
    }

    /** A folder of {@code docs} text files of 20 six-word sentences drawn from {@code words}. */
    public static Path writeCorpus(Path folder, String[] words, int docs, long seed) throws Exception {
        Files.createDirectories(folder);
        SplittableRandom r = new SplittableRandom(seed);
        for (int d = 0; d < docs; d++) {
            StringBuilder sb = new StringBuilder();
            for (int s = 0; s < 20; s++) {
                for (int w = 0; w < 6; w++)
                    sb.append(words[r.nextInt(words.length)]).append(' ');
                sb.append(".\n");
            }
            Files.writeString(folder.resolve("doc" + d + ".txt"), sb.toString());
        }
        return folder;
    }

    /** The corpora, backbone and expert file of {@link #trainTinyMode}. */
    public record TrainedMode(Path alpha, Path beta, Path backbone, Path experts) {}

    /**
     * A two-domain MoDE model in {@code dir}: corpora alpha and beta, a {@link #pretrainTiny} backbone, and one expert
     * layer per domain trained for 3 steps by {@code mode train} on one cpu device.
     */
    public static TrainedMode trainTinyMode(Path dir) throws Exception {
        Path alpha =
                writeCorpus(dir.resolve("alpha"), new String[] {"the", "cat", "sat", "on", "a", "mat", "and"}, 12, 1);
        Path beta = writeCorpus(
                dir.resolve("beta"), new String[] {"dog", "ran", "to", "park", "with", "ball", "and"}, 12, 2);
        Path backbone = pretrainTiny(dir.resolve("base"), alpha);
        Path out = dir.resolve("mode");
        String[] t = run(
                "train",
                "-q",
                "--checkpoint",
                backbone.toString(),
                "--domains",
                alpha + "," + beta,
                "--out",
                out.toString(),
                "--steps",
                "3",
                "--batch",
                "4",
                "--seq",
                "12",
                "--expert-layers",
                "1",
                "--val-windows",
                "0",
                "--eval-windows",
                "0",
                "--threads",
                "1",
                "--devices",
                "cpu:0");
        assertEquals("0", t[0], t[2]);
        return new TrainedMode(alpha, beta, backbone, out.resolve(ExpertFile.FILE_NAME));
    }

    /** A tiny backbone ({@link #SHAPE}, 280-token vocabulary) pretrained for 2 steps on {@code corpus}, in {@code out}. */
    public static Path pretrainTiny(Path out, Path corpus) {
        String[] res = run(
                "pretrain",
                "--out",
                out.toString(),
                "--corpus",
                corpus.toString(),
                "--vocab",
                "280",
                "--config",
                SHAPE,
                "--steps",
                "2",
                "--batch",
                "4",
                "--seq",
                "16",
                "--eval-windows",
                "4",
                "--threads",
                "1",
                "-q");
        assertEquals("0", res[0], res[2]);
        return out;
    }

    /** The common options, with {@code extra} (option, value pairs) replacing or adding to them. */
    private static String[] trainArgs(Path out, String... extra) {
        java.util.LinkedHashMap<String, String> o = new java.util.LinkedHashMap<>();
        String[] base = {
            "--checkpoint",
            backbone.toString(),
            "--domains",
            corpus.toString(),
            "--out",
            out.toString(),
            "--steps",
            "3",
            "--batch",
            "4",
            "--seq",
            "12",
            "--expert-layers",
            "1",
            "--val-windows",
            "4",
            "--eval-windows",
            "4",
            "--threads",
            "1"
        };
        for (int i = 0; i < base.length; i += 2) o.put(base[i], base[i + 1]);
        for (int i = 0; i < extra.length; i += 2) o.put(extra[i], extra[i + 1]);
        List<String> a = new ArrayList<>(List.of("train", "-q"));
        o.forEach((k, v) -> a.addAll(List.of(k, v)));
        return a.toArray(String[]::new);
    }

    private static List<Double> losses(Path metrics) throws Exception {
        List<Double> out = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (o.get("type").getAsString().equals("train"))
                out.add(o.get("loss").getAsDouble());
        }
        return out;
    }

    private static void sameLosses(List<Double> want, List<Double> got) {
        assertEquals(3, want.size(), "three training steps logged");
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++)
            assertEquals(want.get(i), got.get(i), 1e-4 * Math.abs(want.get(i)), "loss of step " + (i + 1));
    }

    /**
     * The router lines of two runs of the same data: one per step, the same domains and per block the same tokens,
     * and mean weights and entropy within the runs' float32 differences; the weights sum to 1.
     */
    private static void sameRouterStatistics(Path want, Path got) throws Exception {
        List<JsonObject> w = routerLines(want), g = routerLines(got);
        assertEquals(3, g.size(), "a router line at each of the 3 steps");
        assertEquals(w.size(), g.size());
        for (int s = 0; s < g.size(); s++) {
            assertEquals(s + 1, g.get(s).get("step").getAsInt());
            JsonObject gd = g.get(s).getAsJsonObject("domains"), wd = w.get(s).getAsJsonObject("domains");
            assertEquals(wd.keySet(), gd.keySet());
            for (String d : gd.keySet()) {
                for (int b = 0; b < gd.getAsJsonArray(d).size(); b++) {
                    JsonObject gb = gd.getAsJsonArray(d).get(b).getAsJsonObject(),
                            wb = wd.getAsJsonArray(d).get(b).getAsJsonObject();
                    assertEquals(4 * 12, gb.get("tokens").getAsLong(), "a step's 4 x 12 tokens, all of one domain");
                    assertEquals(
                            wb.get("entropy").getAsDouble(), gb.get("entropy").getAsDouble(), 1e-4);
                    double sum = 0;
                    for (int j = 0; j < gb.getAsJsonArray("weights").size(); j++) {
                        double x = gb.getAsJsonArray("weights").get(j).getAsDouble();
                        assertEquals(wb.getAsJsonArray("weights").get(j).getAsDouble(), x, 1e-4);
                        sum += x;
                    }
                    assertEquals(1.0, sum, 1e-6);
                }
            }
        }
        assertTrue(Files.isRegularFile(got.resolve(RouterMonitor.WEIGHTS_PNG)), "the router charts");
    }

    private static List<JsonObject> routerLines(Path run) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (o.get("type").getAsString().equals("router")) out.add(o);
        }
        return out;
    }

    @Test
    void twoDevicesInOneProcessMatchOneDevice() throws Exception {
        Path one = dir.resolve("one"), two = dir.resolve("two");
        String[] a = run(trainArgs(one, "--devices", "cpu:0"));
        assertEquals("0", a[0], a[2]);
        String[] b = run(trainArgs(two, "--devices", "cpu:0-1", "--placement", "mpmd", "--groups", "2"));
        assertEquals("0", b[0], b[2]);
        assertTrue(
                b[1].contains(
                        "group 1 'experts-0': cpu:1 (1 device, data parallel): block 0 experts [0], block 1 experts [0]"),
                b[1]);
        assertTrue(b[1].contains("communicator hub (in-process)"), b[1]);
        assertTrue(b[1].contains("test " + corpus), b[1]);
        sameLosses(losses(one.resolve("metrics.jsonl")), losses(two.resolve("metrics.jsonl")));
        sameRouterStatistics(one, two);
        ExpertFile f1 = ExpertFile.read(one.resolve(ExpertFile.FILE_NAME)),
                f2 = ExpertFile.read(two.resolve(ExpertFile.FILE_NAME));
        assertEquals(f1.tensors().names(), f2.tensors().names());
        for (String n : f1.tensors().names())
            assertTrue(TinyMode.relError(f2.tensors().data(n), f1.tensors().data(n)) < 1e-3, n);
        assertTrue(Files.readString(two.resolve("placement.txt")).contains("experts-0"));
    }

    @Test
    void twoJvmProcessesMatchOneDevice() throws Exception {
        Path one = dir.resolve("one-ref"), multi = dir.resolve("multi");
        String[] a = run(trainArgs(one, "--devices", "cpu:0", "--eval-windows", "0", "--val-windows", "0"));
        assertEquals("0", a[0], a[2]);
        int port = RendezvousTest.freePort();
        List<Process> ps = new ArrayList<>();
        for (int rank = 0; rank < 2; rank++) {
            List<String> cmd = RendezvousTest.childJvm(Main.class.getName());
            cmd.addAll(List.of(trainArgs(
                    multi,
                    "--devices",
                    "cpu:0",
                    "--placement",
                    "mpmd",
                    "--eval-windows",
                    "0",
                    "--val-windows",
                    "0",
                    "--rendezvous-timeout",
                    "60",
                    "--comm-timeout",
                    "60")));
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            pb.environment()
                    .putAll(Map.of(
                            "MASTER_ADDR",
                            "127.0.0.1",
                            "MASTER_PORT",
                            Integer.toString(port),
                            "RANK",
                            Integer.toString(rank),
                            "WORLD_SIZE",
                            "2",
                            "LOCAL_RANK",
                            "0",
                            "MODE_JOB_SECRET",
                            RendezvousTest.SECRET_TEXT));
            ps.add(pb.start());
        }
        List<String> outs = new ArrayList<>();
        try {
            for (Process p : ps) {
                assertTrue(p.waitFor(120, TimeUnit.SECONDS), "process finishes");
                outs.add(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                assertEquals(0, p.exitValue(), outs.get(outs.size() - 1));
            }
        } finally {
            ps.forEach(Process::destroyForcibly);
        }
        assertTrue(
                outs.get(0).contains("communicator hub (tcp via rank 0)")
                        && outs.get(0).contains("expert file:"),
                outs.get(0));
        assertTrue(!outs.get(1).contains("expert file:"), "only rank 0 writes: " + outs.get(1));
        sameLosses(losses(one.resolve("metrics.jsonl")), losses(multi.resolve("metrics.jsonl")));
        sameRouterStatistics(one, multi);
    }

    @Test
    void badOptionsAreOneLineErrors() {
        String[] r = run(trainArgs(dir.resolve("bad"), "--devices", "cpu:0-1", "--placement", "mpmd", "--groups", "3"));
        assertEquals("1", r[0]);
        assertTrue(
                r[2].strip()
                        .startsWith(
                                "mode train: 3 device groups need at least 3 devices but only 2 are given (cpu:0-1)"),
                r[2]);
        r = run(trainArgs(dir.resolve("bad"), "--devices", "gpu:0"));
        assertTrue(r[2].contains("unknown device kind 'gpu'"), r[2]);
        r = run(trainArgs(dir.resolve("bad"), "--devices", "cpu:0-3", "--batch", "2", "--placement", "data"));
        assertTrue(r[2].contains("batch of 2 sequences is smaller than the 4 devices of group 'all'"), r[2]);
        r = run(trainArgs(dir.resolve("bad"), "--comm", "nccl"));
        assertTrue(r[2].contains("--comm nccl needs cuda devices"), r[2]);
    }

    @Test
    void costModelCommandPrintsTheComparison() {
        String[] r = run("costmodel");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("| 1 mesh (8 devices) | 329 ms | +0% |"), r[1]);
        assertTrue(r[1].contains("5 groups (backbone 4 | experts 1+1+1+1)"), r[1]);
        String[] fixed = run("costmodel", "--tokens", "4096", "--link-gbps", "400", "--details");
        assertEquals("0", fixed[0], fixed[2]);
        assertTrue(fixed[1].contains("tokens per step: 4096") && fixed[1].contains("block 1: forward"), fixed[1]);
    }
}
