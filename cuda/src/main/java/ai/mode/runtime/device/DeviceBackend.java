package ai.mode.runtime.device;

import ai.mode.kernels.KernelLaunch;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.GroupedGemms;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.OpShapes;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Shapes;
import ai.mode.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every {@link Backend} op implemented by launching the project's CUDA kernels ({@code mode-kernels}) on a
 * {@link Device}: the {@code cuda} backend over the CUDA driver, {@code emu} over the CPU emulator.
 *
 * <p>Tensors are {@link DeviceTensor}s. F32 tensors run the {@code _f32} kernels; BF16 activations run the
 * {@code _bf16} kernels (bf16 storage, float32 math), with float32 parameters, parameter gradients and
 * saved statistics (RMSNorm weight and rstd, attention lse, embedding-table gradient, sumRows output).
 * GEMM: a device's vendor GEMM ({@link Device#vendorGemm()}) is tried first, then the WMMA tensor-core
 * kernel for BF16 operands on compute capability 8.0+ (unless disabled), else the tiled float32-math kernel.
 * Attention on BF16 tensors runs the tensor-core flash-attention kernels ({@code mode_attention_wmma*}) under the
 * same condition, else (and always for F32) the CUDA-core kernels, with one debug log line per fallback reason.
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
    // Launch geometry, generated from the kernels' sources (kernels/src/main/cuda/include/mode_launch.cuh).
    private static final int MAX_GRID = KernelLaunch.constant("kLaunchMaxGridBlocks");
    private static final int COLUMN_BLOCK_X = KernelLaunch.constant("kLaunchColumnBlockX");
    private static final int COLUMN_BLOCK_Y = KernelLaunch.constant("kLaunchColumnBlockY");
    private static final int ATTENTION_FORWARD_ROWS = KernelLaunch.constant("kLaunchAttentionForwardRows");
    /** Head-dimension tiles with attention kernels, ascending. */
    private static final int[] ATTENTION_HEAD_TILES = {
        KernelLaunch.constant("kLaunchAttentionHeadTileSmall"),
        KernelLaunch.constant("kLaunchAttentionHeadTileMedium"),
        KernelLaunch.constant("kLaunchAttentionHeadTileLarge")
    };
    /** Rows of one WMMA fragment (m16n16k16): each warp of the tensor-core attention kernels owns this many rows. */
    private static final int WMMA_FRAGMENT_ROWS = 16;

    private static final System.Logger LOG = System.getLogger(DeviceBackend.class.getName());
    /** Blocks of the sum of squares' first stage (at most; fewer for short tensors; the final kernel adds any count). */
    private static final int SUMSQ_MAX_PARTIALS = 1024;
    /** Most RoPE frequency tables kept on the device at once. */
    private static final int ROPE_TABLES = 8;

    /** A raw device address parameter (for null optional outputs). */
    private record Ptr(long address) {}

    private static final Ptr NULL = new Ptr(0);

    private final Device device;
    private final String name;
    private final boolean tensorCores;
    /** Fallbacks from the tensor-core kernels already logged, as "fallback (reason)" (each once per backend). */
    private final Set<String> fallbacksLogged = ConcurrentHashMap.newKeySet();

    private static final int ERROR_SLOTS = 6; // kErrSlots in mode_common.cuh
    private static final long ERROR_BYTES = 8L * ERROR_SLOTS;
    private final long errorWord; // u64[ERROR_SLOTS]: per code, (position << 32) | value; all ones when clear
    private final long reduceBuffer; // double[SUMSQ_MAX_PARTIALS + 4]
    private final LinkedHashMap<RopeFrequencies, Long> ropeTables = new LinkedHashMap<>(); // table -> double[hd/2]
    private boolean closed;

    /** A backend named after the device, using tensor-core kernels where the device supports them. */
    public DeviceBackend(Device device, String name) {
        this(device, name, true);
    }

    /**
     * @param tensorCores whether BF16 GEMMs and BF16 attention may use the WMMA tensor-core kernels (on compute
     *                    capability 8.0+); false forces the tiled GEMM and the CUDA-core attention kernels (tests use
     *                    both)
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
        OpShapes.fromHost(shape, data.length, "floats");
        DeviceTensor t = uninitialized(DType.F32, shape);
        upload(MemorySegment.ofArray(data), t);
        return t;
    }

    @Override
    public Tensor fromHost(int[] data, int... shape) {
        OpShapes.fromHost(shape, data.length, "ints");
        DeviceTensor t = uninitialized(DType.I32, shape);
        upload(MemorySegment.ofArray(data), t);
        return t;
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
        OpShapes.hostFloats("toHost", "src", s, dst.length);
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
                case I32 -> throw new IllegalStateException("unreachable: OpShapes.hostFloats rejects I32");
            }
        }
    }

    @Override
    public void toHost(Tensor src, int[] dst) {
        DeviceTensor s = dev(src);
        OpShapes.hostInts("toHost", "src", s, dst.length);
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
        switch (OpShapes.hostFloats("copyFromHost", "dst", d, src.length)) {
            case F32 -> upload(MemorySegment.ofArray(src), d);
            case BF16 -> {
                short[] bits = new short[src.length];
                for (int i = 0; i < src.length; i++) bits[i] = Bf16.fromFloat(src[i]);
                upload(MemorySegment.ofArray(bits), d);
            }
            case I32 -> throw new IllegalStateException("unreachable: OpShapes.hostFloats rejects I32");
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        DeviceTensor s = dev(src), d = dev(dst);
        OpShapes.copy(s, d);
        if (s.numel() > 0 && s.pointer() != d.pointer())
            device.copyDeviceToDevice(s.pointer(), d.pointer(), s.byteSize());
    }

    @Override
    public void fill(Tensor t, float value) {
        DeviceTensor x = dev(t);
        long n = OpShapes.fill(x);
        if (n > 0) runStride("mode_fill_fwd_f32", n, x, n, value);
    }

    @Override
    public Tensor view(Tensor t, int... shape) {
        DeviceTensor x = dev(t);
        OpShapes.view(x, shape);
        return new DeviceTensor(this, x.pointer(), shape, x.dtype(), false);
    }

    @Override
    public Tensor slice(Tensor t, int start, int length) {
        DeviceTensor x = dev(t);
        long rowBytes = OpShapes.slice(x, start, length) * x.dtype().bytes();
        int[] shape = x.shape().clone();
        shape[0] = length;
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
            synchronized (this) {
                for (long table : ropeTables.values()) device.free(table);
                ropeTables.clear();
            }
            closed = true;
            device.close();
        }
    }

    // ================================================================== dense linear algebra

    @Override
    public void gemm(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        DeviceTensor ta = dev(a), tb = dev(b), tc = dev(c);
        OpShapes.MatmulDims dims = OpShapes.gemm(transA, transB, ta, tb, tc);
        int batch = dims.batch(), m = dims.m(), n = dims.n(), k = dims.k();
        if (batch == 0 || m == 0 || n == 0) return;
        LaunchGeometry.Grid grid = LaunchGeometry.gemm(m, n, batch);
        long strideA = tc.rank() == 3 ? (long) m * k : 0;
        long strideB = tc.rank() == 3 && !dims.broadcastB() ? (long) k * n : 0;
        long strideC = tc.rank() == 3 ? (long) m * n : 0;
        // a small GEMM runs the tiled kernel's float64 sums on every device (the op contract, OpShapes.smallGemm)
        boolean small = OpShapes.smallGemm(m, n, k);
        Optional<Gemm> vendor = small ? Optional.empty() : device.vendorGemm();
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
        if (ta.dtype() == DType.BF16) {
            boolean wmma = !small && tensorCoreRefusal(DType.BF16) == null;
            entry = (wmma ? "mode_gemm_wmma_" : "mode_gemm_tiled_") + (tc.dtype() == DType.BF16 ? "bf16" : "bf16f32");
        } else {
            entry = "mode_gemm_tiled_f32";
        }
        run(
                entry,
                grid.x(),
                grid.y(),
                grid.z(),
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

    // ================================================================== grouped expert GEMM

    /**
     * Whether the grouped GEMM runs its bf16 tensor-core kernels for activations of {@code dtype} ({@link
     * #tensorCoreKernels}); else it is composed from the other ops ({@link GroupedGemms}).
     */
    private boolean groupedKernels(String op, DType dtype) {
        return tensorCoreKernels(op, "grouped expert GEMM composed from gemm calls", dtype);
    }

    /** The tensor-core grouped kernels read a token list in place; the composed fallback gathers a copy. */
    @Override
    public boolean fusedGroupedGather(DType dtype) {
        return tensorCoreRefusal(dtype) == null;
    }

    /** {@code ptr} of an optional tensor, or the null pointer. */
    private Object optional(Tensor t) {
        return t == null ? NULL : dev(t);
    }

    @Override
    public void groupedGemmForward(Tensor x, Tensor rows, Tensor w, Tensor offsets, float beta, Tensor y) {
        if (!groupedKernels("groupedGemmForward", x.dtype())) {
            GroupedGemms.forward(this, x, rows, w, offsets, beta, y);
            return;
        }
        OpShapes.GroupedDims g =
                OpShapes.groupedGemmForward(dev(x), optionalDev(rows), dev(w), optionalDev(offsets), dev(y));
        if (g.rows() == 0 || g.n() == 0) return;
        String entry = "mode_groupedgemm_fwd_" + suffix(g.dtype());
        LaunchGeometry.Grid grid = LaunchGeometry.groupedRows(g.rows(), g.groups(), g.uniform(), g.n());
        run(
                entry,
                grid.x(),
                grid.y(),
                1,
                x,
                optional(rows),
                g.sourceRows(),
                w,
                optional(offsets),
                g.groups(),
                g.rows(),
                g.n(),
                g.k(),
                beta,
                y,
                new Ptr(errorWord));
    }

    @Override
    public void groupedSwiGluForward(
            Tensor x, Tensor rows, Tensor wGate, Tensor wUp, Tensor offsets, Tensor gate, Tensor up, Tensor out) {
        if (!groupedKernels("groupedSwiGluForward", x.dtype())) {
            GroupedGemms.swiGluForward(this, x, rows, wGate, wUp, offsets, gate, up, out);
            return;
        }
        OpShapes.GroupedDims g = OpShapes.groupedSwiGluForward(
                dev(x),
                optionalDev(rows),
                dev(wGate),
                dev(wUp),
                optionalDev(offsets),
                optionalDev(gate),
                optionalDev(up),
                dev(out));
        if (g.rows() == 0 || g.n() == 0) return;
        String entry = "mode_groupedgemm_swiglufwd_" + suffix(g.dtype());
        LaunchGeometry.Grid grid = LaunchGeometry.groupedRows(g.rows(), g.groups(), g.uniform(), g.n());
        run(
                entry,
                grid.x(),
                grid.y(),
                1,
                x,
                optional(rows),
                g.sourceRows(),
                wGate,
                wUp,
                optional(offsets),
                g.groups(),
                g.rows(),
                g.n(),
                g.k(),
                optional(gate),
                optional(up),
                out,
                new Ptr(errorWord));
    }

    @Override
    public void groupedGemmBackwardData(Tensor dy, Tensor w, Tensor offsets, float beta, Tensor dx) {
        if (!groupedKernels("groupedGemmBackwardData", dy.dtype())) {
            GroupedGemms.backwardData(this, dy, w, offsets, beta, dx);
            return;
        }
        OpShapes.GroupedDims g = OpShapes.groupedGemmBackwardData(dev(dy), dev(w), optionalDev(offsets), dev(dx));
        if (g.rows() == 0 || g.k() == 0) return;
        String entry = "mode_groupedgemm_bwddx_" + suffix(g.dtype());
        LaunchGeometry.Grid grid = LaunchGeometry.groupedRows(g.rows(), g.groups(), g.uniform(), g.k());
        run(
                entry,
                grid.x(),
                grid.y(),
                1,
                dy,
                w,
                optional(offsets),
                g.groups(),
                g.rows(),
                g.n(),
                g.k(),
                beta,
                dx,
                new Ptr(errorWord));
    }

    @Override
    public void groupedGemmBackwardWeight(Tensor dy, Tensor x, Tensor rows, Tensor offsets, float beta, Tensor dw) {
        if (!groupedKernels("groupedGemmBackwardWeight", dy.dtype())) {
            GroupedGemms.backwardWeight(this, dy, x, rows, offsets, beta, dw);
            return;
        }
        OpShapes.GroupedDims g =
                OpShapes.groupedGemmBackwardWeight(dev(dy), dev(x), optionalDev(rows), optionalDev(offsets), dev(dw));
        if (g.n() == 0 || g.k() == 0) return;
        String entry = "mode_groupedgemm_bwddw_" + suffix(g.dtype());
        LaunchGeometry.Grid grid = LaunchGeometry.groupedWeights(g.n(), g.k(), g.groups());
        run(
                entry,
                grid.x(),
                grid.y(),
                grid.z(),
                dy,
                x,
                optional(rows),
                g.sourceRows(),
                optional(offsets),
                g.groups(),
                g.rows(),
                g.n(),
                g.k(),
                beta,
                dw,
                new Ptr(errorWord));
    }

    private DeviceTensor optionalDev(Tensor t) {
        return t == null ? null : dev(t);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        DeviceTensor x = dev(a), y = dev(b), o = dev(out);
        OpShapes.ElementwiseDims dims = OpShapes.add(x, y, o);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n > 0) runStride("mode_add_fwd_" + sfx, n, x, y, o, n);
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        DeviceTensor tx = dev(x), ty = dev(y);
        OpShapes.ElementwiseDims dims = OpShapes.axpy(tx, ty);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n > 0) runStride("mode_axpy_fwd_" + sfx, n, alpha, tx, ty, n);
    }

    @Override
    public void scale(Tensor x, float s) {
        DeviceTensor tx = dev(x);
        OpShapes.ElementwiseDims dims = OpShapes.scale(tx);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n > 0) runStride("mode_scale_fwd_" + sfx, n, tx, s, n);
    }

    @Override
    public double sumSquares(Tensor x) {
        DeviceTensor tx = dev(x);
        OpShapes.ElementwiseDims dims = OpShapes.sumSquares(tx);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n == 0) return 0.0;
        // The partial count depends only on n, so the summation order is the same on every device.
        String partialEntry = "mode_sumsquares_partial_" + sfx;
        int perBlock = KernelLaunch.threads(partialEntry);
        int partials = (int) Math.min(SUMSQ_MAX_PARTIALS, Math.max(1, (n + perBlock - 1) / perBlock));
        long result = reduceBuffer + 8L * SUMSQ_MAX_PARTIALS;
        run(partialEntry, partials, 1, 1, tx, n, new Ptr(reduceBuffer));
        run("mode_sumsquares_final_f64", 1, 1, 1, new Ptr(reduceBuffer), partials, new Ptr(result));
        return readDoubles(result, 1)[0];
    }

    @Override
    public void sumRowsAccumulate(Tensor x, Tensor out) {
        DeviceTensor tx = dev(x), to = dev(out);
        OpShapes.RowDims dims = OpShapes.sumRowsAccumulate(tx, to);
        String sfx = suffix(dims.dtype());
        int cols = dims.cols(), rows = dims.rows();
        if (cols > 0 && rows > 0) {
            columnSum(
                    rows,
                    cols,
                    to,
                    (chunk, partial) -> runColumns(
                            "mode_sumrows_fwd_" + sfx, cols, ceilDiv(rows, chunk), tx, rows, cols, chunk, partial));
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
            runStride("mode_colsum_finish_f32", cols, partial, chunks, cols, out);
        }
    }

    // ================================================================== embedding

    @Override
    public void embeddingForward(Tensor table, Tensor ids, Tensor out) {
        DeviceTensor tt = dev(table), ti = dev(ids), to = dev(out);
        OpShapes.EmbeddingDims dims = OpShapes.embeddingForward(tt, ti, to);
        int v = dims.vocab(), d = dims.dim(), n = dims.tokens();
        String sfx = suffix(dims.dtype());
        if (n > 0 && d > 0) runRows("mode_embedding_fwd_" + sfx, n, tt, ti, to, n, d, v, new Ptr(errorWord));
    }

    @Override
    public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        DeviceTensor g = dev(dOut), ti = dev(ids), dt = dev(dTable);
        OpShapes.EmbeddingDims dims = OpShapes.embeddingBackward(g, ti, dt);
        int v = dims.vocab(), d = dims.dim(), n = dims.tokens();
        String sfx = suffix(dims.dtype());
        if (n > 0 && d > 0) runScatter("mode_embedding_bwd_" + sfx, d, v, g, ti, dt, n, d, v, new Ptr(errorWord));
    }

    // ================================================================== RMSNorm

    @Override
    public void rmsNormForward(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        DeviceTensor tx = dev(x), tw = dev(weight), to = dev(out), tr = dev(rstd);
        OpShapes.RowDims dims = OpShapes.rmsNormForward(tx, tw, eps, to, tr);
        int d = dims.cols(), n = dims.rows();
        String sfx = suffix(dims.dtype());
        if (n > 0 && d > 0) runRows("mode_rmsnorm_fwd_" + sfx, n, tx, tw, eps, to, tr, n, d);
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        DeviceTensor g = dev(dOut), tx = dev(x), tw = dev(weight), tr = dev(rstd), tdx = dev(dx), tdw = dev(dWeight);
        OpShapes.RowDims dims = OpShapes.rmsNormBackward(g, tx, tw, tr, tdx, tdw);
        int d = dims.cols(), n = dims.rows();
        String sfx = suffix(dims.dtype());
        if (n == 0 || d == 0) return;
        // dWeight first: dx may alias dOut.
        columnSum(
                n,
                d,
                tdw,
                (chunk, partial) -> runColumns(
                        "mode_rmsnorm_bwdweight_" + sfx, d, ceilDiv(n, chunk), g, tx, tr, partial, n, d, chunk));
        runRows("mode_rmsnorm_bwd_" + sfx, n, g, tx, tw, tr, tdx, n, d);
    }

    // ================================================================== RoPE

    @Override
    public void ropeForward(Tensor x, RopeFrequencies frequencies, int positionOffset, Tensor out) {
        rope("ropeForward", "fwd", x, frequencies, positionOffset, out);
    }

    @Override
    public void ropeBackward(Tensor dOut, RopeFrequencies frequencies, int positionOffset, Tensor dx) {
        rope("ropeBackward", "bwd", dOut, frequencies, positionOffset, dx);
    }

    private void rope(String op, String pass, Tensor x, RopeFrequencies frequencies, int positionOffset, Tensor out) {
        DeviceTensor tx = dev(x), to = dev(out);
        OpShapes.RopeDims dims = OpShapes.rope(op, tx, frequencies, positionOffset, to);
        int b = dims.batch(), t = dims.seq(), h = dims.heads(), hd = dims.headDim();
        String sfx = suffix(dims.dtype());
        long pairs = tx.numel() / 2;
        if (pairs > 0)
            runStride(
                    "mode_rope_" + pass + "_" + sfx,
                    pairs,
                    tx,
                    to,
                    new Ptr(ropeTable(frequencies)),
                    b,
                    t,
                    h,
                    hd,
                    positionOffset);
    }

    /**
     * The device copy (float64 [hd/2]) of a frequency table, uploaded on first use and kept until close: a model
     * uses one table, so the cache holds at most {@link #ROPE_TABLES} and frees the oldest beyond that (launches
     * are ordered on the device's stream, so a later free cannot overtake a launch that reads it).
     */
    private synchronized long ropeTable(RopeFrequencies frequencies) {
        Long cached = ropeTables.get(frequencies);
        if (cached != null) return cached;
        long bytes = 8L * frequencies.pairs();
        long ptr = device.malloc(bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(bytes, 8);
            MemorySegment.copy(frequencies.toArray(), 0, staging, ValueLayout.JAVA_DOUBLE, 0, frequencies.pairs());
            device.copyHostToDevice(staging, ptr, bytes);
        } catch (RuntimeException e) {
            device.free(ptr);
            throw e;
        }
        if (ropeTables.size() == ROPE_TABLES) {
            var oldest = ropeTables.entrySet().iterator();
            device.free(oldest.next().getValue());
            oldest.remove();
        }
        ropeTables.put(frequencies, ptr);
        return ptr;
    }

    // ================================================================== attention

    /** Head-dimension tile of the attention kernels for head dimension {@code hd}: the smallest that holds it. */
    private static int headTile(String op, int hd) {
        if (hd <= 0 || hd > ATTENTION_HEAD_TILES[ATTENTION_HEAD_TILES.length - 1])
            throw new IllegalArgumentException(op + ": head dimension " + hd + " not supported by the attention"
                    + " kernels (1.." + ATTENTION_HEAD_TILES[ATTENTION_HEAD_TILES.length - 1] + ")");
        int tile = ATTENTION_HEAD_TILES[0];
        for (int i = 1; hd > tile; i++) tile = ATTENTION_HEAD_TILES[i];
        return tile;
    }

    /**
     * Why the bf16 tensor-core kernels (WMMA GEMM, flash attention, grouped expert GEMM; bf16 operands, float32
     * accumulation) do not apply to tensors of {@code dtype}, or null when they do: bf16 tensors on a device with bf16
     * tensor cores (compute capability 8.0+) unless tensor cores were disabled, so float32 models keep float32 products.
     */
    private String tensorCoreRefusal(DType dtype) {
        if (dtype != DType.BF16) return "float32 tensors (the tensor-core kernels take bf16)";
        if (!tensorCores) return "tensor-core kernels disabled for this backend";
        if (device.computeCapability() < 80)
            return "compute capability " + device.computeCapability() + " has no bf16 tensor cores (8.0+)";
        return null;
    }

    /**
     * True when {@code op} on tensors of {@code dtype} runs the tensor-core kernels ({@link #tensorCoreRefusal}); else
     * logs, once per backend for each fallback and reason, one debug line naming the {@code fallback} taken.
     */
    private boolean tensorCoreKernels(String op, String fallback, DType dtype) {
        String why = tensorCoreRefusal(dtype);
        if (why == null) return true;
        if (fallbacksLogged.add(fallback + " (" + why + ")"))
            LOG.log(
                    System.Logger.Level.DEBUG,
                    "{0} on {1}: " + fallback + " ({2})",
                    op,
                    name,
                    why); // fallback: no braces
        return false;
    }

    /** True when attention in {@code dtype} runs the tensor-core kernels; logs each fallback reason once. */
    private boolean wmmaAttention(String op, DType dtype) {
        return tensorCoreKernels(op, "CUDA-core attention kernels", dtype);
    }

    /**
     * Rows of one block of a tensor-core attention kernel: one WMMA fragment (16 rows) per warp in the forward, per
     * pair of warps in the backward kernels (one computes S, the other dP).
     */
    private static int wmmaAttentionRows(String entry, boolean backward) {
        int warps = KernelLaunch.threads(entry) / 32;
        if (backward) warps /= KernelLaunch.constant("kLaunchAttentionWmmaBackwardWarpsPerFragment");
        return warps * WMMA_FRAGMENT_ROWS;
    }

    @Override
    public void attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        DeviceTensor tq = dev(q), tk = dev(k), tv = dev(v), to = dev(out), tl = dev(lse);
        OpShapes.AttentionDims a = OpShapes.attentionForward(tq, tk, tv, to, tl);
        LaunchGeometry.requireAttentionGrid("attentionForward", tq.describe(), a.heads(), a.batch());
        String sfx = suffix(a.dtype());
        int tile = headTile("attentionForward", a.headDim());
        if (a.batch() == 0 || a.seq() == 0 || a.heads() == 0) return;
        String entry = wmmaAttention("attentionForward", a.dtype())
                ? "mode_attention_wmma" + tile + "_fwd_" + sfx
                : "mode_attention" + tile + "_fwd_" + sfx;
        int rows = entry.startsWith("mode_attention_wmma") ? wmmaAttentionRows(entry, false) : ATTENTION_FORWARD_ROWS;
        run(
                entry,
                ceilDiv(a.seq(), rows),
                a.heads(),
                a.batch(),
                tq,
                tk,
                tv,
                to,
                tl,
                a.batch(),
                a.seq(),
                a.heads(),
                a.kvHeads(),
                a.headDim());
    }

    @Override
    public void attentionCachedForward(Tensor q, Tensor kCache, Tensor vCache, int length, Tensor out) {
        DeviceTensor tq = dev(q), tk = dev(kCache), tv = dev(vCache), to = dev(out);
        OpShapes.AttentionDims a = OpShapes.attentionCachedForward(tq, tk, tv, length, to);
        LaunchGeometry.requireAttentionGrid("attentionCachedForward", tq.describe(), a.heads(), a.batch());
        int tile = headTile("attentionCachedForward", a.headDim());
        if (a.batch() == 0 || a.seq() == 0 || a.heads() == 0) return;
        run(
                "mode_attention" + tile + "_cachedfwd_" + suffix(a.dtype()),
                a.seq(),
                a.heads(),
                a.batch(),
                tq,
                tk,
                tv,
                to,
                a.batch(),
                a.seq(),
                a.heads(),
                a.kvHeads(),
                a.headDim(),
                tk.dim(1),
                length);
    }

    @Override
    public void attentionBackward(
            Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv) {
        DeviceTensor g = dev(dOut), tq = dev(q), tk = dev(k), tv = dev(v), to = dev(out), tl = dev(lse);
        DeviceTensor tdq = dev(dq), tdk = dev(dk), tdv = dev(dv);
        OpShapes.AttentionDims a = OpShapes.attentionBackward(g, tq, tk, tv, to, tl, tdq, tdk, tdv);
        LaunchGeometry.requireAttentionGrid("attentionBackward", tq.describe(), a.heads(), a.batch());
        String sfx = suffix(a.dtype());
        int tile = headTile("attentionBackward", a.headDim());
        if (a.batch() == 0 || a.seq() == 0 || a.heads() == 0) return;
        // Both families take the same parameters; the dq kernel also writes delta = rowsum(P * dP), which the dk/dv
        // kernel reads.
        boolean wmma = wmmaAttention("attentionBackward", a.dtype());
        String prefix = (wmma ? "mode_attention_wmma" : "mode_attention") + tile;
        String dqEntry = prefix + "_bwddq_" + sfx, dkvEntry = prefix + "_bwddkv_" + sfx;
        int cudaCoreRows = tile >= ATTENTION_HEAD_TILES[ATTENTION_HEAD_TILES.length - 1]
                ? KernelLaunch.constant("kLaunchAttentionTileRowsLarge")
                : KernelLaunch.constant("kLaunchAttentionTileRows");
        int dqRows = wmma ? wmmaAttentionRows(dqEntry, true) : cudaCoreRows;
        int dkvRows = wmma ? wmmaAttentionRows(dkvEntry, true) : cudaCoreRows;
        try (DeviceTensor delta = uninitialized(DType.F32, a.batch(), a.heads(), a.seq())) {
            run(
                    dqEntry,
                    ceilDiv(a.seq(), dqRows),
                    a.heads(),
                    a.batch(),
                    g,
                    tq,
                    tk,
                    tv,
                    tl,
                    delta,
                    tdq,
                    a.batch(),
                    a.seq(),
                    a.heads(),
                    a.kvHeads(),
                    a.headDim());
            run(
                    dkvEntry,
                    ceilDiv(a.seq(), dkvRows),
                    a.kvHeads(),
                    a.batch(),
                    g,
                    tq,
                    tk,
                    tv,
                    tl,
                    delta,
                    tdk,
                    tdv,
                    a.batch(),
                    a.seq(),
                    a.heads(),
                    a.kvHeads(),
                    a.headDim());
        }
    }

    // ================================================================== SwiGLU

    @Override
    public void swiGluForward(Tensor gate, Tensor up, Tensor out) {
        DeviceTensor tg = dev(gate), tu = dev(up), to = dev(out);
        OpShapes.ElementwiseDims dims = OpShapes.swiGluForward(tg, tu, to);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n > 0) runStride("mode_swiglu_fwd_" + sfx, n, tg, tu, to, n);
    }

    @Override
    public void swiGluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        DeviceTensor g = dev(dOut), tg = dev(gate), tu = dev(up), dg = dev(dGate), du = dev(dUp);
        OpShapes.ElementwiseDims dims = OpShapes.swiGluBackward(g, tg, tu, dg, du);
        String sfx = suffix(dims.dtype());
        long n = dims.count();
        if (n > 0) runStride("mode_swiglu_bwd_" + sfx, n, g, tg, tu, dg, du, n);
    }

    // ================================================================== loss

    @Override
    public LossStats crossEntropy(Tensor logits, Tensor targets, Tensor dLogits, float gradScale) {
        DeviceTensor tl = dev(logits), tt = dev(targets);
        DeviceTensor tg = dLogits == null ? null : dev(dLogits);
        OpShapes.RowDims dims = OpShapes.crossEntropy(tl, tt, tg);
        int v = dims.cols(), n = dims.rows();
        Object grad = tg == null ? NULL : tg;
        String sfx = suffix(dims.dtype());
        if (n == 0) return LossStats.ZERO;
        long stats = reduceBuffer + 8L * SUMSQ_MAX_PARTIALS;
        try (DeviceTensor rowLoss = uninitialized(DType.F32, n);
                DeviceTensor rowFlag = uninitialized(DType.I32, n)) {
            runRows(
                    "mode_crossentropy_fwd_" + sfx,
                    n,
                    tl,
                    tt,
                    grad,
                    gradScale,
                    n,
                    v,
                    rowLoss,
                    rowFlag,
                    new Ptr(errorWord));
            run("mode_crossentropy_reduce_f32", 1, 1, 1, rowLoss, rowFlag, n, new Ptr(stats));
            double[] s = readDoubles(stats, 3);
            return new LossStats(s[0], (long) s[1], (long) s[2]);
        }
    }

    // ================================================================== optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        DeviceTensor p = dev(param), g = dev(grad), tm = dev(m), tv = dev(v);
        long n = OpShapes.adamW(p, g, tm, tv, step);
        float bc1 = (float) (1.0 - Math.pow(step.beta1(), step.step()));
        float bc2 = (float) (1.0 - Math.pow(step.beta2(), step.step()));
        if (n > 0) {
            runStride(
                    "mode_adamw_step_f32",
                    n,
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
        OpShapes.RowDims dims = OpShapes.softmaxForward(tl, tp);
        String sfx = suffix(dims.dtype());
        int e = dims.cols(), n = dims.rows();
        if (n > 0 && e > 0) runStride("mode_softmax_fwd_" + sfx, n, tl, tp, n, e);
    }

    @Override
    public void softmaxBackward(Tensor dProbs, Tensor probs, Tensor dLogits) {
        DeviceTensor g = dev(dProbs), tp = dev(probs), dl = dev(dLogits);
        OpShapes.RowDims dims = OpShapes.softmaxBackward(g, tp, dl);
        String sfx = suffix(dims.dtype());
        int e = dims.cols(), n = dims.rows();
        if (n > 0 && e > 0) runStride("mode_softmax_bwd_" + sfx, n, g, tp, dl, n, e);
    }

    @Override
    public void weightedMergeForward(Tensor branches, Tensor probs, Tensor out) {
        DeviceTensor tb = dev(branches), tp = dev(probs), to = dev(out);
        OpShapes.MergeDims dims = OpShapes.weightedMergeForward(tb, tp, to);
        int e = dims.branches(), n = dims.rows(), d = dims.width();
        String sfx = suffix(dims.dtype());
        long total = (long) n * d;
        if (total > 0) runStride("mode_merge_fwd_" + sfx, total, tb, tp, to, e, n, d);
    }

    @Override
    public void weightedMergeBackward(Tensor dOut, Tensor branches, Tensor probs, Tensor dBranches, Tensor dProbs) {
        DeviceTensor g = dev(dOut), tb = dev(branches), tp = dev(probs), dp = dev(dProbs);
        DeviceTensor tdb = dBranches == null ? null : dev(dBranches);
        OpShapes.MergeDims dims = OpShapes.weightedMergeBackward(g, tb, tp, tdb, dp);
        int e = dims.branches(), n = dims.rows(), d = dims.width();
        Object db = tdb == null ? NULL : tdb;
        String sfx = suffix(dims.dtype());
        if (n > 0) runRows("mode_merge_bwd_" + sfx, n, g, tb, tp, db, dp, e, n, d);
    }

    // ================================================================== sparse routing

    @Override
    public void topK(Tensor probs, int k, Tensor indices, Tensor weights) {
        DeviceTensor tp = dev(probs), ti = dev(indices), tw = dev(weights);
        OpShapes.TopKDims dims = OpShapes.topK(tp, k, ti, tw);
        int e = dims.experts(), n = dims.rows();
        String sfx = suffix(dims.dtype());
        if (n > 0) runStride("mode_topk_fwd_" + sfx, n, tp, n, e, k, ti, tw);
    }

    @Override
    public void gatherRows(Tensor src, Tensor index, Tensor out) {
        DeviceTensor ts = dev(src), ti = dev(index), to = dev(out);
        OpShapes.RowMoveDims dims = OpShapes.gatherRows(ts, ti, to);
        int d = dims.width(), nsrc = dims.tableRows(), m = dims.moved();
        String sfx = suffix(dims.dtype());
        if (m > 0 && d > 0) runRows("mode_gather_fwd_" + sfx, m, ts, ti, to, m, d, nsrc, new Ptr(errorWord));
    }

    @Override
    public void scatterAddRows(Tensor src, Tensor index, Tensor out) {
        DeviceTensor ts = dev(src), ti = dev(index), to = dev(out);
        OpShapes.RowMoveDims dims = OpShapes.scatterAddRows(ts, ti, to);
        int d = dims.width(), nout = dims.tableRows(), m = dims.moved();
        String sfx = suffix(dims.dtype());
        if (m > 0 && d > 0)
            runScatter("mode_scatter_add_fwd_" + sfx, d, nout, ts, ti, to, m, d, nout, new Ptr(errorWord));
    }

    // ================================================================== launch plumbing

    /**
     * Marshals {@code params} (a {@link DeviceTensor} or {@link Ptr} as a pointer, Integer as int, Long as
     * long long, Float as float, Double as double) and launches {@code entry}.
     */
    private void run(String entry, int gx, int gy, int gz, Object... params) {
        launch(entry, gx, gy, gz, KernelLaunch.threads(entry), 1, params);
    }

    /** A grid-stride kernel over {@code n} items, one per thread per pass: at most the grid limit of blocks. */
    private void runStride(String entry, long n, Object... params) {
        int threads = KernelLaunch.threads(entry);
        launch(entry, grid(n, threads), 1, 1, threads, 1, params);
    }

    /** One block per row for {@code rows} rows (a row-striding kernel past the grid limit). */
    private void runRows(String entry, int rows, Object... params) {
        launch(entry, Math.min(rows, MAX_GRID), 1, 1, KernelLaunch.threads(entry), 1, params);
    }

    /**
     * A row scatter-add of {@code cols} columns into {@code outRows} rows: one thread per column in x, and the
     * output rows sliced over y ({@link LaunchGeometry#scatterSlices}).
     */
    private void runScatter(String entry, int cols, int outRows, Object... params) {
        int threads = KernelLaunch.threads(entry);
        launch(entry, ceilDiv(cols, threads), LaunchGeometry.scatterSlices(cols, outRows), 1, threads, 1, params);
    }

    /**
     * Stage 1 of a column sum: blocks of (column block X, Y) threads, one column per x, and {@code chunks} row
     * chunks over y.
     */
    private void runColumns(String entry, int cols, int chunks, Object... params) {
        int threads = KernelLaunch.threads(entry);
        if (threads != COLUMN_BLOCK_X * COLUMN_BLOCK_Y) {
            throw new IllegalStateException(entry + " is built for " + threads + " threads but the column block is "
                    + COLUMN_BLOCK_X + " x " + COLUMN_BLOCK_Y + "; make its __launch_bounds__ match mode_launch.cuh");
        }
        launch(entry, ceilDiv(cols, COLUMN_BLOCK_X), chunks, 1, COLUMN_BLOCK_X, COLUMN_BLOCK_Y, params);
    }

    private void launch(String entry, int gx, int gy, int gz, int bx, int by, Object... params) {
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
            device.launch(f, gx, gy, gz, bx, by, 1, 0, args.build());
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
                            OpShapes.indexOutOfRange(
                                    "embedding", "token id", value, position, "[0, V), the table's rows");
                        case 2 -> OpShapes.indexOutOfRange("gatherRows", "row index", value, position, "src's rows");
                        case 3 ->
                            OpShapes.indexOutOfRange("scatterAddRows", "row index", value, position, "out's rows");
                        case 4 ->
                            OpShapes.indexOutOfRange(
                                    "crossEntropy",
                                    "target",
                                    value,
                                    position,
                                    "[0, V) and is not IGNORE_INDEX (" + IGNORE_INDEX + ")");
                        case 5 ->
                            OpShapes.indexOutOfRange(OpShapes.GROUPED_OP, "row index", value, position, "x's rows");
                        case 6 -> OpShapes.groupOffsetError(value, position);
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

    /** The kernel name suffix of a float dtype the contract has checked. */
    private static String suffix(DType dtype) {
        return dtype == DType.BF16 ? "bf16" : "f32";
    }

    private static int ceilDiv(long a, int b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    /** Blocks for a grid-stride loop over n elements with {@code perBlock} per block, at most 65535. */
    private static int grid(long n, int perBlock) {
        return (int) Math.max(1, Math.min(MAX_GRID, (n + perBlock - 1) / perBlock));
    }
}
