package ai.mode.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tensor-core attention kernels really use tensor cores and no local memory, read from the PTX that nvcc
 * generates for them (for compute_80, the PTX shipped in the fatbin, and compute_90a, which the sm_90a SASS is built
 * from): every entry point of {@code attention_wmma.cu} must issue {@code wmma.mma.sync} with bf16 operands and an f32
 * accumulator, and declare no {@code .local} memory (a local array would show as a {@code __local_depot}). Register
 * spills, which appear only after ptxas, fail the kernel build itself ({@code -warn-spills,-warn-lmem-usage}). No
 * disassembler ships with nvcc here, so the SASS check (HMMA instructions) is the GPU check's {@code sass} step.
 * Skips where nvcc is not installed.
 */
class AttentionWmmaPtxTest {
    private static final Path CUDA_SRC = repoRoot().resolve("kernels/src/main/cuda");
    private static final String MODULE = "attention_wmma/attention_wmma";
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(");
    private static final Pattern BF16_MMA =
            Pattern.compile("wmma\\.mma\\.sync\\.aligned\\.[a-z]+\\.[a-z]+\\.m16n16k16\\.f32\\.bf16\\.bf16\\.f32");

    private static Path repoRoot() {
        String root = System.getProperty("mode.repo.root");
        return root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
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

    /** The PTX of the module for {@code arch}, written by nvcc into {@code dir}. */
    private static String ptx(Path dir, String arch) throws IOException, InterruptedException {
        Path out = dir.resolve(arch + ".ptx");
        List<String> cmd = List.of(
                "nvcc",
                "-ptx",
                "-arch=" + arch,
                "-std=c++17",
                "-O3",
                "-I" + CUDA_SRC.resolve("include"),
                "-o",
                out.toString(),
                CUDA_SRC.resolve(MODULE + ".cu").toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "nvcc -ptx did not finish: " + cmd);
        assertEquals(0, p.exitValue(), "nvcc -ptx failed: " + String.join(" ", cmd) + "\n" + log);
        return Files.readString(out);
    }

    /** Entry point name to its PTX text (from its {@code .entry} line to the next one). */
    static Map<String, String> entries(String ptx) {
        Map<String, String> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        String name = null;
        int start = 0;
        while (m.find()) {
            if (name != null) out.put(name, ptx.substring(start, m.start()));
            name = m.group(1);
            start = m.start();
        }
        if (name != null) out.put(name, ptx.substring(start));
        return out;
    }

    @Test
    void everyEntryPointIssuesBf16TensorCoreMmaAndUsesNoLocalMemory(@TempDir Path dir) throws Exception {
        assumeTrue(nvccAvailable(), "nvcc is not installed here");
        List<String> expected = KernelResources.entryPoints().entrySet().stream()
                .filter(e -> e.getValue().equals(MODULE))
                .map(Map.Entry::getKey)
                .sorted()
                .toList();
        assertEquals(9, expected.size(), "three passes for each of the three head tiles: " + expected);
        for (String arch : new String[] {"compute_80", "compute_90a"}) {
            Map<String, String> entries = entries(ptx(dir, arch));
            assertEquals(expected, entries.keySet().stream().sorted().toList(), arch + ": the module's entry points");
            for (Map.Entry<String, String> e : entries.entrySet()) {
                String body = e.getValue();
                int mmas = 0;
                Matcher mma = BF16_MMA.matcher(body);
                while (mma.find()) mmas++;
                assertTrue(mmas > 0, arch + " " + e.getKey() + ": no wmma.mma.sync with bf16 operands");
                assertFalse(body.contains(".local"), arch + " " + e.getKey() + ": declares local memory");
                assertFalse(body.contains("__local_depot"), arch + " " + e.getKey() + ": has a local depot");
            }
        }
    }

    @Test
    void theParserSplitsEntryPoints() {
        String ptx =
                ".visible .entry a(\n .param .u64 x\n)\n{ wmma.mma.sync.aligned.row.col.m16n16k16.f32.bf16.bf16.f32"
                        + " }\n.visible .entry b(\n)\n{ .local .align 4 .b8 __local_depot1[8]; }\n";
        Map<String, String> e = entries(ptx);
        assertEquals(List.of("a", "b"), List.copyOf(e.keySet()));
        assertTrue(BF16_MMA.matcher(e.get("a")).find());
        assertFalse(e.get("a").contains(".local"));
        assertTrue(e.get("b").contains("__local_depot"));
    }
}
