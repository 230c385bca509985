// The FFM binding to OpenBLAS (bytedeco's library): row-major SGEMM with every transpose and sdot against
// naive float64 references, and the thread control; plus the cross-check CpuSuite applies to results.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class OpenBlasTest {
    private static OpenBlas blas;

    @BeforeAll
    static void load() {
        blas = OpenBlas.load("bytedeco");
    }

    @AfterAll
    static void close() {
        blas.close();
    }

    @Test
    void describesItselfAndSetsThreads() {
        assertTrue(blas.config().startsWith("OpenBLAS"), blas.config());
        blas.setThreads(1);
        assertEquals(1, blas.threads());
        assertThrows(IllegalArgumentException.class, () -> blas.setThreads(0));
    }

    @Test
    void sgemmMatchesANaiveReferenceForEveryTranspose() {
        int m = 7, n = 5, k = 9;
        Random r = new Random(11);
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                float[] a = new float[m * k], b = new float[k * n];
                for (int i = 0; i < a.length; i++) a[i] = r.nextFloat() - 0.5f;
                for (int i = 0; i < b.length; i++) b[i] = r.nextFloat() - 0.5f;
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment sa = arena.allocateFrom(ValueLayout.JAVA_FLOAT, a),
                            sb = arena.allocateFrom(ValueLayout.JAVA_FLOAT, b);
                    MemorySegment sc = arena.allocate(ValueLayout.JAVA_FLOAT, m * n);
                    blas.sgemm(ta, tb, m, n, k, 1.5f, sa, sb, 0f, sc);
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double ref = 0;
                            for (int p = 0; p < k; p++) {
                                double av = ta ? a[p * m + i] : a[i * k + p];
                                double bv = tb ? b[j * k + p] : b[p * n + j];
                                ref += av * bv;
                            }
                            assertEquals(
                                    1.5 * ref,
                                    sc.getAtIndex(ValueLayout.JAVA_FLOAT, i * n + j),
                                    1e-5,
                                    "transA=" + ta + " transB=" + tb);
                        }
                    }
                }
            }
        }
    }

    @Test
    void sdotAndArgumentChecks() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f, 2f, 3f),
                    y = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 4f, -5f, 6f);
            assertEquals(12f, blas.sdot(3, x, y));
            assertThrows(IllegalArgumentException.class, () -> blas.sdot(4, x, y));
            assertThrows(IllegalArgumentException.class, () -> blas.sgemm(false, false, 2, 2, 2, 1f, x, y, 0f, x));
            assertThrows(
                    IllegalArgumentException.class,
                    () -> blas.sgemm(false, false, 1, 1, 1, 1f, MemorySegment.ofArray(new float[1]), y, 0f, x));
        }
    }

    @Test
    void unknownSpecNamesTheChoices() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> OpenBlas.load("/no/such/libopenblas.so"));
        assertTrue(e.getMessage().contains("bytedeco, system, auto"), e.getMessage());
    }

    @Test
    void relativeMaxDiffScalesByTheReference() {
        assertEquals(0.5, CpuSuite.relativeMaxDiff(new float[] {1, 3}, new float[] {1, 2}), 1e-12);
        assertEquals(0, CpuSuite.relativeMaxDiff(new float[] {0}, new float[] {0}));
    }
}
