package ai.mode.runtime.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels on {@code FloatVector.SPECIES_PREFERRED} (16 lanes with AVX-512, 8 with AVX2).
 * Loops run full vectors then a scalar tail; reductions keep one vector accumulator and fold its lanes
 * once at the end in a fixed tree order ({@link #sumLanes}). Nothing here uses the Vector API's ADD
 * reduction or its EXP operator: both may give different bits in compiled and interpreted code, so the
 * exponential is {@link #exp} (the lane-wise twin of {@link CpuMath#exp}) and results stay bitwise
 * reproducible from the first call on.
 *
 * <p>The GEMM register tile is mr rows x 2 vectors of a packed A panel times a packed B panel; per k it loads
 * 2 vectors of B, broadcasts mr values of A and issues 2 mr FMAs, so it needs 2 mr accumulators, 2 B vectors and
 * the live broadcasts in registers. With 512-bit vectors (AVX-512, 32 registers) mr is 12 (24 accumulators);
 * elsewhere mr is 6 (12 accumulators + 2 B vectors + the broadcasts in AVX2's 16 registers): 12 independent FMA
 * chains keep both FMA ports busy through a 4-cycle latency, where 8 (a 4-row tile) just cover it. Each height is
 * its own straight-line method: register allocation needs the accumulators as named locals, so a loop over rows
 * (a parameter) would not do. Each method has one k loop per A layout of {@link CpuKernels#gemmTile}, with
 * constant broadcast offsets (so C2 emits memory-operand broadcasts with no index arithmetic; a variable row
 * stride measured 25% slower) and a constant step, and B's index as its counter. That shape is what keeps C2's
 * code free of spills: with the layout test inside one loop (left to C2's unswitching), or a separate k counter,
 * C2 ran short of general registers and parked the B array or its offset in a vector register
 * (UseFPUForSpilling: a vmovq every k), and with a third layout taking a runtime step (a transposed A read in
 * place, until 2026-12-08) it did so in every layout once that layout had
 * run; whole GEMMs then ran at 0.66x OpenBLAS instead of 0.86x (4 x 16 tile, emulated AVX2 on Zen 5, one
 * thread). In that state a 6-row tile also kept accumulators on the stack, which is why AVX2 had 4 rows until
 * then. {@code -Dmode.cpu.gemmRows=6|12} overrides the choice (for tests and benchmarks).
 */
final class VectorKernels extends CpuKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Float64 vectors of the same width (half the lanes). */
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    private static final int L = S.length();
    /**
     * Float vectors of half the width (4 lanes with AVX2), for copying rows of exactly half a vector; S itself
     * where half is no vector shape (its length is then never a tail).
     */
    private static final VectorSpecies<Float> HALF = switch (S.vectorBitSize()) {
        case 128, 256, 512 -> VectorSpecies.of(float.class, VectorShape.forBitSize(S.vectorBitSize() / 2));
        default -> S;
    };
    /** Float vectors of a quarter of the width (2 lanes with AVX2), where that is a vector shape; else HALF. */
    private static final VectorSpecies<Float> QUARTER = switch (S.vectorBitSize()) {
        case 256, 512 -> VectorSpecies.of(float.class, VectorShape.forBitSize(S.vectorBitSize() / 4));
        default -> HALF;
    };
    /** System property that picks the GEMM tile height (6 or 12). */
    static final String GEMM_ROWS_PROPERTY = "mode.cpu.gemmRows";

    private static final int NR = 2 * L;
    /** Lane rotations by L/2, L/4, ..., 1 for the fixed-order lane fold. */
    private static final VectorShuffle<Float> ROT_8 = rotation(8),
            ROT_4 = rotation(4),
            ROT_2 = rotation(2),
            ROT_1 = rotation(1);

    private static VectorShuffle<Float> rotation(int by) {
        return VectorShuffle.fromOp(S, i -> (i + by) % L);
    }

    /**
     * Sum of the lanes in a fixed tree order (lane i plus lane i + L/2, then i + L/4, ...), identical in every
     * execution mode.
     */
    static float sumLanes(FloatVector v) {
        if (L > 16) {
            float s = 0f;
            for (int i = 0; i < L; i++) s += v.lane(i);
            return s;
        }
        if (L == 16) v = v.add(v.rearrange(ROT_8));
        if (L >= 8) v = v.add(v.rearrange(ROT_4));
        if (L >= 4) v = v.add(v.rearrange(ROT_2));
        if (L >= 2) v = v.add(v.rearrange(ROT_1));
        return v.lane(0);
    }

    /** Lane-wise {@link CpuMath#exp}: the same operations, so the same bits per lane. */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(CpuMath.EXP_LO).min(CpuMath.EXP_HI);
        FloatVector t = xc.fma(CpuMath.LOG2E, CpuMath.ROUND_MAGIC);
        FloatVector n = t.sub(CpuMath.ROUND_MAGIC);
        FloatVector r = n.fma(FloatVector.broadcast(S, -CpuMath.LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -CpuMath.LN2_LO), r);
        FloatVector p = r.fma(CpuMath.C7, CpuMath.C6);
        p = p.fma(r, FloatVector.broadcast(S, CpuMath.C5));
        p = p.fma(r, FloatVector.broadcast(S, CpuMath.C4));
        p = p.fma(r, FloatVector.broadcast(S, CpuMath.C3));
        p = p.fma(r, FloatVector.broadcast(S, CpuMath.C2));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        IntVector ni = t.reinterpretAsInts().sub(CpuMath.ROUND_MAGIC_BITS);
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
        IntVector n2 = ni.sub(n1);
        FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(s1).mul(s2);
    }

    /** 1 / (1 + e^-x), lane-wise twin of {@link CpuMath#sigmoid}. */
    private static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(S, 1f).div(exp(x.neg()).add(1f));
    }

    /** Rows of the GEMM register tile: 12 or 6. */
    private final int mr;

    VectorKernels() {
        // Touch the species so a missing module fails here (caught by select), not in a hot loop.
        if (FloatVector.zero(S).length() != L) throw new IllegalStateException("inconsistent vector species");
        String rows = System.getProperty(GEMM_ROWS_PROPERTY, Integer.toString(defaultGemmRows()));
        mr = switch (rows.trim()) {
            case "12" -> 12;
            case "6" -> 6;
            default ->
                throw new IllegalArgumentException(
                        "-D" + GEMM_ROWS_PROPERTY + "=" + rows + " is not a GEMM tile height; use 6 or 12");
        };
    }

    /**
     * The tile height for this machine's vector registers: 12 where vectors are 512 bits (AVX-512: 32
     * registers), else 6 (AVX2 and SSE: 16 registers; conservative where narrower vectors have 32 registers,
     * e.g. AVX-512 hardware run with -XX:MaxVectorSize=32, or AArch64).
     */
    static int defaultGemmRows() {
        return L >= 16 ? 12 : 6;
    }

    @Override
    boolean vectorized() {
        return true;
    }

    @Override
    String describe() {
        return "vector (" + L + " x float32, " + mr + " x " + NR + " GEMM tile)";
    }

    @Override
    int mr() {
        return mr;
    }

    @Override
    int nr() {
        return NR;
    }

    @Override
    void gemmTile(
            int kc, float[] ap, int apo, boolean rowsA, float[] bp, int bpo, float[] c, int co, int ldc, boolean load) {
        if (mr == 12) {
            tile12(kc, ap, apo, rowsA, bp, bpo, c, co, ldc, load);
        } else {
            tile6(kc, ap, apo, rowsA, bp, bpo, c, co, ldc, load);
        }
    }

    /** C = A Bp (+ C when load) for one 12 x 2L tile; the A layouts of {@link CpuKernels#gemmTile}. */
    private static void tile12(
            int kc, float[] ap, int apo, boolean rowsA, float[] bp, int bpo, float[] c, int co, int ldc, boolean load) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31;
        FloatVector c40, c41, c50, c51, c60, c61, c70, c71;
        FloatVector c80, c81, c90, c91, ca0, ca1, cb0, cb1;
        if (load) {
            c00 = FloatVector.fromArray(S, c, co + 0 * ldc);
            c01 = FloatVector.fromArray(S, c, co + 0 * ldc + L);
            c10 = FloatVector.fromArray(S, c, co + 1 * ldc);
            c11 = FloatVector.fromArray(S, c, co + 1 * ldc + L);
            c20 = FloatVector.fromArray(S, c, co + 2 * ldc);
            c21 = FloatVector.fromArray(S, c, co + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, co + 3 * ldc);
            c31 = FloatVector.fromArray(S, c, co + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, co + 4 * ldc);
            c41 = FloatVector.fromArray(S, c, co + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, co + 5 * ldc);
            c51 = FloatVector.fromArray(S, c, co + 5 * ldc + L);
            c60 = FloatVector.fromArray(S, c, co + 6 * ldc);
            c61 = FloatVector.fromArray(S, c, co + 6 * ldc + L);
            c70 = FloatVector.fromArray(S, c, co + 7 * ldc);
            c71 = FloatVector.fromArray(S, c, co + 7 * ldc + L);
            c80 = FloatVector.fromArray(S, c, co + 8 * ldc);
            c81 = FloatVector.fromArray(S, c, co + 8 * ldc + L);
            c90 = FloatVector.fromArray(S, c, co + 9 * ldc);
            c91 = FloatVector.fromArray(S, c, co + 9 * ldc + L);
            ca0 = FloatVector.fromArray(S, c, co + 10 * ldc);
            ca1 = FloatVector.fromArray(S, c, co + 10 * ldc + L);
            cb0 = FloatVector.fromArray(S, c, co + 11 * ldc);
            cb1 = FloatVector.fromArray(S, c, co + 11 * ldc + L);
        } else {
            c00 = FloatVector.zero(S);
            c01 = FloatVector.zero(S);
            c10 = FloatVector.zero(S);
            c11 = FloatVector.zero(S);
            c20 = FloatVector.zero(S);
            c21 = FloatVector.zero(S);
            c30 = FloatVector.zero(S);
            c31 = FloatVector.zero(S);
            c40 = FloatVector.zero(S);
            c41 = FloatVector.zero(S);
            c50 = FloatVector.zero(S);
            c51 = FloatVector.zero(S);
            c60 = FloatVector.zero(S);
            c61 = FloatVector.zero(S);
            c70 = FloatVector.zero(S);
            c71 = FloatVector.zero(S);
            c80 = FloatVector.zero(S);
            c81 = FloatVector.zero(S);
            c90 = FloatVector.zero(S);
            c91 = FloatVector.zero(S);
            ca0 = FloatVector.zero(S);
            ca1 = FloatVector.zero(S);
            cb0 = FloatVector.zero(S);
            cb1 = FloatVector.zero(S);
        }
        // One loop per layout, each with constant offsets and steps and B's index as its counter (see the class
        // comment).
        int bEnd = bpo + kc * NR;
        if (rowsA) {
            for (int b = bpo, a = apo; b < bEnd; b += NR, a += 1) {
                FloatVector b0 = FloatVector.fromArray(S, bp, b);
                FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
                FloatVector a0 = FloatVector.broadcast(S, ap[a]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                FloatVector a1 = FloatVector.broadcast(S, ap[a + KC]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                FloatVector a2 = FloatVector.broadcast(S, ap[a + 2 * KC]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                FloatVector a3 = FloatVector.broadcast(S, ap[a + 3 * KC]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
                FloatVector a4 = FloatVector.broadcast(S, ap[a + 4 * KC]);
                c40 = a4.fma(b0, c40);
                c41 = a4.fma(b1, c41);
                FloatVector a5 = FloatVector.broadcast(S, ap[a + 5 * KC]);
                c50 = a5.fma(b0, c50);
                c51 = a5.fma(b1, c51);
                FloatVector a6 = FloatVector.broadcast(S, ap[a + 6 * KC]);
                c60 = a6.fma(b0, c60);
                c61 = a6.fma(b1, c61);
                FloatVector a7 = FloatVector.broadcast(S, ap[a + 7 * KC]);
                c70 = a7.fma(b0, c70);
                c71 = a7.fma(b1, c71);
                FloatVector a8 = FloatVector.broadcast(S, ap[a + 8 * KC]);
                c80 = a8.fma(b0, c80);
                c81 = a8.fma(b1, c81);
                FloatVector a9 = FloatVector.broadcast(S, ap[a + 9 * KC]);
                c90 = a9.fma(b0, c90);
                c91 = a9.fma(b1, c91);
                FloatVector aa = FloatVector.broadcast(S, ap[a + 10 * KC]);
                ca0 = aa.fma(b0, ca0);
                ca1 = aa.fma(b1, ca1);
                FloatVector ab = FloatVector.broadcast(S, ap[a + 11 * KC]);
                cb0 = ab.fma(b0, cb0);
                cb1 = ab.fma(b1, cb1);
            }
        } else {
            for (int b = bpo, a = apo; b < bEnd; b += NR, a += 12) {
                FloatVector b0 = FloatVector.fromArray(S, bp, b);
                FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
                FloatVector a0 = FloatVector.broadcast(S, ap[a]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                FloatVector a1 = FloatVector.broadcast(S, ap[a + 1]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                FloatVector a2 = FloatVector.broadcast(S, ap[a + 2]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                FloatVector a3 = FloatVector.broadcast(S, ap[a + 3]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
                FloatVector a4 = FloatVector.broadcast(S, ap[a + 4]);
                c40 = a4.fma(b0, c40);
                c41 = a4.fma(b1, c41);
                FloatVector a5 = FloatVector.broadcast(S, ap[a + 5]);
                c50 = a5.fma(b0, c50);
                c51 = a5.fma(b1, c51);
                FloatVector a6 = FloatVector.broadcast(S, ap[a + 6]);
                c60 = a6.fma(b0, c60);
                c61 = a6.fma(b1, c61);
                FloatVector a7 = FloatVector.broadcast(S, ap[a + 7]);
                c70 = a7.fma(b0, c70);
                c71 = a7.fma(b1, c71);
                FloatVector a8 = FloatVector.broadcast(S, ap[a + 8]);
                c80 = a8.fma(b0, c80);
                c81 = a8.fma(b1, c81);
                FloatVector a9 = FloatVector.broadcast(S, ap[a + 9]);
                c90 = a9.fma(b0, c90);
                c91 = a9.fma(b1, c91);
                FloatVector aa = FloatVector.broadcast(S, ap[a + 10]);
                ca0 = aa.fma(b0, ca0);
                ca1 = aa.fma(b1, ca1);
                FloatVector ab = FloatVector.broadcast(S, ap[a + 11]);
                cb0 = ab.fma(b0, cb0);
                cb1 = ab.fma(b1, cb1);
            }
        }
        c00.intoArray(c, co + 0 * ldc);
        c01.intoArray(c, co + 0 * ldc + L);
        c10.intoArray(c, co + 1 * ldc);
        c11.intoArray(c, co + 1 * ldc + L);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + L);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + L);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + L);
        c60.intoArray(c, co + 6 * ldc);
        c61.intoArray(c, co + 6 * ldc + L);
        c70.intoArray(c, co + 7 * ldc);
        c71.intoArray(c, co + 7 * ldc + L);
        c80.intoArray(c, co + 8 * ldc);
        c81.intoArray(c, co + 8 * ldc + L);
        c90.intoArray(c, co + 9 * ldc);
        c91.intoArray(c, co + 9 * ldc + L);
        ca0.intoArray(c, co + 10 * ldc);
        ca1.intoArray(c, co + 10 * ldc + L);
        cb0.intoArray(c, co + 11 * ldc);
        cb1.intoArray(c, co + 11 * ldc + L);
    }

    @Override
    void gemmRow(
            int kc,
            float[] a,
            int ao,
            float[] bp,
            int bpo,
            int bPanel,
            boolean twoPanels,
            float[] c,
            int co,
            boolean load) {
        if (!twoPanels) {
            FloatVector c0 = load ? FloatVector.fromArray(S, c, co) : FloatVector.zero(S);
            FloatVector c1 = load ? FloatVector.fromArray(S, c, co + L) : FloatVector.zero(S);
            for (int p = 0; p < kc; p++) {
                FloatVector x = FloatVector.broadcast(S, a[ao + p]);
                int b = bpo + p * NR;
                c0 = x.fma(FloatVector.fromArray(S, bp, b), c0);
                c1 = x.fma(FloatVector.fromArray(S, bp, b + L), c1);
            }
            c0.intoArray(c, co);
            c1.intoArray(c, co + L);
            return;
        }
        // Four independent chains (two panels) hide the multiply-add latency that two would expose.
        FloatVector c0 = load ? FloatVector.fromArray(S, c, co) : FloatVector.zero(S);
        FloatVector c1 = load ? FloatVector.fromArray(S, c, co + L) : FloatVector.zero(S);
        FloatVector c2 = load ? FloatVector.fromArray(S, c, co + NR) : FloatVector.zero(S);
        FloatVector c3 = load ? FloatVector.fromArray(S, c, co + NR + L) : FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            FloatVector x = FloatVector.broadcast(S, a[ao + p]);
            int b = bpo + p * NR, b2 = b + bPanel;
            c0 = x.fma(FloatVector.fromArray(S, bp, b), c0);
            c1 = x.fma(FloatVector.fromArray(S, bp, b + L), c1);
            c2 = x.fma(FloatVector.fromArray(S, bp, b2), c2);
            c3 = x.fma(FloatVector.fromArray(S, bp, b2 + L), c3);
        }
        c0.intoArray(c, co);
        c1.intoArray(c, co + L);
        c2.intoArray(c, co + NR);
        c3.intoArray(c, co + NR + L);
    }

    /** C = A Bp (+ C when load) for one 6 x 2L tile; the A layouts of {@link CpuKernels#gemmTile}. */
    private static void tile6(
            int kc, float[] ap, int apo, boolean rowsA, float[] bp, int bpo, float[] c, int co, int ldc, boolean load) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31;
        FloatVector c40, c41, c50, c51;
        if (load) {
            c00 = FloatVector.fromArray(S, c, co + 0 * ldc);
            c01 = FloatVector.fromArray(S, c, co + 0 * ldc + L);
            c10 = FloatVector.fromArray(S, c, co + 1 * ldc);
            c11 = FloatVector.fromArray(S, c, co + 1 * ldc + L);
            c20 = FloatVector.fromArray(S, c, co + 2 * ldc);
            c21 = FloatVector.fromArray(S, c, co + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, co + 3 * ldc);
            c31 = FloatVector.fromArray(S, c, co + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, co + 4 * ldc);
            c41 = FloatVector.fromArray(S, c, co + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, co + 5 * ldc);
            c51 = FloatVector.fromArray(S, c, co + 5 * ldc + L);
        } else {
            c00 = FloatVector.zero(S);
            c01 = FloatVector.zero(S);
            c10 = FloatVector.zero(S);
            c11 = FloatVector.zero(S);
            c20 = FloatVector.zero(S);
            c21 = FloatVector.zero(S);
            c30 = FloatVector.zero(S);
            c31 = FloatVector.zero(S);
            c40 = FloatVector.zero(S);
            c41 = FloatVector.zero(S);
            c50 = FloatVector.zero(S);
            c51 = FloatVector.zero(S);
        }
        // One loop per layout, each with constant offsets and steps and B's index as its counter (see the class
        // comment).
        int bEnd = bpo + kc * NR;
        if (rowsA) {
            for (int b = bpo, a = apo; b < bEnd; b += NR, a += 1) {
                FloatVector b0 = FloatVector.fromArray(S, bp, b);
                FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
                FloatVector a0 = FloatVector.broadcast(S, ap[a]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                FloatVector a1 = FloatVector.broadcast(S, ap[a + KC]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                FloatVector a2 = FloatVector.broadcast(S, ap[a + 2 * KC]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                FloatVector a3 = FloatVector.broadcast(S, ap[a + 3 * KC]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
                FloatVector a4 = FloatVector.broadcast(S, ap[a + 4 * KC]);
                c40 = a4.fma(b0, c40);
                c41 = a4.fma(b1, c41);
                FloatVector a5 = FloatVector.broadcast(S, ap[a + 5 * KC]);
                c50 = a5.fma(b0, c50);
                c51 = a5.fma(b1, c51);
            }
        } else {
            for (int b = bpo, a = apo; b < bEnd; b += NR, a += 6) {
                FloatVector b0 = FloatVector.fromArray(S, bp, b);
                FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
                FloatVector a0 = FloatVector.broadcast(S, ap[a]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                FloatVector a1 = FloatVector.broadcast(S, ap[a + 1]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                FloatVector a2 = FloatVector.broadcast(S, ap[a + 2]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                FloatVector a3 = FloatVector.broadcast(S, ap[a + 3]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
                FloatVector a4 = FloatVector.broadcast(S, ap[a + 4]);
                c40 = a4.fma(b0, c40);
                c41 = a4.fma(b1, c41);
                FloatVector a5 = FloatVector.broadcast(S, ap[a + 5]);
                c50 = a5.fma(b0, c50);
                c51 = a5.fma(b1, c51);
            }
        }
        c00.intoArray(c, co + 0 * ldc);
        c01.intoArray(c, co + 0 * ldc + L);
        c10.intoArray(c, co + 1 * ldc);
        c11.intoArray(c, co + 1 * ldc + L);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + L);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + L);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + L);
    }

    @Override
    float dot(float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = S.loopBound(n); i < end; i += L) {
                acc = FloatVector.fromArray(S, x, xo + i).fma(FloatVector.fromArray(S, y, yo + i), acc);
            }
            s = sumLanes(acc);
        }
        for (; i < n; i++) s += x[xo + i] * y[yo + i];
        return s;
    }

    @Override
    double dotF64(float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        double s = 0;
        if (n >= L) {
            // Two float64 accumulators hold the low and high halves of each float vector.
            DoubleVector lo = DoubleVector.zero(D), hi = DoubleVector.zero(D);
            for (int end = S.loopBound(n); i < end; i += L) {
                FloatVector xv = FloatVector.fromArray(S, x, xo + i), yv = FloatVector.fromArray(S, y, yo + i);
                lo = toDouble(xv, 0).fma(toDouble(yv, 0), lo);
                hi = toDouble(xv, 1).fma(toDouble(yv, 1), hi);
            }
            for (int j = 0; j < D.length(); j++) s += lo.lane(j);
            for (int j = 0; j < D.length(); j++) s += hi.lane(j);
        }
        for (; i < n; i++) s += (double) x[xo + i] * y[yo + i];
        return s;
    }

    private static DoubleVector toDouble(FloatVector v, int part) {
        return (DoubleVector) v.convertShape(VectorOperators.F2D, D, part);
    }

    @Override
    void softmaxBackwardRow(float[] p, int po, float[] g, int go, int n, float delta, float scale) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, p, po + i)
                    .mul(FloatVector.fromArray(S, g, go + i).sub(delta))
                    .mul(scale)
                    .intoArray(g, go + i);
        }
        for (; i < n; i++) g[go + i] = p[po + i] * (g[go + i] - delta) * scale;
    }

    @Override
    void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector av = FloatVector.broadcast(S, a);
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, x, xo + i)
                    .fma(av, FloatVector.fromArray(S, y, yo + i))
                    .intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    @Override
    void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, a, ao + i)
                    .add(FloatVector.fromArray(S, b, bo + i))
                    .intoArray(out, oo + i);
        }
        for (; i < n; i++) out[oo + i] = a[ao + i] + b[bo + i];
    }

    @Override
    void scale(float[] x, int xo, int n, float s) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, x, xo + i).mul(s).intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] *= s;
    }

    @Override
    void copyScaled(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s) {
        int full = S.loopBound(cols), rest = cols - full;
        // A tail of half a vector, or of three quarters on 256-bit vectors (the 4- and 6-float slots of a k-by-k A
        // panel with AVX2), copies with plain half- and quarter-width loads and stores. Other tails (the 12-float
        // slots with AVX-512) take a masked store, which some AVX2 cores (AMD) run slowly, of a whole-vector load
        // where that lies inside x: on Zen 5 a masked load made packing a transposed A about twice as slow, and
        // copying those slots as 8 + 4 floats made the 16 x 16 transposes of packB several times slower
        // (docs/cpu-backend.md).
        boolean quarter = L <= 8 && rest == HALF.length() + QUARTER.length();
        boolean half = rest == HALF.length() || quarter;
        VectorMask<Float> tail = rest == 0 || half ? null : S.indexInRange(0, rest);
        for (int r = 0; r < rows; r++) {
            int xi = xo + r * ldx, oi = oo + r * ldo;
            int c = 0;
            for (; c < full; c += L) FloatVector.fromArray(S, x, xi + c).mul(s).intoArray(out, oi + c);
            if (half) {
                FloatVector.fromArray(HALF, x, xi + c).mul(s).intoArray(out, oi + c);
                if (quarter) {
                    int q = c + HALF.length();
                    FloatVector.fromArray(QUARTER, x, xi + q).mul(s).intoArray(out, oi + q);
                }
            }
            if (tail != null) {
                if (xi + c + L <= x.length)
                    FloatVector.fromArray(S, x, xi + c).mul(s).intoArray(out, oi + c, tail);
                else FloatVector.fromArray(S, x, xi + c, tail).mul(s).intoArray(out, oi + c, tail);
            }
        }
    }

    @Override
    void copyScaledPadded(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s) {
        int whole = (cols + L - 1) / L * L;
        int r = 0;
        // Rows whose whole vectors lie inside both arrays; the rest go through the masked copy.
        int safeRows = Math.max(
                0,
                Math.min(
                        rows,
                        Math.min(
                                ldx > 0 ? Math.floorDiv(x.length - xo - whole, ldx) + 1 : rows,
                                ldo > 0 ? Math.floorDiv(out.length - oo - whole, ldo) + 1 : rows)));
        for (; r < safeRows; r++) {
            int xi = xo + r * ldx, oi = oo + r * ldo;
            for (int c = 0; c < whole; c += L)
                FloatVector.fromArray(S, x, xi + c).mul(s).intoArray(out, oi + c);
        }
        if (r < rows) copyScaled(x, xo + r * ldx, ldx, out, oo + r * ldo, ldo, rows - r, cols, s);
    }

    @Override
    int vectorLength() {
        return L;
    }

    @Override
    void transpose(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols) {
        int r0 = 0;
        if (L == 16) {
            for (; r0 + L <= rows; r0 += L) {
                int c0 = 0;
                for (; c0 + L <= cols; c0 += L)
                    transposeSquare(x, xo + r0 * ldx + c0, ldx, out, oo + c0 * ldo + r0, ldo);
                transposeScalar(x, xo + r0 * ldx + c0, ldx, out, oo + c0 * ldo + r0, ldo, L, cols - c0);
            }
        }
        transposeScalar(x, xo + r0 * ldx, ldx, out, oo + r0, ldo, rows - r0, cols);
    }

    private static void transposeScalar(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) out[oo + c * ldo + r] = x[xo + r * ldx + c];
        }
    }

    /**
     * Butterfly index vectors of the 16 x 16 transpose: stage d (8, 4, 2, 1) swaps bit d between the row and
     * column index of every element, pairing rows i and i + d (bit d of i clear) with two-vector selects.
     * LOW[s] builds the new row i from (row i, row i+d), HIGH[s] the new row i+d.
     */
    private static final FloatVector[] BUTTERFLY_LOW = new FloatVector[4], BUTTERFLY_HIGH = new FloatVector[4];

    static {
        if (L == 16) {
            for (int s = 0, d = 8; d >= 1; s++, d >>= 1) {
                float[] lo = new float[L], hi = new float[L];
                for (int c = 0; c < L; c++) {
                    boolean bitSet = (c & d) != 0;
                    lo[c] = bitSet ? L + c - d : c;
                    hi[c] = bitSet ? L + c : c + d;
                }
                BUTTERFLY_LOW[s] = FloatVector.fromArray(S, lo, 0);
                BUTTERFLY_HIGH[s] = FloatVector.fromArray(S, hi, 0);
            }
        }
    }

    /**
     * One 16 x 16 block: 16 row loads, 4 stages of 16 two-vector selects, 16 row stores. Straight-line on
     * named locals: vectors kept in an array would be boxed.
     */
    private static void transposeSquare(float[] x, int xo, int ldx, float[] out, int oo, int ldo) {
        FloatVector r0 = FloatVector.fromArray(S, x, xo + 0 * ldx);
        FloatVector r1 = FloatVector.fromArray(S, x, xo + 1 * ldx);
        FloatVector r2 = FloatVector.fromArray(S, x, xo + 2 * ldx);
        FloatVector r3 = FloatVector.fromArray(S, x, xo + 3 * ldx);
        FloatVector r4 = FloatVector.fromArray(S, x, xo + 4 * ldx);
        FloatVector r5 = FloatVector.fromArray(S, x, xo + 5 * ldx);
        FloatVector r6 = FloatVector.fromArray(S, x, xo + 6 * ldx);
        FloatVector r7 = FloatVector.fromArray(S, x, xo + 7 * ldx);
        FloatVector r8 = FloatVector.fromArray(S, x, xo + 8 * ldx);
        FloatVector r9 = FloatVector.fromArray(S, x, xo + 9 * ldx);
        FloatVector ra = FloatVector.fromArray(S, x, xo + 10 * ldx);
        FloatVector rb = FloatVector.fromArray(S, x, xo + 11 * ldx);
        FloatVector rc = FloatVector.fromArray(S, x, xo + 12 * ldx);
        FloatVector rd = FloatVector.fromArray(S, x, xo + 13 * ldx);
        FloatVector re = FloatVector.fromArray(S, x, xo + 14 * ldx);
        FloatVector rf = FloatVector.fromArray(S, x, xo + 15 * ldx);
        FloatVector lo, hi, t;
        lo = BUTTERFLY_LOW[0];
        hi = BUTTERFLY_HIGH[0];
        t = lo.selectFrom(r0, r8);
        r8 = hi.selectFrom(r0, r8);
        r0 = t;
        t = lo.selectFrom(r1, r9);
        r9 = hi.selectFrom(r1, r9);
        r1 = t;
        t = lo.selectFrom(r2, ra);
        ra = hi.selectFrom(r2, ra);
        r2 = t;
        t = lo.selectFrom(r3, rb);
        rb = hi.selectFrom(r3, rb);
        r3 = t;
        t = lo.selectFrom(r4, rc);
        rc = hi.selectFrom(r4, rc);
        r4 = t;
        t = lo.selectFrom(r5, rd);
        rd = hi.selectFrom(r5, rd);
        r5 = t;
        t = lo.selectFrom(r6, re);
        re = hi.selectFrom(r6, re);
        r6 = t;
        t = lo.selectFrom(r7, rf);
        rf = hi.selectFrom(r7, rf);
        r7 = t;
        lo = BUTTERFLY_LOW[1];
        hi = BUTTERFLY_HIGH[1];
        t = lo.selectFrom(r0, r4);
        r4 = hi.selectFrom(r0, r4);
        r0 = t;
        t = lo.selectFrom(r1, r5);
        r5 = hi.selectFrom(r1, r5);
        r1 = t;
        t = lo.selectFrom(r2, r6);
        r6 = hi.selectFrom(r2, r6);
        r2 = t;
        t = lo.selectFrom(r3, r7);
        r7 = hi.selectFrom(r3, r7);
        r3 = t;
        t = lo.selectFrom(r8, rc);
        rc = hi.selectFrom(r8, rc);
        r8 = t;
        t = lo.selectFrom(r9, rd);
        rd = hi.selectFrom(r9, rd);
        r9 = t;
        t = lo.selectFrom(ra, re);
        re = hi.selectFrom(ra, re);
        ra = t;
        t = lo.selectFrom(rb, rf);
        rf = hi.selectFrom(rb, rf);
        rb = t;
        lo = BUTTERFLY_LOW[2];
        hi = BUTTERFLY_HIGH[2];
        t = lo.selectFrom(r0, r2);
        r2 = hi.selectFrom(r0, r2);
        r0 = t;
        t = lo.selectFrom(r1, r3);
        r3 = hi.selectFrom(r1, r3);
        r1 = t;
        t = lo.selectFrom(r4, r6);
        r6 = hi.selectFrom(r4, r6);
        r4 = t;
        t = lo.selectFrom(r5, r7);
        r7 = hi.selectFrom(r5, r7);
        r5 = t;
        t = lo.selectFrom(r8, ra);
        ra = hi.selectFrom(r8, ra);
        r8 = t;
        t = lo.selectFrom(r9, rb);
        rb = hi.selectFrom(r9, rb);
        r9 = t;
        t = lo.selectFrom(rc, re);
        re = hi.selectFrom(rc, re);
        rc = t;
        t = lo.selectFrom(rd, rf);
        rf = hi.selectFrom(rd, rf);
        rd = t;
        lo = BUTTERFLY_LOW[3];
        hi = BUTTERFLY_HIGH[3];
        t = lo.selectFrom(r0, r1);
        r1 = hi.selectFrom(r0, r1);
        r0 = t;
        t = lo.selectFrom(r2, r3);
        r3 = hi.selectFrom(r2, r3);
        r2 = t;
        t = lo.selectFrom(r4, r5);
        r5 = hi.selectFrom(r4, r5);
        r4 = t;
        t = lo.selectFrom(r6, r7);
        r7 = hi.selectFrom(r6, r7);
        r6 = t;
        t = lo.selectFrom(r8, r9);
        r9 = hi.selectFrom(r8, r9);
        r8 = t;
        t = lo.selectFrom(ra, rb);
        rb = hi.selectFrom(ra, rb);
        ra = t;
        t = lo.selectFrom(rc, rd);
        rd = hi.selectFrom(rc, rd);
        rc = t;
        t = lo.selectFrom(re, rf);
        rf = hi.selectFrom(re, rf);
        re = t;
        r0.intoArray(out, oo + 0 * ldo);
        r1.intoArray(out, oo + 1 * ldo);
        r2.intoArray(out, oo + 2 * ldo);
        r3.intoArray(out, oo + 3 * ldo);
        r4.intoArray(out, oo + 4 * ldo);
        r5.intoArray(out, oo + 5 * ldo);
        r6.intoArray(out, oo + 6 * ldo);
        r7.intoArray(out, oo + 7 * ldo);
        r8.intoArray(out, oo + 8 * ldo);
        r9.intoArray(out, oo + 9 * ldo);
        ra.intoArray(out, oo + 10 * ldo);
        rb.intoArray(out, oo + 11 * ldo);
        rc.intoArray(out, oo + 12 * ldo);
        rd.intoArray(out, oo + 13 * ldo);
        re.intoArray(out, oo + 14 * ldo);
        rf.intoArray(out, oo + 15 * ldo);
    }

    @Override
    float max(float[] x, int xo, int n) {
        int i = 0;
        float m = x[xo];
        if (n >= L) {
            FloatVector acc = FloatVector.fromArray(S, x, xo);
            for (int end = S.loopBound(n); i < end; i += L) {
                acc = acc.max(FloatVector.fromArray(S, x, xo + i));
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    @Override
    int indexOf(float[] x, int xo, int n, float max) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            int lane = FloatVector.fromArray(S, x, xo + i).eq(max).firstTrue();
            if (lane < L) return i + lane;
        }
        for (; i < n; i++) {
            if (x[xo + i] == max) return i;
        }
        return 0;
    }

    /**
     * The tail of a row: {@link #exp} of x - shift, times mul, on the lanes before n (a masked load and store), 0
     * on the others, so a partial vector costs one vector exponential instead of up to L-1 scalar ones.
     */
    private static FloatVector expShiftedTail(
            float[] x, int xo, float[] out, int oo, int i, int n, float shift, float mul) {
        VectorMask<Float> live = S.indexInRange(i, n);
        FloatVector e = exp(FloatVector.fromArray(S, x, xo + i, live).sub(shift))
                .mul(mul)
                .blend(0f, live.not());
        if (out != null) e.intoArray(out, oo + i, live);
        return e;
    }

    @Override
    float expShifted(float[] x, int xo, float[] out, int oo, int n, float shift) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector e = exp(FloatVector.fromArray(S, x, xo + i).sub(shift));
            e.intoArray(out, oo + i);
            acc = acc.add(e);
        }
        if (i < n) acc = acc.add(expShiftedTail(x, xo, out, oo, i, n, shift, 1f));
        return sumLanes(acc);
    }

    @Override
    float expShiftedSum(float[] x, int xo, int n, float shift) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int end = S.loopBound(n); i < end; i += L) {
            acc = acc.add(exp(FloatVector.fromArray(S, x, xo + i).sub(shift)));
        }
        if (i < n) acc = acc.add(expShiftedTail(x, xo, null, 0, i, n, shift, 1f));
        return sumLanes(acc);
    }

    @Override
    void expShiftedScaled(float[] x, int xo, float[] out, int oo, int n, float shift, float mul) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            exp(FloatVector.fromArray(S, x, xo + i).sub(shift)).mul(mul).intoArray(out, oo + i);
        }
        if (i < n) expShiftedTail(x, xo, out, oo, i, n, shift, mul);
    }

    @Override
    void rotatePairs(
            float[] x, int xo, float[] out, int oo, float[] cos, float[] sin, int to, int half, float direction) {
        int i = 0;
        for (int end = S.loopBound(half); i < end; i += L) {
            FloatVector c = FloatVector.fromArray(S, cos, to + i),
                    sn = FloatVector.fromArray(S, sin, to + i).mul(direction);
            FloatVector x1 = FloatVector.fromArray(S, x, xo + i), x2 = FloatVector.fromArray(S, x, xo + i + half);
            x1.mul(c).sub(x2.mul(sn)).intoArray(out, oo + i);
            x2.mul(c).add(x1.mul(sn)).intoArray(out, oo + i + half);
        }
        for (; i < half; i++) {
            float c = cos[to + i], sn = direction * sin[to + i];
            float x1 = x[xo + i], x2 = x[xo + i + half];
            out[oo + i] = x1 * c - x2 * sn;
            out[oo + i + half] = x2 * c + x1 * sn;
        }
    }

    @Override
    void mulScaled(float[] x, int xo, float[] w, int wo, float[] out, int oo, int n, float s) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, x, xo + i)
                    .mul(s)
                    .mul(FloatVector.fromArray(S, w, wo + i))
                    .intoArray(out, oo + i);
        }
        for (; i < n; i++) out[oo + i] = x[xo + i] * s * w[wo + i];
    }

    @Override
    float dot3(float[] g, int go, float[] w, int wo, float[] x, int xo, int n) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = S.loopBound(n); i < end; i += L) {
                FloatVector gw = FloatVector.fromArray(S, g, go + i).mul(FloatVector.fromArray(S, w, wo + i));
                acc = gw.fma(FloatVector.fromArray(S, x, xo + i), acc);
            }
            s = sumLanes(acc);
        }
        for (; i < n; i++) s += g[go + i] * w[wo + i] * x[xo + i];
        return s;
    }

    @Override
    void rmsNormBackwardRow(
            float[] g, int go, float[] w, int wo, float[] x, int xo, float r, float c, float[] dx, int dxo, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector wg = FloatVector.fromArray(S, w, wo + i).mul(FloatVector.fromArray(S, g, go + i));
            FloatVector cx = FloatVector.fromArray(S, x, xo + i).mul(c);
            wg.sub(cx).mul(r).intoArray(dx, dxo + i);
        }
        for (; i < n; i++) dx[dxo + i] = r * (w[wo + i] * g[go + i] - c * x[xo + i]);
    }

    @Override
    void accumulateScaledProduct(float[] g, int go, float[] x, int xo, float r, float[] acc, int ao, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector gx = FloatVector.fromArray(S, g, go + i)
                    .mul(FloatVector.fromArray(S, x, xo + i))
                    .mul(r);
            gx.add(FloatVector.fromArray(S, acc, ao + i)).intoArray(acc, ao + i);
        }
        for (; i < n; i++) acc[ao + i] += g[go + i] * x[xo + i] * r;
    }

    @Override
    void swiGluForward(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector gv = FloatVector.fromArray(S, gate, go + i);
            FloatVector sig = sigmoid(gv);
            gv.mul(sig).mul(FloatVector.fromArray(S, up, uo + i)).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            float gv = gate[go + i];
            float sig = CpuMath.sigmoid(gv);
            out[oo + i] = gv * sig * up[uo + i];
        }
    }

    @Override
    void swiGluBackward(
            float[] dOut,
            int dooff,
            float[] gate,
            int go,
            float[] up,
            int uo,
            float[] dGate,
            int dgo,
            float[] dUp,
            int duo,
            int n) {
        int i = 0;
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector gv = FloatVector.fromArray(S, gate, go + i);
            FloatVector u = FloatVector.fromArray(S, up, uo + i);
            FloatVector d = FloatVector.fromArray(S, dOut, dooff + i);
            FloatVector sig = sigmoid(gv);
            FloatVector silu = gv.mul(sig);
            FloatVector dg = d.mul(u).mul(sig.mul(one.add(gv.mul(one.sub(sig)))));
            dg.intoArray(dGate, dgo + i);
            d.mul(silu).intoArray(dUp, duo + i);
        }
        for (; i < n; i++) {
            float gv = gate[go + i];
            float u = up[uo + i];
            float d = dOut[dooff + i];
            float sig = CpuMath.sigmoid(gv);
            dGate[dgo + i] = (d * u) * (sig * (1f + gv * (1f - sig)));
            dUp[duo + i] = d * (gv * sig);
        }
    }

    @Override
    void adamW(
            float[] p,
            int po,
            float[] g,
            int go,
            float[] m,
            int mo,
            float[] v,
            int vo,
            int n,
            float lr,
            float beta1,
            float beta2,
            float eps,
            float wd,
            float gradScale,
            float bc1,
            float bc2) {
        float oneMinusB1 = 1f - beta1;
        float oneMinusB2 = 1f - beta2;
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector gi = FloatVector.fromArray(S, g, go + i).mul(gradScale);
            FloatVector mi = FloatVector.fromArray(S, m, mo + i).mul(beta1).add(gi.mul(oneMinusB1));
            FloatVector vi = FloatVector.fromArray(S, v, vo + i)
                    .mul(beta2)
                    .add(gi.mul(oneMinusB2).mul(gi));
            mi.intoArray(m, mo + i);
            vi.intoArray(v, vo + i);
            FloatVector pi = FloatVector.fromArray(S, p, po + i);
            FloatVector denom = vi.div(bc2).lanewise(VectorOperators.SQRT).add(eps);
            FloatVector update = mi.div(bc1).div(denom).add(pi.mul(wd));
            pi.sub(update.mul(lr)).intoArray(p, po + i);
        }
        for (; i < n; i++) {
            float gs = g[go + i] * gradScale;
            float mi = beta1 * m[mo + i] + oneMinusB1 * gs;
            float vi = beta2 * v[vo + i] + oneMinusB2 * gs * gs;
            m[mo + i] = mi;
            v[vo + i] = vi;
            float pi = p[po + i];
            float update = (mi / bc1) / ((float) Math.sqrt(vi / bc2) + eps) + wd * pi;
            p[po + i] = pi - lr * update;
        }
    }
}
