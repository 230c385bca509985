// GPU benchmarks for `mode bench` on any CUDA machine: measured ceilings (device-to-device copy bandwidth,
// cuBLASLt's best bf16 and fp32 GEMM rate), cuBLASLt at the model's GEMM shapes, and every op of our cuda
// backend at the model's shapes. CUDA events time each launch after warm-up; the median of many runs is kept;
// inputs rotate through enough copies to exceed twice the L2 cache, so no run reads a warm cache.
package ai.mode.bench;

import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaContext;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaEvent;
import ai.mode.bindings.CudaStream;
import ai.mode.model.LlamaConfig;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.function.IntConsumer;

/** The GPU section of the benchmark report. */
public final class GpuSuite {
    private static final long WORKSPACE_BYTES = 32L << 20;

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

    /** Times launches with CUDA events on one stream: warm-up, then the median over {@code reps} single launches. */
    record EventTimer(CudaStream stream, int warmup, int reps) {
        /** Median milliseconds of {@code launch(i)}, i counting up from 0 (use it to rotate inputs). */
        double medianMillis(IntConsumer launch) {
            int i = 0;
            for (int w = 0; w < warmup; w++) launch.accept(i++);
            stream.synchronize();
            double[] ms = new double[reps];
            try (CudaEvent start = CudaDriver.get().eventCreate(CudaDriver.EVENT_DEFAULT);
                 CudaEvent end = CudaDriver.get().eventCreate(CudaDriver.EVENT_DEFAULT)) {
                for (int r = 0; r < reps; r++) {
                    start.record(stream);
                    launch.accept(i++);
                    end.record(stream);
                    end.synchronize();
                    ms[r] = end.elapsedMillisSince(start);
                }
            }
            return Stats.median(ms);
        }
    }

    /** Runs the GPU section on device 0. */
    public static List<BenchReport.Row> run(LlamaConfig cfg, int batch, int seq, boolean quick) {
        CudaDriver cu = CudaDriver.get();
        List<BenchReport.Row> rows = new ArrayList<>();
        try (CudaContext ctx = cu.retainPrimaryContext(0)) {
            ctx.makeCurrent();
            int dev = ctx.device();
            long l2 = cu.deviceAttribute(CudaDriver.ATTR_L2_CACHE_SIZE, dev);
            String name = cu.deviceName(dev) + " (sm_" + cu.computeCapability(dev) + ", L2 " + (l2 >> 20) + " MiB)";
            try (CudaStream stream = cu.streamCreate(CudaDriver.STREAM_NON_BLOCKING)) {
                EventTimer timer = new EventTimer(stream, quick ? 5 : 20, quick ? 30 : 200);
                double copyGBs = copyCeiling(cu, stream, timer, l2);
                rows.add(BenchReport.Row.of("gpu", "device copy (cuMemcpyDtoDAsync)", name, Double.NaN, copyGBs, "GB/s", 1.0)
                        .withNote("measured bandwidth ceiling (read + write)"));
                Optional<String> noLt = CublasLt.unavailableReason();
                double tcPeak = Double.NaN;
                if (noLt.isPresent()) {
                    rows.add(BenchReport.Row.skipped("gpu", "cuBLASLt", "cuBLASLt not found: " + noLt.get()));
                } else {
                    rows.addAll(cublasLtRows(cu, stream, timer, l2, cfg, batch * seq, quick));
                    tcPeak = rows.stream().filter(r -> r.name().startsWith("cuBLASLt bf16 ceiling")).mapToDouble(BenchReport.Row::value)
                            .findFirst().orElse(Double.NaN);
                }
                rows.addAll(backendRows(cfg, batch, seq, l2, quick, tcPeak, copyGBs));
            }
        }
        return rows;
    }

    /** Device-to-device copy bandwidth over a buffer of 4x L2 (at least 256 MiB). */
    private static double copyCeiling(CudaDriver cu, CudaStream stream, EventTimer timer, long l2) {
        long bytes = Math.max(256L << 20, 4 * l2);
        long src = cu.memAlloc(bytes), dst = cu.memAlloc(bytes);
        try {
            cu.memsetD8Async(src, 1, bytes, stream);
            double ms = timer.medianMillis(i -> cu.memcpyDtoDAsync(dst, src, bytes, stream));
            return 2.0 * bytes / (ms * 1e-3) / 1e9;
        } finally {
            cu.memFree(src);
            cu.memFree(dst);
        }
    }

    /** cuBLASLt ceilings (8192^3 bf16 and fp32) and cuBLASLt bf16 at the model's GEMM shapes. */
    private static List<BenchReport.Row> cublasLtRows(CudaDriver cu, CudaStream stream, EventTimer timer, long l2,
                                                      LlamaConfig cfg, int tokens, boolean quick) {
        List<BenchReport.Row> rows = new ArrayList<>();
        CublasLt lt = CublasLt.get();
        int big = quick ? 4096 : 8192;
        try (CublasLt.Handle h = lt.create()) {
            long workspace = cu.memAlloc(WORKSPACE_BYTES);
            try {
                GemmCase ceiling = new GemmCase("cuBLASLt bf16 ceiling", false, false, big, big, big);
                double tc = cublasLtGemm(cu, lt, h, stream, timer, l2, workspace, ceiling, true);
                rows.add(BenchReport.Row.of("gpu", ceiling.label(), ceiling.shape(), Double.NaN, tc / 1e3, "TFLOP/s", 1.0)
                        .withNote("measured tensor-core ceiling (bf16 in, fp32 accumulate)"));
                GemmCase f32 = new GemmCase("cuBLASLt fp32", false, false, big, big, big);
                double fp = cublasLtGemm(cu, lt, h, stream, timer, l2, workspace, f32, false);
                rows.add(BenchReport.Row.of("gpu", f32.label(), f32.shape(), Double.NaN, fp / 1e3, "TFLOP/s", fp / tc));
                for (GemmCase g : GemmCase.modelShapes(cfg, tokens)) {
                    double gf = cublasLtGemm(cu, lt, h, stream, timer, l2, workspace, g, true);
                    rows.add(BenchReport.Row.of("gpu", "cuBLASLt bf16 " + g.label(), g.shape(), g.flops() / (gf * 1e9), gf / 1e3, "TFLOP/s", gf / tc));
                }
            } finally {
                cu.memFree(workspace);
            }
        }
        return rows;
    }

    /**
     * One row-major GEMM through cuBLASLt (column-major, so computed as C^T = op(B)^T op(A)^T), with inputs
     * rotating through enough copies to exceed 2x L2; returns GFLOP/s.
     */
    private static double cublasLtGemm(CudaDriver cu, CublasLt lt, CublasLt.Handle h, CudaStream stream, EventTimer timer,
                                       long l2, long workspace, GemmCase g, boolean bf16) {
        int type = bf16 ? CublasLt.R_16BF : CublasLt.R_32F;
        int compute = CublasLt.COMPUTE_32F;
        long elem = bf16 ? 2 : 4;
        long aBytes = elem * g.m() * g.k(), bBytes = elem * g.k() * g.n(), cBytes = elem * g.m() * g.n();
        int copies = (int) Math.max(1, Math.min(64, (2 * l2) / (aBytes + bBytes + cBytes) + 1));
        long[] a = new long[copies], b = new long[copies], c = new long[copies];
        try (Arena arena = Arena.ofConfined();
             CublasLt.MatmulDesc desc = lt.createMatmulDesc(compute, CublasLt.R_32F)
                     .transposes(g.transB() ? CublasLt.OP_T : CublasLt.OP_N, g.transA() ? CublasLt.OP_T : CublasLt.OP_N);
             // A' = B: stored row-major [k,n] (col-major n x k) or [n,k] (col-major k x n)
             CublasLt.Layout la = g.transB() ? lt.createLayout(type, g.k(), g.n(), g.k()) : lt.createLayout(type, g.n(), g.k(), g.n());
             // B' = A: stored row-major [m,k] (col-major k x m) or [k,m] (col-major m x k)
             CublasLt.Layout lb = g.transA() ? lt.createLayout(type, g.m(), g.k(), g.m()) : lt.createLayout(type, g.k(), g.m(), g.k());
             CublasLt.Layout lc = lt.createLayout(type, g.n(), g.m(), g.n());
             CublasLt.Preference pref = lt.createPreference().maxWorkspace(WORKSPACE_BYTES)) {
            for (int i = 0; i < copies; i++) {
                a[i] = cu.memAlloc(aBytes);
                b[i] = cu.memAlloc(bBytes);
                c[i] = cu.memAlloc(cBytes);
                upload(cu, a[i], aBytes, bf16, 11L * i + 1, arena);
                upload(cu, b[i], bBytes, bf16, 11L * i + 2, arena);
            }
            CublasLt.Algo algo = lt.heuristic(h, desc, la, lb, lc, lc, pref, arena).orElseThrow(() -> new IllegalStateException(
                    "cuBLASLt has no algorithm for " + g.shape() + (bf16 ? " bf16" : " fp32")));
            MemorySegment one = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f), zero = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);
            double ms = timer.medianMillis(i -> {
                int s = i % copies;
                lt.matmul(h, desc, one, b[s], la, a[s], lb, zero, c[s], lc, c[s], lc, algo, workspace, WORKSPACE_BYTES, stream, g.shape());
            });
            return g.flops() / (ms * 1e-3) / 1e9;
        } finally {
            for (int i = 0; i < copies; i++) {
                if (a[i] != 0) cu.memFree(a[i]);
                if (b[i] != 0) cu.memFree(b[i]);
                if (c[i] != 0) cu.memFree(c[i]);
            }
        }
    }

    /** Random values in [-1, 1) as float32 or bf16 (truncated float32), copied to the device. */
    private static void upload(CudaDriver cu, long dst, long bytes, boolean bf16, long seed, Arena arena) {
        Random r = new Random(seed);
        MemorySegment host = arena.allocate(bytes, 64);
        if (bf16) {
            for (long o = 0; o < bytes; o += 2) host.set(ValueLayout.JAVA_SHORT, o, (short) (Float.floatToRawIntBits(r.nextFloat() * 2 - 1) >>> 16));
        } else {
            for (long o = 0; o < bytes; o += 4) host.set(ValueLayout.JAVA_FLOAT, o, r.nextFloat() * 2 - 1);
        }
        cu.memcpyHtoD(dst, host, bytes);
    }

    /**
     * Our cuda backend's ops at the model's shapes, through the {@link Backend} interface. The backend keeps
     * its stream to itself, so each sample brackets {@code inner} launches with synchronize() and divides the
     * wall time (launch overhead included); inputs rotate over copies exceeding 2x L2.
     */
    private static List<BenchReport.Row> backendRows(LlamaConfig cfg, int batch, int seq, long l2, boolean quick,
                                                     double tcPeakTflops, double copyGBs) {
        List<BenchReport.Row> rows = new ArrayList<>();
        Backend be;
        try {
            be = Backends.create("cuda", 0);
        } catch (RuntimeException e) {
            rows.add(BenchReport.Row.skipped("gpu", "our kernels", "cuda backend unavailable: " + e.getMessage()));
            return rows;
        }
        try (be) {
            int n = batch * seq, d = cfg.hiddenSize(), f = cfg.intermediateSize(), h = cfg.numHeads(), hd = cfg.headDim();
            int samples = quick ? 7 : 21, inner = quick ? 5 : 20;
            Random rnd = new Random(7);
            long setBytes = 4L * n * (3L * d + 2 * f);
            int copies = (int) Math.max(1, Math.min(32, 2 * l2 / setBytes + 1));
            List<Tensor[]> sets = new ArrayList<>();
            for (int c = 0; c < copies; c++) {
                sets.add(new Tensor[] {
                        be.fromHost(randoms(rnd, (long) n * d), batch, seq, h, hd), be.fromHost(randoms(rnd, (long) n * d), batch, seq, h, hd),
                        be.fromHost(randoms(rnd, (long) n * d), batch, seq, h, hd), be.fromHost(randoms(rnd, (long) n * f), n, f),
                        be.fromHost(randoms(rnd, (long) n * f), n, f)});
            }
            try (Tensor out = be.zeros(batch, seq, h, hd); Tensor lse = be.zeros(batch, h, seq); Tensor dq = be.zeros(batch, seq, h, hd);
                 Tensor dk = be.zeros(batch, seq, h, hd); Tensor dv = be.zeros(batch, seq, h, hd); Tensor w = be.fromHost(randoms(rnd, d), d);
                 Tensor rstd = be.zeros(n); Tensor y = be.zeros(n, d); Tensor dw = be.zeros(d); Tensor fo = be.zeros(n, f); Tensor fo2 = be.zeros(n, f)) {
                double tcPeak = tcPeakTflops * 1e12, bwPeak = copyGBs * 1e9;
                rows.add(timed(be, "attention fwd", batch + "x" + seq + "x" + h + "x" + hd, Flops.attentionForward(batch, seq, h, hd), "TFLOP/s", tcPeak,
                        samples, inner, i -> {
                            Tensor[] s = sets.get(i % copies);
                            be.attentionForward(s[0], s[1], s[2], out, lse);
                        }));
                rows.add(timed(be, "attention bwd", batch + "x" + seq + "x" + h + "x" + hd, Flops.attentionBackward(batch, seq, h, hd), "TFLOP/s", tcPeak,
                        samples, inner, i -> {
                            Tensor[] s = sets.get(i % copies);
                            be.attentionBackward(s[0], s[0], s[1], s[2], out, lse, dq, dk, dv);
                        }));
                rows.add(timed(be, "rmsnorm fwd", n + "x" + d, Flops.rmsNormForwardBytes(n, d), "TB/s", bwPeak, samples, inner, i -> {
                    Tensor[] s = sets.get(i % copies);
                    be.rmsNormForward(be.view(s[0], n, d), w, cfg.rmsNormEps(), y, rstd);
                }));
                rows.add(timed(be, "rmsnorm bwd", n + "x" + d, Flops.rmsNormBackwardBytes(n, d), "TB/s", bwPeak, samples, inner, i -> {
                    Tensor[] s = sets.get(i % copies);
                    be.rmsNormBackward(be.view(s[1], n, d), be.view(s[0], n, d), w, rstd, y, dw);
                }));
                rows.add(timed(be, "swiglu fwd", n + "x" + f, Flops.swiGluForwardBytes(n, f), "TB/s", bwPeak, samples, inner, i -> {
                    Tensor[] s = sets.get(i % copies);
                    be.swiGluForward(s[3], s[4], fo);
                }));
                rows.add(timed(be, "swiglu bwd", n + "x" + f, Flops.swiGluBackwardBytes(n, f), "TB/s", bwPeak, samples, inner, i -> {
                    Tensor[] s = sets.get(i % copies);
                    be.swiGluBackward(s[3], s[4], s[3], fo, fo2);
                }));
                int params = Math.toIntExact(cfg.parameterCount());
                try (Tensor p = be.fromHost(randoms(rnd, params), params); Tensor g = be.fromHost(randoms(rnd, params), params);
                     Tensor m = be.zeros(params); Tensor v = be.zeros(params)) {
                    AdamWStep st = new AdamWStep(1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f);
                    rows.add(timed(be, "adamw", String.valueOf(params), Flops.adamWBytes(params), "TB/s", bwPeak, samples, inner,
                            i -> be.adamW(p, g, m, v, st)));
                }
                for (GemmCase gc : GemmCase.modelShapes(cfg, n)) {
                    try (Tensor a = be.fromHost(randoms(rnd, (long) gc.m() * gc.k()), gc.aShape());
                         Tensor b = be.fromHost(randoms(rnd, (long) gc.k() * gc.n()), gc.bShape()); Tensor c = be.zeros(gc.m(), gc.n())) {
                        rows.add(timed(be, "gemm " + gc.label(), gc.shape(), gc.flops(), "TFLOP/s", tcPeak, samples, inner,
                                i -> be.gemm(gc.transA(), gc.transB(), 1f, a, b, 0f, c)));
                    }
                }
            } finally {
                for (Tensor[] s : sets) for (Tensor t : s) t.close();
            }
        }
        return rows;
    }

    private static float[] randoms(Random r, long n) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat() * 2 - 1;
        return x;
    }

    /** Median over {@code samples} of (wall time of {@code inner} synchronized launches) / inner. */
    private static BenchReport.Row timed(Backend be, String name, String shape, long work, String unit, double peak,
                                         int samples, int inner, IntConsumer op) {
        int counter = 0;
        for (int w = 0; w < 3; w++) op.accept(counter++);
        be.synchronize();
        double[] secs = new double[samples];
        for (int s = 0; s < samples; s++) {
            long t0 = System.nanoTime();
            for (int k = 0; k < inner; k++) op.accept(counter++);
            be.synchronize();
            secs[s] = (System.nanoTime() - t0) / 1e9 / inner;
        }
        double med = Stats.median(secs);
        double rate = work / med;
        return BenchReport.Row.of("gpu", name, shape, med, rate / 1e12, unit, rate / peak)
                .withNote(String.format(Locale.ROOT, "cuda backend %s; wall time / %d launches", be.name(), inner));
    }
}
