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
 * the same DeviceBackend code as {@code cuda}), float32 and bf16 storage: once with the WMMA tensor-core GEMM for
 * bf16 operands and once with the tiled GEMM kernel. Skips where the emulator library was not built (no g++).
 */
class EmuConformanceTest {
    private static Backend emu(boolean tensorCores) {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "emu backend unavailable: " + EmuDevice.unavailableReason());
        return new DeviceBackend(EmuDevice.open(), "emu", tensorCores);
    }

    /**
     * The known deviation (3x instead of 2x the naive float32 error, {@link BackendConformance#knownDeviations()}):
     * the tiled GEMM kernel is 1.3 ulps off on one transposed 5 x 1 x 9 product where the naive sum is 0.5 ulp off,
     * like the cpu backend's vector SGEMM.
     */
    private static final Map<String, String> DEVIATIONS =
            Map.of("gemm F32->F32 TN m=5 n=1 k=9 ", "1.3 ulps at K = 9 where the naive sum is 0.5 ulp off");

    @Nested
    class TensorCoreGemm extends BackendConformance {
        @Override
        protected Backend createBackend() {
            return emu(true);
        }

        @Override
        protected List<DType> floatTypes() {
            return List.of(DType.F32, DType.BF16);
        }

        @Override
        protected Map<String, String> knownDeviations() {
            return DEVIATIONS;
        }
    }

    @Nested
    class TiledGemm extends BackendConformance {
        @Override
        protected Backend createBackend() {
            return emu(false);
        }

        @Override
        protected List<DType> floatTypes() {
            return List.of(DType.F32, DType.BF16);
        }

        @Override
        protected Map<String, String> knownDeviations() {
            return DEVIATIONS;
        }
    }
}
