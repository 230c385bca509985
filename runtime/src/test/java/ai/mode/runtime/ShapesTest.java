package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Shape arithmetic, the shared argument checks' messages, and the Tensor interface's derived accessors. */
class ShapesTest {
    /** A storage-less tensor: only its shape and dtype matter here. */
    private record Shaped(DType dtype, int... shape) implements Tensor {
        @Override
        public Backend backend() {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close() {}
    }

    @Test
    void numelMultipliesInLongAndRejectsNegativeDimensions() {
        assertEquals(1, Shapes.numel());
        assertEquals(0, Shapes.numel(4, 0, 3));
        assertEquals(3L * 65536 * 65536, Shapes.numel(3, 65536, 65536));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Shapes.numel(2, -1));
        assertEquals("negative dimension in shape [2, -1]", e.getMessage());
    }

    @Test
    void tensorAccessorsDeriveFromTheShape() {
        Tensor t = new Shaped(DType.F32, 2, 3, 5);
        assertEquals(30, t.numel());
        assertEquals(3, t.rank());
        assertEquals(5, t.dim(-1));
        assertEquals(2, t.dim(0));
        assertEquals(6, Shapes.rows(t));
        assertEquals("f32[2, 3, 5]", t.describe());
    }

    @Test
    void checksNameTheOpTheArgumentAndBothShapes() {
        Tensor a = new Shaped(DType.F32, 2, 3), b = new Shaped(DType.I32, 3, 2);
        IllegalArgumentException same =
                assertThrows(IllegalArgumentException.class, () -> Shapes.requireSameShape("add", a, b));
        assertTrue(same.getMessage().contains("add") && same.getMessage().contains("[2, 3]"), same.getMessage());
        IllegalArgumentException dtype = assertThrows(
                IllegalArgumentException.class, () -> Shapes.requireDType("embedding", "ids", a, DType.I32));
        assertTrue(
                dtype.getMessage().contains("embedding") && dtype.getMessage().contains("ids"), dtype.getMessage());
        Shapes.requireShape("gemm", "a", a, 2, 3);
        assertThrows(IllegalArgumentException.class, () -> Shapes.requireShape("gemm", "a", a, 3, 2));
    }
}
