package ai.mode.runtime.cpu;

import java.util.Arrays;

/**
 * Fused causal attention for the cpu backend (flash-attention style, float32), built from small
 * register-tiled GEMMs ({@link Sgemm#gemmPacked}) on blocks of {@link #QB} queries.
 *
 * <p>Forward: one task per (batch, head); Kᵀ of the head is packed once, and so is V up to {@link Sgemm#KC}
 * keys (blocks multiply by its first rows; longer sequences pack V per chunk). For each block of QB queries and
 * each chunk of up to {@link #KV_CHUNK} keys it sees: S = scale (Q Kᵀ), the GEMM's dot products scaled after the
 * sum (folding the scale into Q would round every product twice: at head dim 72 the log-sum-exp was then 2 ulps
 * off where a naive float32 loop is 0.9), the causal mask, online
 * softmax (running max m, running sum l, the output accumulator rescaled by exp(m_old - m_new)), O += P V.
 * Up to KV_CHUNK keys this is one pass with one exponential per score; only a QB x KV_CHUNK score block
 * exists at a time; lse [B,H,T] = m + log l is saved for the backward pass.
 *
 * <p>Backward: one task per (batch, head). For each block of QB queries: recompute P = exp(S - lse) and
 * dP = dO Vᵀ against all keys it sees (a QB x T block, never T x T), delta = rowsum(P * dP) from those same
 * values (float64 sum; the usual rowsum(dO * O) shortcut inherits O's rounding and loses accuracy in the
 * cancellation dP - delta), dS = P (dP - delta) scale; then dQ = dS K, dV += Pᵀ dO and dK += dSᵀ Q, with
 * dK/dV of the head accumulated in per-thread scratch over query blocks in order. With grouped-query
 * attention the per-head dK/dV are summed over the group's heads in head order afterwards: no two tasks write
 * the same memory and every sum has a fixed order, so the result is deterministic.
 *
 * <p>Cached forward (generation, {@link #cached}): t new queries over a key/value cache, one task per (batch, head),
 * scores, one softmax and the value sum per query row; with t = 1 this is a matrix-vector product, for which the
 * packed GEMMs above would cost more than they save.
 *
 * <p>Layouts: q, out, dq [B,T,H,hd]; k, v, dk, dv [B,T,Hkv,hd]; lse [B,H,T]; caches [B,C,Hkv,hd].
 */
final class CpuAttention {
    /** Queries per block: a multiple of both GEMM tile heights, small enough that the causal diagonal wastes little. */
    static final int QB = 48;
    /**
     * Keys whose scores are held at once (a multiple of every nr); beyond it the forward pass runs the online
     * softmax across chunks, so memory stays QB x KV_CHUNK whatever the sequence length.
     */
    static final int KV_CHUNK = 1024;

    private final CpuKernels kern;
    private final CpuThreads threads;
    private final Sgemm gemm;
    private final ThreadLocal<Scratch> scratch = new ThreadLocal<>();

    CpuAttention(CpuKernels kern, CpuThreads threads, Sgemm gemm) {
        this.kern = kern;
        this.threads = threads;
        this.gemm = gemm;
    }

    /** Per-thread buffers of the forward pass, grown on demand. */
    private static final class Scratch {
        float[] s = new float[0];
        float[] m = new float[QB];
        float[] l = new float[QB];
        float[] acc = new float[0];
        float[] packKt = new float[0];
        float[] packV = new float[0];
    }

    /** Per-thread buffers of the backward pass: a QB x T block of P and dS, dK/dV of one head, packed operands. */
    private static final class Back {
        float[] p = new float[0], ds = new float[0], dkAcc = new float[0], dvAcc = new float[0];
        float[] packKt = new float[0], packVt = new float[0], packK = new float[0], packRows = new float[0];
    }

    private final ThreadLocal<Back> backScratch = new ThreadLocal<>();

    private Back backScratch(int hd, int t) {
        Back s = backScratch.get();
        if (s == null) {
            s = new Back();
            backScratch.set(s);
        }
        if (s.p.length < QB * t) {
            s.p = new float[QB * t];
            s.ds = new float[QB * t];
        }
        if (s.dkAcc.length < t * hd) {
            s.dkAcc = new float[t * hd];
            s.dvAcc = new float[t * hd];
        }
        int kt = gemm.packedBSize(hd, t), kRows = gemm.packedBSize(t, hd), rows = gemm.packedBSize(QB, hd);
        if (s.packKt.length < kt) {
            s.packKt = new float[kt];
            s.packVt = new float[kt];
        }
        if (s.packK.length < kRows) s.packK = new float[kRows];
        if (s.packRows.length < rows) s.packRows = new float[rows];
        return s;
    }

    private Scratch scratch(int hd, int t) {
        Scratch s = scratch.get();
        if (s == null) {
            s = new Scratch();
            scratch.set(s);
        }
        int chunk = Math.min(t, KV_CHUNK);
        if (s.s.length < QB * chunk) s.s = new float[QB * chunk];
        if (s.acc.length < QB * hd) s.acc = new float[QB * hd];
        int kt = gemm.packedBSize(hd, t), vRows = gemm.packedBSize(chunk, hd); // all of V when packed once
        if (s.packKt.length < kt) s.packKt = new float[kt];
        if (s.packV.length < vRows) s.packV = new float[vRows];
        return s;
    }

    void forward(
            int b,
            int t,
            int h,
            int hkv,
            int hd,
            float[] q,
            int qOff,
            float[] k,
            int kOff,
            float[] v,
            int vOff,
            float[] out,
            int outOff,
            float[] lse,
            int lseOff) {
        int group = h / hkv;
        float scale = (float) (1.0 / Math.sqrt(hd));
        int qRow = h * hd;
        int kRow = hkv * hd;
        threads.parallelFor(b * h, task -> {
            int bi = task / h;
            int hi = task % h;
            int hk = hi / group;
            Scratch sc = scratch(hd, t);
            float[] m = sc.m, l = sc.l, acc = sc.acc, s = sc.s;
            int qHead = qOff + (bi * t * h + hi) * hd;
            int kBase = kOff + (bi * t * hkv + hk) * hd;
            int vBase = vOff + (bi * t * hkv + hk) * hd;
            int ldS = Math.min(t, KV_CHUNK);
            gemm.packB(true, hd, t, k, kBase, kRow, sc.packKt); // Kᵀ [hd, T], once per head
            boolean vOnce = Sgemm.prefixesOfPackedB(t); // V [T, hd] once; blocks use its first rows
            if (vOnce) gemm.packB(false, t, hd, v, vBase, kRow, sc.packV);
            for (int t0 = 0; t0 < t; t0 += QB) {
                int rows = Math.min(QB, t - t0);
                int keys = t0 + rows; // causal: keys [0, keys)
                Arrays.fill(m, 0, rows, Float.NEGATIVE_INFINITY);
                Arrays.fill(l, 0, rows, 0f);
                Arrays.fill(acc, 0, rows * hd, 0f);
                for (int c0 = 0; c0 < keys; c0 += KV_CHUNK) {
                    int cLen = Math.min(KV_CHUNK, keys - c0);
                    // S[rows, cLen] = Q Kᵀ[:, c0 ..] (columns of the packed Kᵀ; KV_CHUNK is a multiple of nr), scaled
                    // below
                    gemm.gemmPacked(
                            false, rows, cLen, hd, 1f, q, qHead + t0 * qRow, qRow, sc.packKt, hd, t, c0, 0f, s, 0, ldS);
                    for (int r = 0; r < rows; r++) {
                        int valid = Math.min(cLen, t0 + r + 1 - c0);
                        int so = r * ldS;
                        if (valid <= 0) {
                            Arrays.fill(s, so, so + cLen, 0f);
                            continue;
                        }
                        kern.scale(s, so, valid, scale);
                        float mNew = Math.max(m[r], kern.max(s, so, valid));
                        boolean first = m[r] == Float.NEGATIVE_INFINITY; // l and acc are still 0
                        float corr = first ? 0f : CpuMath.exp(m[r] - mNew);
                        float sum = kern.expShifted(s, so, s, so, valid, mNew);
                        if (valid < cLen) Arrays.fill(s, so + valid, so + cLen, 0f);
                        l[r] = l[r] * corr + sum;
                        if (!first && corr != 1f) kern.scale(acc, r * hd, hd, corr);
                        m[r] = mNew;
                    }
                    // acc += P V[c0 .. c0+cLen]
                    if (!vOnce) gemm.packB(false, cLen, hd, v, vBase + c0 * kRow, kRow, sc.packV);
                    gemm.gemmPacked(
                            false, rows, hd, cLen, 1f, s, 0, ldS, sc.packV, vOnce ? t : cLen, hd, 0, 1f, acc, 0, hd);
                }
                for (int r = 0; r < rows; r++) {
                    kern.copyScaled(
                            acc,
                            r * hd,
                            hd,
                            out,
                            outOff + (bi * t * h + hi) * hd + (t0 + r) * qRow,
                            qRow,
                            1,
                            hd,
                            1f / l[r]);
                    lse[lseOff + (bi * h + hi) * t + t0 + r] = m[r] + (float) StrictMath.log(l[r]);
                }
            }
        });
    }

    /** Per-thread buffers of {@link #cached}: the scores of one query row and its output accumulator. */
    private final ThreadLocal<float[][]> cachedScratch = ThreadLocal.withInitial(() -> new float[2][0]);

    /**
     * Queries of positions [length - t, length) over a key/value cache of capacity {@code cap} (rows [0, length)
     * used): one task per (batch, head); per query row the scores against every key it sees, one softmax with a
     * single exponential per score, and the weighted sum of the value rows in key order. q, out [B,t,H,hd];
     * kc, vc [B,cap,Hkv,hd].
     */
    void cached(
            int b,
            int t,
            int h,
            int hkv,
            int hd,
            int cap,
            int length,
            float[] q,
            int qOff,
            float[] kc,
            int kOff,
            float[] vc,
            int vOff,
            float[] out,
            int outOff) {
        int group = h / hkv;
        float scale = (float) (1.0 / Math.sqrt(hd));
        int qRow = h * hd, kRow = hkv * hd;
        threads.parallelFor(b * h, task -> {
            int bi = task / h, hi = task % h, hk = hi / group;
            float[][] sc = cachedScratch.get();
            if (sc[0].length < length) sc[0] = new float[length];
            if (sc[1].length < hd) sc[1] = new float[hd];
            float[] s = sc[0], acc = sc[1];
            int kBase = kOff + (bi * cap * hkv + hk) * hd, vBase = vOff + (bi * cap * hkv + hk) * hd;
            for (int i = 0; i < t; i++) {
                int keys = length - t + i + 1; // causal: keys [0, keys)
                int qo = qOff + (bi * t + i) * qRow + hi * hd;
                for (int j = 0; j < keys; j++) s[j] = scale * kern.dot(q, qo, kc, kBase + j * kRow, hd);
                float sum = kern.expShifted(s, 0, s, 0, keys, kern.max(s, 0, keys));
                Arrays.fill(acc, 0, hd, 0f);
                for (int j = 0; j < keys; j++) kern.axpy(s[j], vc, vBase + j * kRow, acc, 0, hd);
                kern.copyScaled(acc, 0, hd, out, outOff + (bi * t + i) * qRow + hi * hd, hd, 1, hd, 1f / sum);
            }
        });
    }

    void backward(
            int b,
            int t,
            int h,
            int hkv,
            int hd,
            float[] dOut,
            int dOutOff,
            float[] q,
            int qOff,
            float[] k,
            int kOff,
            float[] v,
            int vOff,
            float[] out,
            int outOff,
            float[] lse,
            int lseOff,
            float[] dq,
            int dqOff,
            float[] dk,
            int dkOff,
            float[] dv,
            int dvOff) {
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
            Back sc = backScratch(hd, t);
            float[] p = sc.p, ds = sc.ds, dkAcc = sc.dkAcc, dvAcc = sc.dvAcc;
            int headQ = (bi * t * h + hi) * hd;
            int qBase = qOff + headQ, dOBase = dOutOff + headQ, dqBase = dqOff + headQ;
            int kBase = kOff + (bi * t * hkv + hk) * hd;
            int vBase = vOff + (bi * t * hkv + hk) * hd;
            int lseBase = lseOff + (bi * h + hi) * t;
            Arrays.fill(dkAcc, 0, t * hd, 0f);
            Arrays.fill(dvAcc, 0, t * hd, 0f);
            gemm.packB(true, hd, t, k, kBase, kRow, sc.packKt); // Kᵀ [hd, T] for S
            gemm.packB(true, hd, t, v, vBase, kRow, sc.packVt); // Vᵀ [hd, T] for dP
            boolean kOnce = Sgemm.prefixesOfPackedB(t); // K [T, hd] for dQ once; blocks use its first rows
            if (kOnce) gemm.packB(false, t, hd, k, kBase, kRow, sc.packK);
            for (int q0 = 0; q0 < t; q0 += QB) {
                int n = Math.min(QB, t - q0);
                int keys = q0 + n; // causal: this block sees keys [0, keys)
                gemm.gemmPacked(false, n, keys, hd, 1f, q, qBase + q0 * qRow, qRow, sc.packKt, hd, t, 0, 0f, p, 0, t);
                gemm.gemmPacked(
                        false, n, keys, hd, 1f, dOut, dOBase + q0 * qRow, qRow, sc.packVt, hd, t, 0, 0f, ds, 0, t);
                for (int r = 0; r < n; r++) {
                    int ti = q0 + r;
                    int valid = ti + 1;
                    int o = r * t;
                    kern.scale(p, o, valid, scale); // S, rounded as in the forward pass
                    kern.expShiftedScaled(p, o, p, o, valid, lse[lseBase + ti], 1f); // P = exp(S - lse)
                    // delta = sum_j P dP over the same P and dP, so the cancellation in dP - delta is exact-ish.
                    float dlt = (float) kern.dotF64(p, o, ds, o, valid);
                    kern.softmaxBackwardRow(p, o, ds, o, valid, dlt, scale);
                    if (valid < keys) {
                        Arrays.fill(p, o + valid, o + keys, 0f);
                        Arrays.fill(ds, o + valid, o + keys, 0f);
                    }
                }
                // dQ = dS K ; dV += Pᵀ dO ; dK += dSᵀ Q   (ds holds dS, already scaled)
                if (!kOnce) gemm.packB(false, keys, hd, k, kBase, kRow, sc.packK);
                gemm.gemmPacked(
                        false,
                        n,
                        hd,
                        keys,
                        1f,
                        ds,
                        0,
                        t,
                        sc.packK,
                        kOnce ? t : keys,
                        hd,
                        0,
                        0f,
                        dq,
                        dqBase + q0 * qRow,
                        qRow);
                gemm.packB(false, n, hd, dOut, dOBase + q0 * qRow, qRow, sc.packRows);
                gemm.gemmPacked(true, keys, hd, n, 1f, p, 0, t, sc.packRows, n, hd, 0, 1f, dvAcc, 0, hd);
                gemm.packB(false, n, hd, q, qBase + q0 * qRow, qRow, sc.packRows);
                gemm.gemmPacked(true, keys, hd, n, 1f, ds, 0, t, sc.packRows, n, hd, 0, 1f, dkAcc, 0, hd);
            }
            if (group == 1) {
                int dkBase = dkOff + (bi * t * hkv + hk) * hd, dvBase = dvOff + (bi * t * hkv + hk) * hd;
                for (int j = 0; j < t; j++) {
                    System.arraycopy(dkAcc, j * hd, dk, dkBase + j * kRow, hd);
                    System.arraycopy(dvAcc, j * hd, dv, dvBase + j * kRow, hd);
                }
            } else {
                System.arraycopy(dkAcc, 0, dkPart, (bi * h + hi) * t * hd, t * hd);
                System.arraycopy(dvAcc, 0, dvPart, (bi * h + hi) * t * hd, t * hd);
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
