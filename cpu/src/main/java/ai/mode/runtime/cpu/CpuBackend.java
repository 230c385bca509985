package ai.mode.runtime.cpu;

import ai.mode.bindings.Mkl;
import ai.mode.bindings.NativeLibraryException;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.OpShapes;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Shapes;
import ai.mode.runtime.Tensor;
import java.lang.System.Logger;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code cpu} backend: float32 tensors in Java arrays, Vector API inner loops ({@link VectorKernels},
 * or {@link ScalarKernels} as fallback), a fixed pool of {@code threads} threads.
 *
 * <p>Determinism: all work is cut into partitions that depend only on the shapes (never on the thread count),
 * every partition is computed by a fixed sequence of operations, and partial results (reductions over rows)
 * are combined in a fixed order. Results are therefore bitwise identical from run to run and for any thread
 * count. The vector and scalar kernels differ in summation order, so they agree only to rounding.
 *
 * <p>GEMM: the {@code gemm} op runs oneMKL when it is on the classpath or installed, except on non-Intel CPUs with
 * 512-bit vectors ({@link CpuGemm}, default {@code auto}), else our Vector API {@link Sgemm}; attention's products
 * always run ours. oneMKL's pieces are also cut by shape only ({@link MklSgemm}), so the determinism above holds with it too; it rounds differently
 * from ours, so the two agree only to rounding.
 */
public final class CpuBackend implements Backend {
    private static final Logger LOG = System.getLogger(CpuBackend.class.getName());
    /** Stops the worker threads of backends that were dropped without {@link #close()}. */
    private static final Cleaner CLEANER = Cleaner.create();

    /** Elements per task of elementwise ops. */
    private static final int ELEMENT_GRAIN = 1 << 15;
    /** Rows per partial sum of row reductions (cross-entropy, RMSNorm weight gradient). */
    private static final int REDUCE_ROWS = 32;
    /** Columns per task of column-partitioned scatters (embedding backward, scatter-add, column sums). */
    private static final int COLUMN_GRAIN = 128;
    /** Elements per float64 partial of {@link #sumSquares}. */
    private static final int SUMSQ_CHUNK = 1 << 14;

    private final CpuThreads threads;
    private final CpuKernels kern;
    private final Sgemm sgemm;
    /** oneMKL's SGEMM for the {@code gemm} op, or null: our {@link #sgemm}. */
    private final MklSgemm vendorGemm;

    private final CpuAttention attention;
    private volatile RopeTable ropeTable;

    /**
     * A backend with {@code threads} threads ({@code <= 0}: one per core) and the kernels and GEMM that
     * {@link BackendSpec#fromEnvironment} gives ({@code -Dmode.cpu.vector}, {@code -Dmode.cpu.gemm} /
     * {@code MODE_CPU_GEMM}; default vector kernels and {@code auto}; see {@link CpuGemm}).
     */
    public CpuBackend(int threads) {
        this(BackendSpec.fromEnvironment("cpu", threads));
    }

    /**
     * A backend with {@code threads} threads ({@code <= 0}: one per core); {@code useVector} false forces the
     * scalar kernels (true uses the Vector API when the {@code jdk.incubator.vector} module is present); the GEMM as
     * {@link #CpuBackend(int)} chooses it.
     */
    public CpuBackend(int threads, boolean useVector) {
        this(threads, useVector, CpuGemm.of(BackendSpec.fromEnvironment("cpu", threads)));
    }

    /** A backend with {@code threads} threads, the kernels as {@link #CpuBackend(int)} chooses them, running {@code gemm}. */
    public CpuBackend(int threads, CpuGemm gemm) {
        this(threads, CpuKernels.vectorWanted(BackendSpec.fromEnvironment("cpu", threads)), gemm);
    }

    /**
     * The backend {@code spec} describes: its threads and its options {@value BackendSpec#CPU_GEMM} ({@code auto},
     * {@code vector} or {@code mkl}; default {@code auto}) and {@value BackendSpec#CPU_VECTOR} ({@code true} or
     * {@code false}; default {@code true}). Reads no property or environment variable.
     */
    public CpuBackend(BackendSpec spec) {
        this(spec.threads(), CpuKernels.vectorWanted(spec), CpuGemm.of(spec));
    }

    /**
     * The most threads per core a backend accepts: more only slow the run down (every op splits its work over all
     * of them), and a mistyped count must not start a hundred thousand threads.
     */
    public static final int MAX_THREADS_PER_CORE = 4;

    /**
     * A backend as {@link #CpuBackend(int, boolean)} whose {@code gemm} op runs {@code gemm}: {@code mkl} fails
     * with a one-line reason when oneMKL does not load, {@code auto} then falls back to ours.
     */
    public CpuBackend(int threads, boolean useVector, CpuGemm gemm) {
        int cores = Runtime.getRuntime().availableProcessors();
        if (threads > MAX_THREADS_PER_CORE * cores)
            throw new IllegalArgumentException("--threads " + threads + " is more than " + MAX_THREADS_PER_CORE
                    + " per core of this machine's " + cores + " (at most " + MAX_THREADS_PER_CORE * cores
                    + "); use --threads 0 for one per core");
        int n = threads <= 0 ? cores : threads;
        this.kern = CpuKernels.select(useVector);
        Mkl vendor = vendorLibrary(gemm, kern.vectorLength());
        this.threads = new CpuThreads(n);
        CLEANER.register(this, this.threads::close);
        this.vendorGemm = vendor == null ? null : new MklSgemm(vendor, this.threads);
        this.sgemm = new Sgemm(kern, this.threads);
        this.attention = new CpuAttention(kern, this.threads, this.sgemm);
        LOG.log(
                Logger.Level.DEBUG,
                "cpu backend: {0} threads, {1} kernels, gemm {2}",
                n,
                kern.describe(),
                gemmDescription());
    }

    /**
     * oneMKL for {@code gemm}, or null for ours. {@code auto} takes oneMKL except on a non-Intel CPU where our
     * kernels run 512-bit vectors: there oneMKL runs its 256-bit code and our 12 x 32 tile trained faster, while on
     * Intel CPUs and with 256-bit vectors oneMKL trained faster (docs/cpu-backend.md, "The default provider").
     */
    private static Mkl vendorLibrary(CpuGemm gemm, int lanes) {
        if (gemm == CpuGemm.VECTOR) return null;
        CpuIdentity cpu = CpuIdentity.current();
        if (gemm == CpuGemm.AUTO && !prefersMkl(cpu, lanes)) {
            LOG.log(
                    Logger.Level.DEBUG,
                    "gemm op: our Vector API SGEMM, the default with {0}-lane vectors on {1}",
                    lanes,
                    cpu.describe());
            return null;
        }
        try {
            return Mkl.get();
        } catch (NativeLibraryException e) {
            if (gemm == CpuGemm.MKL) {
                throw new IllegalStateException(
                        CpuGemm.PROPERTY + "=mkl but oneMKL is not available: " + e.getMessage(), e);
            }
            sayOnce("gemm op: our Vector API SGEMM, since oneMKL is not available (" + e.getMessage() + ")");
            return null;
        }
    }

    /** Whether {@code auto} runs oneMKL on this CPU with kernels of this many float lanes (see {@link #vendorLibrary}). */
    public static boolean prefersMkl(CpuIdentity cpu, int lanes) {
        return cpu.intel() || lanes < 16;
    }

    /** Fallbacks already reported in this JVM: each is one log line, once. */
    private static final Set<String> SAID = ConcurrentHashMap.newKeySet();

    /** Logs a fallback (which path and why) once per JVM. */
    static void sayOnce(String message) {
        if (SAID.add(message)) LOG.log(Logger.Level.INFO, "cpu backend: " + message);
    }

    @Override
    public String name() {
        return "cpu";
    }

    /** Number of threads (including the caller) that ops use. */
    public int threads() {
        return threads.threads();
    }

    /** Float lanes of the kernels' vectors (16 with AVX-512, 8 with AVX2, 1 for the scalar kernels). */
    public int vectorLanes() {
        return kern.vectorLength();
    }

    /** Whether the Vector API kernels are in use. */
    public boolean vectorized() {
        return kern.vectorized();
    }

    /** Which kernels run, e.g. {@code vector (16 x float32)} or {@code scalar}. */
    public String kernelDescription() {
        return kern.describe();
    }

    /** Which SGEMM the {@code gemm} op runs: {@code mkl (<version>)} or {@code vector}. */
    public String gemmDescription() {
        return vendorGemm != null ? vendorGemm.describe() : "vector";
    }

    /** Kernels, GEMM provider with its mode, and the CPU: what the bits of the results depend on (not the thread count). */
    @Override
    public String numerics() {
        return "cpu: " + kern.describe() + " kernels, gemm " + gemmDescription() + ", on "
                + CpuIdentity.current().describe();
    }

    /** Whether the {@code gemm} op runs oneMKL. */
    public boolean usesMkl() {
        return vendorGemm != null;
    }

    @Override
    public void close() {
        threads.close();
    }

    // ================================================================= argument checks

    private static CpuTensor cpu(String op, String name, Tensor t) {
        if (t == null) throw new IllegalArgumentException(op + ": " + name + " must not be null");
        if (!(t instanceof CpuTensor ct)) {
            throw new IllegalArgumentException(
                    op + ": " + name + " is a " + t.backend().name() + " tensor " + t.describe()
                            + "; the cpu backend needs cpu tensors (copy it with toHost/fromHost)");
        }
        ct.checkOpen();
        return ct;
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    // ================================================================= memory

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        long n = Shapes.numel(shape);
        require(
                n <= Integer.MAX_VALUE - 64,
                "allocate: " + Arrays.toString(shape) + " has " + n
                        + " elements, more than the cpu backend's Java arrays hold; use smaller tensors");
        return switch (dtype) {
            case F32 -> new CpuTensor(this, DType.F32, shape, new float[(int) n], null, 0, null);
            case I32 -> new CpuTensor(this, DType.I32, shape, null, new int[(int) n], 0, null);
            case BF16 ->
                throw new IllegalArgumentException("allocate: the cpu backend stores float32 only; "
                        + "BF16 is a cuda storage type, allocate F32 instead");
        };
    }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        require(data != null, "fromHost: data must not be null");
        OpShapes.fromHost(shape, data.length, "floats");
        return new CpuTensor(this, DType.F32, shape, data.clone(), null, 0, null);
    }

    /**
     * Zero-copy for a heap segment over a {@code float[]} (F32) or {@code int[]} (I32), e.g.
     * {@code MemorySegment.ofArray(array)} or a slice of one: the tensor computes on that array in place, so the caller
     * sees every write. The cpu backend computes on Java arrays (the Vector API loads from arrays), so native
     * segments, read-only segments and BF16 are refused with a one-line error; copy those in with {@code fromHost}.
     */
    @Override
    public Tensor wrap(MemorySegment memory, DType dtype, int... shape) {
        require(memory != null, "wrap: memory must not be null");
        long n = Shapes.numel(shape);
        Object base = memory.heapBase().orElse(null);
        boolean arrayOk = switch (dtype) {
            case F32 -> base instanceof float[];
            case I32 -> base instanceof int[];
            case BF16 -> false;
        };
        if (!arrayOk) {
            throw new IllegalArgumentException("wrap: the cpu backend computes on Java arrays and wraps only a heap "
                    + "segment over a " + (dtype == DType.I32 ? "int[]" : "float[]") + " for " + dtype + ", got "
                    + (memory.isReadOnly() ? "a read-only " : "a ") + (memory.isNative() ? "native" : "heap")
                    + " segment" + (dtype == DType.BF16 ? " of BF16 (not a cpu dtype)" : "")
                    + "; copy it in with fromHost instead");
        }
        require(
                memory.byteSize() == n * dtype.bytes(),
                "wrap: the segment holds " + memory.byteSize() + " bytes but shape " + Arrays.toString(shape) + " of "
                        + dtype + " needs " + n * dtype.bytes());
        require(
                memory.address() % dtype.bytes() == 0,
                "wrap: the segment starts at byte " + memory.address() + " of its array, not at an element");
        int offset = Math.toIntExact(memory.address() / dtype.bytes());
        return dtype == DType.F32
                ? new CpuTensor(this, dtype, shape, (float[]) base, null, offset, null)
                : new CpuTensor(this, dtype, shape, null, (int[]) base, offset, null);
    }

    @Override
    public Tensor fromHost(int[] data, int... shape) {
        require(data != null, "fromHost: data must not be null");
        OpShapes.fromHost(shape, data.length, "ints");
        return new CpuTensor(this, DType.I32, shape, null, data.clone(), 0, null);
    }

    @Override
    public void toHost(Tensor src, float[] dst) {
        CpuTensor s = cpu("toHost", "src", src);
        require(dst != null, "toHost: dst must not be null");
        OpShapes.hostFloats("toHost", "src", s, dst.length);
        System.arraycopy(s.floats(), s.offset(), dst, 0, s.size());
    }

    @Override
    public void toHost(Tensor src, int[] dst) {
        CpuTensor s = cpu("toHost", "src", src);
        require(dst != null, "toHost: dst must not be null");
        OpShapes.hostInts("toHost", "src", s, dst.length);
        System.arraycopy(s.ints(), s.offset(), dst, 0, s.size());
    }

    @Override
    public void copyFromHost(float[] src, Tensor dst) {
        CpuTensor d = cpu("copyFromHost", "dst", dst);
        require(src != null, "copyFromHost: src must not be null");
        OpShapes.hostFloats("copyFromHost", "dst", d, src.length);
        System.arraycopy(src, 0, d.floats(), d.offset(), d.size());
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuTensor s = cpu("copy", "src", src);
        CpuTensor d = cpu("copy", "dst", dst);
        OpShapes.copy(s, d);
        if (s.dtype() == DType.F32) {
            System.arraycopy(s.floats(), s.offset(), d.floats(), d.offset(), s.size());
        } else {
            System.arraycopy(s.ints(), s.offset(), d.ints(), d.offset(), s.size());
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        CpuTensor c = cpu("fill", "t", t);
        OpShapes.fill(c);
        Arrays.fill(c.floats(), c.offset(), c.offset() + c.size(), value);
    }

    @Override
    public Tensor view(Tensor t, int... shape) {
        CpuTensor c = cpu("view", "t", t);
        OpShapes.view(c, shape);
        return new CpuTensor(
                this,
                c.dtype(),
                shape,
                c.dtype() == DType.F32 ? c.floats() : null,
                c.dtype() == DType.I32 ? c.ints() : null,
                c.offset(),
                c.root());
    }

    @Override
    public Tensor slice(Tensor t, int start, int length) {
        CpuTensor c = cpu("slice", "t", t);
        int rowSize = (int) OpShapes.slice(c, start, length);
        int[] shape = c.shape().clone();
        shape[0] = length;
        return new CpuTensor(
                this,
                c.dtype(),
                shape,
                c.dtype() == DType.F32 ? c.floats() : null,
                c.dtype() == DType.I32 ? c.ints() : null,
                c.offset() + start * rowSize,
                c.root());
    }

    // ================================================================= dense linear algebra

    @Override
    public void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        String op = "gemm";
        CpuTensor ta = cpu(op, "a", a), tb = cpu(op, "b", b), tc = cpu(op, "c", c);
        OpShapes.MatmulDims dims = OpShapes.gemm(transA, transB, ta, tb, tc);
        int m = dims.m(), n = dims.n(), k = dims.k(), batch = dims.batch();
        require(
                !overlaps(tc, ta) && !overlaps(tc, tb),
                "gemm: c " + tc.describe() + " overlaps an input; use a separate output");
        boolean broadcastB = dims.broadcastB();
        if (OpShapes.smallGemm(m, n, k)) { // every provider: float64 sums, the same bits as every backend
            Sgemm.smallFloat64(
                    transA,
                    transB,
                    batch,
                    m,
                    n,
                    k,
                    alpha,
                    ta.floats(),
                    ta.offset(),
                    m * k,
                    tb.floats(),
                    tb.offset(),
                    broadcastB ? 0 : k * n,
                    beta,
                    tc.floats(),
                    tc.offset(),
                    m * n);
            return;
        }
        // A single GEMM when batch is 1; a broadcast B with row-major A folds the batch into M for our SGEMM. oneMKL
        // gets the items one by one: it cuts each call into pieces by shape, and a folded call's pieces (and, with
        // its AVX2 kernels, its bits) differ from those of the same item's GEMM run alone.
        boolean fold = batch == 1 || (broadcastB && !transA && vendorGemm == null);
        int items = fold ? 1 : batch, rows = fold ? m * batch : m, bStride = broadcastB ? 0 : k * n;
        if (vendorGemm != null) {
            vendorGemm.gemm(
                    transA,
                    transB,
                    items,
                    rows,
                    n,
                    k,
                    alpha,
                    ta.floats(),
                    ta.offset(),
                    m * k,
                    tb.floats(),
                    tb.offset(),
                    bStride,
                    beta,
                    tc.floats(),
                    tc.offset(),
                    m * n);
        } else {
            sgemm.gemm(
                    transA,
                    transB,
                    items,
                    rows,
                    n,
                    k,
                    alpha,
                    ta.floats(),
                    ta.offset(),
                    m * k,
                    tb.floats(),
                    tb.offset(),
                    bStride,
                    beta,
                    tc.floats(),
                    tc.offset(),
                    m * n);
        }
    }

    private static boolean overlaps(CpuTensor x, CpuTensor y) {
        if (x.floats() != y.floats()) return false;
        return x.offset() < y.offset() + y.size() && y.offset() < x.offset() + x.size() && x.size() > 0 && y.size() > 0;
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        CpuTensor ta = cpu("add", "a", a), tb = cpu("add", "b", b), to = cpu("add", "out", out);
        OpShapes.add(ta, tb, to);
        float[] av = ta.floats(), bv = tb.floats(), ov = to.floats();
        int ao = ta.offset(), bo = tb.offset(), oo = to.offset();
        threads.parallelRanges(ta.size(), ELEMENT_GRAIN, (s, e) -> kern.add(av, ao + s, bv, bo + s, ov, oo + s, e - s));
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        CpuTensor tx = cpu("axpy", "x", x), ty = cpu("axpy", "y", y);
        OpShapes.axpy(tx, ty);
        float[] xv = tx.floats(), yv = ty.floats();
        int xo = tx.offset(), yo = ty.offset();
        threads.parallelRanges(tx.size(), ELEMENT_GRAIN, (s, e) -> kern.axpy(alpha, xv, xo + s, yv, yo + s, e - s));
    }

    @Override
    public void scale(Tensor x, float s) {
        CpuTensor tx = cpu("scale", "x", x);
        OpShapes.scale(tx);
        float[] xv = tx.floats();
        int xo = tx.offset();
        threads.parallelRanges(tx.size(), ELEMENT_GRAIN, (st, e) -> kern.scale(xv, xo + st, e - st, s));
    }

    @Override
    public double sumSquares(Tensor x) {
        CpuTensor tx = cpu("sumSquares", "x", x);
        OpShapes.sumSquares(tx);
        float[] xv = tx.floats();
        int xo = tx.offset(), n = tx.size();
        int chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
        double[] partial = new double[chunks];
        threads.parallelFor(chunks, ci -> {
            int s = ci * SUMSQ_CHUNK, e = Math.min(n, s + SUMSQ_CHUNK);
            double acc = 0;
            for (int i = s; i < e; i++) {
                double v = xv[xo + i];
                acc += v * v;
            }
            partial[ci] = acc;
        });
        double total = 0;
        for (double p : partial) total += p;
        return total;
    }

    @Override
    public void sumRowsAccumulate(Tensor x, Tensor out) {
        CpuTensor tx = cpu("sumRowsAccumulate", "x", x), to = cpu("sumRowsAccumulate", "out", out);
        OpShapes.RowDims dims = OpShapes.sumRowsAccumulate(tx, to);
        int d = dims.cols(), rows = dims.rows();
        float[] xv = tx.floats(), ov = to.floats();
        int xo = tx.offset(), oo = to.offset();
        threads.parallelRanges(d, COLUMN_GRAIN, (c0, c1) -> {
            for (int r = 0; r < rows; r++) kern.add(ov, oo + c0, xv, xo + r * d + c0, ov, oo + c0, c1 - c0);
        });
    }

    // ================================================================= embedding

    private static void checkIds(String op, int[] ids, int off, int n, int limit, String what) {
        for (int i = 0; i < n; i++) {
            int id = ids[off + i];
            if (id < 0 || id >= limit) {
                throw new IllegalArgumentException(OpShapes.indexOutOfRange(op, what, id, i, "[0, " + limit + ")"));
            }
        }
    }

    @Override
    public void embeddingForward(Tensor table, Tensor ids, Tensor out) {
        String op = "embeddingForward";
        CpuTensor tt = cpu(op, "table", table), ti = cpu(op, "ids", ids), to = cpu(op, "out", out);
        OpShapes.EmbeddingDims dims = OpShapes.embeddingForward(tt, ti, to);
        int vocab = dims.vocab(), d = dims.dim(), n = dims.tokens();
        int[] iv = ti.ints();
        int io = ti.offset();
        checkIds(op, iv, io, n, vocab, "token id");
        gather(tt.floats(), tt.offset(), iv, io, n, d, to.floats(), to.offset());
    }

    /** out[r, :] = src[index[r], :] for r < n, rows of width d (indices already checked); parallel over rows. */
    private void gather(float[] src, int so, int[] index, int io, int n, int d, float[] out, int oo) {
        threads.parallelRanges(n, Math.max(1, ELEMENT_GRAIN / Math.max(1, d)), (s, e) -> {
            for (int r = s; r < e; r++) System.arraycopy(src, so + index[io + r] * d, out, oo + r * d, d);
        });
    }

    @Override
    public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        String op = "embeddingBackward";
        CpuTensor tg = cpu(op, "dOut", dOut), ti = cpu(op, "ids", ids), tt = cpu(op, "dTable", dTable);
        OpShapes.EmbeddingDims dims = OpShapes.embeddingBackward(tg, ti, tt);
        int vocab = dims.vocab(), d = dims.dim(), n = dims.tokens();
        int[] iv = ti.ints();
        int io = ti.offset();
        checkIds(op, iv, io, n, vocab, "token id");
        scatterAdd(tg.floats(), tg.offset(), iv, io, n, d, tt.floats(), tt.offset());
    }

    /** out[index[m], :] += src[m, :] for m in order; parallel over column blocks, so deterministic. */
    private void scatterAdd(float[] src, int so, int[] index, int io, int m, int d, float[] out, int oo) {
        threads.parallelRanges(d, COLUMN_GRAIN, (c0, c1) -> {
            for (int r = 0; r < m; r++) {
                int dst = oo + index[io + r] * d + c0;
                kern.add(out, dst, src, so + r * d + c0, out, dst, c1 - c0);
            }
        });
    }

    // ================================================================= RMSNorm

    @Override
    public void rmsNormForward(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        String op = "rmsNormForward";
        CpuTensor tx = cpu(op, "x", x),
                tw = cpu(op, "weight", weight),
                to = cpu(op, "out", out),
                tr = cpu(op, "rstd", rstd);
        OpShapes.RowDims dims = OpShapes.rmsNormForward(tx, tw, eps, to, tr);
        int d = dims.cols(), rows = dims.rows();
        float[] xv = tx.floats(), wv = tw.floats(), ov = to.floats(), rv = tr.floats();
        int xo = tx.offset(), wo = tw.offset(), oo = to.offset(), ro = tr.offset();
        threads.parallelRanges(rows, Math.max(1, ELEMENT_GRAIN / Math.max(1, d)), (s, e) -> {
            for (int r = s; r < e; r++) {
                // the mean square in float64 (one rounding, for rstd): a float32 sum breaks the 2x-naive error rule
                // for some widths on 8-lane vectors (d = 17 on AVX2)
                double ss = kern.dotF64(xv, xo + r * d, xv, xo + r * d, d);
                float rs = (float) (1.0 / Math.sqrt(ss / d + eps));
                rv[ro + r] = rs;
                kern.mulScaled(xv, xo + r * d, wv, wo, ov, oo + r * d, d, rs);
            }
        });
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        String op = "rmsNormBackward";
        CpuTensor tg = cpu(op, "dOut", dOut),
                tx = cpu(op, "x", x),
                tw = cpu(op, "weight", weight),
                tr = cpu(op, "rstd", rstd),
                tdx = cpu(op, "dx", dx),
                tdw = cpu(op, "dWeight", dWeight);
        OpShapes.RowDims dims = OpShapes.rmsNormBackward(tg, tx, tw, tr, tdx, tdw);
        int d = dims.cols(), rows = dims.rows();
        float[] gv = tg.floats(),
                xv = tx.floats(),
                wv = tw.floats(),
                rv = tr.floats(),
                dxv = tdx.floats(),
                dwv = tdw.floats();
        int go = tg.offset(),
                xo = tx.offset(),
                wo = tw.offset(),
                ro = tr.offset(),
                dxo = tdx.offset(),
                dwo = tdw.offset();
        int chunks = (rows + REDUCE_ROWS - 1) / REDUCE_ROWS;
        float[] partial = new float[chunks * d];
        threads.parallelFor(chunks, ci -> {
            int s = ci * REDUCE_ROWS, e = Math.min(rows, s + REDUCE_ROWS);
            for (int r = s; r < e; r++) {
                float rs = rv[ro + r];
                float dot = kern.dot3(gv, go + r * d, wv, wo, xv, xo + r * d, d);
                kern.accumulateScaledProduct(gv, go + r * d, xv, xo + r * d, rs, partial, ci * d, d);
                float c = rs * rs * dot / d;
                kern.rmsNormBackwardRow(gv, go + r * d, wv, wo, xv, xo + r * d, rs, c, dxv, dxo + r * d, d);
            }
        });
        threads.parallelRanges(d, COLUMN_GRAIN, (c0, c1) -> {
            for (int ci = 0; ci < chunks; ci++) kern.add(dwv, dwo + c0, partial, ci * d + c0, dwv, dwo + c0, c1 - c0);
        });
    }

    // ================================================================= RoPE

    private RopeTable ropeTable(RopeFrequencies frequencies, int positionsNeeded) {
        RopeTable t = ropeTable;
        if (t == null || !t.covers(frequencies, positionsNeeded)) {
            int positions =
                    Math.max(positionsNeeded, t != null && t.frequencies().equals(frequencies) ? t.positions() : 0);
            t = RopeTable.build(frequencies, positions);
            ropeTable = t;
        }
        return t;
    }

    @Override
    public void ropeForward(Tensor x, RopeFrequencies frequencies, int positionOffset, Tensor out) {
        rope("ropeForward", x, frequencies, positionOffset, out, 1f);
    }

    @Override
    public void ropeBackward(Tensor dOut, RopeFrequencies frequencies, int positionOffset, Tensor dx) {
        rope("ropeBackward", dOut, frequencies, positionOffset, dx, -1f);
    }

    /** Rotates each (i, i + hd/2) pair by +angle (direction 1) or -angle (direction -1). */
    private void rope(
            String op, Tensor in, RopeFrequencies frequencies, int positionOffset, Tensor out, float direction) {
        CpuTensor ti = cpu(op, "input", in), to = cpu(op, "output", out);
        OpShapes.RopeDims dims = OpShapes.rope(op, ti, frequencies, positionOffset, to);
        int b = dims.batch(), t = dims.seq(), h = dims.heads(), hd = dims.headDim();
        if (ti.size() == 0) return;
        RopeTable table = ropeTable(frequencies, positionOffset + t);
        int half = hd / 2;
        float[] iv = ti.floats(), ov = to.floats(), cos = table.cos(), sin = table.sin();
        int io = ti.offset(), oo = to.offset();
        int rowElems = h * hd;
        threads.parallelRanges(b * t, Math.max(1, ELEMENT_GRAIN / rowElems), (s, e) -> {
            for (int bt = s; bt < e; bt++) {
                int pos = positionOffset + bt % t;
                int tab = pos * half;
                for (int hi = 0; hi < h; hi++) {
                    int base = bt * rowElems + hi * hd;
                    kern.rotatePairs(iv, io + base, ov, oo + base, cos, sin, tab, half, direction);
                }
            }
        });
    }

    // ================================================================= attention

    @Override
    public void attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        String op = "attentionForward";
        CpuTensor tq = cpu(op, "q", q),
                tk = cpu(op, "k", k),
                tv = cpu(op, "v", v),
                to = cpu(op, "out", out),
                tl = cpu(op, "lse", lse);
        OpShapes.AttentionDims dims = OpShapes.attentionForward(tq, tk, tv, to, tl);
        int b = dims.batch(), t = dims.seq(), h = dims.heads(), hkv = dims.kvHeads(), hd = dims.headDim();
        if (tq.size() == 0) return;
        attention.forward(
                b,
                t,
                h,
                hkv,
                hd,
                tq.floats(),
                tq.offset(),
                tk.floats(),
                tk.offset(),
                tv.floats(),
                tv.offset(),
                to.floats(),
                to.offset(),
                tl.floats(),
                tl.offset());
    }

    @Override
    public void attentionCachedForward(Tensor q, Tensor kCache, Tensor vCache, int length, Tensor out) {
        String op = "attentionCachedForward";
        CpuTensor tq = cpu(op, "q", q), tk = cpu(op, "kCache", kCache), tv = cpu(op, "vCache", vCache);
        CpuTensor to = cpu(op, "out", out);
        OpShapes.AttentionDims dims = OpShapes.attentionCachedForward(tq, tk, tv, length, to);
        if (tq.size() == 0) return;
        attention.cached(
                dims.batch(),
                dims.seq(),
                dims.heads(),
                dims.kvHeads(),
                dims.headDim(),
                tk.dim(1),
                length,
                tq.floats(),
                tq.offset(),
                tk.floats(),
                tk.offset(),
                tv.floats(),
                tv.offset(),
                to.floats(),
                to.offset());
    }

    @Override
    public void attentionBackward(
            Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv) {
        String op = "attentionBackward";
        CpuTensor tg = cpu(op, "dOut", dOut),
                tq = cpu(op, "q", q),
                tk = cpu(op, "k", k),
                tv = cpu(op, "v", v),
                to = cpu(op, "out", out),
                tl = cpu(op, "lse", lse),
                tdq = cpu(op, "dq", dq),
                tdk = cpu(op, "dk", dk),
                tdv = cpu(op, "dv", dv);
        OpShapes.AttentionDims dims = OpShapes.attentionBackward(tg, tq, tk, tv, to, tl, tdq, tdk, tdv);
        int b = dims.batch(), t = dims.seq(), h = dims.heads(), hkv = dims.kvHeads(), hd = dims.headDim();
        if (tq.size() == 0) return;
        attention.backward(
                b,
                t,
                h,
                hkv,
                hd,
                tg.floats(),
                tg.offset(),
                tq.floats(),
                tq.offset(),
                tk.floats(),
                tk.offset(),
                tv.floats(),
                tv.offset(),
                to.floats(),
                to.offset(),
                tl.floats(),
                tl.offset(),
                tdq.floats(),
                tdq.offset(),
                tdk.floats(),
                tdk.offset(),
                tdv.floats(),
                tdv.offset());
    }

    // ================================================================= SwiGLU

    @Override
    public void swiGluForward(Tensor gate, Tensor up, Tensor out) {
        String op = "swiGluForward";
        CpuTensor tg = cpu(op, "gate", gate), tu = cpu(op, "up", up), to = cpu(op, "out", out);
        OpShapes.swiGluForward(tg, tu, to);
        float[] gv = tg.floats(), uv = tu.floats(), ov = to.floats();
        int go = tg.offset(), uo = tu.offset(), oo = to.offset();
        threads.parallelRanges(
                tg.size(), ELEMENT_GRAIN, (s, e) -> kern.swiGluForward(gv, go + s, uv, uo + s, ov, oo + s, e - s));
    }

    @Override
    public void swiGluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        String op = "swiGluBackward";
        CpuTensor td = cpu(op, "dOut", dOut),
                tg = cpu(op, "gate", gate),
                tu = cpu(op, "up", up),
                tdg = cpu(op, "dGate", dGate),
                tdu = cpu(op, "dUp", dUp);
        OpShapes.swiGluBackward(td, tg, tu, tdg, tdu);
        float[] dv = td.floats(), gv = tg.floats(), uv = tu.floats(), dgv = tdg.floats(), duv = tdu.floats();
        int dOff = td.offset(), go = tg.offset(), uo = tu.offset(), dgo = tdg.offset(), duo = tdu.offset();
        threads.parallelRanges(
                tg.size(),
                ELEMENT_GRAIN,
                (s, e) -> kern.swiGluBackward(dv, dOff + s, gv, go + s, uv, uo + s, dgv, dgo + s, duv, duo + s, e - s));
    }

    // ================================================================= loss

    @Override
    public LossStats crossEntropy(Tensor logits, Tensor targets, Tensor dLogits, float gradScale) {
        String op = "crossEntropy";
        CpuTensor tl = cpu(op, "logits", logits), tt = cpu(op, "targets", targets);
        CpuTensor tdl = dLogits == null ? null : cpu(op, "dLogits", dLogits);
        OpShapes.RowDims dims = OpShapes.crossEntropy(tl, tt, tdl);
        int vocab = dims.cols(), rows = dims.rows();
        int[] tv = tt.ints();
        int tOff = tt.offset();
        for (int r = 0; r < rows; r++) {
            int y = tv[tOff + r];
            if (y != IGNORE_INDEX && (y < 0 || y >= vocab)) {
                throw new IllegalArgumentException(OpShapes.indexOutOfRange(
                        op, "target", y, r, "[0, " + vocab + ") and is not IGNORE_INDEX (" + IGNORE_INDEX + ")"));
            }
        }
        float[] lv = tl.floats();
        float[] gv = tdl == null ? null : tdl.floats();
        int lo = tl.offset(), gOff = tdl == null ? 0 : tdl.offset();
        int chunks = (rows + REDUCE_ROWS - 1) / REDUCE_ROWS;
        double[] lossPart = new double[chunks];
        long[] correctPart = new long[chunks];
        long[] countPart = new long[chunks];
        threads.parallelFor(chunks, ci -> {
            int s = ci * REDUCE_ROWS, e = Math.min(rows, s + REDUCE_ROWS);
            double loss = 0;
            long correct = 0, count = 0;
            for (int r = s; r < e; r++) {
                int row = lo + r * vocab;
                int y = tv[tOff + r];
                if (y == IGNORE_INDEX) {
                    if (gv != null) Arrays.fill(gv, gOff + r * vocab, gOff + (r + 1) * vocab, 0f);
                    continue;
                }
                float max = kern.max(lv, row, vocab);
                int arg = kern.indexOf(lv, row, vocab, max);
                float targetLogit = lv[row + y];
                // With a gradient, exp(x - max) is computed once into dLogits (which may be the logits) and
                // normalised there: softmax = exp(x - max) * (1 / sum).
                float sum = gv == null
                        ? kern.expShiftedSum(lv, row, vocab, max)
                        : kern.expShifted(lv, row, gv, gOff + r * vocab, vocab, max);
                double lse = max + StrictMath.log(sum);
                loss += lse - targetLogit;
                if (arg == y) correct++;
                count++;
                if (gv != null) {
                    kern.scale(gv, gOff + r * vocab, vocab, gradScale / sum);
                    gv[gOff + r * vocab + y] -= gradScale;
                }
            }
            lossPart[ci] = loss;
            correctPart[ci] = correct;
            countPart[ci] = count;
        });
        double loss = 0;
        long correct = 0, count = 0;
        for (int ci = 0; ci < chunks; ci++) {
            loss += lossPart[ci];
            correct += correctPart[ci];
            count += countPart[ci];
        }
        return new LossStats(loss, correct, count);
    }

    // ================================================================= optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        String op = "adamW";
        CpuTensor tp = cpu(op, "param", param), tg = cpu(op, "grad", grad), tm = cpu(op, "m", m), tv = cpu(op, "v", v);
        OpShapes.adamW(tp, tg, tm, tv, step);
        float bc1 = (float) (1.0 - StrictMath.pow(step.beta1(), step.step()));
        float bc2 = (float) (1.0 - StrictMath.pow(step.beta2(), step.step()));
        float[] pv = tp.floats(), gv = tg.floats(), mv = tm.floats(), vv = tv.floats();
        int po = tp.offset(), go = tg.offset(), mo = tm.offset(), vo = tv.offset();
        threads.parallelRanges(
                tp.size(),
                ELEMENT_GRAIN,
                (s, e) -> kern.adamW(
                        pv,
                        po + s,
                        gv,
                        go + s,
                        mv,
                        mo + s,
                        vv,
                        vo + s,
                        e - s,
                        step.lr(),
                        step.beta1(),
                        step.beta2(),
                        step.eps(),
                        step.weightDecay(),
                        step.gradScale(),
                        bc1,
                        bc2));
    }

    // ================================================================= MoDE gate and merge

    @Override
    public void softmaxForward(Tensor logits, Tensor probs) {
        String op = "softmaxForward";
        CpuTensor tl = cpu(op, "logits", logits), tp = cpu(op, "probs", probs);
        OpShapes.RowDims dims = OpShapes.softmaxForward(tl, tp);
        int e = dims.cols(), rows = dims.rows();
        float[] lv = tl.floats(), pv = tp.floats();
        int lo = tl.offset(), po = tp.offset();
        threads.parallelRanges(rows, Math.max(1, ELEMENT_GRAIN / e), (s, end) -> {
            for (int r = s; r < end; r++) {
                float max = kern.max(lv, lo + r * e, e);
                float sum = kern.expShifted(lv, lo + r * e, pv, po + r * e, e, max);
                kern.scale(pv, po + r * e, e, 1f / sum);
            }
        });
    }

    @Override
    public void softmaxBackward(Tensor dProbs, Tensor probs, Tensor dLogits) {
        String op = "softmaxBackward";
        CpuTensor tg = cpu(op, "dProbs", dProbs), tp = cpu(op, "probs", probs), td = cpu(op, "dLogits", dLogits);
        OpShapes.RowDims dims = OpShapes.softmaxBackward(tg, tp, td);
        int e = dims.cols(), rows = dims.rows();
        float[] gv = tg.floats(), pv = tp.floats(), dv = td.floats();
        int go = tg.offset(), po = tp.offset(), dOff = td.offset();
        threads.parallelRanges(rows, Math.max(1, ELEMENT_GRAIN / Math.max(1, e)), (s, end) -> {
            for (int r = s; r < end; r++) {
                float dot = kern.dot(gv, go + r * e, pv, po + r * e, e);
                for (int j = 0; j < e; j++) {
                    dv[dOff + r * e + j] = pv[po + r * e + j] * (gv[go + r * e + j] - dot);
                }
            }
        });
    }

    @Override
    public void weightedMergeForward(Tensor branches, Tensor probs, Tensor out) {
        String op = "weightedMergeForward";
        CpuTensor tb = cpu(op, "branches", branches), tp = cpu(op, "probs", probs), to = cpu(op, "out", out);
        OpShapes.MergeDims dims = OpShapes.weightedMergeForward(tb, tp, to);
        int e = dims.branches(), n = dims.rows(), d = dims.width();
        float[] bv = tb.floats(), pv = tp.floats(), ov = to.floats();
        int bo = tb.offset(), po = tp.offset(), oo = to.offset();
        threads.parallelRanges(n, Math.max(1, ELEMENT_GRAIN / Math.max(1, d * Math.max(1, e))), (s, end) -> {
            for (int r = s; r < end; r++) {
                Arrays.fill(ov, oo + r * d, oo + (r + 1) * d, 0f);
                for (int j = 0; j < e; j++) kern.axpy(pv[po + r * e + j], bv, bo + (j * n + r) * d, ov, oo + r * d, d);
            }
        });
    }

    @Override
    public void weightedMergeBackward(Tensor dOut, Tensor branches, Tensor probs, Tensor dBranches, Tensor dProbs) {
        String op = "weightedMergeBackward";
        CpuTensor tg = cpu(op, "dOut", dOut),
                tb = cpu(op, "branches", branches),
                tp = cpu(op, "probs", probs),
                tdp = cpu(op, "dProbs", dProbs);
        CpuTensor tdb = dBranches == null ? null : cpu(op, "dBranches", dBranches);
        OpShapes.MergeDims dims = OpShapes.weightedMergeBackward(tg, tb, tp, tdb, tdp);
        int e = dims.branches(), n = dims.rows(), d = dims.width();
        float[] gv = tg.floats(), bv = tb.floats(), pv = tp.floats(), dpv = tdp.floats();
        float[] dbv = tdb == null ? null : tdb.floats();
        int go = tg.offset(),
                bo = tb.offset(),
                po = tp.offset(),
                dpo = tdp.offset(),
                dbo = tdb == null ? 0 : tdb.offset();
        threads.parallelRanges(n, Math.max(1, ELEMENT_GRAIN / Math.max(1, d * Math.max(1, e))), (s, end) -> {
            for (int r = s; r < end; r++) {
                for (int j = 0; j < e; j++) {
                    int br = bo + (j * n + r) * d;
                    dpv[dpo + r * e + j] = kern.dot(gv, go + r * d, bv, br, d);
                }
                if (dbv != null) {
                    for (int j = 0; j < e; j++) {
                        int dst = dbo + (j * n + r) * d;
                        float p = pv[po + r * e + j];
                        for (int c = 0; c < d; c++) dbv[dst + c] = p * gv[go + r * d + c];
                    }
                }
            }
        });
    }

    // ================================================================= sparse routing and data movement

    @Override
    public void topK(Tensor probs, int k, Tensor indices, Tensor weights) {
        String op = "topK";
        CpuTensor tp = cpu(op, "probs", probs), ti = cpu(op, "indices", indices), tw = cpu(op, "weights", weights);
        OpShapes.TopKDims dims = OpShapes.topK(tp, k, ti, tw);
        int e = dims.experts(), rows = dims.rows();
        float[] pv = tp.floats(), wv = tw.floats();
        int[] iv = ti.ints();
        int po = tp.offset(), io = ti.offset(), wo = tw.offset();
        threads.parallelRanges(rows, Math.max(1, ELEMENT_GRAIN / Math.max(1, e * k)), (s, end) -> {
            boolean[] taken = new boolean[e];
            for (int r = s; r < end; r++) {
                Arrays.fill(taken, false);
                float sum = 0f;
                for (int slot = 0; slot < k; slot++) {
                    int best = -1;
                    float bestVal = 0f;
                    for (int j = 0; j < e; j++) {
                        if (taken[j]) continue;
                        float p = pv[po + r * e + j];
                        if (best < 0 || p > bestVal) {
                            best = j;
                            bestVal = p;
                        }
                    }
                    taken[best] = true;
                    iv[io + r * k + slot] = best;
                    wv[wo + r * k + slot] = bestVal;
                    sum += bestVal;
                }
                float inv = 1f / sum;
                for (int slot = 0; slot < k; slot++) wv[wo + r * k + slot] *= inv;
            }
        });
    }

    @Override
    public void gatherRows(Tensor src, Tensor index, Tensor out) {
        String op = "gatherRows";
        CpuTensor ts = cpu(op, "src", src), ti = cpu(op, "index", index), to = cpu(op, "out", out);
        OpShapes.RowMoveDims dims = OpShapes.gatherRows(ts, ti, to);
        int d = dims.width(), n = dims.tableRows(), m = dims.moved();
        int[] iv = ti.ints();
        int io = ti.offset();
        checkIds(op, iv, io, m, n, "row index");
        gather(ts.floats(), ts.offset(), iv, io, m, d, to.floats(), to.offset());
    }

    @Override
    public void scatterAddRows(Tensor src, Tensor index, Tensor out) {
        String op = "scatterAddRows";
        CpuTensor ts = cpu(op, "src", src), ti = cpu(op, "index", index), to = cpu(op, "out", out);
        OpShapes.RowMoveDims dims = OpShapes.scatterAddRows(ts, ti, to);
        int d = dims.width(), n = dims.tableRows(), m = dims.moved();
        int[] iv = ti.ints();
        int io = ti.offset();
        checkIds(op, iv, io, m, n, "row index");
        scatterAdd(ts.floats(), ts.offset(), iv, io, m, d, to.floats(), to.offset());
    }
}
