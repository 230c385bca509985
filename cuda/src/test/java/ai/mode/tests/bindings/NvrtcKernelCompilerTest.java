package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Nvrtc;
import ai.mode.kernels.KernelResources;
import ai.mode.runtime.cuda.NvrtcKernelCompiler;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cuda backend's NVRTC fallback without a GPU: the target choice for a compute capability; one shipped
 * kernel module compiled from its source to an sm_90 CUBIN with all its entry points (as a GPU without
 * matching SASS would load it) and the disk cache hit on the second compile; and (slow tag) every module
 * compiled to PTX holding all its entry points.
 */
class NvrtcKernelCompilerTest {
    @TempDir
    Path cache;

    @Test
    void targetChoice() {
        int[] archs = {75, 80, 86, 87, 89, 90, 100, 120};
        assertEquals("sm_90", NvrtcKernelCompiler.target(90, archs));
        assertEquals("sm_80", NvrtcKernelCompiler.target(80, archs));
        assertEquals("compute_90", NvrtcKernelCompiler.target(95, archs), "unknown arch: PTX of the best lower one");
        assertEquals("compute_120", NvrtcKernelCompiler.target(130, archs));
        IllegalStateException e =
                assertThrows(IllegalStateException.class, () -> NvrtcKernelCompiler.target(70, archs));
        assertTrue(e.getMessage().contains("sm_70"), e.getMessage());
    }

    private static Nvrtc nvrtcWithHeaders() {
        Optional<String> reason = Nvrtc.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "NVRTC not available: " + reason.orElse(""));
        assumeFalse(KernelResources.entryPoints().isEmpty(), "no kernel resources on the classpath");
        Nvrtc nvrtc = Nvrtc.get();
        assumeTrue(
                nvrtc.includeDirectories().stream()
                        .anyMatch(p -> Files.isRegularFile(p.resolve("crt").resolve("mma.h"))),
                "no CUDA toolkit headers with crt/mma.h for the WMMA GEMM: " + nvrtc.includeDirectories());
        return nvrtc;
    }

    @Test
    void oneModuleCompilesToCubinAndIsCached() {
        NvrtcKernelCompiler compiler = new NvrtcKernelCompiler(nvrtcWithHeaders(), cache);
        Map<String, String> entries = KernelResources.entryPoints();
        String module = entries.getOrDefault(
                "mode_fill_fwd_f32", KernelResources.modules().getFirst());
        NvrtcKernelCompiler.Image cubin = compiler.compile(module, 90);
        assertEquals("sm_90", cubin.target());
        assertFalse(cubin.cached());
        assertArrayEquals(new byte[] {0x7f, 'E', 'L', 'F'}, Arrays.copyOf(cubin.bytes(), 4), module + " as a CUBIN");
        String text = new String(cubin.bytes(), StandardCharsets.ISO_8859_1);
        entries.forEach((entry, m) -> {
            if (m.equals(module)) assertTrue(text.contains(entry + "\0"), module + " defines " + entry);
        });
        NvrtcKernelCompiler.Image again = compiler.compile(module, 90);
        assertTrue(again.cached(), "second compile comes from the disk cache");
        assertArrayEquals(cubin.bytes(), again.bytes());
    }

    /** All modules take about 40 s on two cores, so this runs with the slow tag: -Dsurefire.excludedGroups= */
    @Test
    @Tag("slow")
    void everyShippedModuleCompilesWithNvrtc() {
        NvrtcKernelCompiler compiler = new NvrtcKernelCompiler(nvrtcWithHeaders(), cache);
        Map<String, String> entries = KernelResources.entryPoints();
        Map<String, byte[]> images = new ConcurrentHashMap<>();
        KernelResources.modules().parallelStream().forEach(m -> {
            NvrtcKernelCompiler.Image image = compiler.compile(m, "compute_90");
            assertFalse(image.isCubin());
            images.put(m, image.bytes());
        });
        for (Map.Entry<String, String> e : entries.entrySet()) {
            String ptx = new String(images.get(e.getValue()), StandardCharsets.UTF_8);
            assertTrue(ptx.contains(".entry " + e.getKey() + "("), "module " + e.getValue() + " defines " + e.getKey());
        }
    }
}
