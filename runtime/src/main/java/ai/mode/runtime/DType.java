package ai.mode.runtime;

/** Element types a {@link Tensor} can hold. BF16 is storage-only (accumulation is always float32). */
public enum DType {
    F32(4),
    I32(4),
    BF16(2);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }
}
