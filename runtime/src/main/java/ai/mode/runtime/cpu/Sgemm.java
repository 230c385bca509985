package ai.mode.runtime.cpu;

/**
 * Cache-blocked, packed SGEMM: {@code C[M,N] = alpha * op(A) op(B) + beta * C}, row-major, any transposes.
 *
 * <p>Blocking (Goto/BLIS style): K is cut into blocks of at most {@link #KC} (the block size depends only on K);
 * for each K block, op(B) is packed into nr-wide column panels ({@code kc x nr}, one panel fits L1) for a
 * chunk of at most {@link #N_CHUNK} columns; the M x N plane is then tiled into tasks of {@link #mc} rows x
 * {@link #NC} columns. Each task packs its rows of op(A) into mr-high row panels (about {@code mc x kc},
 * in L2) and sweeps the register tile over them: B panel outer, A panel inner.
 *
 * <p>Determinism: every element of C is produced by the same sequence of operations (K blocks in order, the
 * register tile's k loop in order) whichever thread computes its tile and however many threads exist.
 */
final class Sgemm {
    /** Largest K block. */
    static final int KC = 256;
    /** Columns per task (a multiple of every kernel's nr). */
    static final int NC = 256;
    /** Columns packed per B chunk. */
    static final int N_CHUNK = 4096;
    /** Below this many multiply-adds a GEMM runs on the calling thread only. */
    private static final long SERIAL_WORK = 32L * 1024;

    private final CpuKernels kernels;
    private final CpuThreads threads;
    private final int mr;
    private final int nr;
    private final int mc;
    private final ThreadLocal<float[]> packedA = new ThreadLocal<>();
    private final ThreadLocal<float[]> packedB = new ThreadLocal<>();
    private final ThreadLocal<float[]> edgeTile = new ThreadLocal<>();

    Sgemm(CpuKernels kernels, CpuThreads threads) {
        this.kernels = kernels;
        this.threads = threads;
        this.mr = kernels.mr();
        this.nr = kernels.nr();
        this.mc = mr * Math.max(1, 96 / mr);
        if (NC % nr != 0) throw new IllegalStateException("GEMM task width " + NC + " is not a multiple of nr " + nr);
    }

    /**
     * One GEMM. a: op(A) is M x K (stored [M,K] or, if transA, [K,M]) at aOff; b: op(B) is K x N (stored
     * [K,N] or, if transB, [N,K]) at bOff; c: [M,N] at cOff.
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
              float[] a, int aOff, float[] b, int bOff, float beta, float[] c, int cOff) {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) {
            scaleC(m, n, beta, c, cOff);
            return;
        }
        int kBlocks = (k + KC - 1) / KC;
        int kcStep = (k + kBlocks - 1) / kBlocks;
        boolean serial = (long) m * n * k < SERIAL_WORK;
        for (int n0 = 0; n0 < n; n0 += N_CHUNK) {
            int nLen = Math.min(N_CHUNK, n - n0);
            int panels = (nLen + nr - 1) / nr;
            for (int p0 = 0; p0 < k; p0 += kcStep) {
                int kc = Math.min(kcStep, k - p0);
                float blockBeta = p0 == 0 ? beta : 1f;
                float[] bp = buffer(packedB, kc * panels * nr);
                int fp0 = p0, fn0 = n0, fkc = kc;
                int panelsPerTask = NC / nr;
                int packTasks = (panels + panelsPerTask - 1) / panelsPerTask;
                CpuThreads.Task pack = t -> {
                    int from = t * panelsPerTask;
                    int to = Math.min(panels, from + panelsPerTask);
                    for (int jp = from; jp < to; jp++) {
                        packB(transB, k, n, b, bOff, fp0, fkc, fn0 + jp * nr, bp, jp * fkc * nr);
                    }
                };
                int mTiles = (m + mc - 1) / mc;
                int nTiles = (nLen + NC - 1) / NC;
                CpuThreads.Task compute = t -> {
                    int mt = t / nTiles;
                    int nt = t % nTiles;
                    computeTile(transA, m, n, k, alpha, a, aOff, bp, blockBeta, c, cOff,
                            fp0, fkc, mt * mc, Math.min(mc, m - mt * mc), fn0, nt * NC, Math.min(NC, nLen - nt * NC));
                };
                if (serial) {
                    for (int t = 0; t < packTasks; t++) pack.run(t);
                    for (int t = 0; t < mTiles * nTiles; t++) compute.run(t);
                } else {
                    threads.parallelFor(packTasks, pack);
                    threads.parallelFor(mTiles * nTiles, compute);
                }
            }
        }
    }

    /** C = beta * C over the whole M x N (beta == 0 writes zeros without reading). */
    private static void scaleC(int m, int n, float beta, float[] c, int cOff) {
        int total = m * n;
        if (beta == 0f) {
            java.util.Arrays.fill(c, cOff, cOff + total, 0f);
        } else if (beta != 1f) {
            for (int i = 0; i < total; i++) c[cOff + i] *= beta;
        }
    }

    private static float[] buffer(ThreadLocal<float[]> holder, int size) {
        float[] buf = holder.get();
        if (buf == null || buf.length < size) {
            buf = new float[size];
            holder.set(buf);
        }
        return buf;
    }

    /** Packs op(B)[p0 .. p0+kc, j0 .. j0+nr) as kc rows of nr values, zero-padding columns past N. */
    private void packB(boolean transB, int k, int n, float[] b, int bOff, int p0, int kc, int j0, float[] bp, int o) {
        int cols = Math.min(nr, n - j0);
        if (!transB) {
            // B stored [K,N]: row p holds op(B)[p, :] contiguously.
            for (int p = 0; p < kc; p++) {
                int src = bOff + (p0 + p) * n + j0;
                int dst = o + p * nr;
                System.arraycopy(b, src, bp, dst, cols);
                for (int j = cols; j < nr; j++) bp[dst + j] = 0f;
            }
        } else {
            // B stored [N,K]: op(B)[p, j] = b[j*K + p]; walk each column's contiguous run.
            for (int j = 0; j < cols; j++) {
                int src = bOff + (j0 + j) * k + p0;
                for (int p = 0; p < kc; p++) bp[o + p * nr + j] = b[src + p];
            }
            for (int j = cols; j < nr; j++) {
                for (int p = 0; p < kc; p++) bp[o + p * nr + j] = 0f;
            }
        }
    }

    /** Packs op(A)[i0 .. i0+rows, p0 .. p0+kc) into mr-high panels, zero-padding rows past the block. */
    private void packA(boolean transA, int m, int k, float[] a, int aOff, int i0, int rows, int p0, int kc, float[] ap) {
        int panels = (rows + mr - 1) / mr;
        for (int ip = 0; ip < panels; ip++) {
            int o = ip * kc * mr;
            int r0 = ip * mr;
            int live = Math.min(mr, rows - r0);
            if (!transA) {
                // A stored [M,K]: row i contiguous in p.
                for (int r = 0; r < live; r++) {
                    int src = aOff + (i0 + r0 + r) * k + p0;
                    for (int p = 0; p < kc; p++) ap[o + p * mr + r] = a[src + p];
                }
            } else {
                // A stored [K,M]: op(A)[i, p] = a[p*M + i]; mr consecutive i are contiguous.
                for (int p = 0; p < kc; p++) {
                    int src = aOff + (p0 + p) * m + i0 + r0;
                    System.arraycopy(a, src, ap, o + p * mr, live);
                }
            }
            for (int r = live; r < mr; r++) {
                for (int p = 0; p < kc; p++) ap[o + p * mr + r] = 0f;
            }
        }
    }

    private void computeTile(boolean transA, int m, int n, int k, float alpha, float[] a, int aOff,
                             float[] bp, float beta, float[] c, int cOff,
                             int p0, int kc, int i0, int rows, int chunkN0, int j0, int cols) {
        float[] ap = buffer(packedA, ((rows + mr - 1) / mr) * mr * kc);
        packA(transA, m, k, a, aOff, i0, rows, p0, kc, ap);
        float[] edge = null;
        for (int jj = 0; jj < cols; jj += nr) {
            int liveCols = Math.min(nr, cols - jj);
            int bpo = ((j0 + jj) / nr) * kc * nr;
            for (int ii = 0; ii < rows; ii += mr) {
                int liveRows = Math.min(mr, rows - ii);
                int apo = (ii / mr) * kc * mr;
                int co = cOff + (i0 + ii) * n + chunkN0 + j0 + jj;
                if (liveRows == mr && liveCols == nr) {
                    kernels.gemmTile(kc, ap, apo, bp, bpo, alpha, beta, c, co, n);
                } else {
                    if (edge == null) edge = buffer(edgeTile, mr * nr);
                    kernels.gemmTile(kc, ap, apo, bp, bpo, alpha, 0f, edge, 0, nr);
                    for (int r = 0; r < liveRows; r++) {
                        int row = co + r * n;
                        for (int j = 0; j < liveCols; j++) {
                            float v = edge[r * nr + j];
                            c[row + j] = beta == 0f ? v : v + beta * c[row + j];
                        }
                    }
                }
            }
        }
    }
}
