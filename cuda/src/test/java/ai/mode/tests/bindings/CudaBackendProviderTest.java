package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import org.junit.jupiter.api.Test;

/** The cuda provider is registered; without a GPU it reports one clear line and the cpu backend keeps working. */
class CudaBackendProviderTest {

    private static BackendProvider cudaProvider() {
        return Backends.providers().stream()
                .filter(p -> p.name().equals("cuda"))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no 'cuda' BackendProvider registered"));
    }

    @Test
    void withoutGpuCudaIsUnavailableAndCpuStillWorks() {
        BackendProvider p = cudaProvider();
        assumeFalse(p.available(), "a GPU is present: see the gpu-tagged tests");
        String reason = p.unavailableReason();
        assertFalse(reason.isBlank());
        assertFalse(reason.contains("\n"), "one line: " + reason);
        assertTrue(reason.contains("--backend cpu") || reason.contains("stubs"), reason);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.create("cuda", 0));
        assertEquals("backend 'cuda' is not available: " + reason, e.getMessage());

        try (Backend cpu = Backends.create("cpu", 1)) {
            Tensor a = cpu.fromHost(new float[] {1, 2, 3, 4}, 2, 2);
            Tensor b = cpu.fromHost(new float[] {5, 6, 7, 8}, 2, 2);
            Tensor c = cpu.zeros(2, 2);
            cpu.gemm(false, false, 1f, a, b, 0f, c);
            assertArrayEquals(new float[] {19, 22, 43, 50}, cpu.toHostFloats(c));
        }
    }
}
