package ai.mode.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The resources the kernel build embeds, against the {@code .cu} sources themselves: every {@code extern "C"
 * __global__} function of every source is indexed under its module, the embedded sources and headers are the
 * checked-in files, and the emulator library, when g++ built it, is a shared object.
 */
class KernelResourcesTest {
    private static final Path CUDA_SRC = repoRoot().resolve("kernels/src/main/cuda");
    private static final Pattern ENTRY = Pattern.compile(
            "extern \"C\"\\s+__global__\\s+void\\s+(?:__launch_bounds__\\(\\d+(?:,\\s*\\d+)?\\)\\s+)?(\\w+)\\s*\\(");

    private static Path repoRoot() {
        String root = System.getProperty("mode.repo.root");
        return root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
    }

    /** Entry point to module, read from the sources in a stable order (modules sorted, functions in file order). */
    private static Map<String, String> entryPointsInSources() throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(CUDA_SRC)) {
            files = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Path f : files) {
            String module = CUDA_SRC.relativize(f).toString().replace('\\', '/').replaceAll("\\.cu$", "");
            Matcher m = ENTRY.matcher(Files.readString(f));
            while (m.find()) out.put(m.group(1), module);
        }
        return out;
    }

    @Test
    void theIndexListsEveryGlobalFunctionOfEverySource() throws IOException {
        Map<String, String> expected = entryPointsInSources();
        assertFalse(expected.isEmpty(), "no kernels found under " + CUDA_SRC);
        assertEquals(expected, new LinkedHashMap<>(KernelResources.entryPoints()));
        for (Map.Entry<String, String> e : expected.entrySet()) {
            assertEquals(e.getValue(), KernelResources.moduleOf(e.getKey()));
        }
        List<String> modules = new ArrayList<>();
        for (String m : expected.values()) if (!modules.contains(m)) modules.add(m);
        assertEquals(modules, KernelResources.modules());
    }

    @Test
    void embeddedSourcesAndHeadersAreTheCheckedInFiles() throws IOException {
        for (String module : KernelResources.modules()) {
            assertEquals(Files.readString(CUDA_SRC.resolve(module + ".cu")), KernelResources.source(module), module);
        }
        List<String> headers = KernelResources.headerNames();
        try (Stream<Path> s = Files.list(CUDA_SRC.resolve("include"))) {
            assertEquals(
                    s.map(p -> p.getFileName().toString()).sorted().toList(),
                    headers.stream().sorted().toList());
        }
        for (String h : headers) {
            assertEquals(Files.readString(CUDA_SRC.resolve("include").resolve(h)), KernelResources.header(h), h);
        }
    }

    @Test
    void unknownNamesFailWithTheName() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> KernelResources.moduleOf("mode_no_such_kernel"));
        assertTrue(e.getMessage().contains("mode_no_such_kernel"), e.getMessage());
        IllegalStateException s = assertThrows(IllegalStateException.class, () -> KernelResources.source("no/such"));
        assertTrue(s.getMessage().contains("no/such.cu"), s.getMessage());
        assertTrue(KernelResources.fatbin("no/such").isEmpty());
    }

    @Test
    void theEmulatorLibraryIsAnElfSharedObjectWhenBuilt() {
        Optional<byte[]> built = KernelResources.emulatorLibrary();
        assumeTrue(built.isPresent(), "the emulator library was not built (no g++ at build time)");
        byte[] lib = built.get();
        assertTrue(lib.length > 64, "emulator library of " + lib.length + " bytes");
        assertEquals("\u007fELF", new String(lib, 0, 4, StandardCharsets.ISO_8859_1));
        assertEquals(3, lib[16], "ELF type ET_DYN (a shared object)");
    }
}
