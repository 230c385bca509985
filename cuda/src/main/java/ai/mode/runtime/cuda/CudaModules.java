package ai.mode.runtime.cuda;

import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaErrors;
import ai.mode.bindings.CudaException;
import ai.mode.bindings.CudaModule;
import ai.mode.bindings.NativeLibraryException;
import ai.mode.kernels.KernelResources;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Loads the project's kernel modules on one device and hands out their entry points. A module comes from
 * its embedded fatbin (SASS sm_80 / sm_90a and PTX compute_80); when the fatbin is missing, or the driver
 * rejects it for this GPU (no matching SASS and the PTX cannot be JIT-compiled, e.g. a PTX ISA newer than
 * the driver), the embedded {@code .cu} source is compiled with NVRTC ({@link NvrtcKernelCompiler}).
 * The {@code kernels=nvrtc} option ({@link CudaOptions#nvrtcKernels()}) forces NVRTC (for testing that path on any GPU).
 */
final class CudaModules implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(CudaModules.class.getName());

    /** Driver errors after which NVRTC is tried instead of the fatbin. */
    private static final Set<Integer> FALLBACK_ERRORS = Set.of(
            CudaErrors.NO_BINARY_FOR_GPU,
            CudaErrors.INVALID_PTX,
            CudaErrors.UNSUPPORTED_PTX_VERSION,
            CudaErrors.JIT_COMPILER_NOT_FOUND,
            CudaErrors.INVALID_IMAGE);

    private final CudaDriver driver;
    private final int computeCapability;
    private final String deviceName;
    private final boolean forceNvrtc;
    private final Map<String, CudaModule> modules = new HashMap<>();
    private final Map<String, String> originOfModule = new HashMap<>();
    private final Map<String, CudaKernel> kernels = new HashMap<>();
    private NvrtcKernelCompiler compiler;

    CudaModules(CudaDriver driver, int computeCapability, String deviceName, boolean forceNvrtc) {
        this.driver = driver;
        this.computeCapability = computeCapability;
        this.deviceName = deviceName;
        this.forceNvrtc = forceNvrtc;
    }

    /** The kernel {@code entryPoint}, loading its module on first use. */
    CudaKernel kernel(String entryPoint) {
        CudaKernel k = kernels.get(entryPoint);
        if (k == null) {
            String module = KernelResources.moduleOf(entryPoint);
            CudaModule m = module(module);
            k = new CudaKernel(m.function(entryPoint), originOfModule.get(module));
            kernels.put(entryPoint, k);
        }
        return k;
    }

    private CudaModule module(String module) {
        CudaModule m = modules.get(module);
        if (m != null) return m;
        Optional<byte[]> fatbin = forceNvrtc ? Optional.empty() : KernelResources.fatbin(module);
        String why;
        if (fatbin.isPresent()) {
            try {
                m = driver.moduleLoadData(fatbin.get(), module);
                modules.put(module, m);
                originOfModule.put(module, "fatbin");
                return m;
            } catch (CudaException e) {
                if (!FALLBACK_ERRORS.contains(e.code())) throw e;
                why = "the fatbin does not load on " + deviceName + " (" + e.errorName() + ")";
            }
        } else {
            why = forceNvrtc ? "the cuda option kernels=nvrtc" : "no fatbin was built (nvcc was absent at build time)";
        }
        LOG.log(System.Logger.Level.INFO, "kernel module {0}: {1}; compiling it with NVRTC", module, why);
        NvrtcKernelCompiler.Image image;
        try {
            image = compiler().compile(module, computeCapability);
        } catch (NativeLibraryException e) {
            throw new IllegalStateException(
                    "kernel module " + module + " cannot run on " + deviceName + ": " + why
                            + ", and NVRTC is unavailable (" + e.getMessage() + ")",
                    e);
        }
        try {
            m = driver.moduleLoadData(image.bytes(), module + " (nvrtc " + image.target() + ")");
        } catch (CudaException e) {
            int[] v = ai.mode.bindings.Nvrtc.get().version();
            int drv = driver.driverVersion();
            throw new IllegalStateException(
                    e.getMessage() + " [NVRTC " + v[0] + "." + v[1] + " output on a CUDA "
                            + drv / 1000 + "." + drv % 1000 / 10
                            + " driver: an NVRTC newer than the driver needs a driver update, "
                            + "or put a matching CUDA toolkit first in LD_LIBRARY_PATH]",
                    e);
        }
        modules.put(module, m);
        originOfModule.put(module, "nvrtc " + image.target());
        return m;
    }

    private NvrtcKernelCompiler compiler() {
        if (compiler == null) compiler = NvrtcKernelCompiler.standard();
        return compiler;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (CudaModule m : modules.values()) {
            try {
                m.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        modules.clear();
        kernels.clear();
        if (first != null) throw first;
    }
}
