package ai.mode.runtime.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The cpu backend's side of the embedding API: tensors over caller arrays without a copy, the refusals with their
 * reasons, and the {@link BackendSpec} options reaching the backend through the registry.
 */
class CpuWrapAndSpecTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create(new BackendSpec("cpu", 0, 2, java.util.Map.of(BackendSpec.CPU_GEMM, "vector")));
    }

    @AfterAll
    static void close() {
        be.close();
    }

    @Test
    void opsReadAndWriteTheCallersArrayInPlace() {
        float[] a = {1, 2, 3, 4, 5, 6}; // [2, 3]
        float[] b = {1, 0, 0, 1, 1, 1}; // [3, 2]
        float[] c = new float[4]; // [2, 2]
        Tensor ta = be.wrap(MemorySegment.ofArray(a), DType.F32, 2, 3);
        Tensor tb = be.wrap(MemorySegment.ofArray(b), DType.F32, 3, 2);
        Tensor tc = be.wrap(MemorySegment.ofArray(c), DType.F32, 2, 2);
        be.gemm(false, false, 1f, ta, tb, 0f, tc);
        // c = a b by hand: row 0 = (1 + 3, 2 + 3), row 1 = (4 + 6, 5 + 6)
        assertArrayEquals(new float[] {4, 5, 10, 11}, c);
        a[0] = 10; // a later write by the caller is seen by the next op
        be.gemm(false, false, 1f, ta, tb, 0f, tc);
        assertEquals(13, c[0]);
        tc.close();
        assertEquals(13, c[0], "closing a wrapped tensor leaves the caller's memory alone");
    }

    @Test
    void aSliceOfAnArrayWrapsAtItsOffset() {
        float[] storage = {9, 9, 1, 2, 3, 9};
        Tensor x = be.wrap(MemorySegment.ofArray(storage).asSlice(2 * 4L, 3 * 4L), DType.F32, 3);
        be.scale(x, 2f);
        assertArrayEquals(new float[] {9, 9, 2, 4, 6, 9}, storage);
        int[] ids = {7, 8, 9};
        Tensor t = be.wrap(MemorySegment.ofArray(ids), DType.I32, 1, 3);
        int[] back = new int[3];
        be.toHost(t, back);
        assertArrayEquals(ids, back);
    }

    @Test
    void memoryTheCpuBackendCannotComputeOnIsRefusedWithTheReason() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nat = arena.allocate(ValueLayout.JAVA_FLOAT, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.wrap(nat, DType.F32, 4));
            assertTrue(
                    e.getMessage().contains("native segment") && e.getMessage().contains("fromHost"), e.getMessage());
        }
        MemorySegment ro = MemorySegment.ofArray(new float[4]).asReadOnly();
        IllegalArgumentException r = assertThrows(IllegalArgumentException.class, () -> be.wrap(ro, DType.F32, 4));
        assertTrue(r.getMessage().contains("read-only"), r.getMessage());
        MemorySegment ints = MemorySegment.ofArray(new int[4]);
        assertThrows(IllegalArgumentException.class, () -> be.wrap(ints, DType.F32, 4));
        IllegalArgumentException size = assertThrows(
                IllegalArgumentException.class, () -> be.wrap(MemorySegment.ofArray(new float[5]), DType.F32, 2, 2));
        assertEquals("wrap: the segment holds 20 bytes but shape [2, 2] of F32 needs 16", size.getMessage());
        MemorySegment odd = MemorySegment.ofArray(new float[3]).asSlice(2, 8);
        assertThrows(IllegalArgumentException.class, () -> be.wrap(odd, DType.F32, 2));
    }

    @Test
    void specOptionsChooseTheKernelsAndTheGemm() {
        try (Backend scalar = Backends.create(BackendSpec.of("cpu", 1)
                .withOption(BackendSpec.CPU_VECTOR, "false")
                .withOption(BackendSpec.CPU_GEMM, "vector"))) {
            assertTrue(scalar.numerics().startsWith("cpu: scalar"), scalar.numerics());
            assertTrue(scalar.numerics().contains("gemm vector"), scalar.numerics());
        }
        assertTrue(be.numerics().contains("gemm vector"), be.numerics());
        assertFalse(((CpuBackend) be).usesMkl());
        IllegalArgumentException typo = assertThrows(
                IllegalArgumentException.class,
                () -> Backends.create(BackendSpec.of("cpu", 1).withOption("gemmm", "mkl")));
        assertEquals("backend 'cpu' has no option 'gemmm'; its options are gemm, vector", typo.getMessage());
        IllegalArgumentException bool = assertThrows(
                IllegalArgumentException.class,
                () -> Backends.create(BackendSpec.of("cpu", 1).withOption(BackendSpec.CPU_VECTOR, "yes")));
        assertTrue(bool.getMessage().contains("vector=yes"), bool.getMessage());
    }
}
