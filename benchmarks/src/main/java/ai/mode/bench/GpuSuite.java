package ai.mode.bench;

import ai.mode.bindings.CudaDriver;
import ai.mode.model.LlamaConfig;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.cuda.CudaOptions;
import ai.mode.runtime.device.DeviceBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * GPU benchmarks for {@code mode bench} on any CUDA machine. Every op of our cuda backend at the model's shapes, in
 * float32 and bf16 storage, timed with CUDA events on the backend's stream (warm-up, then the median of many samples),
 * with inputs rotating through enough copies to exceed twice the L2 cache so no sample reads a warm cache. Our GEMM
 * kernel runs beside cuBLASLt on the same problems; the ceilings are measured on the device: device-to-device copy
 * bandwidth and cuBLASLt's rate on a large bf16 GEMM.
 */
public final class GpuSuite {

    private GpuSuite() {}

    /** Empty when a CUDA device can be used, else why not (no driver, no device, ...). */
    public static Optional<String> unavailableReason() {
        Optional<String> why = CudaDriver.unavailableReason();
        if (why.isPresent()) return why;
        try {
            if (CudaDriver.get().deviceCount() < 1) return Optional.of("the CUDA driver reports no device");
        } catch (RuntimeException e) {
            return Optional.of(e.getMessage());
        }
        return Optional.empty();
    }

    /** Seconds per call of {@code op(i)} (i counts calls, for rotating inputs). */
    @FunctionalInterface
    public interface OpTimer {
        double secondsPerCall(IntConsumer op);
    }

    /**
     * CUDA-event timing on the device's stream: {@code warmup} calls, then {@code samples} samples of
     * {@code inner} back-to-back calls between two events; the median sample over {@code inner}.
     */
    static OpTimer eventTimer(CudaDevice device, int warmup, int samples, int inner) {
        return op -> {
            int[] i = {0};
            device.timeMillis(() -> {
                for (int w = 0; w < warmup; w++) op.accept(i[0]++);
            });
            double[] s = new double[samples];
            for (int k = 0; k < samples; k++) {
                s[k] = device.timeMillis(() -> {
                            for (int j = 0; j < inner; j++) op.accept(i[0]++);
                        })
                        * 1e-3
                        / inner;
            }
            return Stats.median(s);
        };
    }

    /** Wall-clock timing bracketed by synchronize(), for backends without events (the emulator in tests). */
    public static OpTimer wallTimer(Backend be, int samples) {
        return op -> {
            int i = 0;
            op.accept(i++);
            be.synchronize();
            double[] s = new double[samples];
            for (int k = 0; k < samples; k++) {
                long t0 = System.nanoTime();
                op.accept(i++);
                be.synchronize();
                s[k] = (System.nanoTime() - t0) / 1e9;
            }
            return Stats.median(s);
        };
    }

    /** Runs the GPU section on the default CUDA device. */
    public static List<BenchReport.Row> run(LlamaConfig cfg, int batch, int seq, boolean quick) {
        List<BenchReport.Row> rows = new ArrayList<>();
        int ordinal = BackendSpec.fromEnvironment("cuda", 0).ordinal();
        int warmup = quick ? 3 : 10, samples = quick ? 15 : 51, inner = quick ? 5 : 10;
        try (DeviceBackend vendor = new DeviceBackend(CudaDevice.open(ordinal), "cuda");
                DeviceBackend kernelOnly = kernelGemmBackend(ordinal)) {
            CudaDevice dev = (CudaDevice) vendor.device();
            dev.context().makeCurrent();
            long l2 = CudaDriver.get()
                    .deviceAttribute(
                            CudaDriver.ATTR_L2_CACHE_SIZE, dev.context().device());
            String where = dev.name() + ", L2 " + (l2 >> 20) + " MiB";
            OpTimer timer = eventTimer(dev, warmup, samples, inner);
            OpTimer kernelTimer = eventTimer((CudaDevice) kernelOnly.device(), warmup, samples, inner);

            // ceilings: copy bandwidth and the vendor's large bf16 GEMM
            long copyFloats = Math.max(64L << 20, l2); // >= 256 MiB
            double copySec;
            try (Tensor src = vendor.zeros(Math.toIntExact(copyFloats));
                    Tensor dst = vendor.zeros(Math.toIntExact(copyFloats))) {
                copySec = timer.secondsPerCall(i -> vendor.copy(src, dst));
            }
            double bw = 2.0 * 4 * copyFloats / copySec;
            rows.add(BenchReport.Row.of("gpu", "device copy", where, copySec, bw / 1e12, "TB/s", 1.0)
                    .withNote("measured bandwidth ceiling (read + write)"));
            int big = quick ? 4096 : 8192;
            GemmCase ceil = new GemmCase("bf16 gemm ceiling", false, true, big, big, big);
            double tcSec = gemmSeconds(vendor, timer, ceil, DType.BF16, 0, new Random(1));
            double tc = ceil.flops() / tcSec;
            boolean haveVendor = dev.vendorGemm().isPresent();
            rows.add(BenchReport.Row.of("gpu", ceil.label(), ceil.shape(), tcSec, tc / 1e12, "TFLOP/s", 1.0)
                    .withNote(
                            (haveVendor ? "cuBLASLt" : "our kernel (no cuBLASLt)") + ": measured tensor-core ceiling"));

            // our GEMM kernel beside cuBLASLt at the model's shapes
            for (DType t : new DType[] {DType.BF16, DType.F32}) {
                for (GemmCase g : GemmCase.modelShapes(cfg, batch * seq)) {
                    double ours = gemmSeconds(kernelOnly, kernelTimer, g, t, 2 * l2, new Random(2));
                    BenchReport.Row r = BenchReport.Row.of(
                            "gpu",
                            "gemm " + g.label() + " " + t.name().toLowerCase(Locale.ROOT),
                            g.shape(),
                            ours,
                            g.flops() / ours / 1e12,
                            "TFLOP/s",
                            g.flops() / ours / tc);
                    if (haveVendor) {
                        double theirs = gemmSeconds(vendor, timer, g, t, 2 * l2, new Random(2));
                        r = r.withPeer("cuBLASLt", g.flops() / theirs / 1e12);
                    }
                    rows.add(r);
                }
            }
            rows.addAll(opRows(vendor, timer, cfg, batch, seq, 2 * l2, tc, bw));
            try (DeviceBackend cudaCores = new DeviceBackend(CudaDevice.open(ordinal), "cuda", false)) {
                OpTimer cudaCoreTimer = eventTimer((CudaDevice) cudaCores.device(), warmup, samples, inner);
                rows.addAll(flashAttentionRows(
                        vendor, cudaCores, timer, cudaCoreTimer, FLASH_ATTENTION_SHAPES, 2 * l2, tc, bw));
            }
            rows.addAll(reductionRows(
                    vendor, timer, REDUCTION_TOKENS, REDUCTION_WIDTH, cfg.vocabSize(), 2 * l2, bw, new Random(6)));
            for (int[] e : new int[][] {{4, batch * seq, cfg.hiddenSize(), cfg.intermediateSize()}, GROUPED_LARGE})
                rows.addAll(groupedRows(vendor, timer, e[0], e[1], e[2], e[3], 2 * l2, tc, new Random(7)));
        }
        return rows;
    }

    /** A cuda backend whose GEMMs always run the project's kernel (cuBLASLt disabled for it alone). */
    private static DeviceBackend kernelGemmBackend(int ordinal) {
        return new DeviceBackend(CudaDevice.open(ordinal, new CudaOptions(true, false, false)), "cuda");
    }

    /** Seconds per GEMM, inputs rotating through copies totalling more than {@code rotateBytes}. */
    static double gemmSeconds(Backend be, OpTimer timer, GemmCase g, DType t, long rotateBytes, Random r) {
        long setBytes = (long) t.bytes() * ((long) g.m() * g.k() + (long) g.k() * g.n() + (long) g.m() * g.n());
        int copies = copies(rotateBytes, setBytes);
        List<Tensor[]> sets = new ArrayList<>();
        try {
            for (int c = 0; c < copies; c++) {
                sets.add(new Tensor[] {
                    filled(be, t, r, g.aShape()), filled(be, t, r, g.bShape()), be.allocate(t, g.m(), g.n())
                });
            }
            return timer.secondsPerCall(i -> {
                Tensor[] s = sets.get(i % copies);
                be.gemm(g.transA(), g.transB(), 1f, s[0], s[1], 0f, s[2]);
            });
        } finally {
            for (Tensor[] s : sets) for (Tensor x : s) x.close();
        }
    }

    /** Copies of a {@code setBytes} working set needed to exceed {@code rotateBytes} (1 to 64). */
    static int copies(long rotateBytes, long setBytes) {
        return (int) Math.max(1, Math.min(64, rotateBytes / Math.max(1, setBytes) + 1));
    }

    private static Tensor filled(Backend be, DType t, Random r, int... shape) {
        float[] x = new float[Math.toIntExact(ai.mode.runtime.Shapes.numel(shape))];
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat() * 2 - 1;
        Tensor out = be.allocate(t, shape);
        be.copyFromHost(x, out);
        return out;
    }

    /**
     * Every non-GEMM op of a training step on {@code be} at the model's shapes, float32 and bf16 storage
     * where the op takes bf16. FLOP-bound rows are reported against {@code tcPeak} (FLOP/s), memory-bound
     * ones against {@code bwPeak} (bytes/s); an op the backend rejects becomes a row saying why.
     */
    public static List<BenchReport.Row> opRows(
            Backend be,
            OpTimer timer,
            LlamaConfig cfg,
            int batch,
            int seq,
            long rotateBytes,
            double tcPeak,
            double bwPeak) {
        int n = batch * seq,
                d = cfg.hiddenSize(),
                f = cfg.intermediateSize(),
                h = cfg.numHeads(),
                hkv = cfg.numKvHeads(),
                hd = cfg.headDim();
        int v = cfg.vocabSize();
        String att = batch + "x" + seq + "x" + h + "x" + hd;
        List<BenchReport.Row> rows = new ArrayList<>();
        Random r = new Random(5);
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            String ty = " " + t.name().toLowerCase(Locale.ROOT);
            long e = t.bytes();
            rows.addAll(attentionRows(be, timer, t, batch, seq, h, hkv, hd, rotateBytes, tcPeak, bwPeak));
            rows.add(op(
                    be,
                    timer,
                    "rmsnorm fwd" + ty,
                    n + "x" + d,
                    Flops.rmsNormForwardBytes(n, d, e),
                    false,
                    tcPeak,
                    bwPeak,
                    rotateBytes,
                    Flops.rmsNormForwardBytes(n, d, e),
                    () -> new Tensor[] {
                        filled(be, t, r, n, d), filled(be, DType.F32, r, d), be.allocate(t, n, d), be.zeros(n)
                    },
                    s -> () -> be.rmsNormForward(s[0], s[1], cfg.rmsNormEps(), s[2], s[3])));
            rows.add(op(
                    be,
                    timer,
                    "rmsnorm bwd" + ty,
                    n + "x" + d,
                    Flops.rmsNormBackwardBytes(n, d, e),
                    false,
                    tcPeak,
                    bwPeak,
                    rotateBytes,
                    Flops.rmsNormBackwardBytes(n, d, e),
                    () -> new Tensor[] {
                        filled(be, t, r, n, d),
                        filled(be, t, r, n, d),
                        filled(be, DType.F32, r, d),
                        filled(be, DType.F32, r, n),
                        be.allocate(t, n, d),
                        be.zeros(d)
                    },
                    s -> () -> be.rmsNormBackward(s[0], s[1], s[2], s[3], s[4], s[5])));
            rows.add(op(
                    be,
                    timer,
                    "swiglu fwd" + ty,
                    n + "x" + f,
                    Flops.swiGluForwardBytes(n, f, e),
                    false,
                    tcPeak,
                    bwPeak,
                    rotateBytes,
                    Flops.swiGluForwardBytes(n, f, e),
                    () -> new Tensor[] {filled(be, t, r, n, f), filled(be, t, r, n, f), be.allocate(t, n, f)},
                    s -> () -> be.swiGluForward(s[0], s[1], s[2])));
            rows.add(op(
                    be,
                    timer,
                    "swiglu bwd" + ty,
                    n + "x" + f,
                    Flops.swiGluBackwardBytes(n, f, e),
                    false,
                    tcPeak,
                    bwPeak,
                    rotateBytes,
                    Flops.swiGluBackwardBytes(n, f, e),
                    () -> new Tensor[] {
                        filled(be, t, r, n, f),
                        filled(be, t, r, n, f),
                        filled(be, t, r, n, f),
                        be.allocate(t, n, f),
                        be.allocate(t, n, f)
                    },
                    s -> () -> be.swiGluBackward(s[0], s[1], s[2], s[3], s[4])));
        }
        int chunk = Math.max(1, Math.min(n, ai.mode.model.nn.LmHead.CHUNK_ELEMENTS / v));
        int[] targets = new int[chunk];
        for (int i = 0; i < chunk; i++) targets[i] = r.nextInt(v);
        rows.add(op(
                be,
                timer,
                "cross-entropy fwd+bwd f32",
                chunk + "x" + v,
                Flops.crossEntropyBytes(chunk, v),
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                Flops.crossEntropyBytes(chunk, v),
                () -> new Tensor[] {filled(be, DType.F32, r, chunk, v), be.fromHost(targets, chunk), be.zeros(chunk, v)
                },
                s -> () -> be.crossEntropy(s[0], s[1], s[2], 1f / chunk)));
        int params = Math.toIntExact(cfg.parameterCount());
        AdamWStep step = new AdamWStep(1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f);
        rows.add(op(
                be,
                timer,
                "adamw f32",
                String.valueOf(params),
                Flops.adamWBytes(params),
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                Flops.adamWBytes(params),
                () -> new Tensor[] {
                    filled(be, DType.F32, r, params),
                    filled(be, DType.F32, r, params),
                    be.zeros(params),
                    be.zeros(params)
                },
                s -> () -> be.adamW(s[0], s[1], s[2], s[3], step)));
        return rows;
    }

    /** Width and token count of the reduction rows: a large model's hidden size over a 64k-token batch. */
    public static final int REDUCTION_WIDTH = 4096, REDUCTION_TOKENS = 65_536;

    /** The names of the reduction rows, in the order {@link #reductionRows} adds them (gpu-check looks for them). */
    public static final List<String> REDUCTION_ROWS =
            List.of("scatter-add rows f32", "embedding bwd f32", "sum of squares f32", "column sums f32");

    /** The shape every reduction row starts with: {@value #REDUCTION_TOKENS} x {@value #REDUCTION_WIDTH}. */
    public static String reductionShape() {
        return REDUCTION_TOKENS + "x" + REDUCTION_WIDTH;
    }

    /**
     * The deterministic row and column reductions over {@code n} tokens of width {@code d} (the suite runs
     * {@value #REDUCTION_TOKENS} x {@value #REDUCTION_WIDTH}), float32, in bytes/s of compulsory traffic against
     * {@code bwPeak}: scatter-add of rows (the top-k unpermute; random destinations), embedding backward into a
     * {@code vocab}-row table, sum of squares (gradient-norm clipping) and column sums (bias gradients; the
     * RMSNorm weight gradient uses the same two stages).
     */
    public static List<BenchReport.Row> reductionRows(
            Backend be, OpTimer timer, int n, int d, int vocab, long rotateBytes, double bwPeak, Random r) {
        double tcPeak = Double.NaN; // every row is memory-bound
        long matrix = 4L * n * d;
        String shape = n + "x" + d;
        int[] rowsOut = new int[n], ids = new int[n];
        for (int i = 0; i < n; i++) {
            rowsOut[i] = r.nextInt(n);
            ids[i] = r.nextInt(vocab);
        }
        List<BenchReport.Row> rows = new ArrayList<>();
        rows.add(op(
                be,
                timer,
                REDUCTION_ROWS.get(0),
                shape,
                3 * matrix,
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                2 * matrix,
                () -> new Tensor[] {filled(be, DType.F32, r, n, d), be.fromHost(rowsOut, n), be.zeros(n, d)},
                s -> () -> be.scatterAddRows(s[0], s[1], s[2])));
        rows.add(op(
                be,
                timer,
                REDUCTION_ROWS.get(1),
                shape + " into " + vocab + " rows",
                3 * matrix,
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                matrix + 4L * vocab * d,
                () -> new Tensor[] {filled(be, DType.F32, r, n, d), be.fromHost(ids, n), be.zeros(vocab, d)},
                s -> () -> be.embeddingBackward(s[0], s[1], s[2])));
        rows.add(op(
                be,
                timer,
                REDUCTION_ROWS.get(2),
                shape,
                matrix,
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                matrix,
                () -> new Tensor[] {filled(be, DType.F32, r, n, d)},
                s -> () -> be.sumSquares(s[0])));
        rows.add(op(
                be,
                timer,
                REDUCTION_ROWS.get(3),
                shape,
                matrix,
                false,
                tcPeak,
                bwPeak,
                rotateBytes,
                matrix,
                () -> new Tensor[] {filled(be, DType.F32, r, n, d), be.zeros(d)},
                s -> () -> be.sumRowsAccumulate(s[0], s[1])));
        return rows;
    }

    /**
     * {batch, T, H, Hkv, hd} of the flash-attention rows: the FlashAttention-2/3 papers' causal setting (16k tokens,
     * hidden 2048) at head dims 64 and 128, and head dim 32 with GQA (4 query heads per kv head).
     */
    static final int[][] FLASH_ATTENTION_SHAPES = {{8, 2048, 32, 32, 64}, {8, 2048, 16, 16, 128}, {8, 2048, 64, 16, 32}
    };

    /**
     * Attention forward and backward rows ({@code attention fwd <dtype>}, {@code attention bwd <dtype>}) on {@code be}
     * for q [batch, seq, h, hd] over hkv key/value heads, causal; FLOP rates against {@code tcPeak}.
     */
    static List<BenchReport.Row> attentionRows(
            Backend be,
            OpTimer timer,
            DType t,
            int batch,
            int seq,
            int h,
            int hkv,
            int hd,
            long rotateBytes,
            double tcPeak,
            double bwPeak) {
        String ty = " " + t.name().toLowerCase(Locale.ROOT);
        String att = batch + "x" + seq + "x" + h + "x" + hd;
        long n = (long) batch * seq, e = t.bytes();
        Random r = new Random(7);
        List<BenchReport.Row> rows = new ArrayList<>();
        rows.add(op(
                be,
                timer,
                "attention fwd" + ty,
                att,
                Flops.attentionForward(batch, seq, h, hd),
                true,
                tcPeak,
                bwPeak,
                rotateBytes,
                e * 4L * n * hd * h,
                () -> new Tensor[] {
                    filled(be, t, r, batch, seq, h, hd),
                    filled(be, t, r, batch, seq, hkv, hd),
                    filled(be, t, r, batch, seq, hkv, hd),
                    be.allocate(t, batch, seq, h, hd),
                    be.zeros(batch, h, seq)
                },
                s -> () -> be.attentionForward(s[0], s[1], s[2], s[3], s[4])));
        rows.add(op(
                be,
                timer,
                "attention bwd" + ty,
                att,
                Flops.attentionBackward(batch, seq, h, hd),
                true,
                tcPeak,
                bwPeak,
                rotateBytes,
                e * 8L * n * hd * h,
                () -> {
                    Tensor q = filled(be, t, r, batch, seq, h, hd),
                            k = filled(be, t, r, batch, seq, hkv, hd),
                            vv = filled(be, t, r, batch, seq, hkv, hd);
                    Tensor o = be.allocate(t, batch, seq, h, hd), lse = be.zeros(batch, h, seq);
                    be.attentionForward(q, k, vv, o, lse);
                    return new Tensor[] {
                        filled(be, t, r, batch, seq, h, hd),
                        q,
                        k,
                        vv,
                        o,
                        lse,
                        be.allocate(t, batch, seq, h, hd),
                        be.allocate(t, batch, seq, hkv, hd),
                        be.allocate(t, batch, seq, hkv, hd)
                    };
                },
                s -> () -> be.attentionBackward(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8])));
        return rows;
    }

    /**
     * The bf16 tensor-core attention kernels ({@code tensorCores}) beside the CUDA-core ones ({@code cudaCores}) on
     * the same device, at {@code shapes} ({batch, T, H, Hkv, hd}, e.g. {@link #FLASH_ATTENTION_SHAPES}). The rows are {@code flash attention ...}, the CUDA-core kernel as the peer; the hd 128
     * rows' note gives FlashAttention-3's published figures (another kernel on an H100 SXM5, not measured here).
     */
    static List<BenchReport.Row> flashAttentionRows(
            Backend tensorCores,
            Backend cudaCores,
            OpTimer timer,
            OpTimer cudaCoreTimer,
            int[][] shapes,
            long rotateBytes,
            double tcPeak,
            double bwPeak) {
        List<BenchReport.Row> rows = new ArrayList<>();
        for (int[] sh : shapes) {
            List<BenchReport.Row> ours = attentionRows(
                    tensorCores, timer, DType.BF16, sh[0], sh[1], sh[2], sh[3], sh[4], rotateBytes, tcPeak, bwPeak);
            List<BenchReport.Row> peer = attentionRows(
                    cudaCores,
                    cudaCoreTimer,
                    DType.BF16,
                    sh[0],
                    sh[1],
                    sh[2],
                    sh[3],
                    sh[4],
                    rotateBytes,
                    tcPeak,
                    bwPeak);
            for (int i = 0; i < ours.size(); i++) {
                BenchReport.Row o = ours.get(i);
                boolean fwd = i == 0;
                String published = sh[4] != 128
                        ? ""
                        : "published (not measured here; H100 SXM5, head dim 128, long sequences): FlashAttention-3 about "
                                + (fwd ? "620" : "561") + " TFLOP/s, FlashAttention-2 about 35% of the bf16 peak";
                BenchReport.Row row = new BenchReport.Row(
                        o.group(),
                        "flash " + o.name(),
                        o.shape() + (sh[3] != sh[2] ? " kv" + sh[3] : ""),
                        o.seconds(),
                        o.value(),
                        o.unit(),
                        o.ofPeak(),
                        "",
                        Double.NaN,
                        o.note(),
                        o.runRatio());
                if (!Double.isNaN(peer.get(i).value()))
                    row = row.withPeer("CUDA-core kernel", peer.get(i).value());
                rows.add(published.isEmpty() ? row : row.withNote(published));
            }
        }
        return rows;
    }

    /**
     * The larger grouped case: 8 experts x 512 tokens each, width 1024, FFN 2816 (23.6 GFLOP per forward product;
     * docs/kernels.md's performance model predicts it).
     */
    static final int[] GROUPED_LARGE = {8, 512, 1024, 2816};

    /**
     * The grouped expert GEMM ({@link Backend#groupedGemmForward} and the rest: one tensor-core launch for all
     * {@code experts}) at {@code tokens} rows per expert, width {@code d} and FFN width {@code f}, bf16
     * activations, in FLOP/s against {@code tcPeak}, each beside its peer made of the ops it replaces: the batched {@code
     * gemm} (cuBLASLt when present), two of them plus {@code swiGluForward} for the fused SwiGLU, and for top-k routing
     * (ragged groups of random sizes over a token list) {@code gatherRows} plus one {@code gemm} per expert.
     */
    static List<BenchReport.Row> groupedRows(
            Backend be,
            OpTimer timer,
            int experts,
            int tokens,
            int d,
            int f,
            long rotateBytes,
            double tcPeak,
            Random r) {
        List<BenchReport.Row> rows = new ArrayList<>();
        int m = experts * tokens;
        long flops = 2L * m * f * d;
        String shape = experts + "x[" + tokens + "x" + d + "]x[" + f + "x" + d + "]^T";
        int[] counts = new int[experts], off = new int[experts + 1], tokenList = new int[m];
        for (int i = 0; i < m; i++) counts[r.nextInt(experts)]++;
        for (int e = 0; e < experts; e++) off[e + 1] = off[e] + counts[e];
        for (int i = 0; i < m; i++) tokenList[i] = r.nextInt(m);
        for (DType t : new DType[] {DType.BF16}) { // the tensor-core kernels take bf16 activations only
            String dt = " " + t.name().toLowerCase(Locale.ROOT);
            long setBytes = (long) t.bytes() * m * (2L * d + 3L * f) + (8L + 2L * t.bytes()) * experts * f * d;
            java.util.function.Supplier<Tensor[]> set = () -> new Tensor[] {
                filled(be, t, r, m, d),
                filled(be, DType.F32, r, experts, f, d),
                filled(be, DType.F32, r, experts, f, d),
                be.allocate(t, m, f),
                be.allocate(t, m, f),
                be.allocate(t, m, f),
                be.fromHost(tokenList, m),
                be.fromHost(off, experts + 1),
                be.allocate(t, m, d),
                filled(be, t, r, experts, f, d), // the weights in the activations' dtype, for the gemm peers
                filled(be, t, r, experts, f, d)
            };
            BenchReport.Row fwd = op(
                    be,
                    timer,
                    "grouped fwd" + dt,
                    shape,
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> be.groupedGemmForward(s[0], null, s[1], null, 0f, s[3]));
            BenchReport.Row fwdPeer = op(
                    be,
                    timer,
                    "batched gemm" + dt,
                    shape,
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> batchedGemm(be, s[0], s[9], s[3], experts, tokens));
            rows.add(withPeer(fwd, "batched gemm", fwdPeer));
            BenchReport.Row glu = op(
                    be,
                    timer,
                    "grouped swiglu fwd" + dt,
                    shape + " x2",
                    2 * flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> be.groupedSwiGluForward(s[0], null, s[1], s[2], null, s[3], s[4], s[5]));
            BenchReport.Row gluPeer = op(
                    be,
                    timer,
                    "2 gemm + swiglu" + dt,
                    shape + " x2",
                    2 * flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> {
                        batchedGemm(be, s[0], s[9], s[3], experts, tokens);
                        batchedGemm(be, s[0], s[10], s[4], experts, tokens);
                        be.swiGluForward(s[3], s[4], s[5]);
                    });
            rows.add(withPeer(glu, "2 gemm + swiglu", gluPeer));
            rows.add(op(
                    be,
                    timer,
                    "grouped bwd dx" + dt,
                    shape,
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> be.groupedGemmBackwardData(s[3], s[1], null, 0f, s[8])));
            rows.add(op(
                    be,
                    timer,
                    "grouped bwd dw" + dt,
                    shape,
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> be.groupedGemmBackwardWeight(s[3], s[0], null, null, 0f, s[1])));
            BenchReport.Row topk = op(
                    be,
                    timer,
                    "grouped top-k fwd" + dt,
                    shape + " ragged, gathered",
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> be.groupedGemmForward(s[0], s[6], s[1], s[7], 0f, s[3]));
            BenchReport.Row topkPeer = op(
                    be,
                    timer,
                    "gather + gemm per expert" + dt,
                    shape + " ragged",
                    flops,
                    true,
                    tcPeak,
                    0,
                    rotateBytes,
                    setBytes,
                    set,
                    s -> () -> {
                        be.gatherRows(s[0], s[6], s[8]);
                        for (int e = 0; e < experts; e++) {
                            if (counts[e] == 0) continue;
                            be.gemm(
                                    false,
                                    true,
                                    1f,
                                    be.slice(s[8], off[e], counts[e]),
                                    be.view(be.slice(s[9], e, 1), f, d),
                                    0f,
                                    be.slice(s[3], off[e], counts[e]));
                        }
                    });
            rows.add(withPeer(topk, "gather + gemm per expert", topkPeer));
        }
        return rows;
    }

    /** y [E·M, F] = x [E·M, D] times each expert's w [E, F, D] transposed, as one batched gemm. */
    private static void batchedGemm(Backend be, Tensor x, Tensor w, Tensor y, int experts, int tokens) {
        be.gemm(false, true, 1f, be.view(x, experts, tokens, x.dim(1)), w, 0f, be.view(y, experts, tokens, w.dim(1)));
    }

    /** {@code row} with the rate of {@code peer} beside it (or the peer's skip reason in the note). */
    private static BenchReport.Row withPeer(BenchReport.Row row, String peerName, BenchReport.Row peer) {
        return peer.value() > 0 ? row.withPeer(peerName, peer.value()) : row;
    }

    /**
     * Allocates enough input sets (each {@code setBytes}) to exceed {@code rotateBytes}, times the op rotating
     * over them, and reports FLOP/s ({@code flopBound}) or bytes/s of {@code work} per call.
     */
    private static BenchReport.Row op(
            Backend be,
            OpTimer timer,
            String name,
            String shape,
            long work,
            boolean flopBound,
            double tcPeak,
            double bwPeak,
            long rotateBytes,
            long setBytes,
            java.util.function.Supplier<Tensor[]> makeSet,
            Function<Tensor[], Runnable> call) {
        int copies = copies(rotateBytes, setBytes);
        List<Tensor[]> sets = new ArrayList<>();
        try {
            List<Runnable> calls = new ArrayList<>();
            for (int c = 0; c < copies; c++) {
                Tensor[] s = makeSet.get();
                sets.add(s);
                calls.add(call.apply(s));
            }
            double sec = timer.secondsPerCall(i -> calls.get(i % copies).run());
            double rate = work / sec;
            return BenchReport.Row.of(
                    "gpu",
                    name,
                    shape,
                    sec,
                    rate / 1e12,
                    flopBound ? "TFLOP/s" : "TB/s",
                    rate / (flopBound ? tcPeak : bwPeak));
        } catch (RuntimeException e) {
            return BenchReport.Row.skipped("gpu", name, be.name() + " rejected it: " + e.getMessage());
        } finally {
            for (Tensor[] s : sets) for (Tensor x : s) x.close();
        }
    }
}
