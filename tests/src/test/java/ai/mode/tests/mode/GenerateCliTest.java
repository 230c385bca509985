package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.mode.ExpertFile;
import ai.mode.tests.parallel.TrainCliTest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mode generate} end to end on a tiny backbone and a two-expert MoDE model trained by {@code mode train}: the
 * prompt is echoed and continued, greedy and seeded sampling repeat exactly, the cache and recomputation print the same
 * text, the prompt comes equally from an option, a file or standard input, {@code --stop} cuts the text before the
 * stop string, domain opt-out works as in eval-mode, tokens/s are reported, the checkpoint folder is left untouched,
 * and bad input gives one line naming the problem and the fix.
 */
class GenerateCliTest {
    @TempDir
    static Path dir;

    static Path backbone, experts;
    static List<String> domains;

    @BeforeAll
    static void trainTinyModel() throws Exception {
        TrainCliTest.TrainedMode m = TrainCliTest.trainTinyMode(dir);
        backbone = m.backbone();
        experts = m.experts();
        domains = ExpertFile.read(experts).config().domains();
    }

    /** {@code mode generate} on the backbone with 12 new tokens unless {@code extra} says otherwise. */
    static String[] generate(String... extra) {
        List<String> a = new ArrayList<>(List.of("generate", "--checkpoint", backbone.toString(), "--threads", "1"));
        if (!List.of(extra).contains("--max-tokens")) a.addAll(List.of("--max-tokens", "12"));
        a.addAll(List.of(extra));
        return TrainCliTest.run(a.toArray(String[]::new));
    }

    static String[] ok(String... extra) {
        String[] r = generate(extra);
        assertEquals("0", r[0], r[2]);
        return r;
    }

    @Test
    void continuesThePromptRepeatablyAndReportsSpeed() throws IOException {
        var before = snapshot(backbone);
        String[] greedy = ok("--prompt", "the cat");
        assertTrue(greedy[1].startsWith("the cat"), greedy[1]);
        assertTrue(greedy[1].length() > "the cat\n".length(), "something was generated: " + greedy[1]);
        assertTrue(
                greedy[2].matches("(?s).*prompt \\d+ tokens at [0-9.]+ tokens/s; generated \\d+ tokens at [0-9.]+"
                        + " tokens/s \\(key/value cache\\).*"),
                greedy[2]);
        assertEquals(greedy[1], ok("--prompt", "the cat")[1], "greedy repeats");
        assertEquals(greedy[1], ok("--prompt", "the cat", "--no-cache")[1], "the cache changes nothing");

        String[] sampled = ok("--prompt", "the cat", "--temperature", "1.5", "--seed", "7");
        assertEquals(sampled[1], ok("--prompt", "the cat", "--temperature", "1.5", "--seed", "7")[1], "same seed");
        assertEquals(sampled[1], ok("--prompt", "the cat", "--temperature", "1.5", "--seed", "7", "--no-cache")[1]);
        assertNotEquals(sampled[1], ok("--prompt", "the cat", "--temperature", "1.5", "--seed", "8")[1], "other seed");
        ok("--prompt", "the cat", "--temperature", "0.8", "--top-k", "5", "--top-p", "0.9");

        Path file = dir.resolve("prompt.txt");
        Files.writeString(file, "the cat");
        assertEquals(greedy[1], ok("--prompt-file", file.toString())[1], "prompt from a file");
        InputStream in = System.in;
        try {
            System.setIn(new ByteArrayInputStream("the cat".getBytes(StandardCharsets.UTF_8)));
            assertEquals(greedy[1], ok()[1], "prompt from standard input");
        } finally {
            System.setIn(in);
        }
        assertEquals(before, snapshot(backbone), "generation writes nothing into the checkpoint folder");
    }

    @Test
    void stopStringEndsTheTextBeforeIt() {
        String text = ok("--prompt", "the", "--max-tokens", "30")[1];
        String generated = text.substring("the".length(), text.length() - 1); // without the final newline
        assertTrue(generated.length() >= 6, generated);
        String stop = generated.substring(4, 6);
        String[] r = ok("--prompt", "the", "--max-tokens", "30", "--stop", stop);
        assertEquals("the" + generated.substring(0, generated.indexOf(stop)) + "\n", r[1]);
        assertTrue(r[2].contains("stopped at --stop"), r[2]);
    }

    @Test
    void moDeModelsWithDomainOptOut() {
        String[] full = ok("--prompt", "the dog", "--experts", experts.toString());
        assertTrue(full[2].contains("experts " + domains), full[2]);
        assertEquals(
                full[1],
                ok(
                        "--prompt",
                        "the dog",
                        "--experts",
                        experts.toString(),
                        "--keep",
                        domains.get(1) + "," + domains.get(0))[1],
                "keeping every expert is the full model");
        String[] without = ok("--prompt", "the dog", "--experts", experts.toString(), "--without", domains.get(1));
        assertTrue(without[2].contains("experts [" + domains.get(0) + "]"), without[2]);
        assertEquals(
                without[1], ok("--prompt", "the dog", "--experts", experts.toString(), "--keep", domains.get(0))[1]);
        assertEquals(
                without[1],
                ok("--prompt", "the dog", "--experts", experts.toString(), "--keep", domains.get(0), "--no-cache")[1]);
    }

    @Test
    void badInputIsOneLineNamingTheFix() {
        String longPrompt = "the cat sat ".repeat(3000);
        String e = experts.toString();
        String[][] cases = {
            {"expert 'poetry' is not in this model; use names from its experts", "--experts", e, "--keep", "poetry"},
            {"the expert set is empty; keep at least one of", "--experts", e, "--without", String.join(",", domains)},
            {"--keep and --without both given; use one of them", "--experts", e, "--keep", "x", "--without", "y"},
            {"give its expert file with --experts", "--without", "math"},
            {"tokens but the model's context is", "--prompt", longPrompt},
            {"--temperature NaN is not a finite number >= 0; use 0", "--temperature", "NaN"},
            {"--temperature Infinity is not a finite number", "--temperature", "Infinity"},
            {"--top-p 0.0 is outside (0, 1]; use 1", "--top-p", "0"},
            {"--top-p 1.5 is outside (0, 1]", "--top-p", "1.5"},
            {"--top-k -1 is negative; use 0", "--top-k", "-1"},
            {"--max-tokens -2 is negative", "--max-tokens", "-2"},
            {"--stop is empty", "--stop", ""},
            {"--prompt and --prompt-file both given; use one of them", "--prompt-file", "x.txt"},
            {
                "does not exist; give a UTF-8 text file",
                "--prompt-file",
                dir.resolve("absent.txt").toString()
            },
        };
        for (String[] c : cases) {
            List<String> args = new ArrayList<>(List.of(c).subList(1, c.length));
            if (!args.contains("--prompt") && !args.contains("--prompt-file")) args.addAll(List.of("--prompt", "the"));
            if (c[0].contains("both given; use one") && c[0].startsWith("--prompt"))
                args.addAll(List.of("--prompt", "a"));
            String[] r = generate(args.toArray(String[]::new));
            assertEquals("1", r[0], c[0] + ": " + r[2]);
            assertTrue(r[2].contains(c[0]), c[0] + " in: " + r[2]);
            assertEquals(1, r[2].strip().lines().count(), r[2]);
            assertEquals("", r[1], "nothing generated for: " + c[0]);
        }
    }

    @Test
    void anImportedLlama2cModelTellsItsStory() {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.exists(root.resolve("mode"))) root = root.getParent();
        Path s = root == null
                ? null
                : root.resolveSibling("shared").resolve("fixtures").resolve("stories260K");
        assumeTrue(
                s != null && Files.isRegularFile(s.resolve("stories260K.bin")),
                "../shared/fixtures/stories260K is absent: the real llama2.c model cannot be checked here");
        Path hf = dir.resolve("stories260K-hf");
        String[] imp = TrainCliTest.run(
                "import-llama2c",
                "--checkpoint",
                s.resolve("stories260K.bin").toString(),
                "--tokenizer",
                s.resolve("tok512.bin").toString(),
                "--out",
                hf.toString());
        assertEquals("0", imp[0], imp[2]);
        String[] r = TrainCliTest.run(
                "generate", "--checkpoint", hf.toString(), "--prompt", "", "--max-tokens", "40", "--threads", "1");
        assertEquals("0", r[0], r[2]);
        assertTrue(
                r[1].startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside in the"
                        + " park."),
                r[1]);
    }

    /** Every file under a folder with its size and modification time. */
    static TreeMap<String, String> snapshot(Path root) throws IOException {
        TreeMap<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.toList()) {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                out.put(root.relativize(p).toString(), a.size() + " " + a.lastModifiedTime());
            }
        }
        return out;
    }
}
