package ai.mode.kernels;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The kernels meant for tensor cores use them: the PTX nvcc generates from the embedded sources (with the build's
 * optimisation flags, for each virtual architecture the fatbins target) holds, in every entry point of those
 * families, a warp-level matrix multiply with bf16 operands ({@code wmma.mma.sync} or {@code mma.sync} with {@code
 * .bf16} types), and no local memory ({@code .local}) anywhere in the module. No disassembler ships with nvcc here,
 * so SASS (HMMA) is checked by the GPU check on a lent machine (docs/gpu-check.md). Skipped without nvcc.
 */
class TensorCorePtxTest {
    /** Module -> entry-point prefix of its tensor-core kernels. */
    private static final Map<String, String> FAMILIES = Map.of(
            "gemm/gemm",
            "mode_gemm_wmma_",
            "grouped/grouped",
            "mode_groupedgemm_",
            "attention_wmma/attention_wmma",
            "mode_attention_wmma");

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(mode_[A-Za-z0-9_]+)\\s*\\(");
    private static final Pattern BF16_MMA =
            Pattern.compile("\\b(?:wmma\\.mma|mma)\\.sync\\.aligned\\.[A-Za-z0-9.]*bf16");

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"compute_80", "compute_90a"})
    void tensorCoreKernelsUseBf16MmaAndNoLocalMemory(String arch) throws Exception {
        assumeTrue(nvccAvailable(), "nvcc not on the PATH: the PTX check needs it");
        Path dir = Files.createTempDirectory("mode-ptx-");
        try {
            for (String h : KernelResources.headerNames())
                Files.writeString(dir.resolve(h), KernelResources.header(h), StandardCharsets.UTF_8);
            for (Map.Entry<String, String> family : FAMILIES.entrySet()) {
                String module = family.getKey();
                Path src = dir.resolve(module.replace('/', '_') + ".cu"),
                        ptx = dir.resolve(module.replace('/', '_') + ".ptx");
                Files.writeString(src, KernelResources.source(module), StandardCharsets.UTF_8);
                run(
                        dir,
                        "nvcc",
                        "-ptx",
                        "-std=c++17",
                        "-O3",
                        "-arch=" + arch,
                        "-I" + dir,
                        src.toString(),
                        "-o",
                        ptx.toString());
                String text = Files.readString(ptx, StandardCharsets.UTF_8);
                assertFalse(
                        text.contains(".local"), module + " (" + arch + ") uses local memory:\n" + localLines(text));
                Map<String, String> bodies = entries(text);
                List<String> expected = new ArrayList<>();
                for (String entry : KernelResources.entryPoints().keySet())
                    if (entry.startsWith(family.getValue())) expected.add(entry);
                assertFalse(expected.isEmpty(), "no entry points named " + family.getValue() + "* in " + module);
                for (String entry : expected) {
                    String body = bodies.get(entry);
                    assertTrue(body != null, entry + " is missing from the PTX of " + module + " (" + arch + ")");
                    assertTrue(
                            BF16_MMA.matcher(body).find(),
                            entry + " (" + arch + ") has no bf16 wmma.mma.sync / mma.sync instruction");
                }
            }
        } finally {
            try (var files = Files.walk(dir)) {
                for (Path p : files.sorted((a, b) -> b.getNameCount() - a.getNameCount())
                        .toList()) Files.delete(p);
            }
        }
    }

    /** Entry name -> its PTX text (up to the next entry). */
    private static Map<String, String> entries(String ptx) {
        Map<String, String> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        List<Integer> starts = new ArrayList<>();
        List<String> names = new ArrayList<>();
        while (m.find()) {
            starts.add(m.start());
            names.add(m.group(1));
        }
        for (int i = 0; i < names.size(); i++) {
            int end = i + 1 < names.size() ? starts.get(i + 1) : ptx.length();
            out.put(names.get(i), ptx.substring(starts.get(i), end));
        }
        return out;
    }

    private static String localLines(String ptx) {
        StringBuilder sb = new StringBuilder();
        for (String line : ptx.split("\n"))
            if (line.contains(".local")) sb.append(line.strip()).append('\n');
        return sb.toString();
    }

    private static boolean nvccAvailable() {
        try {
            Process p = new ProcessBuilder("nvcc", "--version")
                    .redirectErrorStream(true)
                    .start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void run(Path dir, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd)
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(600, TimeUnit.SECONDS), "nvcc timed out");
        assertTrue(p.exitValue() == 0, String.join(" ", cmd) + " failed:\n" + out);
    }
}
