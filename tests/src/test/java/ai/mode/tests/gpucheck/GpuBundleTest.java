package ai.mode.tests.gpucheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.conformance.BackendConformance;
import ai.mode.runtime.emu.EmuDevice;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU bundle, proven without a GPU: tools/gpu-bundle/make-bundle.sh assembles it from this module's test
 * classpath as Maven resolved it (the file tests/pom.xml writes, as {@code ./mode gpu-bundle} does), then its
 * {@code gpu-check.sh} runs with an environment whose PATH holds only basic shell tools, no {@code java} and no
 * {@code mvn}. It must run on the bundle's own Java runtime, say "no GPU" in one line, run the conformance suite and
 * {@code mode grads} in their emulator form (and pass them), skip the GPU-only steps with a reason (the first-run
 * steps after resolving their JUnit selections to the tests they name), run the steps in the plan's order within
 * 480 s of budgets as docs/gpu-check.md tabulates them, and leave summary.md, results.json and the log. The bundle
 * must stay within 52 MiB and carry no native carrier jar.
 * Needs bash, tar, gzip and g++ (the emulator library); skips without the emulator.
 */
class GpuBundleTest {
    private static final long LIMIT_BYTES = 52L << 20;
    /** What gpu-check.sh and make-bundle.sh may call; nothing else is on the bare PATH. */
    private static final List<String> SHELL_TOOLS = List.of(
            "bash",
            "sh",
            "tar",
            "gzip",
            "timeout",
            "tee",
            "sed",
            "grep",
            "cat",
            "mkdir",
            "mktemp",
            "date",
            "rm",
            "mv",
            "paste",
            "head",
            "tail",
            "cut",
            "cksum",
            "wc",
            "dirname",
            "basename",
            "ls",
            "sort",
            "tr",
            "env");

    /**
     * The steps that run first after facts, in order (marshalling, modules, compute-sanitizer, cuBLASLt, the error
     * word), with how many tests each one's JUnit selection holds.
     */
    private static final Map<String, Integer> FIRST_RUN_TESTS = firstRunTests();

    private static Map<String, Integer> firstRunTests() {
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("marshalling", 2);
        m.put("modules", 1);
        for (String tool : List.of("memcheck", "racecheck", "synccheck", "initcheck")) {
            m.put(tool, 2); // attention and the bf16 (WMMA) GEMMs of the conformance suite
        }
        m.put("cublaslt", 3); // every test of CublasLtGemmGpuTest
        m.put("error-word", 2);
        return m;
    }

    @TempDir
    static Path tmp;

    @Test
    void bundleChecksItselfWithoutJavaOrMavenOnThePath() throws Exception {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "no emulator library: " + EmuDevice.unavailableReason());
        Path testClasses = Path.of(GpuBundleTest.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
        Path root = testClasses;
        while (root != null && !Files.isRegularFile(root.resolve("tools/gpu-bundle/make-bundle.sh"))) {
            root = root.getParent();
        }
        assertTrue(root != null, "no tools/gpu-bundle/make-bundle.sh above " + testClasses);
        Path classpathFile = testClasses.getParent().resolve("gpu-bundle.classpath");
        assertTrue(Files.isRegularFile(classpathFile), classpathFile + " is written by tests/pom.xml");

        Path bundle = tmp.resolve("bundle");
        Map<String, String> buildEnv = new HashMap<>(System.getenv());
        buildEnv.put("JAVA_HOME", System.getProperty("java.home"));
        buildEnv.put("TMPDIR", tmp.toString());
        Result made = run(
                List.of(
                        "bash",
                        root.resolve("tools/gpu-bundle/make-bundle.sh").toString(),
                        bundle.toString(),
                        Files.readString(classpathFile).strip(),
                        testClasses.toString()),
                buildEnv);
        assertEquals(0, made.status, made.output);
        assertBundle(bundle);

        Path bare = Files.createDirectories(tmp.resolve("bare-bin"));
        for (String tool : SHELL_TOOLS) {
            Path found = Stream.of("/usr/bin", "/bin")
                    .map(d -> Path.of(d, tool))
                    .filter(Files::isExecutable)
                    .findFirst()
                    .orElseThrow(() -> new AssertionError(tool + " not found in /usr/bin or /bin"));
            Files.createSymbolicLink(bare.resolve(tool), found);
        }
        Map<String, String> env = new HashMap<>();
        env.put("PATH", bare.toString());
        env.put("HOME", Files.createDirectories(tmp.resolve("home")).toString());
        env.put("TMPDIR", tmp.toString());
        // the step budgets are sized for the GPU machine; here they only must not cut the emulator steps short
        env.put("MODE_GPU_CHECK_BUDGET_SCALE", "15");
        assertTrue(Stream.of("java", "mvn").noneMatch(t -> Files.exists(bare.resolve(t))), "no java or mvn on PATH");

        Path out = tmp.resolve("out");
        Result check = run(List.of("bash", bundle.resolve("gpu-check.sh").toString(), out.toString()), env);
        String log = check.output;
        assertEquals(0, check.status, log);
        List<String> lines = log.lines().toList();

        assertTrue(
                lines.stream().anyMatch(l -> l.startsWith("java: " + tmp.resolve("mode-gpu-runtime-"))),
                "runs on the bundle's runtime, unpacked under TMPDIR:\n" + log);
        List<String> noGpu =
                lines.stream().filter(l -> l.startsWith("no GPU: ")).toList();
        assertTrue(
                noGpu.stream().anyMatch(l -> l.contains("libcuda.so.1")),
                "one line says there is no GPU and why:\n" + log);
        // the conformance suite on emu, once with each GEMM kernel (EmuConformanceTest's two nested classes)
        long suiteTests = Stream.of(BackendConformance.class.getDeclaredMethods())
                .filter(m -> m.isAnnotationPresent(Test.class))
                .count();
        assertTrue(
                lines.stream()
                        .anyMatch(l -> Pattern.matches(
                                "=== kernels: passed .*: " + 2 * suiteTests + " tests successful, 0 failed.*", l)),
                "the conformance suite (" + 2 * suiteTests + " tests) ran on the emulator and passed:\n" + log);
        assertTrue(lines.contains("no GPU: the kernel tests run on the CPU emulator (emu) instead"), log);
        assertTrue(
                lines.stream().anyMatch(l -> l.startsWith("=== grads: passed") && l.contains("2 of 2 files")),
                "mode grads on emu and cpu both met transformers' reference:\n" + log);
        assertTrue(
                Pattern.matches("[0-9]+ passed, 0 failed, [0-9]+ skipped", lines.getLast()),
                "closing line: " + lines.getLast());

        try (Stream<Path> files = Files.list(out)) {
            List<String> names =
                    files.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(List.of("gpu-check.log", "results.json", "summary.md"), names);
        }
        JsonObject results = JsonParser.parseString(Files.readString(out.resolve("results.json")))
                .getAsJsonObject();
        Map<String, String> status = new LinkedHashMap<>(), detail = new HashMap<>();
        for (JsonElement s : results.getAsJsonArray("steps")) {
            String name = s.getAsJsonObject().get("name").getAsString();
            status.put(name, s.getAsJsonObject().get("status").getAsString());
            detail.put(name, s.getAsJsonObject().get("detail").getAsString());
        }
        assertEquals("passed", status.get("facts"));
        assertEquals("passed", status.get("kernels"));
        assertEquals("passed", status.get("grads"));
        for (String gpuOnly : List.of("gpu-tests", "train", "gpu-bench", "trainer-vs-torch")) {
            assertEquals("skipped", status.get(gpuOnly), gpuOnly);
        }
        // the first-run steps resolve their JUnit selections here too: every selected test is found, none runs
        for (Map.Entry<String, Integer> first : FIRST_RUN_TESTS.entrySet()) {
            assertEquals("skipped", status.get(first.getKey()), first.getKey());
            assertTrue(
                    Pattern.compile("0 tests successful, 0 failed, [0-9]+ aborted \\(skipped by assumption\\), "
                                    + first.getValue() + " found: nothing ran \\(no GPU\\)")
                            .matcher(detail.get(first.getKey()))
                            .matches(),
                    first.getKey() + " should find " + first.getValue() + " tests: " + detail.get(first.getKey()));
        }
        assertPlan(root, lines, List.copyOf(status.keySet()), log);
        assertEquals(0, results.get("failed").getAsInt());
        assertTrue(results.get("gpu").getAsString().startsWith("no GPU: "), results.toString());
        String summary = Files.readString(out.resolve("summary.md"));
        assertTrue(summary.strip().endsWith(lines.getLast()), summary);
    }

    /**
     * The steps ran in the plan's order, which starts with what a first GPU run must establish, in the order;
     * the budgets sum to at most 480 s at scale 1 (what docs/gpu-check.md promises of the device time) and
     * docs/gpu-check.md's table lists the same steps, in the same order, with the same budgets.
     */
    private static void assertPlan(Path root, List<String> lines, List<String> ran, String log) throws IOException {
        String planLine = lines.stream()
                .filter(l -> l.startsWith("plan: "))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no plan line:\n" + log));
        Matcher m = Pattern.compile("plan: (.*) \\(seconds, times ([0-9]+)\\): ([0-9]+) s of the ([0-9]+) s total")
                .matcher(planLine);
        assertTrue(m.matches(), planLine);
        Map<String, Integer> plan = new LinkedHashMap<>();
        for (String p : m.group(1).split(" ")) plan.put(p.split(":")[0], Integer.parseInt(p.split(":")[1]));
        int scale = Integer.parseInt(m.group(2));
        int sum = plan.values().stream().mapToInt(Integer::intValue).sum();
        assertEquals(sum * scale, Integer.parseInt(m.group(3)), planLine);
        assertTrue(sum <= 480, "the budgets sum to " + sum + " s, over the 480 s the check may take");
        assertTrue(sum * scale <= Integer.parseInt(m.group(4)), planLine);
        assertEquals(List.copyOf(plan.keySet()), ran, "steps run in the plan's order");
        List<String> first = new ArrayList<>(List.of("facts"));
        first.addAll(FIRST_RUN_TESTS.keySet());
        assertEquals(first, ran.subList(0, first.size()), "what a first GPU run must check comes first");

        Map<String, Integer> documented = new LinkedHashMap<>();
        Matcher row = Pattern.compile("(?m)^\\| `([a-z-]+)` \\| ([0-9]+) s \\|")
                .matcher(Files.readString(root.resolve("docs/gpu-check.md")));
        while (row.find()) documented.put(row.group(1), Integer.parseInt(row.group(2)));
        assertEquals(plan, documented, "docs/gpu-check.md's step table");
    }

    /** Within the size limit; no jar carries bytedeco native libraries; the runtime and the check are there. */
    private static void assertBundle(Path bundle) throws IOException {
        long size;
        try (Stream<Path> all = Files.walk(bundle)) {
            size = all.filter(Files::isRegularFile)
                    .mapToLong(p -> p.toFile().length())
                    .sum();
        }
        assertTrue(size <= LIMIT_BYTES, "bundle is " + size + " bytes, over 52 MiB");
        assertTrue(Files.isRegularFile(bundle.resolve("runtime.tgz")));
        assertTrue(Files.isExecutable(bundle.resolve("gpu-check.sh")));
        assertTrue(Files.isRegularFile(bundle.resolve("fixtures/hf-llama-reference/reference.safetensors")));
        List<String> jars = Files.readAllLines(bundle.resolve("lib/classpath.txt"));
        assertFalse(jars.isEmpty());
        Pattern nativeLib = Pattern.compile("org/bytedeco/[^/]+/[^/]+/lib[^/]*\\.so.*");
        boolean kernelSources = false, conformance = false;
        for (String jar : jars) {
            try (JarFile j = new JarFile(bundle.resolve("lib").resolve(jar).toFile())) {
                assertTrue(
                        j.stream().noneMatch(e -> nativeLib.matcher(e.getName()).matches()),
                        jar + " carries native libraries");
                kernelSources |= j.getEntry("ai/mode/kernels/entrypoints.txt") != null;
                conformance |= j.getEntry("ai/mode/conformance/BackendConformance.class") != null;
            }
        }
        assertTrue(conformance, "the conformance suite's jar (the kernels step runs it) is in the bundle");
        assertTrue(kernelSources, "the kernels jar (fatbins, sources, emulator) is in the bundle");
        try (Stream<Path> cu = Files.walk(bundle.resolve("kernels/src"))) {
            assertTrue(cu.anyMatch(p -> p.toString().endsWith(".cu")), "the .cu sources are in kernels/src");
        }
    }

    private record Result(int status, String output) {}

    private static Result run(List<String> command, Map<String, String> env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(command)).redirectErrorStream(true);
        pb.environment().clear();
        pb.environment().putAll(env);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "did not finish: " + command);
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }
}
