package ai.mode.runtime.cpu;

import java.util.Arrays;

/**
 * Cache-blocked SGEMM: {@code C[M,N] = alpha * op(A) op(B) + beta * C}, row-major, any transposes.
 *
 * <p>Blocking (Goto/BLIS style): K is cut into blocks of at most {@link #KC} (the split depends only on K).
 * For each K block, op(B) is packed into nr-wide column panels ({@code kc x nr}, 32 KB with AVX-512, so one
 * panel stays in L1) for a chunk of at most {@link #N_CHUNK} columns, shared by all threads. The M rows are
 * cut into tasks of {@link #mc} rows (times a group of B panels when there are few row blocks); a task sweeps
 * the register tile B panel outer, A panel inner, so its A block (about {@code mc x kc}) stays in L2.
 * Each task packs its rows of op(A) (either layout) into mr-high panels, with alpha folded in, so the register
 * tile always reads both operands contiguously. beta is applied once up front (beta not 0 or 1: a scaling
 * pass over C); every K block then either writes its tile (first block, beta 0) or accumulates into C.
 *
 * <p>Determinism: each element of C is computed by the same operations in the same order (K blocks in order,
 * the tile's k loop in order) whichever thread runs its task and however many threads exist; only the
 * grouping of tasks depends on the thread count.
 */
final class Sgemm {
    /** Largest K block (also the row stride of row-by-row A panels). */
    static final int KC = CpuKernels.KC;
    /** Columns of B packed per chunk. */
    static final int N_CHUNK = 4096;
    /** Row tasks (of mc rows) whose A is packed per chunk. */
    static final int M_CHUNK_TILES = 32;
    /** K blocks packed and multiplied per pass (one packing region and one compute region). */
    static final int K_PASS_BLOCKS = 4;
    /** Most B panels (of one K block) one compute task sweeps: 512 KB at the largest K block and nr 32. */
    private static final int GROUP_PANELS = 16;
    /** Register-tile panels one packing task writes. */
    private static final int PACK_PANELS = 8;
    /** Below this many multiply-adds a GEMM runs on the calling thread only. */
    private static final long SERIAL_WORK = 128L * 1024;

    private final CpuKernels kernels;
    private final CpuThreads threads;
    private final int mr;
    private final int nr;
    /** Rows per task (a multiple of mr). */
    private final int mc;
    private final ThreadLocal<float[]> packedA = new ThreadLocal<>();
    private final ThreadLocal<float[]> packedB = new ThreadLocal<>();
    private final ThreadLocal<float[]> edgeC = new ThreadLocal<>();

    Sgemm(CpuKernels kernels, CpuThreads threads) {
        this.kernels = kernels;
        this.threads = threads;
        this.mr = kernels.mr();
        this.nr = kernels.nr();
        this.mc = mr * Math.max(1, 96 / mr);
    }

    /**
     * One GEMM on contiguous matrices. a: op(A) is M x K (stored [M,K] or, if transA, [K,M]) at aOff; b: op(B)
     * is K x N (stored [K,N] or, if transB, [N,K]) at bOff; c: [M,N] at cOff. Multithreaded when large.
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
              float[] a, int aOff, float[] b, int bOff, float beta, float[] c, int cOff) {
        boolean serial = (long) m * n * k < SERIAL_WORK || threads.threads() == 1;
        gemm(transA, transB, m, n, k, alpha, a, aOff, transA ? m : k, b, bOff, transB ? k : n, beta, c, cOff, n, serial);
    }

    /**
     * One GEMM with row strides: element (i, p) of op(A) is {@code a[aOff + i*lda + p]} ({@code a[aOff + p*lda + i]}
     * if transA), (p, j) of op(B) is {@code b[bOff + p*ldb + j]} ({@code b[bOff + j*ldb + p]} if transB) and (i, j)
     * of C is {@code c[cOff + i*ldc + j]}. {@code serial} keeps it on the calling thread (for use inside a task).
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOff, int lda,
              float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc, boolean serial) {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) {
            scaleC(m, n, beta, c, cOff, ldc);
            return;
        }
        if (beta != 0f && beta != 1f) scaleC(m, n, beta, c, cOff, ldc);
        boolean overwrite = beta == 0f;
        int kcStep = kcStep(k);
        int kBlocks = (k + kcStep - 1) / kcStep;
        int mChunk = M_CHUNK_TILES * mc;
        for (int n0 = 0; n0 < n; n0 += N_CHUNK) {
            int nLen = Math.min(N_CHUNK, n - n0);
            int panels = (nLen + nr - 1) / nr;
            int bTasksPerBlock = (panels + PACK_PANELS - 1) / PACK_PANELS;
            int bBlockSize = kcStep * panels * nr;
            for (int kb0 = 0; kb0 < kBlocks; kb0 += K_PASS_BLOCKS) {
                int passBlocks = Math.min(K_PASS_BLOCKS, kBlocks - kb0);
                float[] bp = buffer(packedB, passBlocks * bBlockSize);
                for (int m0 = 0; m0 < m; m0 += mChunk) {
                    int mLen = Math.min(mChunk, m - m0);
                    int rowPanels = (mLen + mr - 1) / mr;
                    int aTasksPerBlock = (rowPanels + PACK_PANELS - 1) / PACK_PANELS;
                    int aBlockSize = rowPanels * mr * KC;
                    int mTiles = (mLen + mc - 1) / mc;
                    // Enough tasks to balance the threads, and groups of B panels small enough to stay in L2 while
                    // a task sweeps its rows over them; the grouping never changes the arithmetic.
                    int minGroups = serial ? 1 : Math.max(1, (4 * threads.threads() + mTiles - 1) / mTiles);
                    int panelsPerGroup = Math.min(GROUP_PANELS, (panels + minGroups - 1) / minGroups);
                    int groups = (panels + panelsPerGroup - 1) / panelsPerGroup;
                    float[] ap = buffer(packedA, passBlocks * aBlockSize);
                    int fn0 = n0, fm0 = m0, fkb0 = kb0;
                    // B is packed with the first M chunk; every chunk packs its rows of A. Task t covers K block
                    // t % passBlocks, so every block's packing is spread over the threads.
                    int bTasks = m0 == 0 ? passBlocks * bTasksPerBlock : 0;
                    CpuThreads.Task pack = t -> {
                        boolean isB = t < bTasks;
                        int u = isB ? t : t - bTasks;
                        int kb = u % passBlocks, part = u / passBlocks;
                        int p0 = (fkb0 + kb) * kcStep, kc = Math.min(kcStep, k - p0);
                        if (isB) {
                            packB(transB, n, b, bOff, ldb, p0, kc, fn0, part * PACK_PANELS,
                                    Math.min(panels, (part + 1) * PACK_PANELS), bp, kb * bBlockSize);
                        } else {
                            packA(transA, a, aOff, lda, alpha, fm0, mLen, p0, kc, part * PACK_PANELS,
                                    Math.min(rowPanels, (part + 1) * PACK_PANELS), ap, kb * aBlockSize);
                        }
                    };
                    CpuThreads.Task compute = t -> {
                        // Consecutive tasks share a group of B panels, which then stays in cache; the task's block
                        // of C stays in cache across the pass's K blocks, which run in order.
                        int g = t / mTiles;
                        int mt = t % mTiles;
                        int jp0 = g * panelsPerGroup;
                        for (int kb = 0; kb < passBlocks; kb++) {
                            int p0 = (fkb0 + kb) * kcStep;
                            computeTask(!transA, ap, kb * aBlockSize, mt * mc, Math.min(kcStep, k - p0), bp,
                                    kb * bBlockSize, p0 > 0 || !overwrite, c, cOff + fm0 * ldc, ldc,
                                    Math.min(mc, mLen - mt * mc), fn0, nLen, jp0, Math.min(panels, jp0 + panelsPerGroup));
                        }
                    };
                    run(serial, bTasks + passBlocks * aTasksPerBlock, pack);
                    run(serial, mTiles * groups, compute);
                }
            }
        }
    }

    private void run(boolean serial, int count, CpuThreads.Task task) {
        if (serial) {
            for (int t = 0; t < count; t++) task.run(t);
        } else {
            threads.parallelFor(count, task);
        }
    }

    // ------------------------------------------------------------------ pre-packed B (serial, for use inside tasks)

    /** Floats that {@link #packB(boolean, int, int, float[], int, int, float[])} writes for a K x N op(B). */
    int packedBSize(int k, int n) {
        return k * ((n + nr - 1) / nr) * nr;
    }

    /**
     * Packs all of op(B) (K x N; (p, j) at {@code b[bOff + p*ldb + j]}, or {@code b[bOff + j*ldb + p]} if transB)
     * into dst for {@link #gemmPacked}: K blocks one after another, each as nr-wide panels.
     */
    void packB(boolean transB, int k, int n, float[] b, int bOff, int ldb, float[] dst) {
        int panels = (n + nr - 1) / nr;
        int kcStep = kcStep(k);
        for (int p0 = 0; p0 < k; p0 += kcStep) {
            packB(transB, n, b, bOff, ldb, p0, Math.min(kcStep, k - p0), 0, 0, panels, dst, p0 * panels * nr);
        }
    }

    /** {@code C = alpha * op(A) Bp + beta * C} on the calling thread, with Bp from {@link #packB}. */
    void gemmPacked(boolean transA, int m, int n, int k, float alpha, float[] a, int aOff, int lda, float[] bp,
                    float beta, float[] c, int cOff, int ldc) {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) {
            scaleC(m, n, beta, c, cOff, ldc);
            return;
        }
        if (beta != 0f && beta != 1f) scaleC(m, n, beta, c, cOff, ldc);
        int panels = (n + nr - 1) / nr;
        int kcStep = kcStep(k);
        for (int p0 = 0; p0 < k; p0 += kcStep) {
            int kc = Math.min(kcStep, k - p0);
            boolean load = p0 > 0 || beta != 0f;
            for (int i0 = 0; i0 < m; i0 += mc) {
                int rows = Math.min(mc, m - i0);
                int rowPanels = (rows + mr - 1) / mr;
                float[] ap = buffer(packedA, rowPanels * mr * KC);
                packA(transA, a, aOff, lda, alpha, i0, rows, p0, kc, 0, rowPanels, ap, 0);
                computeTask(!transA, ap, 0, 0, kc, bp, p0 * panels * nr, load, c, cOff + i0 * ldc, ldc, rows, 0, n, 0, panels);
            }
        }
    }

    /** The K block size for a given K: blocks of at most KC, as equal as possible. */
    private static int kcStep(int k) {
        int kBlocks = (k + KC - 1) / KC;
        return (k + kBlocks - 1) / kBlocks;
    }

    /** C = beta * C over the whole M x N (beta == 0 writes zeros without reading). */
    private static void scaleC(int m, int n, float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            int row = cOff + i * ldc;
            if (beta == 0f) {
                Arrays.fill(c, row, row + n, 0f);
            } else if (beta != 1f) {
                for (int j = 0; j < n; j++) c[row + j] *= beta;
            }
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

    /**
     * Packs the nr-wide panels jp0 .. jp1 of op(B)[p0 .. p0+kc, n0 + ...] (panel jp at bp[base + jp*kc*nr], kc rows of
     * nr values), zero-padding columns past N.
     */
    private void packB(boolean transB, int n, float[] b, int bOff, int ldb, int p0, int kc, int n0, int jp0, int jp1,
                       float[] bp, int base) {
        if (!transB) {
            // B stored [K,N]: each panel is a kc x cols block of B's rows.
            for (int jp = jp0; jp < jp1; jp++) {
                int o = base + jp * kc * nr;
                int j0 = n0 + jp * nr;
                int cols = Math.min(nr, n - j0);
                kernels.copyScaled(b, bOff + p0 * ldb + j0, ldb, bp, o, nr, kc, cols, 1f);
                if (cols < nr) {
                    for (int p = 0; p < kc; p++) Arrays.fill(bp, o + p * nr + cols, o + (p + 1) * nr, 0f);
                }
            }
        } else {
            // B stored [N,K]: op(B)[p, j] = b[j*K + p]; each panel is a transposed cols x kc block.
            for (int jp = jp0; jp < jp1; jp++) {
                int o = base + jp * kc * nr;
                int j0 = n0 + jp * nr;
                int cols = Math.min(nr, n - j0);
                kernels.transpose(b, bOff + j0 * ldb + p0, ldb, bp, o, nr, cols, kc);
                if (cols < nr) {
                    for (int p = 0; p < kc; p++) Arrays.fill(bp, o + p * nr + cols, o + (p + 1) * nr, 0f);
                }
            }
        }
    }

    /**
     * Packs rows [r0, r0+live) of alpha * op(A)[., p0 .. p0+kc) into one mr-high panel at ap[o], zero-padding
     * rows live .. mr, in the layout that copies straight from op(A): k by k ({@code ap[o + p*mr + r]}) from a
     * transposed A, row by row ({@code ap[o + r*KC + p]}) from a row-major one.
     */
    private void packAPanel(boolean transA, float[] a, int aOff, int lda, float alpha, int r0, int live, int p0, int kc,
                            float[] ap, int o) {
        if (transA) {
            // A stored [K,M]: op(A)[i, p] = a[p*M + i]; the panel's rows are contiguous for each p.
            kernels.copyScaled(a, aOff + p0 * lda + r0, lda, ap, o, mr, kc, live, alpha);
            if (live < mr) {
                for (int p = 0; p < kc; p++) Arrays.fill(ap, o + p * mr + live, o + (p + 1) * mr, 0f);
            }
        } else {
            // A stored [M,K]: row i contiguous in p.
            kernels.copyScaled(a, aOff + r0 * lda + p0, lda, ap, o, KC, live, kc, alpha);
            for (int r = live; r < mr; r++) Arrays.fill(ap, o + r * KC, o + r * KC + kc, 0f);
        }
    }

    /**
     * Packs the mr-high row panels ip0 .. ip1 of alpha * op(A)[m0 .. m0+mLen, p0 .. p0+kc) into ap (panel ip at
     * {@code ap[apBase + ip*mr*KC]}), zero-padding rows past mLen.
     */
    private void packA(boolean transA, float[] a, int aOff, int lda, float alpha, int m0, int mLen, int p0, int kc,
                       int ip0, int ip1, float[] ap, int apBase) {
        for (int ip = ip0; ip < ip1; ip++) {
            packAPanel(transA, a, aOff, lda, alpha, m0 + ip * mr, Math.min(mr, mLen - ip * mr), p0, kc, ap,
                    apBase + ip * mr * KC);
        }
    }

    /**
     * Rows [i0, i0+rows) of packed A (at apBase; i0 a multiple of mr; panels row by row if rowsA; C row i0 at {@code c[cOff + i0*ldc]}) x B panels
     * [jp0, jp1) of one K block: C = Ap Bp, or C += Ap Bp when load.
     */
    private void computeTask(boolean rowsA, float[] ap, int apBase, int i0, int kc, float[] bp, int bpBase, boolean load, float[] c, int cOff,
                             int ldc, int rows, int n0, int nLen, int jp0, int jp1) {
        float[] edge = null;
        for (int jp = jp0; jp < jp1; jp++) {
            int liveCols = Math.min(nr, nLen - jp * nr);
            int bpo = bpBase + jp * kc * nr;
            for (int ii = 0; ii < rows; ii += mr) {
                int liveRows = Math.min(mr, rows - ii);
                int ao = apBase + ((i0 + ii) / mr) * mr * KC;
                int co = cOff + (i0 + ii) * ldc + n0 + jp * nr;
                if (liveRows == mr && liveCols == nr) {
                    kernels.gemmTile(kc, ap, ao, rowsA, bp, bpo, c, co, ldc, load);
                } else {
                    // A partial tile runs whole on a scratch tile; only its live part is read from and written to C.
                    if (edge == null) edge = buffer(edgeC, mr * nr);
                    if (load) {
                        for (int r = 0; r < liveRows; r++) System.arraycopy(c, co + r * ldc, edge, r * nr, liveCols);
                    }
                    kernels.gemmTile(kc, ap, ao, rowsA, bp, bpo, edge, 0, nr, load);
                    for (int r = 0; r < liveRows; r++) System.arraycopy(edge, r * nr, c, co + r * ldc, liveCols);
                }
            }
        }
    }
}
