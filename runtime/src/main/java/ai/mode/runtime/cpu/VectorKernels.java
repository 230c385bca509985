package ai.mode.runtime.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
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
 * <p>The GEMM register tile is 6 rows x 2 vectors: 12 accumulators, 2 loads of B and one broadcast of A
 * per k, all fused multiply-adds.
 */
final class VectorKernels extends CpuKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int MR = 6;
    private static final int NR = 2 * L;
    /** Lane rotations by L/2, L/4, ..., 1 for the fixed-order lane fold. */
    private static final VectorShuffle<Float> ROT_8 = rotation(8), ROT_4 = rotation(4), ROT_2 = rotation(2), ROT_1 = rotation(1);

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

    VectorKernels() {
        // Touch the species so a missing module fails here (caught by select), not in a hot loop.
        if (FloatVector.zero(S).length() != L) throw new IllegalStateException("inconsistent vector species");
    }

    @Override boolean vectorized() { return true; }
    @Override String describe() { return "vector (" + L + " x float32)"; }
    @Override int mr() { return MR; }
    @Override int nr() { return NR; }

    @Override
    void gemmTile(int kc, float[] ap, int apo, int rs, int ks, float[] bp, int bpo, float alpha, float beta,
                  float[] c, int co, int ldc) {
        // Two straight-line variants: one method with both store paths (or a store helper) grows past C2's
        // inlining node budget, and vectors that are not inlined get boxed (an order of magnitude slower).
        if (beta == 0f) {
            tileOverwrite(kc, ap, apo, rs, ks, bp, bpo, alpha, c, co, ldc);
        } else {
            tileAccumulate(kc, ap, apo, rs, ks, bp, bpo, alpha, beta, c, co, ldc);
        }
    }

    /** C = alpha * Ap Bp for one 6 x 2L tile. */
    private static void tileOverwrite(int kc, float[] ap, int apo, int rs, int ks, float[] bp, int bpo, float alpha,
                                      float[] c, int co, int ldc) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int a = apo;
        int b = bpo;
        // A element (r, p) is ap[apo + r*rs + p*ks]: packed panels (rs 1, ks 6) or rows of A in place (rs lda, ks 1).
        for (int p = 0; p < kc; p++, a += ks, b += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, b);
            FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
            FloatVector av = FloatVector.broadcast(S, ap[a]);
            c00 = av.fma(b0, c00);
            c01 = av.fma(b1, c01);
            av = FloatVector.broadcast(S, ap[a + 1 * rs]);
            c10 = av.fma(b0, c10);
            c11 = av.fma(b1, c11);
            av = FloatVector.broadcast(S, ap[a + 2 * rs]);
            c20 = av.fma(b0, c20);
            c21 = av.fma(b1, c21);
            av = FloatVector.broadcast(S, ap[a + 3 * rs]);
            c30 = av.fma(b0, c30);
            c31 = av.fma(b1, c31);
            av = FloatVector.broadcast(S, ap[a + 4 * rs]);
            c40 = av.fma(b0, c40);
            c41 = av.fma(b1, c41);
            av = FloatVector.broadcast(S, ap[a + 5 * rs]);
            c50 = av.fma(b0, c50);
            c51 = av.fma(b1, c51);
        }
        c00.mul(alpha).intoArray(c, co);
        c01.mul(alpha).intoArray(c, co + L);
        c10.mul(alpha).intoArray(c, co + ldc);
        c11.mul(alpha).intoArray(c, co + ldc + L);
        c20.mul(alpha).intoArray(c, co + 2 * ldc);
        c21.mul(alpha).intoArray(c, co + 2 * ldc + L);
        c30.mul(alpha).intoArray(c, co + 3 * ldc);
        c31.mul(alpha).intoArray(c, co + 3 * ldc + L);
        c40.mul(alpha).intoArray(c, co + 4 * ldc);
        c41.mul(alpha).intoArray(c, co + 4 * ldc + L);
        c50.mul(alpha).intoArray(c, co + 5 * ldc);
        c51.mul(alpha).intoArray(c, co + 5 * ldc + L);
    }

    /** C = alpha * Ap Bp + beta * C for one 6 x 2L tile. */
    private static void tileAccumulate(int kc, float[] ap, int apo, int rs, int ks, float[] bp, int bpo, float alpha, float beta,
                                       float[] c, int co, int ldc) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int a = apo;
        int b = bpo;
        // A element (r, p) is ap[apo + r*rs + p*ks]: packed panels (rs 1, ks 6) or rows of A in place (rs lda, ks 1).
        for (int p = 0; p < kc; p++, a += ks, b += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, b);
            FloatVector b1 = FloatVector.fromArray(S, bp, b + L);
            FloatVector av = FloatVector.broadcast(S, ap[a]);
            c00 = av.fma(b0, c00);
            c01 = av.fma(b1, c01);
            av = FloatVector.broadcast(S, ap[a + 1 * rs]);
            c10 = av.fma(b0, c10);
            c11 = av.fma(b1, c11);
            av = FloatVector.broadcast(S, ap[a + 2 * rs]);
            c20 = av.fma(b0, c20);
            c21 = av.fma(b1, c21);
            av = FloatVector.broadcast(S, ap[a + 3 * rs]);
            c30 = av.fma(b0, c30);
            c31 = av.fma(b1, c31);
            av = FloatVector.broadcast(S, ap[a + 4 * rs]);
            c40 = av.fma(b0, c40);
            c41 = av.fma(b1, c41);
            av = FloatVector.broadcast(S, ap[a + 5 * rs]);
            c50 = av.fma(b0, c50);
            c51 = av.fma(b1, c51);
        }
        int o = co;
        c00.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c01.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
        o += ldc;
        c10.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c11.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
        o += ldc;
        c20.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c21.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
        o += ldc;
        c30.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c31.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
        o += ldc;
        c40.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c41.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
        o += ldc;
        c50.mul(alpha).add(FloatVector.fromArray(S, c, o).mul(beta)).intoArray(c, o);
        c51.mul(alpha).add(FloatVector.fromArray(S, c, o + L).mul(beta)).intoArray(c, o + L);
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
    void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector av = FloatVector.broadcast(S, a);
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, x, xo + i).fma(av, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    @Override
    void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, a, ao + i).add(FloatVector.fromArray(S, b, bo + i)).intoArray(out, oo + i);
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
    float sumSquares(float[] x, int xo, int n) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = S.loopBound(n); i < end; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i);
                acc = v.fma(v, acc);
            }
            s = sumLanes(acc);
        }
        for (; i < n; i++) s += x[xo + i] * x[xo + i];
        return s;
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

    @Override
    float expShifted(float[] x, int xo, float[] out, int oo, int n, float shift) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = S.loopBound(n); i < end; i += L) {
                FloatVector e = exp(FloatVector.fromArray(S, x, xo + i).sub(shift));
                e.intoArray(out, oo + i);
                acc = acc.add(e);
            }
            s = sumLanes(acc);
        }
        for (; i < n; i++) {
            float e = CpuMath.exp(x[xo + i] - shift);
            out[oo + i] = e;
            s += e;
        }
        return s;
    }

    @Override
    float expShiftedSum(float[] x, int xo, int n, float shift) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = S.loopBound(n); i < end; i += L) {
                acc = acc.add(exp(FloatVector.fromArray(S, x, xo + i).sub(shift)));
            }
            s = sumLanes(acc);
        }
        for (; i < n; i++) s += CpuMath.exp(x[xo + i] - shift);
        return s;
    }

    @Override
    void expShiftedScaled(float[] x, int xo, float[] out, int oo, int n, float shift, float mul) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            exp(FloatVector.fromArray(S, x, xo + i).sub(shift)).mul(mul).intoArray(out, oo + i);
        }
        for (; i < n; i++) out[oo + i] = CpuMath.exp(x[xo + i] - shift) * mul;
    }

    @Override
    void mulScaled(float[] x, int xo, float[] w, int wo, float[] out, int oo, int n, float s) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector.fromArray(S, x, xo + i).mul(s).mul(FloatVector.fromArray(S, w, wo + i)).intoArray(out, oo + i);
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
    void rmsNormBackwardRow(float[] g, int go, float[] w, int wo, float[] x, int xo, float r, float c,
                            float[] dx, int dxo, int n) {
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
            FloatVector gx = FloatVector.fromArray(S, g, go + i).mul(FloatVector.fromArray(S, x, xo + i)).mul(r);
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
    void swiGluBackward(float[] dOut, int dooff, float[] gate, int go, float[] up, int uo,
                        float[] dGate, int dgo, float[] dUp, int duo, int n) {
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
    void adamW(float[] p, int po, float[] g, int go, float[] m, int mo, float[] v, int vo, int n,
               float lr, float beta1, float beta2, float eps, float wd, float gradScale, float bc1, float bc2) {
        float oneMinusB1 = 1f - beta1;
        float oneMinusB2 = 1f - beta2;
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            FloatVector gi = FloatVector.fromArray(S, g, go + i).mul(gradScale);
            FloatVector mi = FloatVector.fromArray(S, m, mo + i).mul(beta1).add(gi.mul(oneMinusB1));
            FloatVector vi = FloatVector.fromArray(S, v, vo + i).mul(beta2).add(gi.mul(oneMinusB2).mul(gi));
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
