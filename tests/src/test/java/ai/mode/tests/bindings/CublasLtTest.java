package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CublasException;
import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaDriver;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * cuBLASLt through FFM without a GPU: version, the status table against the library's own names, and the
 * error path of {@code cublasLtCreate} without a driver. Skips when cuBLASLt is absent (build with -Pcuda-libs).
 * GEMMs themselves are tested on a GPU in {@code ai.mode.tests.gpu.CublasLtGemmGpuTest}.
 */
class CublasLtTest {
    private static CublasLt lt;

    @BeforeEach
    void load() {
        Optional<String> reason = CublasLt.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "cuBLASLt not available: " + reason.orElse(""));
        lt = CublasLt.get();
    }

    @Test
    void version() {
        long v = lt.version();
        assertTrue(v >= 120000 && v < 1000000, "cuBLASLt version " + v);
    }

    @Test
    void statusNamesAgreeWithLibrary() {
        for (Map.Entry<Integer, String> e : CublasLt.statusNames().entrySet()) {
            assertEquals(lt.libraryStatusName(e.getKey()), e.getValue(), "cublasStatus_t " + e.getKey());
        }
    }

    @Test
    void createWithoutDriverFailsWithNamedStatus() {
        assumeTrue(
                CudaDriver.unavailableReason().isPresent(), "a CUDA driver is present: cublasLtCreate would succeed");
        CublasException e = assertThrows(CublasException.class, () -> lt.create());
        assertEquals("CUBLAS_STATUS_NOT_INITIALIZED", e.errorName());
        assertTrue(
                e.getMessage().startsWith("cublasLtCreate() failed: CUBLAS_STATUS_NOT_INITIALIZED (1)"),
                e.getMessage());
    }
}
