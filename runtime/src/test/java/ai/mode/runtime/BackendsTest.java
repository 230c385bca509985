package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.ResourceLock;

/** The backend registry and the device spec: lookup by name, the spec reaching the provider, one-line errors. */
class BackendsTest {
    @Test
    void theSpecReachesTheProviderUnchanged() {
        BackendSpec spec = new BackendSpec("fake", 3, 7, Map.of("color", "blue"));
        try (Backend be = Backends.create(spec)) {
            assertEquals("fake", be.name());
            assertEquals("fake #3 threads=7 {color=blue}", be.numerics());
        }
    }

    @Test
    void providersListsEveryRegisteredOneAvailableOrNot() {
        List<String> names =
                Backends.providers().stream().map(BackendProvider::name).toList();
        assertTrue(names.containsAll(List.of("fake", "absent")), names.toString());
    }

    @Test
    void anUnknownNameListsTheKnownOnes() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> Backends.create(BackendSpec.of("tpu", 1)));
        assertTrue(e.getMessage().startsWith("unknown backend 'tpu'; known backends: "), e.getMessage());
        assertTrue(e.getMessage().contains("fake") && e.getMessage().contains("absent"), e.getMessage());
    }

    @Test
    void anUnavailableBackendSaysWhyAndIsNeverCreated() {
        IllegalStateException e =
                assertThrows(IllegalStateException.class, () -> Backends.create(BackendSpec.of("absent", 1)));
        assertEquals("backend 'absent' is not available: no absent device here; use --backend fake", e.getMessage());
    }

    @Test
    void anUnknownOptionNamesItAndTheKnownOnes() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> Backends.create(BackendSpec.of("fake", 1).withOption("colour", "red")));
        assertEquals("backend 'fake' has no option 'colour'; its options are color", e.getMessage());
    }

    @Test
    void specsAreValidatedAndImmutable() {
        assertThrows(IllegalArgumentException.class, () -> BackendSpec.of(" ", 1));
        IllegalArgumentException neg = assertThrows(
                IllegalArgumentException.class, () -> BackendSpec.of("cuda", 0).withOrdinal(-1));
        assertTrue(neg.getMessage().contains("-1"), neg.getMessage());
        BackendSpec a = BackendSpec.of("cpu", 2);
        BackendSpec b = a.withOption(BackendSpec.CPU_GEMM, "mkl").withOption(BackendSpec.CPU_GEMM, "vector");
        assertTrue(a.options().isEmpty(), "withOption copies");
        assertEquals("vector", b.option(BackendSpec.CPU_GEMM).orElseThrow());
        assertThrows(UnsupportedOperationException.class, () -> b.options().put("x", "y"));
        assertEquals(new BackendSpec("cpu", 0, 2, Map.of("gemm", "vector")), b);
    }

    @Test
    @ResourceLock("system-properties")
    void fromEnvironmentReadsTheDocumentedProperties() {
        String gemm = System.getProperty("mode.cpu.gemm"), vector = System.getProperty("mode.cpu.vector");
        String device = System.getProperty("mode.cuda.device");
        try {
            System.setProperty("mode.cpu.gemm", "vector");
            System.setProperty("mode.cpu.vector", "false");
            System.setProperty("mode.cuda.device", "2");
            assertEquals(
                    new BackendSpec("cpu", 0, 4, Map.of("gemm", "vector", "vector", "false")),
                    BackendSpec.fromEnvironment("cpu", 4));
            assertEquals(2, BackendSpec.fromEnvironment("cuda", 0).ordinal());
            assertEquals(BackendSpec.of("emu", 0), BackendSpec.fromEnvironment("emu", 0));
            System.setProperty("mode.cuda.device", "first");
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> BackendSpec.fromEnvironment("cuda", 0));
            assertTrue(e.getMessage().contains("'first'") && e.getMessage().contains("mode.cuda.device"));
        } finally {
            restore("mode.cpu.gemm", gemm);
            restore("mode.cpu.vector", vector);
            restore("mode.cuda.device", device);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) System.clearProperty(key);
        else System.setProperty(key, value);
    }
}
