package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.poisoned;
import static ai.mode.tests.cpu.CpuVariants.t;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.TestData;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * What the cpu backend promises beyond the backend conformance suite ({@link CpuConformanceTest}, which checks
 * every op against float64): RoPE does the same operations per element on the vector and the scalar path, so
 * the two agree bit for bit.
 */
class CpuOpsTest {
    @Test
    void ropeVectorAndScalarAgreeBitForBit() {
        int[][] shapes = {{1, 1, 1, 2}, {2, 5, 3, 8}, {1, 9, 2, 34}, {2, 3, 1, 64}};
        for (int[] s : shapes) {
            int b = s[0], t = s[1], h = s[2], hd = s[3], n = b * t * h * hd;
            for (int offset : new int[] {0, 17}) {
                float[] x = TestData.normal(n + offset, n);
                String what = "rope " + Arrays.toString(s) + " offset " + offset;
                RopeFrequencies f = RopeFrequencies.plain(10000f, hd);
                Tensor vector = poisoned(CpuVariants.VECTOR, b, t, h, hd);
                CpuVariants.VECTOR.ropeForward(t(CpuVariants.VECTOR, x, b, t, h, hd), f, offset, vector);
                Tensor scalar = poisoned(CpuVariants.SCALAR, b, t, h, hd);
                CpuVariants.SCALAR.ropeForward(t(CpuVariants.SCALAR, x, b, t, h, hd), f, offset, scalar);
                assertArrayEquals(host(CpuVariants.SCALAR, scalar), host(CpuVariants.VECTOR, vector), what);
            }
        }
    }
}
