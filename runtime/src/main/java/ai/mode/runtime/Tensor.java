package ai.mode.runtime;

import java.util.Arrays;

/**
 * A contiguous, row-major n-dimensional array owned by one {@link Backend}.
 *
 * <p>Tensors are handles: the storage lives where the backend keeps it (a Java array for {@code cpu},
 * device or emulator memory for {@code cuda}/{@code emu}). Views made with {@link Backend#view} and
 * {@link Backend#slice} share storage with their parent. Only the tensor that allocated the storage
 * frees it on {@link #close()}; closing a view is a no-op.
 */
public interface Tensor extends AutoCloseable {

    /** The dimensions, outermost first. The returned array must not be modified. */
    int[] shape();

    DType dtype();

    Backend backend();

    /** Number of elements, the product of {@link #shape()}. */
    default long numel() {
        return Shapes.numel(shape());
    }

    /** Number of dimensions. */
    default int rank() {
        return shape().length;
    }

    /** Size of dimension {@code d}; negative indices count from the end. */
    default int dim(int d) {
        int[] s = shape();
        return s[d < 0 ? s.length + d : d];
    }

    /** Frees the storage if this tensor owns it; idempotent. */
    @Override
    void close();

    /** A short description such as {@code f32[4, 8]}, for error messages. */
    default String describe() {
        return dtype().name().toLowerCase() + Arrays.toString(shape());
    }
}
