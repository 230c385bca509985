package ai.mode.tests.cpu;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;

import java.util.List;
import java.util.stream.Stream;

/**
 * The cpu backend configurations every op test runs on: the Vector API kernels and the scalar fallback,
 * both with two threads, created once per JVM. Plus small host/tensor conversion helpers.
 */
final class CpuVariants {
    private CpuVariants() {}

    static final CpuBackend VECTOR = new CpuBackend(2, true);
    static final CpuBackend SCALAR = new CpuBackend(2, false);

    /**
     * One backend under test. A plain record (not AutoCloseable) so JUnit does not close the shared
     * backends after each parameterised invocation.
     */
    record Variant(CpuBackend be) {
        @Override
        public String toString() { return be.kernelDescription(); }
    }

    /** Both kernel paths, for {@code @MethodSource}. */
    static Stream<Variant> both() {
        return Stream.of(new Variant(VECTOR), new Variant(SCALAR));
    }

    static List<CpuBackend> all() {
        return List.of(VECTOR, SCALAR);
    }

    static String label(CpuBackend b) {
        return b.kernelDescription();
    }

    static Tensor t(Backend be, float[] data, int... shape) {
        return be.fromHost(data, shape);
    }

    static Tensor ti(Backend be, int[] data, int... shape) {
        return be.fromHost(data, shape);
    }

    /** An F32 tensor filled with NaN, to prove an op overwrites every element. */
    static Tensor poisoned(Backend be, int... shape) {
        Tensor x = be.zeros(shape);
        be.fill(x, Float.NaN);
        return x;
    }

    static float[] host(Backend be, Tensor x) {
        return be.toHostFloats(x);
    }

    static int[] hostInts(Backend be, Tensor x) {
        int[] out = new int[Math.toIntExact(x.numel())];
        be.toHost(x, out);
        return out;
    }
}
