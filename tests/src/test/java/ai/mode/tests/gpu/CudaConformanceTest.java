package ai.mode.tests.gpu;

import ai.mode.conformance.BackendConformance;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import java.util.List;
import org.junit.jupiter.api.Tag;

/**
 * The backend conformance suite on the {@code cuda} backend, float32 and bf16 storage, with the model-size cases
 * (B=2, T=128, D=256, F=704, V=4096, 8 heads over 2); skips without a GPU. BF16 attention (tensor cores) is held to
 * the naive-bf16 rule.
 */
@Tag("gpu")
class CudaConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        Gpu.requireGpu();
        return Backends.create("cuda", 0);
    }

    @Override
    protected List<DType> floatTypes() {
        return List.of(DType.F32, DType.BF16);
    }

    @Override
    protected boolean modelSizes() {
        return true;
    }

    /** BF16 attention runs the tensor-core kernels on compute capability 8.0+ (naive-bf16 rule). */
    @Override
    protected boolean bf16TensorCoreAttention() {
        return true;
    }
}
