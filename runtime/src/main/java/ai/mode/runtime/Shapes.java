package ai.mode.runtime;

import java.util.Arrays;

/** Shape arithmetic and argument checks shared by every backend, so every backend fails the same way. */
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

    public static void requireSameShape(String op, Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(op + ": shape mismatch " + a.describe() + " vs " + b.describe());
        }
    }

    public static void requireShape(String op, String name, Tensor t, int... expected) {
        if (!Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(
                    op + ": " + name + " must be " + Arrays.toString(expected) + " but is " + t.describe());
        }
    }

    public static void requireNumel(String op, String name, Tensor t, long expected) {
        if (t.numel() != expected) {
            throw new IllegalArgumentException(
                    op + ": " + name + " must have " + expected + " elements but is " + t.describe());
        }
    }

    public static void requireDType(String op, String name, Tensor t, DType dtype) {
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException(op + ": " + name + " must be " + dtype + " but is " + t.describe());
        }
    }

    public static void requireRank(String op, String name, Tensor t, int rank) {
        if (t.rank() != rank) {
            throw new IllegalArgumentException(
                    op + ": " + name + " must have rank " + rank + " but is " + t.describe());
        }
    }
}
