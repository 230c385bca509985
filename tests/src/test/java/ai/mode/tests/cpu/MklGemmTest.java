package ai.mode.tests.cpu;

import static ai.mode.tests.cpu.CpuVariants.host;
import static ai.mode.tests.cpu.CpuVariants.t;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Mkl;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import ai.mode.runtime.cpu.CpuIdentity;
import ai.mode.tests.reference.Ref;
import ai.mode.tests.reference.TestData;
import ai.mode.tests.reference.Tolerance;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * The cpu backend's oneMKL SGEMM: it loads from the carrier jar on this module's classpath in its reproducible
 * (CNR) mode and is what {@code auto} picks, except on non-Intel CPUs with 512-bit vectors; at the reference model's shapes (split into pieces) it matches the float64 reference and
 * our own SGEMM; it leaves the caller's oneMKL thread count alone; the binding refuses calls that would touch
 * memory outside the arrays; bad choices are one line.
 * Transposes, odd sizes, alpha/beta and batching run through {@link CpuGemmTest}'s variants.
 */
class MklGemmTest {

    private static boolean linuxX86() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")
                && System.getProperty("os.arch", "").equals("amd64");
    }

    @Test
    void oneMklLoadsInReproducibleModeAndAutoPicksItWhereItMeasuredFaster() {
        CpuIdentity intel =
                CpuIdentity.parse(java.util.List.of("vendor_id : GenuineIntel", "flags : avx2 fma avx512f"));
        CpuIdentity amd = CpuIdentity.parse(java.util.List.of("vendor_id : AuthenticAMD", "flags : avx2 fma avx512f"));
        assumeTrue(linuxX86(), "bytedeco's oneMKL carrier jar on this classpath is for linux-x86_64");
        assertEquals(java.util.Optional.empty(), Mkl.unavailableReason());
        assertTrue(
                Mkl.get().version().contains("Math Kernel Library"), Mkl.get().version());
        String env = System.getenv("MKL_CBWR");
        String cnr = env == null || env.isBlank() ? "cnr AUTO" : "cnr ";
        assertTrue(Mkl.get().reproducibility().startsWith(cnr), Mkl.get().reproducibility());
        try (CpuBackend auto = new CpuBackend(1, CpuGemm.AUTO);
                CpuBackend mkl = new CpuBackend(1, CpuGemm.MKL);
                CpuBackend ours = new CpuBackend(1, CpuGemm.VECTOR)) {
            boolean mklByDefault = CpuIdentity.current().intel() || auto.vectorLanes() < 16;
            assertEquals(
                    mklByDefault,
                    auto.usesMkl(),
                    CpuIdentity.current().describe() + ", " + auto.kernelDescription() + ": " + auto.gemmDescription());
            assertEquals(mklByDefault, CpuBackend.prefersMkl(CpuIdentity.current(), auto.vectorLanes()));
            assertTrue(CpuBackend.prefersMkl(intel, 16)
                    && CpuBackend.prefersMkl(amd, 8)
                    && !CpuBackend.prefersMkl(amd, 16));
            assertTrue(
                    mkl.gemmDescription().startsWith("mkl (")
                            && mkl.gemmDescription().contains("cnr "),
                    mkl.gemmDescription());
            assertEquals("vector", ours.gemmDescription());
            assertTrue(
                    mkl.numerics().contains(mkl.gemmDescription())
                            && mkl.numerics().contains(CpuIdentity.current().isa()),
                    mkl.numerics());
            assertNotEquals(mkl.numerics(), ours.numerics());
        }
    }

    /** The training step's products (fewer rows): NT forward, NN input gradient, TN weight gradient. */
    @Test
    void modelShapesMatchReferenceAndOurSgemm() {
        assumeTrue(CpuVariants.MKL != null, "oneMKL does not load here");
        int[][] shapes = {
            {520, 256, 256, 0b10},
            {520, 688, 256, 0b10},
            {520, 256, 688, 0b00},
            {256, 688, 520, 0b01},
            {300, 1030, 256, 0b10}
        };
        long seed = 200;
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            boolean ta = (s[3] & 1) != 0, tb = (s[3] & 2) != 0;
            float[] a = TestData.normal(seed++, m * k), b = TestData.normal(seed++, k * n);
            float[][] got = new float[2][];
            int i = 0;
            for (CpuBackend be : new CpuBackend[] {CpuVariants.MKL, CpuVariants.VECTOR}) {
                Tensor c = CpuVariants.poisoned(be, m, n);
                be.gemm(
                        ta,
                        tb,
                        1f,
                        t(be, a, ta ? new int[] {k, m} : new int[] {m, k}),
                        t(be, b, tb ? new int[] {n, k} : new int[] {k, n}),
                        0f,
                        c);
                got[i++] = host(be, c);
            }
            double[] ref = Ref.F64.gemm(ta, tb, m, n, k, 1, TestData.toDouble(a), TestData.toDouble(b), 0, null);
            double[] naive = Ref.F32.gemm(ta, tb, m, n, k, 1, TestData.toDouble(a), TestData.toDouble(b), 0, null);
            String what = m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb;
            Tolerance.assertWithinNaiveBound("oneMKL " + what, got[0], naive, ref);
            Tolerance.assertClose("oneMKL vs ours " + what, got[0], TestData.toDouble(got[1]), 1e-4, 1e-5);
        }
    }

    /**
     * A GEMM too large for 8 pieces of at most 2^30 multiply-adds (4100 x 2048 x 1100: 9 uneven row pieces) still
     * covers all of C: it agrees with our SGEMM (itself checked against float64 in {@link CpuGemmTest}).
     */
    @Test
    void largeGemmInManyPiecesAgreesWithOurs() {
        assumeTrue(CpuVariants.MKL != null, "oneMKL does not load here");
        int m = 4100, n = 2048, k = 1100;
        float[] a = TestData.normal(310, m * k), b = TestData.normal(311, k * n);
        float[][] got = new float[2][];
        int i = 0;
        for (CpuBackend be : new CpuBackend[] {CpuVariants.MKL, CpuVariants.VECTOR}) {
            Tensor c = CpuVariants.poisoned(be, m, n);
            be.gemm(false, true, 1f, t(be, a, m, k), t(be, b, n, k), 0f, c);
            got[i++] = host(be, c);
        }
        // |C| reaches about 150 here: rounding of two float32 sums of 1100 terms, not a misplaced piece (C starts as
        // NaN)
        Tolerance.assertClose("oneMKL vs ours 4100x2048x1100", got[0], TestData.toDouble(got[1]), 2e-3, 1e-5);
    }

    /** Pieces run sequentially through a thread-local setting, so the caller's oneMKL thread count is untouched. */
    @Test
    void callersThreadCountIsLeftAlone() {
        assumeTrue(CpuVariants.MKL != null, "oneMKL does not load here");
        assumeTrue(Runtime.getRuntime().availableProcessors() >= 2, "oneMKL caps its thread count at the cores");
        Mkl mkl = Mkl.get();
        int before = mkl.maxThreads();
        mkl.setNumThreads(2);
        try (CpuBackend be = new CpuBackend(2, CpuGemm.MKL)) {
            assertEquals(2, mkl.maxThreads());
            int m = 600, n = 64, k = 300; // 2 row pieces, one or both on this thread
            be.gemm(
                    false,
                    false,
                    1f,
                    t(be, TestData.normal(300, m * k), m, k),
                    t(be, TestData.normal(301, k * n), k, n),
                    0f,
                    be.zeros(m, n));
            assertEquals(2, mkl.maxThreads(), "oneMKL's thread count for the calling thread");
        } finally {
            mkl.setNumThreads(before);
        }
    }

    @Test
    void bindingRefusesCallsOutsideTheArrays() {
        assumeTrue(CpuVariants.MKL != null, "oneMKL does not load here");
        Mkl mkl = Mkl.get();
        float[] a = new float[12], b = new float[12], c = new float[9];
        mkl.sgemm(false, false, 3, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 3); // exactly fits
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> mkl.sgemm(false, false, 3, 3, 4, 1f, a, 1, 4, b, 0, 3, 0f, c, 0, 3));
        assertTrue(
                e.getMessage().startsWith("cblas_sgemm: a [3, 4]")
                        && e.getMessage().contains("runs past its array of 12"),
                e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> mkl.sgemm(false, true, 3, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 3));
        assertTrue(e.getMessage().contains("leading dimension of b is 3 but its rows have 4 columns"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> mkl.sgemm(false, false, 3, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 4));
        assertTrue(e.getMessage().contains("c [3, 3] with leading dimension 4"), e.getMessage());
    }

    @Test
    void badChoiceIsOneLineNamingTheOptions() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuGemm.parse("blas"));
        assertEquals("mode.cpu.gemm=blas is not a cpu GEMM; give auto, vector or mkl", e.getMessage());
        assertEquals(CpuGemm.MKL, CpuGemm.parse(" MKL "));
    }
}
