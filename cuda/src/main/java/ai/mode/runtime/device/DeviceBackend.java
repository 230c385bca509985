package ai.mode.runtime.device;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Shapes;
import ai.mode.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Optional;

/**
 * Every {@link Backend} op implemented by launching the project's CUDA kernels ({@code mode-kernels}) on a
 * {@link Device}: the {@code cuda} backend over the CUDA driver, {@code emu} over the CPU emulator.
 *
 * <p>Tensors are {@link DeviceTensor}s. F32 tensors run the {@code _f32} kernels; BF16 activations run the
 * {@code _bf16} kernels (bf16 storage, float32 math), with float32 parameters, parameter gradients and
 * saved statistics (RMSNorm weight and rstd, attention lse, embedding-table gradient, sumRows output).
 * GEMM: a device's vendor GEMM ({@link Device#vendorGemm()}) is tried first, then the WMMA tensor-core
 * kernel for BF16 operands on compute capability 8.0+ (unless disabled), else the tiled float32-math kernel.
 *
 * <p>Index errors (embedding ids, gather/scatter rows, cross-entropy targets outside their range) are
 * recorded by the kernels in a device error word, which is checked, cleared and thrown as an
 * {@link IllegalArgumentException} naming the op at the next {@link #synchronize()}, host copy or
 * read-back ({@code sumSquares}, {@code crossEntropy}). The word keeps, per error kind, the lowest offending
 * position ({@code atomicMin} on a packed position and value), so the message is the same on every run and
 * names the position the cpu backend names. Temporaries (attention delta, loss rows) are
 * allocated per call, so devices should pool {@link Device#malloc}.
 */
public class DeviceBackend implements Backend {
    private static final int MAX_GRID = 65535;
    /** Blocks of the sum of squares' first stage (at most; fewer for short tensors). */
    private static final int SUMSQ_MAX_PARTIALS = 1024;

    /** A raw device address parameter (for null optional outputs). */
    private record Ptr(long address) {}

    private static final Ptr NULL = new Ptr(0);

    private final Device device;
    private final String name;
    private final boolean tensorCores;
    private static final int ERROR_SLOTS = 4; // kErrSlots in mode_common.cuh
    private static final long ERROR_BYTES = 8L * ERROR_SLOTS;
    private final long errorWord; // u64[ERROR_SLOTS]: per code, (position << 32) | value; all ones when clear
    private final long reduceBuffer; // double[SUMSQ_MAX_PARTIALS + 4]
    private boolean closed;

    /** A backend named after the device, using tensor-core kernels where the device supports them. */
    public DeviceBackend(Device device, String name) {
        this(device, name, true);
    }

    /**
     * @param tensorCores whether BF16 GEMMs may use the WMMA kernel (on compute capability 8.0+); false
     *                    forces the tiled kernel (tests use both)
     */
    public DeviceBackend(Device device, String name, boolean tensorCores) {
        this.device = device;
        this.name = name;
        this.tensorCores = tensorCores;
        this.errorWord = device.malloc(ERROR_BYTES);
        device.memset(errorWord, 0xFF, ERROR_BYTES);
        this.reduceBuffer = device.malloc(8L * (SUMSQ_MAX_PARTIALS + 4));
    }

    /** The device this backend launches on. */
    public Device device() {
        return device;
    }

    @Override
    public String name() {
        return name;
    }

    // ================================================================== memory

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        DeviceTensor t = uninitialized(dtype, shape);
        if (t.byteSize() > 0) device.memset(t.pointer(), 0, t.byteSize());
        return t;
    }

    private DeviceTensor uninitialized(DType dtype, int... shape) {
        long bytes = Shapes.numel(shape) * dtype.bytes();
        long ptr = bytes == 0 ? 0 : device.malloc(bytes);
        return new DeviceTensor(this, ptr, shape, dtype, true);
    }

    void release(long pointer) {
        if (pointer != 0 && !closed) device.free(pointer);
    }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        requireHostShape(shape, data.length);
        DeviceTensor t = uninitialized(DType.F32, shape);
        upload(MemorySegment.ofArray(data), t);
        return t;
    }

    @Override
    public Tensor fromHost(int[] data, int... shape) {
        requireHostShape(shape, data.length);
        DeviceTensor t = uninitialized(DType.I32, shape);
        upload(MemorySegment.ofArray(data), t);
        return t;
    }

    private static void requireHostShape(int[] shape, int length) {
        if (Shapes.numel(shape) != length) {
            throw new IllegalArgumentException(
                    "fromHost: " + length + " values do not fill shape " + Arrays.toString(shape));
        }
    }

    private void upload(MemorySegment heap, DeviceTensor dst) {
        long bytes = dst.byteSize();
        if (bytes == 0) return;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(bytes, 8);
            MemorySegment.copy(heap, 0, staging, 0, bytes);
            device.copyHostToDevice(staging, dst.pointer(), bytes);
        }
    }

    @Override
    public void toHost(Tensor src, float[] dst) {
        DeviceTensor s = dev(src);
        requireHostLength("toHost", s, dst.length);
        checkErrors();
        if (s.numel() == 0) return;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(s.byteSize(), 8);
            device.copyDeviceToHost(s.pointer(), staging, s.byteSize());
            switch (s.dtype()) {
                case F32 -> MemorySegment.copy(staging, ValueLayout.JAVA_FLOAT, 0, dst, 0, dst.length);
                case BF16 -> {
                    for (int i = 0; i < dst.length; i++)
                        dst[i] = Bf16.toFloat(staging.getAtIndex(ValueLayout.JAVA_SHORT, i));
                }
                case I32 ->
                    throw new IllegalArgumentException(
                            "toHost: " + s.describe() + " is I32; use toHost(Tensor, int[])");
            }
        }
    }

    @Override
    public void toHost(Tensor src, int[] dst) {
        DeviceTensor s = dev(src);
        Shapes.requireDType("toHost", "src", s, DType.I32);
        requireHostLength("toHost", s, dst.length);
        checkErrors();
        if (s.numel() == 0) return;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(s.byteSize(), 8);
            device.copyDeviceToHost(s.pointer(), staging, s.byteSize());
            MemorySegment.copy(staging, ValueLayout.JAVA_INT, 0, dst, 0, dst.length);
        }
    }

    @Override
    public void copyFromHost(float[] src, Tensor dst) {
        DeviceTensor d = dev(dst);
        requireHostLength("copyFromHost", d, src.length);
        switch (d.dtype()) {
            case F32 -> upload(MemorySegment.ofArray(src), d);
            case BF16 -> {
                short[] bits = new short[src.length];
                for (int i = 0; i < src.length; i++) bits[i] = Bf16.fromFloat(src[i]);
                upload(MemorySegment.ofArray(bits), d);
            }
            case I32 ->
                throw new IllegalArgumentException("copyFromHost: " + d.describe() + " is I32, not a float tensor");
        }
    }

    private static void requireHostLength(String op, Tensor t, int length) {
        if (t.numel() != length) {
            throw new IllegalArgumentException(
                    op + ": host array has " + length + " elements but " + t.describe() + " has " + t.numel());
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        DeviceTensor s = dev(src), d = dev(dst);
        if (s.dtype() != d.dtype() || s.numel() != d.numel()) {
            throw new IllegalArgumentException(
                    "copy: " + s.describe() + " and " + d.describe() + " differ in dtype or element count");
        }
        if (s.numel() > 0 && s.pointer() != d.pointer())
            device.copyDeviceToDevice(s.pointer(), d.pointer(), s.byteSize());
    }

    @Override
    public void fill(Tensor t, float value) {
        DeviceTensor x = dev(t);
        Shapes.requireDType("fill", "t", x, DType.F32);
        long n = x.numel();
        if (n > 0) run("mode_fill_fwd_f32", grid(n, 256), 1, 1, 256, 1, 1, x, n, value);
    }

    @Override
    public Tensor view(Tensor t, int... shape) {
        DeviceTensor x = dev(t);
        if (Shapes.numel(shape) != x.numel()) {
            throw new IllegalArgumentException("view: cannot view " + x.describe() + " as " + Arrays.toString(shape));
        }
        return new DeviceTensor(this, x.pointer(), shape, x.dtype(), false);
    }

    @Override
    public Tensor slice(Tensor t, int start, int length) {
        DeviceTensor x = dev(t);
        if (x.rank() == 0 || start < 0 || length < 0 || start + length > x.dim(0)) {
            throw new IllegalArgumentException(
                    "slice: rows [" + start + ", " + (start + length) + ") outside " + x.describe());
        }
        int[] shape = x.shape().clone();
        shape[0] = length;
        long rowBytes = x.dim(0) == 0 ? 0 : x.byteSize() / x.dim(0);
        return new DeviceTensor(this, x.pointer() + start * rowBytes, shape, x.dtype(), false);
    }

    @Override
    public void synchronize() {
        device.synchronize();
        checkErrors();
    }

    @Override
    public void close() {
        if (!closed) {
            device.synchronize();
            device.free(errorWord);
            device.free(reduceBuffer);
            closed = true;
            device.close();
        }
    }

    // ================================================================== dense linear algebra

    @Override
    public void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        DeviceTensor ta = dev(a), tb = dev(b), tc = dev(c);
        int rank = tc.rank();
        if ((rank != 2 && rank != 3) || ta.rank() != rank || (tb.rank() != rank && !(rank == 3 && tb.rank() == 2))) {
            throw new IllegalArgumentException("gemm: ranks must be 2-D, or 3-D with b 2-D or 3-D; got a "
                    + ta.describe() + ", b " + tb.describe() + ", c " + tc.describe());
        }
        int batch = rank == 3 ? tc.dim(0) : 1;
        int m = tc.dim(-2), n = tc.dim(-1);
        int k = transA ? ta.dim(-2) : ta.dim(-1);
        int am = transA ? ta.dim(-1) : ta.dim(-2);
        int bk = transB ? tb.dim(-1) : tb.dim(-2);
        int bn = transB ? tb.dim(-2) : tb.dim(-1);
        boolean batchOk = rank == 2 || (ta.dim(0) == batch && (tb.rank() == 2 || tb.dim(0) == batch));
        if (am != m || bk != k || bn != n || !batchOk) {
            throw new IllegalArgumentException(
                    "gemm: shapes do not match: op(a) of " + ta.describe() + (transA ? "^T" : "") + ", op(b) of "
                            + tb.describe() + (transB ? "^T" : "") + ", c " + tc.describe());
        }
        if (ta.dtype() != tb.dtype()
                || ta.dtype() == DType.I32
                || tc.dtype() == DType.I32
                || (ta.dtype() == DType.F32 && tc.dtype() != DType.F32)) {
            throw new IllegalArgumentException(
                    "gemm: supported dtypes are a, b F32 with c F32, or a, b BF16 with c BF16 or F32;" + " got "
                            + ta.describe() + ", " + tb.describe() + ", " + tc.describe());
        }
        if (batch == 0 || m == 0 || n == 0) return;
        LaunchGeometry.Grid grid = LaunchGeometry.gemm(m, n, batch);
        long strideA = rank == 3 ? (long) m * k : 0;
        long strideB = tb.rank() == 3 ? (long) k * n : 0;
        long strideC = rank == 3 ? (long) m * n : 0;
        Optional<Gemm> vendor = device.vendorGemm();
        if (vendor.isPresent()
                && vendor.get()
                        .run(new Gemm.Problem(
                                transA,
                                transB,
                                m,
                                n,
                                k,
                                alpha,
                                ta.pointer(),
                                strideA,
                                tb.pointer(),
                                strideB,
                                ta.dtype(),
                                beta,
                                tc.pointer(),
                                strideC,
                                tc.dtype(),
                                batch))) {
            return;
        }
        String entry;
        int threads;
        if (ta.dtype() == DType.BF16) {
            boolean wmma = tensorCores && device.computeCapability() >= 80;
            entry = (wmma ? "mode_gemm_wmma_" : "mode_gemm_tiled_") + (tc.dtype() == DType.BF16 ? "bf16" : "bf16f32");
            threads = wmma ? 128 : 256;
        } else {
            entry = "mode_gemm_tiled_f32";
            threads = 256;
        }
        run(
                entry,
                grid.x(),
                grid.y(),
                grid.z(),
                threads,
                1,
                1,
                transA ? 1 : 0,
                transB ? 1 : 0,
                m,
                n,
                k,
                alpha,
                ta,
                strideA,
                tb,
                strideB,
                beta,
                tc,
                strideC);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        DeviceTensor x = dev(a), y = dev(b), o = dev(out);
        Shapes.requireSameShape("add", x, y);
        Shapes.requireSameShape("add", x, o);
        String sfx = sameFloatType("add", x, y, o);
        long n = x.numel();
        if (n > 0) run("mode_add_fwd_" + sfx, grid(n, 256), 1, 1, 256, 1, 1, x, y, o, n);
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        DeviceTensor tx = dev(x), ty = dev(y);
        Shapes.requireSameShape("axpy", tx, ty);
        String sfx = sameFloatType("axpy", tx, ty);
        long n = tx.numel();
        if (n > 0) run("mode_axpy_fwd_" + sfx, grid(n, 256), 1, 1, 256, 1, 1, alpha, tx, ty, n);
    }

    @Override
    public void scale(Tensor x, float s) {
        DeviceTensor tx = dev(x);
        String sfx = sameFloatType("scale", tx);
        long n = tx.numel();
        if (n > 0) run("mode_scale_fwd_" + sfx, grid(n, 256), 1, 1, 256, 1, 1, tx, s, n);
    }

    @Override
    public double sumSquares(Tensor x) {
        DeviceTensor tx = dev(x);
        String sfx = sameFloatType("sumSquares", tx);
        long n = tx.numel();
        if (n == 0) return 0.0;
        // The partial count depends only on n, so the summation order is the same on every device.
        int partials = (int) Math.min(SUMSQ_MAX_PARTIALS, Math.max(1, (n + 255) / 256));
        long result = reduceBuffer + 8L * SUMSQ_MAX_PARTIALS;
        run("mode_sumsquares_partial_" + sfx, partials, 1, 1, 256, 1, 1, tx, n, new Ptr(reduceBuffer));
        run("mode_sumsquares_final_f64", 1, 1, 1, 256, 1, 1, new Ptr(reduceBuffer), partials, new Ptr(result));
        return readDoubles(result, 1)[0];
    }

    @Override
    public void sumRowsAccumulate(Tensor x, Tensor out) {
        DeviceTensor tx = dev(x), to = dev(out);
        String sfx = sameFloatType("sumRowsAccumulate", tx);
        int cols = tx.rank() == 0 ? 1 : tx.dim(-1);
        Shapes.requireDType("sumRowsAccumulate", "out", to, DType.F32);
        Shapes.requireNumel("sumRowsAccumulate", "out", to, cols);
        int rows = Shapes.rows(tx);
        if (cols > 0 && rows > 0) {
            columnSum(
                    rows,
                    cols,
                    to,
                    (chunk, partial) -> run(
                            "mode_sumrows_fwd_" + sfx,
                            ceilDiv(cols, LaunchGeometry.COLUMN_SUM_COLUMNS),
                            ceilDiv(rows, chunk),
                            1,
                            32,
                            8,
                            1,
                            tx,
                            rows,
                            cols,
                            chunk,
                            partial));
        }
    }

    /** The first stage of a column sum: launches a kernel writing per-chunk sums to {@code partial}. */
    @FunctionalInterface
    private interface ColumnSumStage {
        void launch(int chunk, DeviceTensor partial);
    }

    /**
     * {@code out [cols] += column sums of a [rows, cols] matrix}: {@code stage} writes partial [chunks, cols], one
     * row of sums per chunk of rows (many blocks even for long columns), then {@code mode_colsum_finish_f32} adds
     * them in chunk order. Chunks depend only on the shape, so the bits do too.
     */
    private void columnSum(int rows, int cols, DeviceTensor out, ColumnSumStage stage) {
        int chunk = LaunchGeometry.columnSumChunk(rows, cols), chunks = ceilDiv(rows, chunk);
        try (DeviceTensor partial = uninitialized(DType.F32, chunks, cols)) {
            stage.launch(chunk, partial);
            run("mode_colsum_finish_f32", grid(cols, 256), 1, 1, 256, 1, 1, partial, chunks, cols, out);
        }
    }

    // ================================================================== embedding

    @Override
    public void embeddingForward(Tensor table, Tensor ids, Tensor out) {
        DeviceTensor tt = dev(table), ti = dev(ids), to = dev(out);
        Shapes.requireRank("embeddingForward", "table", tt, 2);
        Shapes.requireDType("embeddingForward", "ids", ti, DType.I32);
        int v = tt.dim(0), d = tt.dim(1), n = Math.toIntExact(ti.numel());
        Shapes.requireNumel("embeddingForward", "out", to, (long) n * d);
        String sfx = sameFloatType("embeddingForward", tt, to);
        if (n > 0 && d > 0)
            run(
                    "mode_embedding_fwd_" + sfx,
                    Math.min(n, MAX_GRID),
                    1,
                    1,
                    128,
                    1,
                    1,
                    tt,
                    ti,
                    to,
                    n,
                    d,
                    v,
                    new Ptr(errorWord));
    }

    @Override
    public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        DeviceTensor g = dev(dOut), ti = dev(ids), dt = dev(dTable);
        Shapes.requireRank("embeddingBackward", "dTable", dt, 2);
        Shapes.requireDType("embeddingBackward", "ids", ti, DType.I32);
        Shapes.requireDType("embeddingBackward", "dTable", dt, DType.F32);
        int v = dt.dim(0), d = dt.dim(1), n = Math.toIntExact(ti.numel());
        Shapes.requireNumel("embeddingBackward", "dOut", g, (long) n * d);
        String sfx = sameFloatType("embeddingBackward", g);
        if (n > 0 && d > 0)
            run(
                    "mode_embedding_bwd_" + sfx,
                    ceilDiv(d, LaunchGeometry.SCATTER_COLUMNS),
                    LaunchGeometry.scatterSlices(d, v),
                    1,
                    128,
                    1,
                    1,
                    g,
                    ti,
                    dt,
                    n,
                    d,
                    v,
                    new Ptr(errorWord));
    }

    // ================================================================== RMSNorm

    @Override
    public void rmsNormForward(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        DeviceTensor tx = dev(x), tw = dev(weight), to = dev(out), tr = dev(rstd);
        int d = tx.dim(-1), n = Shapes.rows(tx);
        Shapes.requireSameShape("rmsNormForward", tx, to);
        requireF32Vector("rmsNormForward", "weight", tw, d);
        requireF32Vector("rmsNormForward", "rstd", tr, n);
        String sfx = sameFloatType("rmsNormForward", tx, to);
        if (n > 0 && d > 0)
            run("mode_rmsnorm_fwd_" + sfx, Math.min(n, MAX_GRID), 1, 1, 128, 1, 1, tx, tw, eps, to, tr, n, d);
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        DeviceTensor g = dev(dOut), tx = dev(x), tw = dev(weight), tr = dev(rstd), tdx = dev(dx), tdw = dev(dWeight);
        int d = tx.dim(-1), n = Shapes.rows(tx);
        Shapes.requireSameShape("rmsNormBackward", tx, g);
        Shapes.requireSameShape("rmsNormBackward", tx, tdx);
        requireF32Vector("rmsNormBackward", "weight", tw, d);
        requireF32Vector("rmsNormBackward", "rstd", tr, n);
        requireF32Vector("rmsNormBackward", "dWeight", tdw, d);
        String sfx = sameFloatType("rmsNormBackward", tx, g, tdx);
        if (n == 0 || d == 0) return;
        // dWeight first: dx may alias dOut.
        columnSum(
                n,
                d,
                tdw,
                (chunk, partial) -> run(
                        "mode_rmsnorm_bwdweight_" + sfx,
                        ceilDiv(d, LaunchGeometry.COLUMN_SUM_COLUMNS),
                        ceilDiv(n, chunk),
                        1,
                        32,
                        8,
                        1,
                        g,
                        tx,
                        tr,
                        partial,
                        n,
                        d,
                        chunk));
        run("mode_rmsnorm_bwd_" + sfx, Math.min(n, MAX_GRID), 1, 1, 128, 1, 1, g, tx, tw, tr, tdx, n, d);
    }

    // ================================================================== RoPE

    @Override
    public void ropeForward(Tensor x, float theta, int positionOffset, Tensor out) {
        rope("ropeForward", "fwd", x, theta, positionOffset, out);
    }

    @Override
    public void ropeBackward(Tensor dOut, float theta, int positionOffset, Tensor dx) {
        rope("ropeBackward", "bwd", dOut, theta, positionOffset, dx);
    }

    private void rope(String op, String pass, Tensor x, float theta, int positionOffset, Tensor out) {
        DeviceTensor tx = dev(x), to = dev(out);
        Shapes.requireRank(op, "x", tx, 4);
        Shapes.requireSameShape(op, tx, to);
        int b = tx.dim(0), t = tx.dim(1), h = tx.dim(2), hd = tx.dim(3);
        if (hd % 2 != 0) throw new IllegalArgumentException(op + ": head dimension must be even, got " + tx.describe());
        String sfx = sameFloatType(op, tx, to);
        long pairs = tx.numel() / 2;
        if (pairs > 0)
            run(
                    "mode_rope_" + pass + "_" + sfx,
                    grid(pairs, 256),
                    1,
                    1,
                    256,
                    1,
                    1,
                    tx,
                    to,
                    b,
                    t,
                    h,
                    hd,
                    theta,
                    positionOffset);
    }

    // ================================================================== attention

    /** Head-dimension tile of the attention kernels for head dimension {@code hd}. */
    private static int headTile(String op, int hd) {
        if (hd <= 0 || hd > 128)
            throw new IllegalArgumentException(op + ": head dimension " + hd + " not supported (1..128)");
        return hd <= 32 ? 32 : hd <= 64 ? 64 : 128;
    }

    private record AttnDims(int b, int t, int h, int hkv, int hd) {}

    private static AttnDims attentionDims(
            String op, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, DeviceTensor lse) {
        Shapes.requireRank(op, "q", q, 4);
        Shapes.requireRank(op, "k", k, 4);
        int b = q.dim(0), t = q.dim(1), h = q.dim(2), hd = q.dim(3), hkv = k.dim(2);
        Shapes.requireShape(op, "k", k, b, t, hkv, hd);
        Shapes.requireShape(op, "v", v, b, t, hkv, hd);
        Shapes.requireSameShape(op, q, out);
        Shapes.requireShape(op, "lse", lse, b, h, t);
        Shapes.requireDType(op, "lse", lse, DType.F32);
        if (hkv == 0 || h % hkv != 0) {
            throw new IllegalArgumentException(op + ": query heads " + h + " must be a multiple of kv heads " + hkv);
        }
        LaunchGeometry.requireAttentionGrid(op, q.describe(), h, b);
        return new AttnDims(b, t, h, hkv, hd);
    }

    @Override
    public void attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        DeviceTensor tq = dev(q), tk = dev(k), tv = dev(v), to = dev(out), tl = dev(lse);
        AttnDims a = attentionDims("attentionForward", tq, tk, tv, to, tl);
        String sfx = sameFloatType("attentionForward", tq, tk, tv, to);
        int tile = headTile("attentionForward", a.hd());
        if (a.b() == 0 || a.t() == 0 || a.h() == 0) return;
        run(
                "mode_attention" + tile + "_fwd_" + sfx,
                ceilDiv(a.t(), 32),
                a.h(),
                a.b(),
                128,
                1,
                1,
                tq,
                tk,
                tv,
                to,
                tl,
                a.b(),
                a.t(),
                a.h(),
                a.hkv(),
                a.hd());
    }

    @Override
    public void attentionBackward(
            Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv) {
        DeviceTensor g = dev(dOut), tq = dev(q), tk = dev(k), tv = dev(v), to = dev(out), tl = dev(lse);
        DeviceTensor tdq = dev(dq), tdk = dev(dk), tdv = dev(dv);
        AttnDims a = attentionDims("attentionBackward", tq, tk, tv, to, tl);
        Shapes.requireSameShape("attentionBackward", tq, g);
        Shapes.requireSameShape("attentionBackward", tq, tdq);
        Shapes.requireSameShape("attentionBackward", tk, tdk);
        Shapes.requireSameShape("attentionBackward", tv, tdv);
        String sfx = sameFloatType("attentionBackward", g, tq, tk, tv, to, tdq, tdk, tdv);
        int tile = headTile("attentionBackward", a.hd());
        if (a.b() == 0 || a.t() == 0 || a.h() == 0) return;
        int rows = tile >= 128 ? 16 : 32;
        // The dq kernel also writes delta = rowsum(P * dP), which the dk/dv kernel reads.
        try (DeviceTensor delta = uninitialized(DType.F32, a.b(), a.h(), a.t())) {
            run(
                    "mode_attention" + tile + "_bwddq_" + sfx,
                    ceilDiv(a.t(), rows),
                    a.h(),
                    a.b(),
                    128,
                    1,
                    1,
                    g,
                    tq,
                    tk,
                    tv,
                    tl,
                    delta,
                    tdq,
                    a.b(),
                    a.t(),
                    a.h(),
                    a.hkv(),
                    a.hd());
            run(
                    "mode_attention" + tile + "_bwddkv_" + sfx,
                    ceilDiv(a.t(), rows),
                    a.hkv(),
                    a.b(),
                    128,
                    1,
                    1,
                    g,
                    tq,
                    tk,
                    tv,
                    tl,
                    delta,
                    tdk,
                    tdv,
                    a.b(),
                    a.t(),
                    a.h(),
                    a.hkv(),
                    a.hd());
        }
    }

    // ================================================================== SwiGLU

    @Override
    public void swiGluForward(Tensor gate, Tensor up, Tensor out) {
        DeviceTensor tg = dev(gate), tu = dev(up), to = dev(out);
        Shapes.requireSameShape("swiGluForward", tg, tu);
        Shapes.requireSameShape("swiGluForward", tg, to);
        String sfx = sameFloatType("swiGluForward", tg, tu, to);
        long n = tg.numel();
        if (n > 0) run("mode_swiglu_fwd_" + sfx, grid(n, 256), 1, 1, 256, 1, 1, tg, tu, to, n);
    }

    @Override
    public void swiGluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        DeviceTensor g = dev(dOut), tg = dev(gate), tu = dev(up), dg = dev(dGate), du = dev(dUp);
        for (DeviceTensor t : new DeviceTensor[] {g, tu, dg, du}) Shapes.requireSameShape("swiGluBackward", tg, t);
        String sfx = sameFloatType("swiGluBackward", g, tg, tu, dg, du);
        long n = tg.numel();
        if (n > 0) run("mode_swiglu_bwd_" + sfx, grid(n, 256), 1, 1, 256, 1, 1, g, tg, tu, dg, du, n);
    }

    // ================================================================== loss

    @Override
    public LossStats crossEntropy(Tensor logits, Tensor targets, Tensor dLogits, float gradScale) {
        DeviceTensor tl = dev(logits), tt = dev(targets);
        int v = tl.dim(-1), n = Shapes.rows(tl);
        Shapes.requireDType("crossEntropy", "targets", tt, DType.I32);
        Shapes.requireNumel("crossEntropy", "targets", tt, n);
        Object grad = NULL;
        if (dLogits != null) {
            DeviceTensor tg = dev(dLogits);
            Shapes.requireSameShape("crossEntropy", tl, tg);
            sameFloatType("crossEntropy", tl, tg);
            grad = tg;
        }
        String sfx = sameFloatType("crossEntropy", tl);
        if (n == 0) return LossStats.ZERO;
        if (v == 0) throw new IllegalArgumentException("crossEntropy: empty vocabulary in " + tl.describe());
        long stats = reduceBuffer + 8L * SUMSQ_MAX_PARTIALS;
        try (DeviceTensor rowLoss = uninitialized(DType.F32, n);
                DeviceTensor rowFlag = uninitialized(DType.I32, n)) {
            run(
                    "mode_crossentropy_fwd_" + sfx,
                    Math.min(n, MAX_GRID),
                    1,
                    1,
                    256,
                    1,
                    1,
                    tl,
                    tt,
                    grad,
                    gradScale,
                    n,
                    v,
                    rowLoss,
                    rowFlag,
                    new Ptr(errorWord));
            run("mode_crossentropy_reduce_f32", 1, 1, 1, 256, 1, 1, rowLoss, rowFlag, n, new Ptr(stats));
            double[] s = readDoubles(stats, 3);
            return new LossStats(s[0], (long) s[1], (long) s[2]);
        }
    }

    // ================================================================== optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        DeviceTensor p = dev(param), g = dev(grad), tm = dev(m), tv = dev(v);
        for (DeviceTensor t : new DeviceTensor[] {g, tm, tv}) Shapes.requireSameShape("adamW", p, t);
        for (DeviceTensor t : new DeviceTensor[] {p, g, tm, tv})
            Shapes.requireDType("adamW", "param/grad/m/v", t, DType.F32);
        long n = p.numel();
        float bc1 = (float) (1.0 - Math.pow(step.beta1(), step.step()));
        float bc2 = (float) (1.0 - Math.pow(step.beta2(), step.step()));
        if (n > 0) {
            run(
                    "mode_adamw_step_f32",
                    grid(n, 256),
                    1,
                    1,
                    256,
                    1,
                    1,
                    p,
                    g,
                    tm,
                    tv,
                    n,
                    step.lr(),
                    step.beta1(),
                    step.beta2(),
                    step.eps(),
                    step.weightDecay(),
                    step.gradScale(),
                    bc1,
                    bc2);
        }
    }

    // ================================================================== MoDE gate and merge

    @Override
    public void softmaxForward(Tensor logits, Tensor probs) {
        DeviceTensor tl = dev(logits), tp = dev(probs);
        Shapes.requireSameShape("softmaxForward", tl, tp);
        String sfx = sameFloatType("softmaxForward", tl, tp);
        int e = tl.dim(-1), n = Shapes.rows(tl);
        if (n > 0 && e > 0) run("mode_softmax_fwd_" + sfx, grid(n, 128), 1, 1, 128, 1, 1, tl, tp, n, e);
    }

    @Override
    public void softmaxBackward(Tensor dProbs, Tensor probs, Tensor dLogits) {
        DeviceTensor g = dev(dProbs), tp = dev(probs), dl = dev(dLogits);
        Shapes.requireSameShape("softmaxBackward", tp, g);
        Shapes.requireSameShape("softmaxBackward", tp, dl);
        String sfx = sameFloatType("softmaxBackward", g, tp, dl);
        int e = tp.dim(-1), n = Shapes.rows(tp);
        if (n > 0 && e > 0) run("mode_softmax_bwd_" + sfx, grid(n, 128), 1, 1, 128, 1, 1, g, tp, dl, n, e);
    }

    @Override
    public void weightedMergeForward(Tensor branches, Tensor probs, Tensor out) {
        DeviceTensor tb = dev(branches), tp = dev(probs), to = dev(out);
        Shapes.requireRank("weightedMergeForward", "branches", tb, 3);
        int e = tb.dim(0), n = tb.dim(1), d = tb.dim(2);
        Shapes.requireShape("weightedMergeForward", "probs", tp, n, e);
        Shapes.requireShape("weightedMergeForward", "out", to, n, d);
        String sfx = sameFloatType("weightedMergeForward", tb, tp, to);
        long total = (long) n * d;
        if (total > 0) run("mode_merge_fwd_" + sfx, grid(total, 256), 1, 1, 256, 1, 1, tb, tp, to, e, n, d);
    }

    @Override
    public void weightedMergeBackward(Tensor dOut, Tensor branches, Tensor probs, Tensor dBranches, Tensor dProbs) {
        DeviceTensor g = dev(dOut), tb = dev(branches), tp = dev(probs), dp = dev(dProbs);
        Shapes.requireRank("weightedMergeBackward", "branches", tb, 3);
        int e = tb.dim(0), n = tb.dim(1), d = tb.dim(2);
        Shapes.requireShape("weightedMergeBackward", "probs", tp, n, e);
        Shapes.requireShape("weightedMergeBackward", "dProbs", dp, n, e);
        Shapes.requireShape("weightedMergeBackward", "dOut", g, n, d);
        Object db = NULL;
        if (dBranches != null) {
            DeviceTensor tdb = dev(dBranches);
            Shapes.requireSameShape("weightedMergeBackward", tb, tdb);
            sameFloatType("weightedMergeBackward", tb, tdb);
            db = tdb;
        }
        String sfx = sameFloatType("weightedMergeBackward", g, tb, tp, dp);
        if (n > 0) run("mode_merge_bwd_" + sfx, Math.min(n, MAX_GRID), 1, 1, 128, 1, 1, g, tb, tp, db, dp, e, n, d);
    }

    // ================================================================== sparse routing

    @Override
    public void topK(Tensor probs, int k, Tensor indices, Tensor weights) {
        DeviceTensor tp = dev(probs), ti = dev(indices), tw = dev(weights);
        int e = tp.dim(-1), n = Shapes.rows(tp);
        if (k < 1 || k > e) throw new IllegalArgumentException("topK: k must be in [1, " + e + "], got " + k);
        Shapes.requireDType("topK", "indices", ti, DType.I32);
        Shapes.requireNumel("topK", "indices", ti, (long) n * k);
        Shapes.requireNumel("topK", "weights", tw, (long) n * k);
        String sfx = sameFloatType("topK", tp, tw);
        if (n > 0) run("mode_topk_fwd_" + sfx, grid(n, 128), 1, 1, 128, 1, 1, tp, n, e, k, ti, tw);
    }

    @Override
    public void gatherRows(Tensor src, Tensor index, Tensor out) {
        DeviceTensor ts = dev(src), ti = dev(index), to = dev(out);
        Shapes.requireDType("gatherRows", "index", ti, DType.I32);
        int d = ts.dim(-1), nsrc = Shapes.rows(ts), m = Math.toIntExact(ti.numel());
        Shapes.requireNumel("gatherRows", "out", to, (long) m * d);
        String sfx = sameFloatType("gatherRows", ts, to);
        if (m > 0 && d > 0)
            run(
                    "mode_gather_fwd_" + sfx,
                    Math.min(m, MAX_GRID),
                    1,
                    1,
                    128,
                    1,
                    1,
                    ts,
                    ti,
                    to,
                    m,
                    d,
                    nsrc,
                    new Ptr(errorWord));
    }

    @Override
    public void scatterAddRows(Tensor src, Tensor index, Tensor out) {
        DeviceTensor ts = dev(src), ti = dev(index), to = dev(out);
        Shapes.requireDType("scatterAddRows", "index", ti, DType.I32);
        int d = to.dim(-1), nout = Shapes.rows(to), m = Math.toIntExact(ti.numel());
        Shapes.requireNumel("scatterAddRows", "src", ts, (long) m * d);
        String sfx = sameFloatType("scatterAddRows", ts, to);
        if (m > 0 && d > 0)
            run(
                    "mode_scatter_add_fwd_" + sfx,
                    ceilDiv(d, LaunchGeometry.SCATTER_COLUMNS),
                    LaunchGeometry.scatterSlices(d, nout),
                    1,
                    128,
                    1,
                    1,
                    ts,
                    ti,
                    to,
                    m,
                    d,
                    nout,
                    new Ptr(errorWord));
    }

    // ================================================================== launch plumbing

    /**
     * Marshals {@code params} (a {@link DeviceTensor} or {@link Ptr} as a pointer, Integer as int, Long as
     * long long, Float as float, Double as double) and launches {@code entry}.
     */
    private void run(String entry, int gx, int gy, int gz, int bx, int by, int bz, Object... params) {
        if (closed) throw new IllegalStateException(name + " backend is closed");
        KernelFunction f = device.function(entry);
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs args = new KernelArgs(arena, params.length);
            for (Object p : params) {
                switch (p) {
                    case DeviceTensor t -> args.ptr(t.numel() == 0 ? 0 : t.pointer());
                    case Ptr(long address) -> args.ptr(address);
                    case Integer i -> args.i32(i);
                    case Long l -> args.i64(l);
                    case Float x -> args.f32(x);
                    case Double d -> args.f64(d);
                    default -> throw new IllegalArgumentException("unsupported kernel parameter " + p);
                }
            }
            device.verifyParameters(f, args.signature());
            device.launch(f, gx, gy, gz, bx, by, bz, 0, args.build());
        }
    }

    private double[] readDoubles(long address, int count) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(8L * count, 8);
            device.copyDeviceToHost(address, host, 8L * count);
            checkErrors();
            return host.toArray(ValueLayout.JAVA_DOUBLE);
        }
    }

    /** Reads, clears and throws the device error word, if a kernel set it: the lowest code's lowest position. */
    private void checkErrors() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(ERROR_BYTES, 8);
            device.copyDeviceToHost(errorWord, host, ERROR_BYTES);
            int code = 0;
            long packed = -1;
            for (int slot = 0; slot < ERROR_SLOTS && code == 0; slot++) {
                packed = host.getAtIndex(ValueLayout.JAVA_LONG, slot);
                if (packed != -1) code = slot + 1;
            }
            if (code == 0) return;
            int value = (int) packed, position = (int) (packed >>> 32);
            device.memset(errorWord, 0xFF, ERROR_BYTES);
            throw new IllegalArgumentException(
                    switch (code) {
                        case 1 ->
                            "embedding: token id " + value + " at position " + position
                                    + " is outside the vocabulary [0, V)";
                        case 2 ->
                            "gatherRows: index " + value + " at position " + position + " is outside the source rows";
                        case 3 ->
                            "scatterAddRows: index " + value + " at position " + position
                                    + " is outside the output rows";
                        case 4 ->
                            "crossEntropy: target " + value + " in row " + position
                                    + " is outside [0, V) and not IGNORE_INDEX (" + IGNORE_INDEX + ")";
                        default ->
                            "device kernel error code " + code + " (value " + value + ", position " + position + ")";
                    });
        }
    }

    private DeviceTensor dev(Tensor t) {
        if (t instanceof DeviceTensor d && d.backend() == this) return d;
        throw new IllegalArgumentException(
                "tensor " + (t == null ? "null" : t.describe()) + " does not belong to the " + name + " backend");
    }

    /** The kernel suffix of float tensors that must all share one dtype (F32 or BF16). */
    private static String sameFloatType(String op, Tensor... ts) {
        DType dt = ts[0].dtype();
        for (Tensor t : ts) {
            if (t.dtype() != dt) {
                throw new IllegalArgumentException(
                        op + ": tensors must share one dtype, got " + ts[0].describe() + " and " + t.describe());
            }
        }
        return switch (dt) {
            case F32 -> "f32";
            case BF16 -> "bf16";
            case I32 -> throw new IllegalArgumentException(op + ": " + ts[0].describe() + " must be F32 or BF16");
        };
    }

    private static void requireF32Vector(String op, String name, Tensor t, int length) {
        Shapes.requireDType(op, name, t, DType.F32);
        Shapes.requireNumel(op, name, t, length);
    }

    private static int ceilDiv(long a, int b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    /** Blocks for a grid-stride loop over n elements with {@code perBlock} per block, at most 65535. */
    private static int grid(long n, int perBlock) {
        return (int) Math.max(1, Math.min(MAX_GRID, (n + perBlock - 1) / perBlock));
    }
}
