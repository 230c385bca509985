package ai.mode.tests.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuTensor;
import org.junit.jupiter.api.Test;

/**
 * What the cpu backend adds to the op contract (whose messages the conformance suite checks on every backend): BF16
 * storage is refused, closed storage and closed backends are reported, views share storage, and the service lookup.
 */
class CpuValidationTest {
    private final CpuBackend be = CpuVariants.VECTOR;

    @Test
    void bf16StorageIsRefusedWithTheFix() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.allocate(DType.BF16, 2));
        assertTrue(e.getMessage().contains("BF16 is a cuda storage type, allocate F32 instead"), e.getMessage());
    }

    @Test
    void nullTensorsAreNamed() {
        Tensor x = be.zeros(2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.add(x, x, null));
        assertTrue(e.getMessage().contains("add: out must not be null"), e.getMessage());
    }

    @Test
    void closedStorageAndClosedBackendAreReported() {
        Tensor x = be.zeros(4);
        Tensor view = be.view(x, 2, 2);
        x.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.fill(view, 1f));
        assertTrue(e.getMessage().contains("used after its storage was closed"), e.getMessage());
        CpuBackend closed = new CpuBackend(2, true);
        closed.close();
        e = assertThrows(
                IllegalStateException.class,
                () -> closed.add(closed.zeros(100_000), closed.zeros(100_000), closed.zeros(100_000)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void storageIsSharedAndPublic() {
        CpuTensor x = (CpuTensor) be.fromHost(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        CpuTensor s = (CpuTensor) be.slice(x, 1, 2);
        assertSame(x.floats(), s.floats());
        assertEquals(2, s.offset());
        assertEquals(4, s.size());
        assertTrue(s.isView());
    }

    @Test
    void providerIsRegistered() {
        try (Backend b = Backends.create("cpu", 2)) {
            assertEquals("cpu", b.name());
            assertEquals(2, ((CpuBackend) b).threads());
        }
        try (Backend b = Backends.create("cpu", 0)) {
            assertEquals(Runtime.getRuntime().availableProcessors(), ((CpuBackend) b).threads());
        }
    }
}
