package ai.mode.tests.cpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Mkl;
import ai.mode.conformance.BackendConformance;
import ai.mode.runtime.Backend;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import org.junit.jupiter.api.Nested;

/**
 * The backend conformance suite on each configuration of the {@code cpu} backend: the Vector API kernels and
 * the scalar fallback with our SGEMM, and the vector kernels with oneMKL's SGEMM (skipped where oneMKL does not
 * load). Two threads each, so the partitioned code paths run. The vector configuration also runs the model-size
 * cases ({@link BackendConformance#modelSizes()}).
 * Every configuration meets the 2x-naive-float32 rule on every check.
 */
class CpuConformanceTest {
    /** One cpu configuration: kernels, GEMM provider, and whether it also runs the model-size cases. */
    abstract static class CpuSuite extends BackendConformance {
        private final boolean vector;
        private final CpuGemm gemm;

        CpuSuite(boolean vector, CpuGemm gemm) {
            this.vector = vector;
            this.gemm = gemm;
        }

        @Override
        protected Backend createBackend() {
            if (gemm == CpuGemm.MKL)
                assumeTrue(Mkl.unavailableReason().isEmpty(), () -> "oneMKL unavailable: " + Mkl.unavailableReason());
            return new CpuBackend(2, vector, gemm);
        }

        @Override
        protected boolean modelSizes() {
            return vector && gemm == CpuGemm.VECTOR;
        }
    }

    @Nested
    class VectorKernels extends CpuSuite {
        VectorKernels() {
            super(true, CpuGemm.VECTOR);
        }
    }

    @Nested
    class ScalarKernels extends CpuSuite {
        ScalarKernels() {
            super(false, CpuGemm.VECTOR);
        }
    }

    @Nested
    class OneMklGemm extends CpuSuite {
        OneMklGemm() {
            super(true, CpuGemm.MKL);
        }
    }
}
