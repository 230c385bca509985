package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Shape arithmetic and the Tensor interface's derived accessors (the op checks' messages: OpShapesTest). */
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
}
