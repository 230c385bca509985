package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Nvrtc;
import ai.mode.bindings.NvrtcException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * NVRTC through FFM, for real (no GPU needed): version and architectures, compilation of a kernel to PTX
 * and to CUBIN, a readable log for a bad kernel, in-memory headers, and bf16/WMMA kernels with the CUDA
 * headers found by {@link Nvrtc#includeDirectory()}. Skips when NVRTC is absent (build with -Pcuda-redist).
 */
class NvrtcTest {
    private static Nvrtc nvrtc;

    private static final String AXPY = """
            extern "C" __global__ void mode_test_axpy(float a, const float* x, float* y, int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) y[i] += a * x[i];
            }
            """;

    @BeforeEach
    void load() {
        Optional<String> reason = Nvrtc.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "NVRTC not available: " + reason.orElse(""));
        nvrtc = Nvrtc.get();
    }

    @Test
    void versionAndArchitectures() {
        int[] v = nvrtc.version();
        assertTrue(v[0] >= 12 && v[1] >= 0, "NVRTC version " + Arrays.toString(v));
        int[] archs = nvrtc.supportedArchs();
        assertTrue(Arrays.stream(archs).anyMatch(a -> a == 80), "sm_80 supported: " + Arrays.toString(archs));
        assertTrue(Arrays.stream(archs).anyMatch(a -> a == 90), "sm_90 supported: " + Arrays.toString(archs));
        assertTrue(Arrays.stream(archs).allMatch(a -> a >= 50 && a < 200), Arrays.toString(archs));
    }

    @Test
    void compilesKernelToPtx() {
        Nvrtc.Compiled c = nvrtc.compile(AXPY, "axpy.cu", Map.of(), List.of("--gpu-architecture=compute_80"));
        assertNotNull(c.ptx());
        assertTrue(c.ptx().contains(".entry mode_test_axpy("), c.ptx());
        assertTrue(c.ptx().contains(".target sm_80"), "PTX targets sm_80");
        assertTrue(c.ptx().contains("fma.rn.f32"), "a*x+y compiles to an FMA");
        assertNull(c.cubin(), "a virtual architecture produces no CUBIN");
    }

    @Test
    void compilesKernelToCubin() {
        Nvrtc.Compiled c = nvrtc.compile(AXPY, "axpy.cu", Map.of(), List.of("--gpu-architecture=sm_90"));
        assertNotNull(c.cubin());
        assertArrayEquals(new byte[] {0x7f, 'E', 'L', 'F'}, Arrays.copyOf(c.cubin(), 4), "CUBIN is an ELF image");
        assertTrue(new String(c.cubin(), java.nio.charset.StandardCharsets.ISO_8859_1).contains("mode_test_axpy"));
    }

    @Test
    void badKernelGivesReadableLog() {
        String bad = """
                extern "C" __global__ void broken(float* y) {
                    y[threadIdx.x] = undefined_thing;
                }
                """;
        NvrtcException e = assertThrows(
                NvrtcException.class,
                () -> nvrtc.compile(bad, "broken.cu", Map.of(), List.of("--gpu-architecture=compute_80")));
        assertEquals(Nvrtc.ERROR_COMPILATION, e.code());
        assertEquals("NVRTC_ERROR_COMPILATION", e.errorName());
        assertNotNull(e.log());
        assertTrue(e.log().contains("broken.cu(2)"), "log names file and line: " + e.log());
        assertTrue(e.log().contains("undefined_thing"), e.log());
        assertTrue(e.getMessage().startsWith("nvrtcCompileProgram(name=broken.cu"), e.getMessage());
        assertTrue(e.getMessage().contains("undefined_thing"), e.getMessage());
    }

    @Test
    void badOptionIsNamed() {
        NvrtcException e = assertThrows(
                NvrtcException.class, () -> nvrtc.compile(AXPY, "axpy.cu", Map.of(), List.of("--no-such-option")));
        assertEquals("NVRTC_ERROR_INVALID_OPTION", e.errorName());
        assertTrue(e.getMessage().contains("--no-such-option"), e.getMessage());
    }

    @Test
    void inMemoryHeadersResolve() {
        String src = """
                #include "mode_scale.cuh"
                extern "C" __global__ void mode_test_scale(float* y) { y[threadIdx.x] *= MODE_SCALE; }
                """;
        Nvrtc.Compiled c = nvrtc.compile(
                src,
                "scale.cu",
                Map.of("mode_scale.cuh", "#define MODE_SCALE 3.5f\n"),
                List.of("--gpu-architecture=compute_80"));
        assertTrue(c.ptx().contains(".entry mode_test_scale("));
        assertTrue(c.ptx().contains("0f40600000"), "3.5f appears as a PTX float literal");
    }

    @Test
    void libraryAgreesWithErrorTable() {
        for (Map.Entry<Integer, String> e : Nvrtc.errorNames().entrySet()) {
            assertEquals(nvrtc.errorString(e.getKey()), e.getValue(), "nvrtcResult " + e.getKey());
        }
    }

    @Test
    void bf16KernelCompilesWithBundledHeadersAlone() {
        Optional<Path> bundled = nvrtc.bundledHeadersDirectory();
        assumeTrue(
                bundled.isPresent(), "this NVRTC (" + Arrays.toString(nvrtc.version()) + ") bundles no CUDA headers");
        assertTrue(
                Files.isRegularFile(bundled.get().resolve("cuda_bf16.h")),
                bundled.get().toString());
        String src = """
                #include <cuda_bf16.h>
                extern "C" __global__ void mode_test_bf16_axpy(float a, const __nv_bfloat16* x, float* y, int n) {
                    int i = blockIdx.x * blockDim.x + threadIdx.x;
                    if (i < n) y[i] += a * __bfloat162float(x[i]);
                }
                """;
        Nvrtc.Compiled c = nvrtc.compile(
                src, "bf16.cu", Map.of(), List.of("--gpu-architecture=compute_80", "-std=c++17", "-I" + bundled.get()));
        assertTrue(c.ptx().contains(".entry mode_test_bf16_axpy("), c.ptx());
        assertTrue(
                c.ptx().contains("ld.global.u16")
                        || c.ptx().contains("ld.global.b16")
                        || c.ptx().contains("ld.global.nc.u16")
                        || c.ptx().contains("ld.global.nc.b16"),
                "bf16 loads are 16-bit");
    }

    @Test
    void bf16WmmaKernelCompilesWithCudaHeaders() {
        List<Path> include = nvrtc.includeDirectories();
        assumeTrue(
                include.stream()
                        .anyMatch(p -> Files.isRegularFile(p.resolve("crt").resolve("mma.h"))),
                "no CUDA toolkit headers with crt/mma.h (NVRTC's bundle lacks it): " + include);
        String src = """
                #include <cuda_bf16.h>
                #include <mma.h>
                using namespace nvcuda;
                extern "C" __global__ void mode_test_wmma_bf16(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
                    wmma::fill_fragment(fc, 0.0f);
                    wmma::load_matrix_sync(fa, a, 16);
                    wmma::load_matrix_sync(fb, b, 16);
                    wmma::mma_sync(fc, fa, fb, fc);
                    wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
                }
                """;
        List<String> options = new java.util.ArrayList<>(List.of("--gpu-architecture=compute_80", "-std=c++17"));
        options.addAll(nvrtc.includeOptions());
        Nvrtc.Compiled c = nvrtc.compile(src, "wmma.cu", Map.of(), options);
        assertTrue(c.ptx().contains(".entry mode_test_wmma_bf16("));
        assertTrue(
                c.ptx().contains("wmma.mma.sync.aligned.row.col.m16n16k16.f32.bf16.bf16.f32"),
                "a bf16 tensor-core MMA");
    }
}
