package ai.mode.runtime.cpu;

import ai.mode.bindings.Mkl;

/**
 * The cpu backend's vendor SGEMM: Intel oneMKL's {@code cblas_sgemm}, the GEMM PyTorch runs on x86 CPUs. At the
 * model's shapes our Vector API kernel ({@link Sgemm}) measured 0.6-0.8x of its speed (docs/benchmarks.md), so
 * where oneMKL is present it runs the backend's {@code gemm} op. Same contract as {@link Sgemm#gemm}.
 *
 * <p>oneMKL runs sequentially (one thread per call, set thread-locally around each call and restored) on our own
 * threads, so the backend's pool stays the only one (no OpenMP threads spinning beside it) and the process-wide
 * oneMKL thread count, which other code in the JVM may use, is left alone. C is cut along its longer side into
 * pieces that depend only on the shape ({@link #pieces}); each piece is one {@code cblas_sgemm} on sub-matrices,
 * so every element is computed by the same call whatever the thread count, and results are bitwise identical
 * for any number of threads. oneMKL runs in its conditional numerical reproducibility mode ({@link Mkl}), without
 * which the same call on the same inputs gave different bits once the garbage collector had moved the arrays.
 */
final class MklSgemm {
    /**
     * Rows (or columns) of C per piece, at least: every piece repacks the whole other operand, so thinner pieces
     * lose more than they balance (1024^3: 190 GFLOP/s in 4 pieces, 120 in 8).
     */
    static final int PIECE_SIDE = 256;
    /** Most pieces per GEMM: more only repack the other operand. */
    static final int MAX_PIECES = 8;
    /** Below this many multiply-adds a GEMM is one piece (thread hand-off would cost more than it saves). */
    private static final long SERIAL_WORK = 128L * 1024;
    /**
     * Most multiply-adds per piece (about 20 ms on one core): a critical downcall holds off garbage collection
     * while it runs, so very large GEMMs get more pieces than {@link #MAX_PIECES}.
     */
    static final long PIECE_WORK = 1L << 30;

    private final Mkl mkl;
    private final CpuThreads threads;

    MklSgemm(Mkl mkl, CpuThreads threads) {
        this.mkl = mkl;
        this.threads = threads;
    }

    /** E.g. {@code mkl (Intel(R) oneAPI Math Kernel Library Version 2025.3 ..., cnr AUTO)}. */
    String describe() {
        return "mkl (" + mkl.version() + ", " + mkl.reproducibility() + ")";
    }

    /**
     * Pieces of a GEMM: one per {@link #PIECE_SIDE} of the longer side of C, 2 to {@link #MAX_PIECES} (one below
     * {@link #SERIAL_WORK}), or more when a piece would exceed {@link #PIECE_WORK}; never more than that side.
     */
    static int pieces(int m, int n, int k) {
        long work = (long) m * n * k;
        int side = Math.max(m, n);
        if (work < SERIAL_WORK || side < 2) return 1;
        long byShape = Math.clamp(side / PIECE_SIDE, 2, MAX_PIECES);
        return (int) Math.min(side, Math.max(byShape, (work + PIECE_WORK - 1) / PIECE_WORK));
    }

    /** A batch of GEMMs, as {@link Sgemm}'s batched form: item i at {@code off + i*stride} (bStride 0: shared B). */
    void gemm(
            boolean transA,
            boolean transB,
            int batch,
            int m,
            int n,
            int k,
            float alpha,
            float[] a,
            int aOff,
            int aStride,
            float[] b,
            int bOff,
            int bStride,
            float beta,
            float[] c,
            int cOff,
            int cStride) {
        if (batch == 0 || m == 0 || n == 0) return;
        int lda = transA ? m : k, ldb = transB ? k : n;
        int pieces = pieces(m, n, k);
        boolean splitRows = m >= n;
        int side = splitRows ? m : n;
        threads.parallelFor(batch * pieces, t -> {
            int item = t / pieces, q = t % pieces;
            int s = (int) ((long) side * q / pieces), e = (int) ((long) side * (q + 1) / pieces);
            int ai = aOff + item * aStride, bi = bOff + item * bStride, ci = cOff + item * cStride;
            // sequential on this thread for this call only: the process-wide oneMKL setting stays the user's
            int before = mkl.setNumThreadsLocal(1);
            try {
                if (splitRows) {
                    // C rows [s, e) = op(A) rows [s, e) times all of op(B)
                    mkl.sgemm(
                            transA,
                            transB,
                            e - s,
                            n,
                            k,
                            alpha,
                            a,
                            ai + (transA ? s : s * lda),
                            lda,
                            b,
                            bi,
                            ldb,
                            beta,
                            c,
                            ci + s * n,
                            n);
                } else {
                    // C columns [s, e) = all of op(A) times op(B) columns [s, e)
                    mkl.sgemm(
                            transA,
                            transB,
                            m,
                            e - s,
                            k,
                            alpha,
                            a,
                            ai,
                            lda,
                            b,
                            bi + (transB ? s * ldb : s),
                            ldb,
                            beta,
                            c,
                            ci + s,
                            n);
                }
            } finally {
                mkl.setNumThreadsLocal(before);
            }
        });
    }
}
