package ai.mode.model.io;

import java.util.Arrays;

/**
 * One tensor entry of a safetensors header: name, element type, shape and byte range in the data section. A validated
 * safetensors header entry.
 *
 * @param name  tensor name
 * @param dtype element type
 * @param shape dimensions, outermost first (empty for a scalar)
 * @param begin first byte, relative to the start of the data section
 * @param end   one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, SafeDType dtype, int[] shape, long begin, long end) {

    public TensorInfo {
        shape = shape.clone();
    }

    /** The dimensions (a copy). */
    @Override
    public int[] shape() {
        return shape.clone();
    }

    /** Number of elements, the product of the shape (1 for a scalar). */
    public long numel() {
        return NamedTensors.numel(shape);
    }

    /** Bytes the tensor occupies, {@code end - begin}. */
    public long byteSize() {
        return end - begin;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t
                && name.equals(t.name)
                && dtype == t.dtype
                && Arrays.equals(shape, t.shape)
                && begin == t.begin
                && end == t.end;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }
}
