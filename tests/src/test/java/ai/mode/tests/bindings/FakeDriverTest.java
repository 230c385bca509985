package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaContext;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaEvent;
import ai.mode.bindings.CudaException;
import ai.mode.bindings.CudaFunction;
import ai.mode.bindings.CudaModule;
import ai.mode.bindings.CudaStream;
import ai.mode.bindings.NativeLibraries;
import ai.mode.bindings.Nvrtc;
import ai.mode.kernels.KernelResources;
import ai.mode.runtime.DType;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.DeviceException;
import ai.mode.runtime.device.Gemm;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.tests.reference.TestData;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CUDA driver bindings and {@link CudaDevice} without a GPU, against a fake {@code libcuda} that g++
 * compiles from the real {@code cuda.h} prototypes (so every FFM signature is checked against the header):
 * "device" memory is host memory, a module image is inspected (fatbins are refused as a GPU without matching
 * SASS would, NVRTC CUBINs accepted) and the {@code fake_axpy} kernel really runs. This exercises argument
 * marshalling, error messages with the JIT log, the pool, the shared-memory opt-in, the sticky-error hint
 * and the NVRTC fallback of the kernel loader.
 */
@SuppressWarnings("restricted")
class FakeDriverTest {
    private static final String FAKE = """
            #include <cuda.h>
            #include <cmath>
            #include <cstdint>
            #include <cstdio>
            #include <cstdlib>
            #include <cstring>
            #include <map>
            #include <string>
            #include <vector>

            namespace {
            struct Module { std::vector<unsigned char> image; bool elf; };
            struct Function { std::string name; Module* module; int maxDynamicShared; };
            struct Event { long long seq; };
            char context;
            thread_local CUcontext current = nullptr;  // per thread, as in the real driver
            int blasMatmuls = 0;
            int retains = 0;
            CUresult sticky = CUDA_SUCCESS;
            long long clock = 0;
            std::map<CUdeviceptr, size_t> live;
            char lastName[128];
            int lastDims[7];

            void jitLog(unsigned n, CUjit_option* opts, void** vals, const char* msg) {
                char* buf = nullptr;
                size_t size = 0;
                for (unsigned i = 0; i < n; i++) {
                    if (opts[i] == CU_JIT_ERROR_LOG_BUFFER) buf = (char*) vals[i];
                    if (opts[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) size = (size_t) (uintptr_t) vals[i];
                }
                if (buf && size) { strncpy(buf, msg, size - 1); buf[size - 1] = 0; }
            }
            CUresult needContext() { return current ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }
            }

            extern "C" {
            int fake_cuda_live_allocations() { return (int) live.size(); }
            int fake_cuda_primary_retains() { return retains; }
            void* fake_cuda_current() { return current; }
            int fake_cublaslt_matmuls() { return blasMatmuls; }
            const char* fake_cuda_last_launch(int* dims) { memcpy(dims, lastDims, sizeof lastDims); return lastName; }

            CUresult CUDAAPI cuGetErrorName(CUresult e, const char** s) {
                switch (e) {
                    case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; return CUDA_SUCCESS;
                    case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return CUDA_SUCCESS;
                    case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return CUDA_SUCCESS;
                    case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; return CUDA_SUCCESS;
                    case CUDA_ERROR_NO_BINARY_FOR_GPU: *s = "CUDA_ERROR_NO_BINARY_FOR_GPU"; return CUDA_SUCCESS;
                    case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return CUDA_SUCCESS;
                    case CUDA_ERROR_ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; return CUDA_SUCCESS;
                    default: *s = nullptr; return CUDA_ERROR_INVALID_VALUE;
                }
            }
            CUresult CUDAAPI cuGetErrorString(CUresult e, const char** s) {
                *s = e == CUDA_ERROR_OUT_OF_MEMORY ? "out of memory" : e == CUDA_ERROR_ILLEGAL_ADDRESS
                        ? "an illegal memory access was encountered" : "fake error";
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuInit(unsigned int) { return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDriverGetVersion(int* v) { *v = 13000; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDeviceGetCount(int* c) { *c = 1; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDeviceGet(CUdevice* d, int ordinal) {
                if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
                *d = 0;
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuDeviceGetName(char* name, int len, CUdevice) { snprintf(name, len, "Fake GPU"); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice) {
                switch (a) {
                    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
                    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
                    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
                    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
                    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = 232448; break;
                    default: return CUDA_ERROR_INVALID_VALUE;
                }
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuDeviceTotalMem(size_t* bytes, CUdevice) { *bytes = 80ull << 30; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) { *c = (CUcontext) &context; retains++; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice) {
                if (--retains == 0) sticky = CUDA_SUCCESS;  // the context is destroyed: its error goes with it
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuCtxSetCurrent(CUcontext c) { current = c; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuCtxSynchronize() { return sticky; }
            CUresult CUDAAPI cuMemGetInfo(size_t* f, size_t* t) { *f = 70ull << 30; *t = 80ull << 30; return needContext(); }
            CUresult CUDAAPI cuMemAlloc(CUdeviceptr* p, size_t bytes) {
                if (CUresult r = needContext()) return r;
                if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
                if (bytes > (1ull << 40)) return CUDA_ERROR_OUT_OF_MEMORY;
                void* m = aligned_alloc(256, (bytes + 255) / 256 * 256);
                *p = (CUdeviceptr) (uintptr_t) m;
                live[*p] = bytes;
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuMemFree(CUdeviceptr p) {
                if (!live.erase(p)) return CUDA_ERROR_INVALID_VALUE;
                free((void*) (uintptr_t) p);
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuMemAllocHost(void** p, size_t bytes) { *p = malloc(bytes); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemFreeHost(void* p) { free(p); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr d, const void* s, size_t n) { memcpy((void*) (uintptr_t) d, s, n); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemcpyDtoH(void* d, CUdeviceptr s, size_t n) { memcpy(d, (void*) (uintptr_t) s, n); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemcpyDtoD(CUdeviceptr d, CUdeviceptr s, size_t n) { memcpy((void*) (uintptr_t) d, (void*) (uintptr_t) s, n); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr d, const void* s, size_t n, CUstream) { return cuMemcpyHtoD(d, s, n); }
            CUresult CUDAAPI cuMemcpyDtoHAsync(void* d, CUdeviceptr s, size_t n, CUstream) { return cuMemcpyDtoH(d, s, n); }
            CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream) { return cuMemcpyDtoD(d, s, n); }
            CUresult CUDAAPI cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n) { memset((void*) (uintptr_t) d, v, n); return CUDA_SUCCESS; }
            CUresult CUDAAPI cuMemsetD32(CUdeviceptr d, unsigned int v, size_t n) {
                unsigned int* p = (unsigned int*) (uintptr_t) d;
                for (size_t i = 0; i < n; i++) p[i] = v;
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream) { return cuMemsetD8(d, v, n); }
            CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream) { return cuMemsetD32(d, v, n); }
            CUresult CUDAAPI cuModuleLoadDataEx(CUmodule* m, const void* image, unsigned int n, CUjit_option* o, void** v) {
                const unsigned char* b = (const unsigned char*) image;
                uint32_t magic;
                memcpy(&magic, b, 4);
                if (magic == 0xBA55ED50u) { jitLog(n, o, v, "fake driver: no SASS for sm_90 in this fatbin"); return CUDA_ERROR_NO_BINARY_FOR_GPU; }
                Module* mod = new Module();
                if (b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F') {
                    uint64_t shoff; uint16_t shentsize, shnum;
                    memcpy(&shoff, b + 0x28, 8); memcpy(&shentsize, b + 0x3A, 2); memcpy(&shnum, b + 0x3C, 2);
                    mod->image.assign(b, b + shoff + (uint64_t) shentsize * shnum);
                    mod->elf = true;
                } else if (memcmp(b, "FAKEMOD", 8) == 0) {
                    mod->elf = false;
                } else {
                    delete mod;
                    jitLog(n, o, v, "fake driver: unrecognised image");
                    return CUDA_ERROR_INVALID_IMAGE;
                }
                *m = (CUmodule) mod;
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuModuleUnload(CUmodule m) { delete (Module*) m; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
                Module* mod = (Module*) m;
                bool found;
                if (mod->elf) {
                    std::string needle(name, strlen(name) + 1);
                    found = std::string((const char*) mod->image.data(), mod->image.size()).find(needle) != std::string::npos;
                } else {
                    found = strcmp(name, "fake_axpy") == 0;
                }
                if (!found) return CUDA_ERROR_NOT_FOUND;
                *f = (CUfunction) new Function{name, mod, 48 * 1024};
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuFuncGetAttribute(int* v, CUfunction_attribute a, CUfunction f) {
                if (a == CU_FUNC_ATTRIBUTE_NUM_REGS) { *v = 32; return CUDA_SUCCESS; }
                if (a == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) { *v = ((Function*) f)->maxDynamicShared; return CUDA_SUCCESS; }
                if (a == CU_FUNC_ATTRIBUTE_PTX_VERSION || a == CU_FUNC_ATTRIBUTE_BINARY_VERSION) { *v = 90; return CUDA_SUCCESS; }
                return CUDA_ERROR_INVALID_VALUE;
            }
            // fake_axpy(float a, const float* x, float* y, int n): the device-side layout of its four parameters
            CUresult CUDAAPI cuFuncGetParamInfo(CUfunction f, size_t index, size_t* offset, size_t* size) {
                static const size_t offsets[4] = {0, 8, 16, 24}, sizes[4] = {4, 8, 8, 4};
                if (((Function*) f)->name != "fake_axpy" || index >= 4) return CUDA_ERROR_INVALID_VALUE;
                *offset = offsets[index];
                if (size) *size = sizes[index];
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) {
                if (a != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || v > 232448) return CUDA_ERROR_INVALID_VALUE;
                ((Function*) f)->maxDynamicShared = v;
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                            unsigned int by, unsigned int bz, unsigned int shared, CUstream, void** params, void**) {
                Function* fn = (Function*) f;
                if ((unsigned long long) bx * by * bz > 1024 || (int) shared > fn->maxDynamicShared) return CUDA_ERROR_INVALID_VALUE;
                snprintf(lastName, sizeof lastName, "%s", fn->name.c_str());
                int dims[7] = {(int) gx, (int) gy, (int) gz, (int) bx, (int) by, (int) bz, (int) shared};
                memcpy(lastDims, dims, sizeof dims);
                if (gx == 7777) sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
                if (fn->name == "fake_axpy") {
                    float a = *(float*) params[0];
                    const float* x = *(const float**) params[1];
                    float* y = *(float**) params[2];
                    int n = *(int*) params[3];
                    for (long long i = 0; i < (long long) gx * bx && i < n; i++) y[i] = fmaf(a, x[i], y[i]);
                }
                return CUDA_SUCCESS;
            }
            CUresult CUDAAPI cuStreamCreate(CUstream* s, unsigned int) { *s = (CUstream) new int(0); return needContext(); }
            CUresult CUDAAPI cuStreamDestroy(CUstream s) { delete (int*) s; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuStreamSynchronize(CUstream) { return sticky; }
            CUresult CUDAAPI cuStreamQuery(CUstream) { return sticky; }
            CUresult CUDAAPI cuStreamWaitEvent(CUstream, CUevent, unsigned int) { return CUDA_SUCCESS; }
            CUresult CUDAAPI cuEventCreate(CUevent* e, unsigned int) { *e = (CUevent) new Event{-1}; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuEventDestroy(CUevent e) { delete (Event*) e; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuEventRecord(CUevent e, CUstream) { ((Event*) e)->seq = ++clock; return CUDA_SUCCESS; }
            CUresult CUDAAPI cuEventSynchronize(CUevent) { return sticky; }
            CUresult CUDAAPI cuEventElapsedTime(float* ms, CUevent s, CUevent e) {
                if (((Event*) s)->seq < 0 || ((Event*) e)->seq < 0) return CUDA_ERROR_INVALID_HANDLE;
                *ms = 0.5f * (float) (((Event*) e)->seq - ((Event*) s)->seq);
                return CUDA_SUCCESS;
            }

            // A fake cuBLASLt in the same library: like the real one, it acts on the calling thread's current
            // context and fails without it (13 = CUBLAS_STATUS_EXECUTION_FAILED, 1 = NOT_INITIALIZED).
            static int blasStatus(int failure) { return current == (CUcontext) &context ? 0 : failure; }
            static int blasObject(void** out) { *out = malloc(8); return 0; }
            size_t cublasLtGetVersion() { return 120603; }
            const char* cublasLtGetStatusName(int s) { return s == 0 ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_EXECUTION_FAILED"; }
            const char* cublasLtGetStatusString(int s) { return s == 0 ? "success" : "the fake has no current context"; }
            int cublasLtCreate(void** h) { if (int r = blasStatus(1)) return r; return blasObject(h); }
            int cublasLtDestroy(void* h) { free(h); return 0; }
            int cublasLtMatmulDescCreate(void** d, int, int) { return blasObject(d); }
            int cublasLtMatmulDescDestroy(void* d) { free(d); return 0; }
            int cublasLtMatmulDescSetAttribute(void*, int, const void*, size_t) { return 0; }
            int cublasLtMatrixLayoutCreate(void** l, int, uint64_t, uint64_t, int64_t) { return blasObject(l); }
            int cublasLtMatrixLayoutDestroy(void* l) { free(l); return 0; }
            int cublasLtMatrixLayoutSetAttribute(void*, int, const void*, size_t) { return 0; }
            int cublasLtMatmulPreferenceCreate(void** p) { return blasObject(p); }
            int cublasLtMatmulPreferenceDestroy(void* p) { free(p); return 0; }
            int cublasLtMatmulPreferenceSetAttribute(void*, int, const void*, size_t) { return 0; }
            int cublasLtMatmulAlgoGetHeuristic(void*, void*, void*, void*, void*, void*, void*, int, void* result, int* count) {
                memset(result, 0, 96);  // algo 0, workspace 0, state 0
                *count = 1;
                return 0;
            }
            int cublasLtMatmul(void*, void*, const void*, const void*, void*, const void*, void*, const void*, const void*,
                               void*, void*, void*, const void*, void*, size_t, CUstream) {
                if (int r = blasStatus(13)) return r;
                blasMatmuls++;
                return 0;
            }
            }
            """;

    private static Path fakeDir;
    private static CudaDriver driver;
    private static MethodHandle liveAllocations;
    private static MethodHandle primaryRetains;
    private static MethodHandle lastLaunch;
    private static MethodHandle currentContext;
    private static MethodHandle blasMatmuls;
    private static CublasLt blasLt;

    @BeforeEach
    void buildFakeDriver() throws Exception {
        if (driver != null) return;
        Optional<Path> include = Nvrtc.toolkitIncludeDirectory();
        assumeTrue(
                include.isPresent() && Files.isRegularFile(include.get().resolve("cuda.h")),
                "no CUDA toolkit cuda.h to compile the fake driver against");
        Path dir = Files.createTempDirectory("mode-fake-cuda");
        Path src = dir.resolve("fake_cuda.cpp");
        Files.writeString(src, FAKE);
        Process p;
        try {
            // The soname differs from libcuda.so.1 so that a real driver loaded later in this JVM is not shadowed.
            p = new ProcessBuilder(
                            "g++",
                            "-std=c++17",
                            "-shared",
                            "-fPIC",
                            "-O1",
                            "-I" + include.get(),
                            "-Wl,-soname,libmode_fake_cuda.so",
                            "-o",
                            dir.resolve("libcuda.so.1").toString(),
                            src.toString())
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            assumeTrue(false, "g++ is not installed");
            return;
        }
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "g++ timed out");
        assertEquals(0, p.exitValue(), "the fake driver must compile against cuda.h: " + out);
        NativeLibraries.Loaded lib = new NativeLibraries(List.of(dir), false, null, dir.resolve("cache"))
                .load(NativeLibraries.Library.CUDA_DRIVER);
        SymbolLookup l = lib.lookup();
        Linker linker = Linker.nativeLinker();
        liveAllocations = linker.downcallHandle(
                l.find("fake_cuda_live_allocations").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT));
        primaryRetains = linker.downcallHandle(
                l.find("fake_cuda_primary_retains").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT));
        lastLaunch = linker.downcallHandle(
                l.find("fake_cuda_last_launch").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        currentContext = linker.downcallHandle(
                l.find("fake_cuda_current").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
        blasMatmuls = linker.downcallHandle(
                l.find("fake_cublaslt_matmuls").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT));
        fakeDir = dir;
        driver = CudaDriver.bind(lib);
        blasLt = CublasLt.bind(lib);
    }

    private static int live() throws Throwable {
        return (int) liveAllocations.invokeExact();
    }

    private static int retains() throws Throwable {
        return (int) primaryRetains.invokeExact();
    }

    /** The calling thread's current context in the fake driver. */
    private static MemorySegment current() {
        try {
            return (MemorySegment) currentContext.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The last launch: entry name and {gx, gy, gz, bx, by, bz, sharedBytes}. */
    private static Map.Entry<String, int[]> last() throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dims = arena.allocate(ValueLayout.JAVA_INT, 7);
            MemorySegment name = (MemorySegment) lastLaunch.invokeExact(dims);
            return Map.entry(name.reinterpret(128).getString(0), dims.toArray(ValueLayout.JAVA_INT));
        }
    }

    @Test
    void driverBindingsMarshalEveryCall() throws Throwable {
        assertTrue(driver.origin().startsWith(fakeDir.toString()), driver.origin());
        assertEquals(13000, driver.driverVersion());
        assertEquals(1, driver.deviceCount());
        int dev = driver.device(0);
        assertEquals("Fake GPU", driver.deviceName(dev));
        assertEquals(90, driver.computeCapability(dev));
        assertEquals(80L << 30, driver.deviceTotalMemory(dev));
        CudaException badDevice = assertThrows(CudaException.class, () -> driver.device(3));
        assertTrue(badDevice.getMessage().startsWith("cuDeviceGet(ordinal=3) failed: "), badDevice.getMessage());

        int retained = retains();
        try (CudaContext ctx = driver.retainPrimaryContext(0)) {
            ctx.makeCurrent();
            assertEquals(retained + 1, retains());
            long[] info = driver.memoryInfo();
            assertEquals(80L << 30, info[1]);
            int before = live();
            int n = 1000;
            float[] x = TestData.normal(1, n), y = TestData.normal(2, n);
            try (Arena arena = Arena.ofConfined();
                    CudaStream stream = driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
                    CudaEvent start = driver.eventCreate(0);
                    CudaEvent end = driver.eventCreate(0)) {
                long dx = driver.memAlloc(4L * n), dy = driver.memAlloc(4L * n), dz = driver.memAlloc(4L * n);
                assertEquals(before + 3, live());
                assertEquals(0, dx % 256, "256-byte aligned");
                driver.memcpyHtoD(dx, arena.allocateFrom(ValueLayout.JAVA_FLOAT, x), 4L * n);
                driver.memcpyHtoDAsync(dy, arena.allocateFrom(ValueLayout.JAVA_FLOAT, y), 4L * n, stream);
                driver.memcpyDtoDAsync(dz, dy, 4L * n, stream);

                byte[] image = "FAKEMOD\0".getBytes(StandardCharsets.ISO_8859_1);
                try (CudaModule m = driver.moduleLoadData(image, "fake")) {
                    CudaFunction f = m.function("fake_axpy");
                    assertEquals(32, driver.functionAttribute(f, CudaDriver.FUNC_ATTR_NUM_REGS));
                    assertTrue(driver.hasParameterInfo());
                    long[][] layout = {{0, 4}, {8, 8}, {16, 8}, {24, 4}};
                    for (int i = 0; i < 4; i++) {
                        assertArrayEquals(
                                layout[i], driver.functionParameter(f, i).orElseThrow(), "parameter " + i);
                    }
                    assertTrue(driver.functionParameter(f, 4).isEmpty(), "fake_axpy takes four parameters");
                    driver.setFunctionAttribute(f, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, 65536);
                    assertEquals(
                            65536, driver.functionAttribute(f, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES));
                    MemorySegment params = new KernelArgs(arena, 4)
                            .f32(0.5f)
                            .ptr(dx)
                            .ptr(dz)
                            .i32(n)
                            .build();
                    start.record(stream);
                    driver.launchKernel(f, (n + 127) / 128, 1, 1, 128, 1, 1, 4096, stream, params);
                    end.record(stream);
                    end.synchronize();
                    assertEquals(0.5f, end.elapsedMillisSince(start));
                    Map.Entry<String, int[]> l = last();
                    assertEquals("fake_axpy", l.getKey());
                    assertArrayEquals(new int[] {8, 1, 1, 128, 1, 1, 4096}, l.getValue());
                    CudaException bad = assertThrows(
                            CudaException.class, () -> driver.launchKernel(f, 1, 1, 1, 2048, 1, 1, 0, stream, params));
                    assertEquals(
                            "cuLaunchKernel(fake_axpy, grid=[1,1,1], block=[2048,1,1], sharedBytes=0) failed: "
                                    + "CUDA_ERROR_INVALID_VALUE (1): fake error",
                            bad.getMessage());
                    CudaException missing = assertThrows(CudaException.class, () -> m.function("nope"));
                    assertTrue(
                            missing.getMessage()
                                    .startsWith(
                                            "cuModuleGetFunction(module=fake, name=nope) failed: CUDA_ERROR_NOT_FOUND (500)"),
                            missing.getMessage());
                }
                MemorySegment back = arena.allocate(4L * n);
                driver.memcpyDtoHAsync(back, dz, 4L * n, stream);
                stream.synchronize();
                assertTrue(stream.isIdle());
                float[] got = back.toArray(ValueLayout.JAVA_FLOAT);
                for (int i = 0; i < n; i++) assertEquals(Math.fma(0.5f, x[i], y[i]), got[i], "axpy element " + i);

                driver.memsetD32(dx, Float.floatToRawIntBits(-3f), n);
                driver.memsetD8Async(dx, 0, 8, stream);
                driver.memcpyDtoH(back, dx, 4L * n);
                float[] set = back.toArray(ValueLayout.JAVA_FLOAT);
                assertEquals(0f, set[0]);
                assertEquals(0f, set[1]);
                assertEquals(-3f, set[2]);
                assertEquals(-3f, set[n - 1]);
                driver.memFree(dx);
                driver.memFree(dy);
                driver.memFree(dz);
                assertEquals(before, live());
                CudaException doubleFree = assertThrows(CudaException.class, () -> driver.memFree(dx));
                assertTrue(doubleFree.getMessage().startsWith("cuMemFree(ptr=0x" + Long.toHexString(dx) + ")"));
            }
            CudaException oom = assertThrows(CudaException.class, () -> driver.memAlloc(1L << 41));
            assertEquals(
                    "cuMemAlloc(bytes=2199023255552) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory",
                    oom.getMessage());
            CudaException garbage = assertThrows(
                    CudaException.class,
                    () -> driver.moduleLoadData("garbage!".getBytes(StandardCharsets.UTF_8), "junk"));
            assertEquals(
                    "cuModuleLoadDataEx(module=junk, bytes=8) failed: CUDA_ERROR_INVALID_IMAGE (200): fake error; "
                            + "JIT log: fake driver: unrecognised image",
                    garbage.getMessage());
            MemorySegment pinned = driver.memAllocHost(4096);
            assertEquals(4096, pinned.byteSize());
            driver.memFreeHost(pinned);
        }
        assertEquals(retained, retains(), "closing the context releases the primary context");
    }

    @Test
    void cudaDeviceOverTheFakeDriver() throws Throwable {
        int before = live();
        int retained = retains();
        try (CudaDevice dev = CudaDevice.open(driver, 0)) {
            assertEquals("cuda:0 (Fake GPU, sm_90)", dev.name());
            assertEquals(90, dev.computeCapability());
            float[] data = TestData.normal(3, 777);
            long a = dev.malloc(4L * data.length);
            dev.copyHostToDevice(MemorySegment.ofArray(data), a, 4L * data.length);
            float[] back = new float[data.length];
            dev.copyDeviceToHost(a, MemorySegment.ofArray(back), 4L * back.length);
            assertArrayEquals(data, back, "heap segments are staged through native memory");
            long raw = dev.pool().rawAllocations();
            dev.free(a);
            assertEquals(a, dev.malloc(4L * data.length - 4), "same size class: the pool hands the block back");
            assertEquals(raw, dev.pool().rawAllocations());
            assertEquals(0.5f * 1, dev.timeMillis(() -> {}), "one event tick of the fake clock");
            DeviceException badOrdinal = assertThrows(DeviceException.class, () -> CudaDevice.open(driver, 1));
            assertTrue(badOrdinal.getMessage().startsWith("CUDA device 1 does not exist: 1 device(s) visible"));

            Map<String, String> entries = KernelResources.entryPoints();
            assumeFalse(entries.isEmpty(), "no kernel resources on the classpath");
            String entry = entries.containsKey("mode_fill_fwd_f32")
                    ? "mode_fill_fwd_f32"
                    : entries.keySet().iterator().next();
            if (Nvrtc.unavailableReason().isPresent()) {
                DeviceException e = assertThrows(DeviceException.class, () -> dev.function(entry));
                assertTrue(e.getMessage().contains("NVRTC is unavailable"), e.getMessage());
                return;
            }
            // the fake refuses fatbins (as a GPU without matching SASS would): the loader compiles the source with
            // NVRTC
            KernelFunction f = dev.function(entry);
            assertEquals(entry, f.entryPoint());
            assertTrue(f.toString().contains("nvrtc sm_90"), f.toString());
            assertEquals(new CudaDevice.KernelImage("nvrtc sm_90", 90, 90), dev.kernelImage(entry));
            assertArrayEquals(new long[0], dev.parameterSizes(entry).orElseThrow(), "the fake knows only fake_axpy");
            assertTrue(f == dev.function(entry), "functions are cached");
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment params =
                        new KernelArgs(arena, 3).ptr(a).i64(10).f32(1f).build();
                dev.launch(f, 3, 2, 1, 256, 1, 1, 100_000, params);
                assertArrayEquals(
                        new int[] {3, 2, 1, 256, 1, 1, 100_000},
                        last().getValue(),
                        "over 48 KiB of shared memory: the kernel was opted in first");
                DeviceException tooMuch =
                        assertThrows(DeviceException.class, () -> dev.launch(f, 1, 1, 1, 32, 1, 1, 300_000, params));
                assertTrue(tooMuch.getMessage().contains("allows at most 232448"), tooMuch.getMessage());
                dev.launch(f, 7777, 1, 1, 32, 1, 1, 0, params);
                DeviceException sticky = assertThrows(DeviceException.class, dev::synchronize);
                assertTrue(sticky.getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS (700)"), sticky.getMessage());
                assertTrue(sticky.getMessage().contains("CUDA_LAUNCH_BLOCKING=1"), sticky.getMessage());
            }
        }
        assertEquals(retained, retains(), "closing the device releases its context");
        assertEquals(before, live(), "closing the device frees its pool");
    }

    @Test
    void vendorCallsEnterTheDeviceContextOnAnyThread() throws Throwable {
        int before = (int) blasMatmuls.invokeExact();
        try (CudaDevice dev = CudaDevice.open(driver, 0, blasLt);
                ExecutorService other = Executors.newSingleThreadExecutor()) {
            Gemm gemm = dev.vendorGemm().orElseThrow();
            long a = dev.malloc(4 * 6), b = dev.malloc(4 * 12), c = dev.malloc(4 * 8);
            Gemm.Problem p = new Gemm.Problem(false, false, 2, 4, 3, 1f, a, 0, b, 0, DType.F32, 0f, c, 0, DType.F32, 1);
            // a thread that never touched the device: its current context is none until a vendor call enters it
            assertEquals(
                    MemorySegment.NULL, other.submit(FakeDriverTest::current).get());
            assertTrue(other.submit(() -> gemm.run(p)).get(), "cublasLtMatmul ran on the second thread");
            assertEquals(before + 1, (int) blasMatmuls.invokeExact());
            assertEquals(
                    dev.context().handle(),
                    other.submit(FakeDriverTest::current).get());
            MemorySegment seen =
                    other.submit(() -> dev.withContext(FakeDriverTest::current)).get();
            assertEquals(dev.context().handle(), seen, "withContext makes the device's context current");
            // the fake really refuses a cuBLASLt call on a thread without a current context (what the hook did)
            try (ExecutorService fresh = Executors.newSingleThreadExecutor()) {
                ExecutionException refused = assertThrows(
                        ExecutionException.class,
                        () -> fresh.submit(blasLt::create).get());
                assertTrue(
                        refused.getCause().getMessage().startsWith("cublasLtCreate() failed"),
                        refused.getCause().getMessage());
            }
            dev.free(a);
            dev.free(b);
            dev.free(c);
        }
    }
}
