package ai.mode.runtime;

import java.util.Arrays;

/** Shape arithmetic shared by every backend; the per-op argument contract is {@link OpShapes}. */
public final class Shapes {
    private Shapes() {}

    public static long numel(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            n *= d;
        }
        return n;
    }

    /** Product of all dimensions but the last: the number of rows when a tensor is read as [rows, lastDim]. */
    public static int rows(Tensor t) {
        return Math.toIntExact(t.numel() / Math.max(1, t.dim(-1)));
    }
}
