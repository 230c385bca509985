package ai.mode.tests.bindings;

import ai.mode.bindings.Nvrtc;
import ai.mode.kernels.KernelResources;
import ai.mode.runtime.cuda.NvrtcKernelCompiler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The cuda backend's NVRTC fallback without a GPU: the target choice for a compute capability, and every
 * embedded kernel module compiled from its shipped source to an sm_90 CUBIN that holds all its entry points
 * (what a GPU without matching SASS would run), with the disk cache hit on the second compile.
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
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> NvrtcKernelCompiler.target(70, archs));
        assertTrue(e.getMessage().contains("sm_70"), e.getMessage());
    }

    @Test
    void everyShippedModuleCompilesForSm90() {
        Optional<String> reason = Nvrtc.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "NVRTC not available: " + reason.orElse(""));
        Map<String, String> entries = KernelResources.entryPoints();
        assumeFalse(entries.isEmpty(), "no kernel resources on the classpath");
        Nvrtc nvrtc = Nvrtc.get();
        assumeTrue(nvrtc.includeDirectories().stream().anyMatch(p -> Files.isRegularFile(p.resolve("crt").resolve("mma.h"))),
                "no CUDA toolkit headers with crt/mma.h for the WMMA GEMM: " + nvrtc.includeDirectories());
        NvrtcKernelCompiler compiler = new NvrtcKernelCompiler(nvrtc, cache);
        List<String> modules = KernelResources.modules();
        Map<String, byte[]> images = new ConcurrentHashMap<>();
        modules.parallelStream().forEach(m -> {
            NvrtcKernelCompiler.Image image = compiler.compile(m, 90);
            assertEquals("sm_90", image.target());
            assertFalse(image.cached());
            images.put(m, image.bytes());
        });
        for (Map.Entry<String, String> e : entries.entrySet()) {
            byte[] cubin = images.get(e.getValue());
            assertArrayEquals(new byte[] {0x7f, 'E', 'L', 'F'}, Arrays.copyOf(cubin, 4), e.getValue() + " is a CUBIN");
            assertTrue(new String(cubin, StandardCharsets.ISO_8859_1).contains(e.getKey() + "\0"),
                    "module " + e.getValue() + " defines " + e.getKey());
        }
        String first = modules.getFirst();
        NvrtcKernelCompiler.Image again = compiler.compile(first, 90);
        assertTrue(again.cached(), "second compile comes from the disk cache");
        assertArrayEquals(images.get(first), again.bytes());
    }
}
