package ai.mode.tests.cpu;

import ai.mode.bindings.Mkl;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import java.util.List;
import java.util.stream.Stream;

/**
 * The cpu backend configurations every op test runs on: the Vector API kernels and the scalar fallback,
 * both with two threads and our own SGEMM, created once per JVM; GEMM tests also run the vector kernels with
 * each register tile height (6 rows for 16 vector registers, 12 for AVX-512's 32), whichever this machine
 * would pick, and oneMKL's SGEMM (on this module's
 * classpath; absent only where oneMKL cannot load, see {@code MklGemmTest}). Plus small host/tensor helpers.
 */
final class CpuVariants {
    private CpuVariants() {}

    static final CpuBackend VECTOR = new CpuBackend(2, true, CpuGemm.VECTOR);
    static final CpuBackend SCALAR = new CpuBackend(2, false, CpuGemm.VECTOR);
    static final CpuBackend VECTOR_6_ROWS = withGemmRows(6);
    static final CpuBackend VECTOR_12_ROWS = withGemmRows(12);
    /** Vector kernels with oneMKL's SGEMM for the gemm op, or null where oneMKL does not load. */
    static final CpuBackend MKL = Mkl.unavailableReason().isEmpty() ? new CpuBackend(2, true, CpuGemm.MKL) : null;

    /** Vector kernels with the given GEMM tile height ({@code -Dmode.cpu.gemmRows}, read when the backend is made). */
    private static synchronized CpuBackend withGemmRows(int rows) {
        String key = "mode.cpu.gemmRows";
        String before = System.getProperty(key);
        System.setProperty(key, Integer.toString(rows));
        try {
            return new CpuBackend(2, true, CpuGemm.VECTOR);
        } finally {
            if (before == null) System.clearProperty(key);
            else System.setProperty(key, before);
        }
    }

    /**
     * One backend under test. A plain record (not AutoCloseable) so JUnit does not close the shared
     * backends after each parameterised invocation.
     */
    record Variant(CpuBackend be) {
        @Override
        public String toString() {
            return label(be);
        }
    }

    /** Both kernel paths, for {@code @MethodSource}. */
    static Stream<Variant> both() {
        return Stream.of(new Variant(VECTOR), new Variant(SCALAR));
    }

    /**
     * Both kernel paths, the vector kernels with each tile height (the one this machine picks runs once, as
     * VECTOR) and oneMKL's SGEMM (where it loads), for GEMM tests.
     */
    static Stream<Variant> gemmTiles() {
        return Stream.of(VECTOR, VECTOR_6_ROWS, VECTOR_12_ROWS, SCALAR, MKL)
                .filter(java.util.Objects::nonNull)
                .filter(b -> b == VECTOR || !label(b).equals(label(VECTOR)))
                .map(Variant::new);
    }

    static List<CpuBackend> all() {
        return List.of(VECTOR, SCALAR);
    }

    static String label(CpuBackend b) {
        return b.kernelDescription() + (b.usesMkl() ? ", oneMKL gemm" : "");
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
