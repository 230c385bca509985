package ai.mode.runtime.cuda;

import ai.mode.bindings.CudaFunction;
import ai.mode.runtime.device.KernelFunction;

/**
 * A kernel loaded on a {@link CudaDevice}: the {@code CUfunction} and the dynamic shared memory limit set
 * on it so far ({@code cuFuncSetAttribute} is needed above the default 48 KiB).
 */
final class CudaKernel implements KernelFunction {
    static final int DEFAULT_DYNAMIC_SHARED_LIMIT = 48 * 1024;

    private final CudaFunction function;
    private final String origin;
    private int dynamicSharedLimit = DEFAULT_DYNAMIC_SHARED_LIMIT;

    CudaKernel(CudaFunction function, String origin) {
        this.function = function;
        this.origin = origin;
    }

    @Override
    public String entryPoint() {
        return function.name();
    }

    CudaFunction function() {
        return function;
    }

    /** How the module was obtained: {@code fatbin} or {@code nvrtc sm_XY} / {@code nvrtc compute_XY}. */
    String origin() {
        return origin;
    }

    int dynamicSharedLimit() {
        return dynamicSharedLimit;
    }

    void dynamicSharedLimit(int bytes) {
        dynamicSharedLimit = bytes;
    }

    @Override
    public String toString() {
        return entryPoint() + " (" + origin + ")";
    }
}
