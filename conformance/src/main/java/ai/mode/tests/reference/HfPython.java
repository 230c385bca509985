package ai.mode.tests.reference;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The Python that tests checking us against Hugging Face transformers at test time run their scripts with: one that
 * imports {@link #PACKAGES}. {@code MODE_HF_PYTHON} names one to use; otherwise this class builds a virtual environment
 * once, {@code python3 -m venv} then {@code pip install} of the packages from the package index pip is configured with
 * (pip's own configuration files and {@code PIP_*} variables), under {@code $XDG_CACHE_HOME/mode-j/hf-venv} (else
 * {@code ~/.cache/mode-j/hf-venv}), locked against other test JVMs and marked complete only when every package imports.
 * Where there is no python3, or the packages cannot be installed, {@link #require()} skips the test with the reason.
 *
 * <pre>{@code
 * Path python = HfPython.require();        // skips the calling test when there is none
 * Optional<String> why = HfPython.unavailable();   // in a @BeforeAll: the tests then assume why.isEmpty()
 * }</pre>
 */
public final class HfPython {
    /** What the scripts import (pip names; the import names are the same). */
    public static final List<String> PACKAGES = List.of("torch", "transformers", "safetensors", "numpy", "gguf");

    private static final String READY = ".mode-ready";
    private static Result cached;

    private HfPython() {}

    private record Result(Path python, String reason) {}

    /** The Python, or skips the calling test (a JUnit assumption) with why there is none. */
    public static Path require() {
        Optional<String> why = unavailable();
        assumeTrue(why.isEmpty(), () -> why.orElseThrow());
        return find().python();
    }

    /**
     * Why there is no such Python here (empty when there is one): for a {@code @BeforeAll} that must not abort, since
     * a skip there does not reach the test report with its reason; its tests then skip with it.
     */
    public static Optional<String> unavailable() {
        Result r = find();
        return r.python() != null
                ? Optional.empty()
                : Optional.of("no Python with " + String.join(", ", PACKAGES) + ": " + r.reason());
    }

    private static synchronized Result find() {
        if (cached == null) cached = locate();
        return cached;
    }

    private static Result locate() {
        String env = System.getenv("MODE_HF_PYTHON");
        if (env != null && !env.isBlank()) {
            Path p = Path.of(env);
            String problem = importProblem(p);
            return problem == null ? new Result(p, null) : new Result(null, "MODE_HF_PYTHON=" + env + ": " + problem);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path cache = (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache"))
                .resolve("mode-j");
        Path venv = cache.resolve("hf-venv");
        try {
            Files.createDirectories(cache);
            try (FileChannel ch = FileChannel.open(
                            cache.resolve("hf-venv.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                    FileLock ignored = ch.lock()) {
                return ensureVenv(venv, cache.resolve("hf-venv.log"));
            }
        } catch (IOException e) {
            return new Result(null, "cannot prepare " + venv + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(null, "interrupted while preparing " + venv);
        }
    }

    /** Under the lock: the finished environment, or a fresh one built in place of an unfinished one. */
    private static Result ensureVenv(Path venv, Path log) throws IOException, InterruptedException {
        Path python = venv.resolve("bin").resolve("python");
        if (Files.isRegularFile(venv.resolve(READY)) && importProblem(python) == null) return new Result(python, null);
        deleteTree(venv);
        if (run(log, 300, "python3", "-m", "venv", venv.toString()) != 0)
            return new Result(null, "`python3 -m venv " + venv + "` failed: " + lastLine(log));
        List<String> pip = new ArrayList<>(List.of(python.toString(), "-m", "pip", "install", "--retries", "1"));
        pip.addAll(PACKAGES);
        if (run(log, 1800, pip.toArray(String[]::new)) != 0)
            return new Result(null, "pip could not install them from the configured package index: " + lastLine(log));
        String problem = importProblem(python);
        if (problem != null) return new Result(null, problem);
        Files.writeString(venv.resolve(READY), String.join(" ", PACKAGES) + "\n");
        return new Result(python, null);
    }

    /** Null when {@code python} imports every package, else why not. */
    private static String importProblem(Path python) {
        if (!Files.isExecutable(python)) return python + " is not an executable file";
        try {
            Path log = Files.createTempFile("mode-hf-python", ".log");
            try {
                String imports = "import " + String.join(", ", PACKAGES);
                int rc = run(log, 300, python.toString(), "-c", imports);
                return rc == 0 ? null : python + " cannot `" + imports + "`: " + lastLine(log);
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            return python + " could not be run: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted while running " + python;
        }
    }

    /** Runs a command with its output to {@code log}; its exit status, or -1 past the timeout (the process killed). */
    private static int run(Path log, long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
        } catch (IOException e) {
            Files.writeString(log, command[0] + ": " + e.getMessage() + "\n");
            return -1;
        }
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            Files.writeString(
                    log,
                    "timed out after " + timeoutSeconds + " s\n",
                    StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
            return -1;
        }
        return p.exitValue();
    }

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8).stream()
                    .filter(l -> !l.isBlank())
                    .toList();
            return lines.isEmpty() ? "(no output)" : lines.getLast().strip();
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
