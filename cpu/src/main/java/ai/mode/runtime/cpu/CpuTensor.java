package ai.mode.runtime.cpu;

import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;

/**
 * A tensor of the {@code cpu} backend: a window {@code [offset, offset + numel)} of a Java array
 * ({@code float[]} for F32, {@code int[]} for I32), row-major and contiguous. Views and slices share
 * the array of their root; only the root marks the storage closed.
 *
 * <p>The storage is public ({@link #floats()}, {@link #ints()}, {@link #offset()}) so benchmarks and
 * other host-side code can read and write it without a copy.
 */
public final class CpuTensor implements Tensor {
    private final CpuBackend backend;
    private final DType dtype;
    private final int[] shape;
    private final float[] floats;
    private final int[] ints;
    private final int offset;
    private final int numel;
    /** The tensor that allocated the storage (this one for roots). */
    private final CpuTensor root;

    private volatile boolean closed;

    CpuTensor(CpuBackend backend, DType dtype, int[] shape, float[] floats, int[] ints, int offset, CpuTensor root) {
        this.backend = backend;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.floats = floats;
        this.ints = ints;
        this.offset = offset;
        long n = ai.mode.runtime.Shapes.numel(shape);
        if (n > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("cpu tensor of shape " + java.util.Arrays.toString(shape) + " has " + n
                    + " elements, more than a Java array holds (2^31 - 65); split it");
        }
        this.numel = (int) n;
        this.root = root == null ? this : root;
    }

    @Override
    public int[] shape() {
        return shape;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public CpuBackend backend() {
        return backend;
    }

    @Override
    public long numel() {
        return numel;
    }

    /** Element count as an int (cpu tensors always fit a Java array). */
    public int size() {
        return numel;
    }

    /** The backing float array of an F32 tensor (shared with views); elements start at {@link #offset()}. */
    public float[] floats() {
        if (floats == null) throw new IllegalArgumentException("tensor " + describe() + " is not F32");
        checkOpen();
        return floats;
    }

    /** The backing int array of an I32 tensor (shared with views); elements start at {@link #offset()}. */
    public int[] ints() {
        if (ints == null) throw new IllegalArgumentException("tensor " + describe() + " is not I32");
        checkOpen();
        return ints;
    }

    /** Index of element 0 of this tensor in its backing array. */
    public int offset() {
        return offset;
    }

    /** Whether this is a view or slice of another tensor's storage. */
    public boolean isView() {
        return root != this;
    }

    CpuTensor root() {
        return root;
    }

    void checkOpen() {
        if (root.closed)
            throw new IllegalStateException("tensor " + describe() + " was used after its storage was closed");
    }

    @Override
    public void close() {
        if (root == this) closed = true;
    }

    @Override
    public String toString() {
        return "cpu:" + describe();
    }
}
