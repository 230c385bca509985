package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.mode.kernels.KernelResources;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.cuda.CudaOptions;
import ai.mode.runtime.device.DeviceException;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.tests.reference.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The cuda Device on a real GPU: pool reuse, copies, kernel modules from fatbins and through NVRTC, errors. */
@Tag("gpu")
class CudaDeviceGpuTest {

    @Test
    void poolReusesAndCopiesRoundTrip() {
        Gpu.requireGpu();
        try (CudaDevice dev = CudaDevice.open(0)) {
            assertTrue(dev.name().startsWith("cuda:0 ("), dev.name());
            assertTrue(dev.computeCapability() >= 50);
            float[] data = TestData.normal(5, 12_345);
            long a = Gpu.upload(dev, data);
            assertArrayEquals(data, Gpu.downloadFloats(dev, a, data.length), "heap segment round trip");
            long raw = dev.pool().rawAllocations();
            dev.free(a);
            long b = dev.malloc(4L * data.length - 100);
            assertEquals(a, b, "same size class: the cached block comes back");
            assertEquals(raw, dev.pool().rawAllocations());
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment host = arena.allocateFrom(ValueLayout.JAVA_FLOAT, data);
                dev.copyHostToDevice(host, b, 4L * data.length);
                long c = dev.malloc(4L * data.length);
                dev.copyDeviceToDevice(b, c, 4L * data.length);
                dev.memset(b, 0, 4L * data.length);
                assertArrayEquals(data, Gpu.downloadFloats(dev, c, data.length), "native segment + device copy");
                float[] zeros = Gpu.downloadFloats(dev, b, data.length);
                for (float z : zeros) assertEquals(0f, z);
                dev.free(c);
            }
            dev.free(b);
        }
    }

    @Test
    void badOrdinalIsOneLine() {
        Gpu.requireGpu();
        DeviceException e = assertThrows(DeviceException.class, () -> CudaDevice.open(99));
        assertTrue(e.getMessage().startsWith("CUDA device 99 does not exist"), e.getMessage());
    }

    private static void loadEveryModule(boolean nvrtc) {
        Map<String, String> entries = KernelResources.entryPoints();
        assumeFalse(entries.isEmpty(), "no kernel resources on the classpath");
        try (CudaDevice dev = CudaDevice.open(0, new CudaOptions(false, nvrtc, false))) {
            for (String entry : entries.keySet()) {
                KernelFunction f = dev.function(entry);
                assertNotNull(f);
                assertEquals(entry, f.entryPoint());
            }
            DeviceException e = assertThrows(DeviceException.class, () -> dev.function("mode_no_such_kernel"));
            assertTrue(e.getMessage().contains("mode_no_such_kernel"), e.getMessage());
        }
    }

    @Test
    void everyKernelLoadsFromTheShippedModules() {
        Gpu.requireGpu();
        loadEveryModule(false);
    }

    @Test
    void everyKernelLoadsThroughNvrtc() {
        Gpu.requireGpu();
        assumeFalse(ai.mode.bindings.Nvrtc.unavailableReason().isPresent(), "NVRTC not available");
        loadEveryModule(true);
    }
}
