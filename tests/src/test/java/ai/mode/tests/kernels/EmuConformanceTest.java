package ai.mode.tests.kernels;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.conformance.BackendConformance;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;

/**
 * The backend conformance suite on the {@code emu} backend (the CUDA kernels compiled for the CPU emulator, through
 * the same DeviceBackend code as {@code cuda}), float32 and bf16 storage: once with the WMMA tensor-core kernels for
 * bf16 operands (GEMM and flash attention, the latter under the naive-bf16 rule) (plus the model-size cases, {@link BackendConformance#modelSizes()}, so the kernels the
 * {@code cuda} backend runs are checked at those sizes on every machine) and once with the tiled GEMM and the CUDA-core attention kernels. Skips
 * where the emulator library was not built (no g++).
 *
 * <p>The known deviation (3x instead of 2x the naive float32 error, {@link BackendConformance#knownDeviations()}):
 * the tiled GEMM kernel is 1.3 ulps off on one transposed 5 x 1 x 9 product where the naive sum is 0.5 ulp off,
 * like the cpu backend's vector SGEMM.
 */
class EmuConformanceTest {
    /** The emulator with or without the tensor-core GEMM. */
    abstract static class EmuSuite extends BackendConformance {
        private final boolean tensorCores;

        EmuSuite(boolean tensorCores) {
            this.tensorCores = tensorCores;
        }

        @Override
        protected Backend createBackend() {
            assumeTrue(EmuDevice.libraryAvailable(), () -> "emu backend unavailable: " + EmuDevice.unavailableReason());
            return new DeviceBackend(EmuDevice.open(), "emu", tensorCores);
        }

        @Override
        protected List<DType> floatTypes() {
            return List.of(DType.F32, DType.BF16);
        }

        @Override
        protected Map<String, String> knownDeviations() {
            return Map.of("gemm F32->F32 TN m=5 n=1 k=9 ", "1.3 ulps at K = 9 where the naive sum is 0.5 ulp off");
        }

        @Override
        protected boolean modelSizes() {
            return tensorCores;
        }

        @Override
        protected boolean bf16TensorCoreAttention() {
            return tensorCores;
        }
    }

    @Nested
    class TensorCoreGemm extends EmuSuite {
        TensorCoreGemm() {
            super(true);
        }
    }

    @Nested
    class TiledGemm extends EmuSuite {
        TiledGemm() {
            super(false);
        }
    }
}
