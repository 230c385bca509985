package ai.mode.parallel.comm;

import java.util.Arrays;

/**
 * A typed host array, the payload of the hub transports: float32, int32 or float64. Immutable once handed to a
 * transport (results may be shared by several ranks, which only read them).
 */
public final class HostBuffer {
    /** Element type. */
    public enum Kind {
        F32,
        I32,
        F64
    }

    private final Kind kind;
    private final float[] f32;
    private final int[] i32;
    private final double[] f64;

    private HostBuffer(Kind kind, float[] f32, int[] i32, double[] f64) {
        this.kind = kind;
        this.f32 = f32;
        this.i32 = i32;
        this.f64 = f64;
    }

    public static HostBuffer of(float[] a) {
        return new HostBuffer(Kind.F32, a, null, null);
    }

    public static HostBuffer of(int[] a) {
        return new HostBuffer(Kind.I32, null, a, null);
    }

    public static HostBuffer of(double[] a) {
        return new HostBuffer(Kind.F64, null, null, a);
    }

    /** A zero-filled buffer. */
    public static HostBuffer allocate(Kind kind, int n) {
        return switch (kind) {
            case F32 -> of(new float[n]);
            case I32 -> of(new int[n]);
            case F64 -> of(new double[n]);
        };
    }

    /** An empty buffer of this kind (a contribution that carries no data). */
    public static HostBuffer empty(Kind kind) {
        return allocate(kind, 0);
    }

    public Kind kind() {
        return kind;
    }

    public int length() {
        return switch (kind) {
            case F32 -> f32.length;
            case I32 -> i32.length;
            case F64 -> f64.length;
        };
    }

    public float[] floats() {
        return require(Kind.F32, f32);
    }

    public int[] ints() {
        return require(Kind.I32, i32);
    }

    public double[] doubles() {
        return require(Kind.F64, f64);
    }

    private <T> T require(Kind k, T array) {
        if (kind != k) throw new IllegalStateException("host buffer holds " + kind + ", not " + k);
        return array;
    }

    /** The raw array (float[], int[] or double[]). */
    Object array() {
        return switch (kind) {
            case F32 -> f32;
            case I32 -> i32;
            case F64 -> f64;
        };
    }

    /** Copies {@code len} elements from {@code this[from..]} to {@code dst[to..]} (same kind). */
    void copyTo(int from, HostBuffer dst, int to, int len) {
        if (dst.kind != kind) throw new IllegalStateException("host buffer kind " + kind + " -> " + dst.kind);
        System.arraycopy(array(), from, dst.array(), to, len);
    }

    @Override
    public String toString() {
        return kind.name().toLowerCase() + "[" + length() + "]";
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof HostBuffer b) || b.kind != kind) return false;
        return switch (kind) {
            case F32 -> Arrays.equals(f32, b.f32);
            case I32 -> Arrays.equals(i32, b.i32);
            case F64 -> Arrays.equals(f64, b.f64);
        };
    }

    @Override
    public int hashCode() {
        return kind.hashCode() * 31
                + switch (kind) {
                    case F32 -> Arrays.hashCode(f32);
                    case I32 -> Arrays.hashCode(i32);
                    case F64 -> Arrays.hashCode(f64);
                };
    }
}
