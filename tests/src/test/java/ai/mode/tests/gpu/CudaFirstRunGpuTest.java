package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.kernels.KernelResources;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.runtime.emu.EmuDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What a first run on a GPU must establish before any op result means anything (the first steps of gpu-check.sh):
 * kernel parameters reach the kernel through the real driver's {@code cuLaunchKernel} as {@code KernelArgs} wrote
 * them, every kernel takes parameters of the sizes its C signature has, and every module is loaded from the fatbin's
 * image for this GPU (SASS built from the sm_90a code on an H100 or H200), not JIT-compiled PTX and not NVRTC output.
 */
@Tag("gpu")
class CudaFirstRunGpuTest {
    private static final String PROBE = "mode_probe_params_fwd_f32";

    @Test
    void probeEchoesEveryParameterTypeThroughTheDriver() {
        Gpu.requireGpu();
        try (CudaDevice dev = CudaDevice.open(0);
                Arena arena = Arena.ofConfined()) {
            long out = dev.malloc(8 * 12), counter = dev.malloc(4), marker = dev.malloc(16);
            dev.memset(out, 0, 8 * 12);
            dev.memset(counter, 0, 4);
            int i = -123456789, u = 0xFFFFFFFE;
            long l = 0x7edcba9876543210L;
            float f = -0.0f;
            double d = Math.PI;
            KernelArgs args = new KernelArgs(arena, 8)
                    .i32(i)
                    .i64(l)
                    .f32(f)
                    .f64(d)
                    .u32(u)
                    .ptr(marker)
                    .ptr(out)
                    .ptr(counter);
            KernelFunction fn = dev.function(PROBE);
            dev.launch(fn, 2, 3, 1, 4, 2, 2, 0, args.build());
            dev.synchronize();
            MemorySegment host = arena.allocate(8 * 12, 8), count = arena.allocate(4, 4);
            dev.copyDeviceToHost(out, host, 8 * 12);
            dev.copyDeviceToHost(counter, count, 4);
            long[] got = host.toArray(ValueLayout.JAVA_LONG);
            assertEquals(i, got[0], "int");
            assertEquals(l, got[1], "long long");
            assertEquals(Float.floatToRawIntBits(f) & 0xFFFFFFFFL, got[2], "float bits");
            assertEquals(Double.doubleToRawLongBits(d), got[3], "double bits");
            assertEquals(0xFFFFFFFEL, got[4], "unsigned");
            assertEquals(marker, got[5], "pointer");
            assertArrayEquals(new long[] {2, 3, 1, 4, 2, 2}, Arrays.copyOfRange(got, 6, 12), "grid and block");
            assertEquals(2 * 3 * 4 * 2 * 2, count.get(ValueLayout.JAVA_INT, 0), "every thread of every block ran");
            for (long p : new long[] {out, counter, marker}) dev.free(p);
        }
    }

    /**
     * Every indexed kernel, as the driver loaded it from the fatbin, takes as many parameters of the same byte sizes
     * as the C prototype the emulator recorded for it ({@code KernelArgsLayoutTest} checks, on the emulator, that
     * DeviceBackend launches each kernel with exactly that prototype's types).
     */
    @Test
    void everyKernelTakesTheParameterSizesOfItsCSignature() {
        Gpu.requireGpu();
        assumeTrue(EmuDevice.libraryAvailable(), () -> "no emulator library: " + EmuDevice.unavailableReason());
        Map<String, String> entries = KernelResources.entryPoints();
        assumeFalse(entries.isEmpty(), "no kernel resources on the classpath");
        List<String> wrong = new ArrayList<>();
        try (CudaDevice dev = CudaDevice.open(0);
                EmuDevice emu = EmuDevice.open()) {
            assumeTrue(dev.parameterSizes(PROBE).isPresent(), "this driver has no cuFuncGetParamInfo (CUDA < 12.4)");
            for (String entry : entries.keySet()) {
                String signature = emu.library().kernelSignature(entry).orElseThrow();
                long[] want = signature
                        .chars()
                        .mapToLong(c -> "pld".indexOf(c) >= 0 ? 8 : 4)
                        .toArray();
                long[] got = dev.parameterSizes(entry).orElseThrow();
                if (!Arrays.equals(want, got)) {
                    wrong.add(entry + ": C signature (" + signature + ") has sizes " + Arrays.toString(want)
                            + ", the driver's " + Arrays.toString(got));
                }
            }
        }
        assertEquals(List.of(), wrong);
    }

    /**
     * Every kernel comes from the fatbin: on compute capability 9.0 the code that runs was compiled from the sm_90a
     * image (PTX version 90), on 8.0 from sm_80; on any other GPU the compute_80 PTX is JIT-compiled by the driver
     * (binary version equal to the GPU's). Never NVRTC, which the loader uses only when the fatbin is refused.
     */
    @Test
    void everyKernelComesFromTheFatbinsImageForThisGpu() {
        Gpu.requireGpu();
        Map<String, String> entries = KernelResources.entryPoints();
        assumeFalse(entries.isEmpty(), "no kernel resources on the classpath");
        List<String> wrong = new ArrayList<>();
        try (CudaDevice dev = CudaDevice.open(0)) {
            int cc = dev.computeCapability();
            int wantPtx = cc == 90 || cc == 80 ? cc : 80;
            for (String entry : entries.keySet()) {
                assertTrue(KernelResources.fatbin(entries.get(entry)).isPresent(), "no fatbin for " + entry);
                CudaDevice.KernelImage image = dev.kernelImage(entry);
                if (!image.origin().equals("fatbin") || image.ptxVersion() != wantPtx || image.binaryVersion() != cc) {
                    wrong.add(entry + ": " + image + ", want fatbin code compiled from compute_" + wantPtx + " for sm_"
                            + cc);
                }
            }
        }
        assertEquals(List.of(), wrong, "modules not from the fatbin's image");
    }
}
