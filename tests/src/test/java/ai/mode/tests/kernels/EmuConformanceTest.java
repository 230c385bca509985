package ai.mode.tests.kernels;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.conformance.BackendConformance;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import java.util.List;
import org.junit.jupiter.api.Nested;

/**
 * The backend conformance suite on the {@code emu} backend (the CUDA kernels compiled for the CPU emulator, through
 * the same DeviceBackend code as {@code cuda}), float32 and bf16 storage: once with the WMMA tensor-core kernels for
 * bf16 operands (GEMM and flash attention, the latter under the naive-bf16 rule) (plus the model-size cases,
 * {@link BackendConformance#modelSizes()}, so the kernels the {@code cuda} backend runs are checked at those sizes on
 * every machine) and once with the tiled GEMM and the CUDA-core attention kernels. Skips where the emulator library
 * was not built (no g++). Both meet the 2x-naive-float32 rule on every check.
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
