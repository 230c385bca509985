package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CudaContext;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaErrors;
import ai.mode.bindings.CudaEvent;
import ai.mode.bindings.CudaException;
import ai.mode.bindings.CudaFunction;
import ai.mode.bindings.CudaModule;
import ai.mode.bindings.CudaStream;
import ai.mode.bindings.DeviceMemory;
import ai.mode.bindings.Nvrtc;
import ai.mode.runtime.cuda.NvrtcKernelCompiler;
import ai.mode.tests.reference.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The CUDA driver bindings on a real GPU: devices, memory, copies, memsets, modules, launches, events, errors. */
@Tag("gpu")
class CudaDriverGpuTest {
    private CudaDriver driver;
    private CudaContext ctx;

    @BeforeEach
    void open() {
        driver = Gpu.requireGpu();
        ctx = driver.retainPrimaryContext(0);
        ctx.makeCurrent();
    }

    @AfterEach
    void close() {
        if (ctx != null) ctx.close();
    }

    @Test
    void deviceProperties() {
        int dev = driver.device(0);
        assertTrue(driver.deviceCount() >= 1);
        assertFalse(driver.deviceName(dev).isBlank());
        int cc = driver.computeCapability(dev);
        assertTrue(cc >= 50 && cc < 200, "compute capability " + cc);
        assertTrue(driver.deviceTotalMemory(dev) > (1L << 30));
        assertTrue(driver.deviceAttribute(CudaDriver.ATTR_MULTIPROCESSOR_COUNT, dev) > 0);
        assertEquals(32, driver.deviceAttribute(CudaDriver.ATTR_WARP_SIZE, dev));
        assertTrue(driver.driverVersion() >= 11000, "driver " + driver.driverVersion());
        long[] info = driver.memoryInfo();
        assertTrue(info[0] > 0 && info[0] <= info[1]);
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", driver.errorName(CudaErrors.OUT_OF_MEMORY));
        for (var e : CudaErrors.all().entrySet()) {
            assertEquals(e.getValue(), driver.errorName(e.getKey()), "cuGetErrorName agrees with our table");
        }
    }

    @Test
    void copiesAndMemsets() {
        int n = 1 << 18;
        float[] data = TestData.normal(1, n);
        try (Arena arena = Arena.ofConfined();
                DeviceMemory a = DeviceMemory.allocate(driver, 4L * n);
                DeviceMemory b = DeviceMemory.allocate(driver, 4L * n);
                CudaStream stream = driver.streamCreate(0)) {
            MemorySegment host = arena.allocateFrom(ValueLayout.JAVA_FLOAT, data);
            driver.memcpyHtoD(a.address(), host, 4L * n);
            driver.memcpyDtoD(b.address(), a.address(), 4L * n);
            MemorySegment back = arena.allocate(4L * n);
            driver.memcpyDtoH(back, b.address(), 4L * n);
            assertArrayEquals(data, back.toArray(ValueLayout.JAVA_FLOAT));

            driver.memsetD32Async(a.address(), Float.floatToRawIntBits(2.5f), n, stream);
            driver.memsetD8Async(a.address(), 0, 16, stream);
            driver.memcpyDtoHAsync(back, a.address(), 4L * n, stream);
            stream.synchronize();
            float[] got = back.toArray(ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < 4; i++) assertEquals(0f, got[i]);
            for (int i = 4; i < n; i++) assertEquals(2.5f, got[i], "element " + i);
        }
    }

    @Test
    void outOfMemoryNamesTheRequest() {
        CudaException e = assertThrows(CudaException.class, () -> driver.memAlloc(1L << 50));
        assertEquals(CudaErrors.OUT_OF_MEMORY, e.code());
        assertTrue(
                e.getMessage().startsWith("cuMemAlloc(bytes=1125899906842624) failed: CUDA_ERROR_OUT_OF_MEMORY (2)"),
                e.getMessage());
    }

    @Test
    void garbageModuleIsRejectedWithItsName() {
        CudaException e = assertThrows(
                CudaException.class,
                () -> driver.moduleLoadData("not a module".getBytes(StandardCharsets.UTF_8), "garbage"));
        assertTrue(e.getMessage().startsWith("cuModuleLoadDataEx(module=garbage"), e.getMessage());
    }

    @Test
    void nvrtcKernelLaunchesAndIsTimed() {
        assumeTrue(
                Nvrtc.unavailableReason().isEmpty(),
                () -> "NVRTC not available: " + Nvrtc.unavailableReason().orElse(""));
        Nvrtc nvrtc = Nvrtc.get();
        int cc = driver.computeCapability(driver.device(0));
        String target = NvrtcKernelCompiler.target(cc, nvrtc.supportedArchs());
        String src = """
                extern "C" __global__ void mode_test_axpy(float a, const float* x, float* y, int n) {
                    int i = blockIdx.x * blockDim.x + threadIdx.x;
                    if (i < n) y[i] = fmaf(a, x[i], y[i]);
                }
                """;
        Nvrtc.Compiled c = nvrtc.compile(src, "axpy.cu", Map.of(), List.of("--gpu-architecture=" + target));
        byte[] image = target.startsWith("sm_") ? c.cubin() : c.ptx().getBytes(StandardCharsets.UTF_8);
        int n = 100_003;
        float a = 1.75f;
        float[] x = TestData.normal(2, n);
        float[] y = TestData.normal(3, n);
        try (CudaModule module = driver.moduleLoadData(image, "axpy");
                Arena arena = Arena.ofConfined();
                DeviceMemory dx = DeviceMemory.allocate(driver, 4L * n);
                DeviceMemory dy = DeviceMemory.allocate(driver, 4L * n);
                CudaStream stream = driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
                CudaEvent start = driver.eventCreate(CudaDriver.EVENT_DEFAULT);
                CudaEvent end = driver.eventCreate(CudaDriver.EVENT_DEFAULT)) {
            CudaFunction f = module.function("mode_test_axpy");
            assertTrue(driver.functionAttribute(f, CudaDriver.FUNC_ATTR_NUM_REGS) > 0);
            driver.memcpyHtoD(dx.address(), arena.allocateFrom(ValueLayout.JAVA_FLOAT, x), 4L * n);
            driver.memcpyHtoD(dy.address(), arena.allocateFrom(ValueLayout.JAVA_FLOAT, y), 4L * n);
            MemorySegment slots = arena.allocate(8 * 4, 8);
            slots.set(ValueLayout.JAVA_FLOAT, 0, a);
            slots.set(ValueLayout.JAVA_LONG, 8, dx.address());
            slots.set(ValueLayout.JAVA_LONG, 16, dy.address());
            slots.set(ValueLayout.JAVA_INT, 24, n);
            MemorySegment params = arena.allocate(ValueLayout.ADDRESS, 4);
            for (int i = 0; i < 4; i++) params.setAtIndex(ValueLayout.ADDRESS, i, slots.asSlice(8L * i, 8));
            start.record(stream);
            driver.launchKernel(f, (n + 255) / 256, 1, 1, 256, 1, 1, 0, stream, params);
            end.record(stream);
            end.synchronize();
            assertTrue(end.elapsedMillisSince(start) >= 0);
            MemorySegment back = arena.allocate(4L * n);
            driver.memcpyDtoH(back, dy.address(), 4L * n);
            float[] got = back.toArray(ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < n; i++) assertEquals(Math.fma(a, x[i], y[i]), got[i], "y[" + i + "]");

            CudaException bad = assertThrows(
                    CudaException.class, () -> driver.launchKernel(f, 1, 1, 1, 4096, 1, 1, 0, stream, params));
            assertTrue(
                    bad.getMessage().contains("cuLaunchKernel(mode_test_axpy, grid=[1,1,1], block=[4096,1,1]"),
                    bad.getMessage());
        }
    }
}
