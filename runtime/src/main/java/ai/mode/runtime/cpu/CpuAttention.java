package ai.mode.runtime.cpu;

import java.util.Arrays;

/**
 * Fused causal attention for the cpu backend (flash-attention style, float32).
 *
 * <p>Forward: one task per (batch, head, block of {@link #QB} queries). Keys are visited in blocks of
 * {@link #KB}; each block of K is packed transposed ({@code [hd][KB]}) so a query's scores come from
 * vector multiply-adds along the keys; an online softmax (running max, running sum, rescaled accumulator)
 * folds each block into the output. No T x T matrix exists; lse [B,H,T] is saved for the backward pass.
 *
 * <p>Backward: one task per (batch, head). For each key block, a pass over the queries at or after it
 * recomputes the probabilities from lse, accumulates dK and dV of the block in scratch and dQ of each query
 * in place. With grouped-query attention the per-head dK/dV go to scratch and are summed over the heads of
 * a group in head order afterwards, so nothing is shared between tasks and the result is deterministic.
 *
 * <p>Layouts: q, out, dq [B,T,H,hd]; k, v, dk, dv [B,T,Hkv,hd]; lse [B,H,T].
 */
final class CpuAttention {
    static final int QB = 64;
    static final int KB = 64;

    private final CpuKernels kern;
    private final CpuThreads threads;
    private final ThreadLocal<Scratch> scratch;

    CpuAttention(CpuKernels kern, CpuThreads threads) {
        this.kern = kern;
        this.threads = threads;
        this.scratch = new ThreadLocal<>();
    }

    /** Per-thread work buffers, grown on demand. */
    private static final class Scratch {
        float[] kt = new float[0];
        float[] vt = new float[0];
        float[] s = new float[KB];
        float[] dp = new float[KB];
        float[] m = new float[QB];
        float[] l = new float[QB];
        float[] acc = new float[0];
        float[] dkAcc = new float[0];
        float[] dvAcc = new float[0];
        float[] delta = new float[0];

        void ensure(int hd, int t) {
            if (kt.length < hd * KB) {
                kt = new float[hd * KB];
                vt = new float[hd * KB];
                acc = new float[QB * hd];
                dkAcc = new float[KB * hd];
                dvAcc = new float[KB * hd];
            }
            if (delta.length < t) delta = new float[t];
        }
    }

    private Scratch scratch(int hd, int t) {
        Scratch s = scratch.get();
        if (s == null) {
            s = new Scratch();
            scratch.set(s);
        }
        s.ensure(hd, t);
        return s;
    }

    /** Packs rows kb0 .. kb0+kLen of one head of x [B,T,Hx,hd] transposed into dst[d*KB + j]. */
    private static void packTransposed(float[] x, int base, int rowStride, int kb0, int kLen, int hd, float[] dst) {
        for (int j = 0; j < kLen; j++) {
            int src = base + (kb0 + j) * rowStride;
            for (int d = 0; d < hd; d++) dst[d * KB + j] = x[src + d];
        }
    }

    /** s[j] = scale * sum_d q[d] * kt[d][j] for j < n. */
    private void scores(float[] q, int qo, float scale, float[] kt, int hd, float[] s, int n) {
        Arrays.fill(s, 0, n, 0f);
        for (int d = 0; d < hd; d++) kern.axpy(q[qo + d] * scale, kt, d * KB, s, 0, n);
    }

    void forward(int b, int t, int h, int hkv, int hd,
                 float[] q, int qOff, float[] k, int kOff, float[] v, int vOff,
                 float[] out, int outOff, float[] lse, int lseOff) {
        int group = h / hkv;
        int qBlocks = (t + QB - 1) / QB;
        float scale = (float) (1.0 / Math.sqrt(hd));
        int qRow = h * hd;
        int kRow = hkv * hd;
        threads.parallelFor(b * h * qBlocks, task -> {
            int qb = task % qBlocks;
            int bh = task / qBlocks;
            int bi = bh / h;
            int hi = bh % h;
            int hk = hi / group;
            int t0 = qb * QB;
            int t1 = Math.min(t, t0 + QB);
            Scratch sc = scratch(hd, t);
            float[] m = sc.m, l = sc.l, acc = sc.acc, s = sc.s, kt = sc.kt;
            Arrays.fill(m, 0, t1 - t0, Float.NEGATIVE_INFINITY);
            Arrays.fill(l, 0, t1 - t0, 0f);
            Arrays.fill(acc, 0, (t1 - t0) * hd, 0f);
            int qBase = qOff + (bi * t * h + hi) * hd;
            int kBase = kOff + (bi * t * hkv + hk) * hd;
            int vBase = vOff + (bi * t * hkv + hk) * hd;
            for (int kb0 = 0; kb0 < t1; kb0 += KB) {
                int kLen = Math.min(KB, t1 - kb0);
                packTransposed(k, kBase, kRow, kb0, kLen, hd, kt);
                for (int ti = Math.max(t0, kb0); ti < t1; ti++) {
                    int r = ti - t0;
                    int n = Math.min(kLen, ti - kb0 + 1);
                    scores(q, qBase + ti * qRow, scale, kt, hd, s, n);
                    float mNew = Math.max(m[r], kern.max(s, 0, n));
                    float corr = (float) Math.exp(m[r] - mNew);
                    float sumP = kern.expShifted(s, 0, s, 0, n, mNew);
                    l[r] = l[r] * corr + sumP;
                    if (corr != 1f) kern.scale(acc, r * hd, hd, corr);
                    for (int j = 0; j < n; j++) kern.axpy(s[j], v, vBase + (kb0 + j) * kRow, acc, r * hd, hd);
                    m[r] = mNew;
                }
            }
            for (int ti = t0; ti < t1; ti++) {
                int r = ti - t0;
                int o = outOff + (bi * t * h + hi) * hd + ti * qRow;
                float inv = 1f / l[r];
                for (int d = 0; d < hd; d++) out[o + d] = acc[r * hd + d] * inv;
                lse[lseOff + (bi * h + hi) * t + ti] = m[r] + (float) Math.log(l[r]);
            }
        });
    }

    void backward(int b, int t, int h, int hkv, int hd,
                  float[] dOut, int dOutOff, float[] q, int qOff, float[] k, int kOff, float[] v, int vOff,
                  float[] out, int outOff, float[] lse, int lseOff,
                  float[] dq, int dqOff, float[] dk, int dkOff, float[] dv, int dvOff) {
        int group = h / hkv;
        float scale = (float) (1.0 / Math.sqrt(hd));
        int qRow = h * hd;
        int kRow = hkv * hd;
        // With grouped-query attention each head's dK/dV go to scratch [B,H,T,hd] first.
        float[] dkPart = group == 1 ? null : new float[b * h * t * hd];
        float[] dvPart = group == 1 ? null : new float[b * h * t * hd];
        threads.parallelFor(b * h, task -> {
            int bi = task / h;
            int hi = task % h;
            int hk = hi / group;
            Scratch sc = scratch(hd, t);
            float[] kt = sc.kt, vt = sc.vt, s = sc.s, dp = sc.dp, delta = sc.delta;
            float[] dkAcc = sc.dkAcc, dvAcc = sc.dvAcc;
            int qBase = qOff + (bi * t * h + hi) * hd;
            int oBase = outOff + (bi * t * h + hi) * hd;
            int dOBase = dOutOff + (bi * t * h + hi) * hd;
            int dqBase = dqOff + (bi * t * h + hi) * hd;
            int kBase = kOff + (bi * t * hkv + hk) * hd;
            int vBase = vOff + (bi * t * hkv + hk) * hd;
            int lseBase = lseOff + (bi * h + hi) * t;
            float[] dkDst, dvDst;
            int dkBase, dvBase, dstRow;
            if (group == 1) {
                dkDst = dk;
                dvDst = dv;
                dkBase = dkOff + (bi * t * hkv + hk) * hd;
                dvBase = dvOff + (bi * t * hkv + hk) * hd;
                dstRow = kRow;
            } else {
                dkDst = dkPart;
                dvDst = dvPart;
                dkBase = (bi * h + hi) * t * hd;
                dvBase = dkBase;
                dstRow = hd;
            }
            for (int ti = 0; ti < t; ti++) {
                delta[ti] = kern.dot(dOut, dOBase + ti * qRow, out, oBase + ti * qRow, hd);
                Arrays.fill(dq, dqBase + ti * qRow, dqBase + ti * qRow + hd, 0f);
            }
            for (int kb0 = 0; kb0 < t; kb0 += KB) {
                int kLen = Math.min(KB, t - kb0);
                packTransposed(k, kBase, kRow, kb0, kLen, hd, kt);
                packTransposed(v, vBase, kRow, kb0, kLen, hd, vt);
                Arrays.fill(dkAcc, 0, kLen * hd, 0f);
                Arrays.fill(dvAcc, 0, kLen * hd, 0f);
                for (int ti = kb0; ti < t; ti++) {
                    int n = Math.min(kLen, ti - kb0 + 1);
                    int qo = qBase + ti * qRow;
                    int dOo = dOBase + ti * qRow;
                    scores(q, qo, scale, kt, hd, s, n);
                    kern.expShiftedScaled(s, 0, s, 0, n, lse[lseBase + ti], 1f);   // s := P
                    scores(dOut, dOo, 1f, vt, hd, dp, n);                          // dp := dO . V
                    float dlt = delta[ti];
                    for (int j = 0; j < n; j++) {
                        float p = s[j];
                        float ds = p * (dp[j] - dlt) * scale;
                        kern.axpy(p, dOut, dOo, dvAcc, j * hd, hd);
                        kern.axpy(ds, q, qo, dkAcc, j * hd, hd);
                        kern.axpy(ds, k, kBase + (kb0 + j) * kRow, dq, dqBase + ti * qRow, hd);
                    }
                }
                for (int j = 0; j < kLen; j++) {
                    System.arraycopy(dkAcc, j * hd, dkDst, dkBase + (kb0 + j) * dstRow, hd);
                    System.arraycopy(dvAcc, j * hd, dvDst, dvBase + (kb0 + j) * dstRow, hd);
                }
            }
        });
        if (group != 1) {
            // dk[b,t,hk,:] = sum over the group's heads, in head order.
            threads.parallelFor(b * hkv, task -> {
                int bi = task / hkv;
                int hk = task % hkv;
                for (int ti = 0; ti < t; ti++) {
                    int dst = (bi * t + ti) * kRow + hk * hd;
                    int src0 = ((bi * h + hk * group) * t + ti) * hd;
                    System.arraycopy(dkPart, src0, dk, dkOff + dst, hd);
                    System.arraycopy(dvPart, src0, dv, dvOff + dst, hd);
                    for (int g = 1; g < group; g++) {
                        int src = ((bi * h + hk * group + g) * t + ti) * hd;
                        kern.add(dk, dkOff + dst, dkPart, src, dk, dkOff + dst, hd);
                        kern.add(dv, dvOff + dst, dvPart, src, dv, dvOff + dst, hd);
                    }
                }
            });
        }
    }
}
