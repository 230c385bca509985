package ai.mode.runtime.cpu;

import java.util.Arrays;

/**
 * Cache-blocked SGEMM: {@code C[M,N] = alpha * op(A) op(B) + beta * C}, row-major, any transposes.
 *
 * <p>Blocking (Goto/BLIS style): K is cut into blocks of at most {@link #KC} (the split depends only on K).
 * For each K block, op(B) is packed into nr-wide column panels ({@code kc x nr}, 32 KB with AVX-512, so one
 * panel stays in L1) for a chunk of at most {@link #N_CHUNK} columns, shared by all threads (a row-major B by
 * ranges of its storage rows, as a transposed A; a transposed B by groups of panels). The M rows are
 * cut into as few tasks of at most {@link #mc} rows as cover them, the mr-row panels shared out evenly (688 rows
 * with 4-row panels: 8 tasks of 84-88 rows; 7 of 96 and one of 16 gave two threads 384 and 304 rows),
 * times a group of B panels when there are few row blocks; a task sweeps
 * the register tile B panel outer, A panel inner, so its A block (about {@code mc x kc}) stays in L2.
 * Each task packs its rows of op(A) (either layout) into mr-high panels, with alpha folded in, so the register
 * tile always reads both operands contiguously; a row-major op(A) with exactly {@link #KC} columns and alpha 1
 * already has that layout and is read in place ({@link #gemmPacked} also reads a transposed op(A) in place).
 * beta is applied once up front (beta not 0 or 1: a scaling pass over C); every K block then either writes its
 * tile (first block, beta 0) or accumulates into C.
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
    static final int M_CHUNK_TILES = 64;
    /** K blocks packed and multiplied per pass (one packing region and one compute region). */
    static final int K_PASS_BLOCKS = 4;
    /**
     * Most B panels (of one K block) one compute task sweeps: 768 KB at the largest K block and nr 32, which with
     * a task's rows of A fits a 1.25 MB L2, and keeps N up to 768 in one group, so A is read once.
     */
    private static final int GROUP_PANELS = 24;
    /** Most floats of packed operands a batch round holds (32 MB); larger batches run in rounds. */
    private static final long BATCH_PACK_FLOATS = 1L << 23;
    /** Register-tile panels one packing task of a transposed B writes. */
    private static final int PACK_PANELS = 8;
    /** Storage rows (values of k) of a transposed A or a row-major B one packing task reads, across all columns. */
    private static final int PACK_ROWS = 32;
    /** Most rows of op(A) multiplied row by row ({@link #fewRows}) rather than on the register tile. */
    static final int FEW_ROWS = 4;
    /** B panels per task of {@link #fewRows} (128 columns with AVX-512). */
    private static final int FEW_ROWS_PANELS = 4;
    /** K block of {@link #fewRows}: two packed panels of it (32 KB with AVX-512) stay in L1. */
    private static final int FEW_ROWS_KC = 128;
    /** Below this many multiply-adds a GEMM runs on the calling thread only. */
    private static final long SERIAL_WORK = 128L * 1024;

    private final CpuKernels kernels;
    private final CpuThreads threads;
    private final int mr;
    private final int nr;
    /** Most rows per task (a multiple of mr). */
    private final int mc;
    /**
     * Floats per packed A panel: mr rows of {@link #KC}, plus one vector of padding for the whole-vector
     * stores of {@link CpuKernels#copyScaledPadded}.
     */
    private final int aPanelStride;

    /**
     * Whether a transposed A packs its mr-value slots as whole vectors ({@link CpuKernels#copyScaledPadded}, the
     * later slots rewritten) instead of exactly ({@link CpuKernels#copyScaled}): the {@value #PADDED_PACK_A_PROPERTY}
     * system property, false by default, kept for side-by-side measurement. On the Xeon (AVX2 flags and AVX-512)
     * the overlapping whole-vector stores packed at 4-5 ns per float, the exact copies at 0.4-0.9.
     */
    private final boolean paddedPackA = Boolean.getBoolean(PADDED_PACK_A_PROPERTY);

    static final String PADDED_PACK_A_PROPERTY = "mode.cpu.gemmPaddedPackA";

    private final ThreadLocal<float[]> packedA = new ThreadLocal<>();
    private final ThreadLocal<float[]> packedB = new ThreadLocal<>();
    /** A compute task's own packed rows of A (one task of mc rows, one pass of K blocks). */
    private final ThreadLocal<float[]> taskA = new ThreadLocal<>();

    private final ThreadLocal<float[]> edgeC = new ThreadLocal<>();
    /** A {@link #fewRows} task's two packed B panels of one K block. */
    private final ThreadLocal<float[]> fewRowsB = new ThreadLocal<>();

    Sgemm(CpuKernels kernels, CpuThreads threads) {
        this.kernels = kernels;
        this.threads = threads;
        this.mr = kernels.mr();
        this.nr = kernels.nr();
        this.mc = mr * Math.max(1, 96 / mr);
        this.aPanelStride = mr * KC + kernels.vectorLength();
    }

    /**
     * A batch of GEMMs on contiguous matrices (batch 1: one GEMM, strides unused). Item i: op(A) is M x K (stored
     * [M,K] or, if transA, [K,M]) at {@code aOff + i*aStride}; op(B) is K x N (stored [K,N] or, if transB, [N,K])
     * at {@code bOff + i*bStride} (bStride 0: one B shared by all items, packed once); C is [M,N] at
     * {@code cOff + i*cStride}. Multithreaded when large. Items whose packed operands fit together share one
     * packing region and one compute region per pass of K blocks, so many small GEMMs keep every thread busy; each
     * item's arithmetic is exactly that of a lone GEMM.
     */
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
        int lda = transA ? m : k, ldb = transB ? k : n, ldc = n;
        boolean done = false;
        for (int e = 0; e < batch; e++) done = betaUpFront(m, n, k, alpha, beta, c, cOff + e * cStride, ldc);
        if (done) return;
        boolean serial = (long) batch * m * n * k < SERIAL_WORK || threads.threads() == 1;
        if (!transA && m <= FEW_ROWS) {
            fewRows(serial, transB, batch, m, n, k, alpha, a, aOff, aStride, b, bOff, bStride, beta, c, cOff, cStride);
            return;
        }
        boolean overwrite = beta == 0f;
        boolean sharedB = bStride == 0;
        int kcStep = kcStep(k);
        int kBlocks = (k + kcStep - 1) / kcStep;
        int mChunk = M_CHUNK_TILES * mc;
        // A row-major op(A) with exactly KC columns is read in place by the tasks whose panels lie inside the
        // array; the others pack their own rows.
        boolean aRowsKC = rowPanelsInPlace(transA, k, lda, alpha);
        // Items per round: all of a batch of matrices that fit one chunk each, within the packing budget.
        int itemsPerRound = 1;
        if (batch > 1 && m <= mChunk && n <= N_CHUNK) {
            long passBlocks = Math.min(K_PASS_BLOCKS, kBlocks);
            long aFloats = passBlocks * ((m + mr - 1) / mr) * (long) aPanelStride;
            long bFloats = sharedB ? 0 : passBlocks * kcStep * (long) ((n + nr - 1) / nr) * nr;
            itemsPerRound = (int) Math.max(1, Math.min(batch, BATCH_PACK_FLOATS / (aFloats + bFloats)));
        }
        for (int e0 = 0; e0 < batch; e0 += itemsPerRound) {
            int items = Math.min(itemsPerRound, batch - e0);
            int bItems = sharedB ? 1 : items;
            int ae0 = aOff + e0 * aStride, be0 = bOff + e0 * bStride, ce0 = cOff + e0 * cStride;
            for (int n0 = 0; n0 < n; n0 += N_CHUNK) {
                int nLen = Math.min(N_CHUNK, n - n0);
                int panels = (nLen + nr - 1) / nr;
                // A row-major B is packed like a transposed A, by ranges of its storage rows across all panels, which
                // reads memory sequentially; a transposed B by groups of panels (16 x 16 transposes).
                int bTasksPerBlock =
                        transB ? (panels + PACK_PANELS - 1) / PACK_PANELS : (kcStep + PACK_ROWS - 1) / PACK_ROWS;
                for (int kb0 = 0; kb0 < kBlocks; kb0 += K_PASS_BLOCKS) {
                    int passBlocks = Math.min(K_PASS_BLOCKS, kBlocks - kb0);
                    int bBlockSize = kcStep * panels * nr, bItemSize = passBlocks * bBlockSize;
                    float[] bp = buffer(packedB, bItems * bItemSize);
                    for (int m0 = 0; m0 < m; m0 += mChunk) {
                        int mLen = Math.min(mChunk, m - m0);
                        int rowPanels = (mLen + mr - 1) / mr;
                        int aTasksPerBlock = transA
                                ? (kcStep + PACK_ROWS - 1) / PACK_ROWS
                                : (rowPanels + PACK_PANELS - 1) / PACK_PANELS;
                        int aBlockSize = rowPanels * aPanelStride, aItemSize = passBlocks * aBlockSize;
                        int mTiles = (mLen + mc - 1) / mc;
                        // Enough tasks to balance the threads, and groups of B panels small enough to stay in L2 while
                        // a task sweeps its rows over them; the grouping never changes the arithmetic.
                        int minGroups = serial
                                ? 1
                                : Math.max(1, (4 * threads.threads() + items * mTiles - 1) / (items * mTiles));
                        int groupCount = Math.max(minGroups, (panels + GROUP_PANELS - 1) / GROUP_PANELS);
                        int panelsPerGroup = (panels + groupCount - 1) / groupCount; // groups of even size
                        int groups = (panels + panelsPerGroup - 1) / panelsPerGroup;
                        // With one group of B panels, each task is the only reader of its rows of A: it packs them
                        // itself, just before use, into a per-thread buffer that stays in L2. Otherwise the packing
                        // region packs A once for all the groups that share it. A transposed A is always packed in
                        // the region, by ranges of its storage rows: a task reading only its own mc columns of each
                        // storage row strides through memory and measured far slower.
                        boolean tasksPackA = (groups == 1 && !transA) || aRowsKC;
                        float[] ap = tasksPackA ? null : buffer(packedA, items * aItemSize);
                        int fn0 = n0, fm0 = m0, fkb0 = kb0;
                        // B is packed with the first M chunk. Consecutive tasks cover consecutive K blocks, so every
                        // block's packing is spread over the threads.
                        int bTasks = m0 == 0 ? bItems * passBlocks * bTasksPerBlock : 0;
                        int aTasks = tasksPackA ? 0 : items * passBlocks * aTasksPerBlock;
                        CpuThreads.Task pack = t -> {
                            boolean isB = t < bTasks;
                            int u = isB ? t : t - bTasks;
                            int perItem = passBlocks * (isB ? bTasksPerBlock : aTasksPerBlock);
                            int e = u / perItem, v = u % perItem;
                            int kb = v % passBlocks, part = v / passBlocks;
                            int p0 = (fkb0 + kb) * kcStep, kc = Math.min(kcStep, k - p0);
                            if (isB && transB) {
                                packB(
                                        true,
                                        n,
                                        b,
                                        be0 + e * bStride,
                                        ldb,
                                        p0,
                                        kc,
                                        fn0,
                                        part * PACK_PANELS,
                                        Math.min(panels, (part + 1) * PACK_PANELS),
                                        bp,
                                        e * bItemSize + kb * bBlockSize,
                                        kc * nr);
                            } else if (isB) {
                                int r0 = part * PACK_ROWS, r1 = Math.min(kc, r0 + PACK_ROWS);
                                if (r0 < r1) {
                                    packB(
                                            false,
                                            n,
                                            b,
                                            be0 + e * bStride,
                                            ldb,
                                            p0 + r0,
                                            r1 - r0,
                                            fn0,
                                            0,
                                            panels,
                                            bp,
                                            e * bItemSize + kb * bBlockSize + r0 * nr,
                                            kc * nr);
                                }
                            } else if (transA) {
                                packATransposedRows(
                                        a,
                                        ae0 + e * aStride,
                                        lda,
                                        alpha,
                                        fm0,
                                        mLen,
                                        p0,
                                        part * PACK_ROWS,
                                        Math.min(kc, (part + 1) * PACK_ROWS),
                                        ap,
                                        e * aItemSize + kb * aBlockSize);
                            } else {
                                packA(
                                        transA,
                                        a,
                                        ae0 + e * aStride,
                                        lda,
                                        alpha,
                                        fm0,
                                        mLen,
                                        p0,
                                        kc,
                                        part * PACK_PANELS,
                                        Math.min(rowPanels, (part + 1) * PACK_PANELS),
                                        ap,
                                        e * aItemSize + kb * aBlockSize);
                            }
                        };
                        CpuThreads.Task compute = t -> {
                            // Consecutive tasks share a group of B panels, which then stays in cache; the task's block
                            // of C stays in cache across the pass's K blocks, which run in order.
                            int e = t / (mTiles * groups), rest = t % (mTiles * groups);
                            int g = rest / mTiles, mt = rest % mTiles;
                            int jp0 = g * panelsPerGroup;
                            int bBase = (sharedB ? 0 : e * bItemSize);
                            // The chunk's row panels shared out evenly: task mt has panels [mt P / T, (mt+1) P / T).
                            int panel0 = (int) ((long) mt * rowPanels / mTiles);
                            int row0 = panel0 * mr;
                            int rows = Math.min(mLen, (int) ((long) (mt + 1) * rowPanels / mTiles) * mr) - row0;
                            // The task's panels of A: op(A) itself, its own copy (K block by K block), or its rows of
                            // the shared one.
                            float[] a2 = ap;
                            int aBase = e * aItemSize + panel0 * aPanelStride,
                                    aStep = aBlockSize,
                                    aPanel = aPanelStride;
                            int aRows = ae0 + e * aStride + (fm0 + row0) * KC;
                            if (aRowsKC && panelsInside(a, aRows, rows)) {
                                a2 = a;
                                aBase = aRows;
                                aPanel = mr * KC;
                            } else if (tasksPackA) {
                                int tilePanels = (rows + mr - 1) / mr;
                                aStep = tilePanels * aPanelStride;
                                a2 = buffer(taskA, passBlocks * aStep);
                                aBase = 0;
                                for (int kb = 0; kb < passBlocks; kb++) {
                                    int p0 = (fkb0 + kb) * kcStep;
                                    packA(
                                            transA,
                                            a,
                                            ae0 + e * aStride,
                                            lda,
                                            alpha,
                                            fm0 + row0,
                                            rows,
                                            p0,
                                            Math.min(kcStep, k - p0),
                                            0,
                                            tilePanels,
                                            a2,
                                            kb * aStep);
                                }
                            }
                            int cTile = ce0 + e * cStride + (fm0 + row0) * ldc;
                            for (int kb = 0; kb < passBlocks; kb++) {
                                int p0 = (fkb0 + kb) * kcStep;
                                int kc = Math.min(kcStep, k - p0);
                                computeTask(
                                        !transA,
                                        a2,
                                        aBase + kb * aStep,
                                        aPanel,
                                        kc,
                                        bp,
                                        bBase + kb * bBlockSize,
                                        kc * nr,
                                        p0 > 0 || !overwrite,
                                        c,
                                        cTile,
                                        ldc,
                                        rows,
                                        fn0,
                                        nLen,
                                        jp0,
                                        Math.min(panels, jp0 + panelsPerGroup));
                            }
                        };
                        run(serial, bTasks + aTasks, pack);
                        run(serial, items * mTiles * groups, compute);
                    }
                }
            }
        }
    }

    /**
     * A product with at most {@link #FEW_ROWS} rows of a row-major op(A) (generation's one token at a time), row by
     * row ({@link CpuKernels#gemmRow}) instead of on the mr-row register tile, which would compute mr rows for each
     * one. Each task takes a group of {@link #FEW_ROWS_PANELS} B panels of one item and packs them two at a time,
     * one K block of at most {@link #FEW_ROWS_KC} rows after another, into a per-thread buffer that stays in L1:
     * B is read once, and never written out whole. Each element of C is the same chain of multiply-adds in k order
     * as on the tile (alpha folded into A as {@link #packA} does; C reloaded between K blocks, exact in float32), so
     * the bits are those of the tiled path: a row's result does not depend on how many rows come with it.
     */
    private void fewRows(
            boolean serial,
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
        int ldb = transB ? k : n, ldc = n;
        if (alpha != 1f) { // alpha * A rounded once per value, as packing A does
            float[] scaled = new float[batch * m * k];
            for (int e = 0; e < batch; e++)
                kernels.copyScaled(a, aOff + e * aStride, k, scaled, e * m * k, k, m, k, alpha);
            a = scaled;
            aOff = 0;
            aStride = m * k;
        }
        float[] fa = a;
        int fao = aOff, fas = aStride, panels = (n + nr - 1) / nr;
        int groups = (panels + FEW_ROWS_PANELS - 1) / FEW_ROWS_PANELS;
        boolean overwrite = beta == 0f;
        CpuThreads.Task task = t -> {
            int e = t / groups, jp1 = Math.min(panels, (t % groups + 1) * FEW_ROWS_PANELS);
            int bItem = bOff + e * bStride, aItem = fao + e * fas, cItem = cOff + e * cStride;
            float[] bp = buffer(fewRowsB, 2 * FEW_ROWS_KC * nr);
            float[] edge = null;
            int jpStart = (t % groups) * FEW_ROWS_PANELS;
            if (transB) touch(b, bItem + jpStart * nr * k, bItem + Math.min(n, jp1 * nr) * k);
            for (int jp = jpStart; jp < jp1; jp += 2) {
                boolean two = jp + 1 < jp1;
                int cols = Math.min((two ? 2 : 1) * nr, n - jp * nr);
                for (int p0 = 0; p0 < k; p0 += FEW_ROWS_KC) {
                    int kc = Math.min(FEW_ROWS_KC, k - p0);
                    // panel jp at bp[0], jp + 1 at bp[kc * nr]
                    packB(transB, n, b, bItem, ldb, p0, kc, 0, jp, jp + (two ? 2 : 1), bp, -jp * kc * nr, kc * nr);
                    boolean load = p0 > 0 || !overwrite;
                    for (int i = 0; i < m; i++) {
                        int ai = aItem + i * k + p0, ci = cItem + i * ldc + jp * nr;
                        if (cols == (two ? 2 : 1) * nr) {
                            kernels.gemmRow(kc, fa, ai, bp, 0, kc * nr, two, c, ci, load);
                        } else { // the last, partial panel runs whole on a scratch row
                            if (edge == null) edge = buffer(edgeC, 2 * nr);
                            if (load) System.arraycopy(c, ci, edge, 0, cols);
                            kernels.gemmRow(kc, fa, ai, bp, 0, kc * nr, two, edge, 0, load);
                            System.arraycopy(edge, 0, c, ci, cols);
                        }
                    }
                }
            }
        };
        run(serial, batch * groups, task);
    }

    /**
     * Reads one float per 64-byte line of {@code x[from, to)} in order, so that the hardware prefetcher streams the
     * range into cache before the transposing copy of {@link #packB} reads it 16 rows at a time: on the AMD EPYC
     * Zen 5 a 4 MB [4096, 256] B not in cache was read at 15 GB/s 16 rows at a time, 24 GB/s with each 16-row block
     * read ahead like this, and 30 GB/s in plain order (one thread, 2026-12-08). Java has no prefetch instruction.
     */
    private void touch(float[] x, int from, int to) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f; // four sums: one would wait on its own adds
        int i = from;
        for (; i + 48 < to; i += 64) {
            s0 += x[i];
            s1 += x[i + 16];
            s2 += x[i + 32];
            s3 += x[i + 48];
        }
        for (; i < to; i += 16) s0 += x[i];
        touched = s0 + s1 + s2 + s3;
    }

    /** Where {@link #touch} leaves its sum, so that the reads are not optimised away. */
    @SuppressWarnings("unused")
    private float touched;

    private void run(boolean serial, int count, CpuThreads.Task task) {
        if (serial) {
            for (int t = 0; t < count; t++) task.run(t);
        } else {
            threads.parallelFor(count, task);
        }
    }

    // ------------------------------------------------------------------ pre-packed B (serial, for use inside tasks)

    /** Columns of the register tile (packed B panels are this wide). */
    int nr() {
        return nr;
    }

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
            int kc = Math.min(kcStep, k - p0);
            packB(transB, n, b, bOff, ldb, p0, kc, 0, 0, panels, dst, p0 * panels * nr, kc * nr);
        }
    }

    /**
     * {@code C = alpha * op(A) B + beta * C} on the calling thread, where B is rows [0, k) and columns [j0, j0+n)
     * of a packedK x packedN matrix packed by {@link #packB} into bp (j0 a multiple of {@link #nr()}; k is packedK,
     * or any prefix when packedK is at most {@link #KC}, as then every panel holds its rows in one K block).
     */
    void gemmPacked(
            boolean transA,
            int m,
            int n,
            int k,
            float alpha,
            float[] a,
            int aOff,
            int lda,
            float[] bp,
            int packedK,
            int packedN,
            int j0,
            float beta,
            float[] c,
            int cOff,
            int ldc) {
        if (j0 % nr != 0 || j0 + n > packedN) {
            throw new IllegalArgumentException("gemmPacked: columns [" + j0 + ", " + (j0 + n) + ") of a packed B with "
                    + packedN + " columns, nr " + nr);
        }
        if (k != packedK && (k > packedK || !prefixesOfPackedB(packedK))) {
            throw new IllegalArgumentException("gemmPacked: rows [0, " + k + ") of a packed B with " + packedK
                    + " rows; a prefix needs at most " + KC + " packed rows");
        }
        if (m == 0 || n == 0 || betaUpFront(m, n, k, alpha, beta, c, cOff, ldc)) return;
        int panels = (n + nr - 1) / nr, packedPanels = (packedN + nr - 1) / nr;
        int kcStep = k == packedK ? kcStep(k) : k; // a prefix lies in the one packed K block
        boolean inPlace = rowPanelsInPlace(transA, k, lda, alpha);
        for (int p0 = 0; p0 < k; p0 += kcStep) {
            int kc = Math.min(kcStep, k - p0);
            int panelRows = k == packedK ? kc : packedK; // rows each packed panel of this block holds
            boolean load = p0 > 0 || beta != 0f;
            for (int i0 = 0; i0 < m; i0 += mc) {
                int rows = Math.min(mc, m - i0);
                int bBase = p0 * packedPanels * nr + j0 * panelRows;
                if (inPlace && panelsInside(a, aOff + i0 * KC, rows)) {
                    computeTask(
                            true,
                            a,
                            aOff + i0 * KC,
                            mr * KC,
                            kc,
                            bp,
                            bBase,
                            panelRows * nr,
                            load,
                            c,
                            cOff + i0 * ldc,
                            ldc,
                            rows,
                            0,
                            n,
                            0,
                            panels);
                    continue;
                }
                int rowPanels = (rows + mr - 1) / mr;
                float[] ap = buffer(packedA, rowPanels * aPanelStride);
                packA(transA, a, aOff, lda, alpha, i0, rows, p0, kc, 0, rowPanels, ap, 0);
                computeTask(
                        !transA,
                        ap,
                        0,
                        aPanelStride,
                        kc,
                        bp,
                        bBase,
                        panelRows * nr,
                        load,
                        c,
                        cOff + i0 * ldc,
                        ldc,
                        rows,
                        0,
                        n,
                        0,
                        panels);
            }
        }
    }

    /**
     * Whether {@link #gemmPacked} can multiply by any prefix of the rows of a B that {@link #packB} packed with
     * packedK rows: when they fit one K block, every panel holds its rows contiguously from the first.
     */
    static boolean prefixesOfPackedB(int packedK) {
        return packedK <= KC;
    }

    /**
     * The op contract's small GEMM ({@link ai.mode.runtime.OpShapes#SMALL_GEMM_WORK}), arguments as {@link #gemm}: each
     * output is the float64 sum of its k products in k order (each product exact), times alpha, plus beta c in one
     * fused step, rounded once; c is not read when beta is 0. The same operations as the device kernels' small GEMM
     * (gemm.cu), so every backend gives the same bits.
     */
    static void smallFloat64(
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
        for (int e = 0; e < batch; e++) {
            int ae = aOff + e * aStride, bE = bOff + e * bStride, ce = cOff + e * cStride;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        double av = a[ae + (transA ? p * m + i : i * k + p)];
                        acc += av * b[bE + (transB ? j * k + p : p * n + j)];
                    }
                    double r = (double) alpha * acc;
                    if (beta != 0f) r = Math.fma(beta, c[ce + i * n + j], r);
                    c[ce + i * n + j] = (float) r;
                }
            }
        }
    }

    /**
     * Whether op(A) already is row-by-row panels: row-major with rows {@link #KC} apart (the panel row stride),
     * K within one block, alpha 1. The tile then reads A in place, with no packing.
     */
    private static boolean rowPanelsInPlace(boolean transA, int k, int lda, float alpha) {
        return !transA && lda == KC && k <= KC && alpha == 1f;
    }

    /**
     * Whether the mr-row panels over {@code rows} rows from a[rowOff] (rows KC apart) lie inside a: a last
     * partial panel reads rows past M, whose results never reach C, but they must exist.
     */
    private boolean panelsInside(float[] a, int rowOff, int rows) {
        return rowOff + (long) ((rows + mr - 1) / mr) * mr * KC <= a.length;
    }

    /** The K block size for a given K: blocks of at most KC, as equal as possible. */
    private static int kcStep(int k) {
        int kBlocks = (k + KC - 1) / KC;
        return (k + kBlocks - 1) / kBlocks;
    }

    /**
     * The beta part of {@code C = alpha op(A) op(B) + beta C}, done before the products: C = beta * C when K or
     * alpha is 0 (returns true: nothing is left to do) or when beta is neither 0 (the first K block overwrites
     * C) nor 1 (the blocks accumulate onto C).
     */
    private static boolean betaUpFront(int m, int n, int k, float alpha, float beta, float[] c, int cOff, int ldc) {
        boolean noProduct = k == 0 || alpha == 0f;
        if (noProduct || (beta != 0f && beta != 1f)) scaleC(m, n, beta, c, cOff, ldc);
        return noProduct;
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

    /** Zeroes columns [from, width) of {@code rows} rows of width floats at x[o] (a packed panel's padding). */
    private static void zeroColumns(float[] x, int o, int rows, int width, int from) {
        if (from >= width) return;
        for (int r = 0; r < rows; r++) Arrays.fill(x, o + r * width + from, o + (r + 1) * width, 0f);
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
     * Packs the nr-wide panels jp0 .. jp1 of op(B)[p0 .. p0+kc, n0 + ...] (panel jp at bp[base + jp*panelStride], kc
     * rows of nr values), zero-padding columns past N. A panel stride larger than kc*nr packs rows of taller panels.
     */
    private void packB(
            boolean transB,
            int n,
            float[] b,
            int bOff,
            int ldb,
            int p0,
            int kc,
            int n0,
            int jp0,
            int jp1,
            float[] bp,
            int base,
            int panelStride) {
        if (!transB) {
            // B stored [K,N]: row p of B holds nr values for each panel; one pass per row reads it sequentially.
            int fullEnd = Math.min(jp1, (n - n0) / nr);
            if (fullEnd > jp0) {
                for (int p = 0; p < kc; p++) {
                    kernels.copyScaled(
                            b,
                            bOff + (p0 + p) * ldb + n0 + jp0 * nr,
                            nr,
                            bp,
                            base + jp0 * panelStride + p * nr,
                            panelStride,
                            fullEnd - jp0,
                            nr,
                            1f);
                }
            }
            for (int jp = Math.max(jp0, fullEnd); jp < jp1; jp++) {
                int o = base + jp * panelStride;
                int j0 = n0 + jp * nr;
                int cols = Math.min(nr, n - j0);
                kernels.copyScaled(b, bOff + p0 * ldb + j0, ldb, bp, o, nr, kc, cols, 1f);
                zeroColumns(bp, o, kc, nr, cols);
            }
        } else {
            // B stored [N,K]: op(B)[p, j] = b[j*K + p]; each panel is a transposed cols x kc block.
            for (int jp = jp0; jp < jp1; jp++) {
                int o = base + jp * panelStride;
                int j0 = n0 + jp * nr;
                int cols = Math.min(nr, n - j0);
                kernels.transpose(b, bOff + j0 * ldb + p0, ldb, bp, o, nr, cols, kc);
                zeroColumns(bp, o, kc, nr, cols);
            }
        }
    }

    /**
     * Packs rows [r0, r0+live) of alpha * op(A)[., p0 .. p0+kc) of a row-major A (row i contiguous in p) into one
     * mr-high panel at ap[o], row by row ({@code ap[o + r*KC + p]}), zero-padding rows live .. mr.
     */
    private void packAPanelRows(
            float[] a, int aOff, int lda, float alpha, int r0, int live, int p0, int kc, float[] ap, int o) {
        kernels.copyScaled(a, aOff + r0 * lda + p0, lda, ap, o, KC, live, kc, alpha);
        for (int r = live; r < mr; r++) Arrays.fill(ap, o + r * KC, o + r * KC + kc, 0f);
    }

    /**
     * Packs the mr-high row panels ip0 .. ip1 of alpha * op(A)[m0 .. m0+mLen, p0 .. p0+kc) into ap (panel ip at
     * {@code ap[apBase + ip*aPanelStride]}), zero-padding rows past mLen, in the layout that copies straight from
     * op(A): k by k from a transposed A (storage row by storage row), row by row from a row-major one.
     */
    private void packA(
            boolean transA,
            float[] a,
            int aOff,
            int lda,
            float alpha,
            int m0,
            int mLen,
            int p0,
            int kc,
            int ip0,
            int ip1,
            float[] ap,
            int apBase) {
        if (transA) {
            packATransposedRows(
                    a,
                    aOff,
                    lda,
                    alpha,
                    m0 + ip0 * mr,
                    Math.min(mLen - ip0 * mr, (ip1 - ip0) * mr),
                    p0,
                    0,
                    kc,
                    ap,
                    apBase + ip0 * aPanelStride);
            return;
        }
        for (int ip = ip0; ip < ip1; ip++) {
            packAPanelRows(
                    a,
                    aOff,
                    lda,
                    alpha,
                    m0 + ip * mr,
                    Math.min(mr, mLen - ip * mr),
                    p0,
                    kc,
                    ap,
                    apBase + ip * aPanelStride);
        }
    }

    /**
     * Packs storage rows [pFrom, pTo) of a transposed A (op(A)[i, p0 + p] = a[aOff + (p0 + p)*lda + i]) for all
     * of rows m0 .. m0+mLen of op(A): slot p of every mr-high panel (panel ip at ap[apBase + ip*aPanelStride]).
     * Reads each storage row once, sequentially. Whole-vector writes run past a panel's slot only into later
     * slots of the same range (rewritten next), so ranges packed by different threads never overlap.
     */
    private void packATransposedRows(
            float[] a,
            int aOff,
            int lda,
            float alpha,
            int m0,
            int mLen,
            int p0,
            int pFrom,
            int pTo,
            float[] ap,
            int apBase) {
        if (pFrom >= pTo) return;
        int full = mLen / mr, vector = kernels.vectorLength();
        // floats one padded slot write covers: mr rounded up to whole vectors (16 for 12 rows of 8 lanes)
        int written = (mr + vector - 1) / vector * vector;
        if (full > 0) {
            for (int p = pFrom; p < pTo; p++) {
                int src = aOff + (p0 + p) * lda + m0, dst = apBase + p * mr;
                if (paddedPackA && p * mr + written <= pTo * mr)
                    kernels.copyScaledPadded(a, src, mr, ap, dst, aPanelStride, full, mr, alpha);
                else kernels.copyScaled(a, src, mr, ap, dst, aPanelStride, full, mr, alpha);
            }
        }
        int live = mLen - full * mr;
        if (live > 0) {
            int o = apBase + full * aPanelStride + pFrom * mr;
            kernels.copyScaled(a, aOff + (p0 + pFrom) * lda + m0 + full * mr, lda, ap, o, mr, pTo - pFrom, live, alpha);
            zeroColumns(ap, o, pTo - pFrom, mr, live);
        }
    }

    /**
     * The rows panels of packed A at apBase, aPanel floats apart (row by row if rowsA, else k by k; {@code rows}
     * rows, C's first at cOff) x B panels [jp0, jp1) at bpBase, bPanel floats apart, of one K block: C = Ap Bp, or
     * C += Ap Bp when load.
     */
    private void computeTask(
            boolean rowsA,
            float[] ap,
            int apBase,
            int aPanel,
            int kc,
            float[] bp,
            int bpBase,
            int bPanel,
            boolean load,
            float[] c,
            int cOff,
            int ldc,
            int rows,
            int n0,
            int nLen,
            int jp0,
            int jp1) {
        float[] edge = null;
        for (int jp = jp0; jp < jp1; jp++) {
            int liveCols = Math.min(nr, nLen - jp * nr);
            int bpo = bpBase + jp * bPanel;
            for (int ii = 0; ii < rows; ii += mr) {
                int liveRows = Math.min(mr, rows - ii);
                int ao = apBase + (ii / mr) * aPanel;
                int co = cOff + ii * ldc + n0 + jp * nr;
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
