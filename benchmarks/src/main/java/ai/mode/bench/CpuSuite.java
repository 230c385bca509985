package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * CPU benchmarks of the quick suite, as rows of a {@link BenchReport}: SGEMM of our backend beside OpenBLAS on
 * identical problems and thread counts (results cross-checked), and the throughput of every other training op at the
 * model's shapes.
 */
public final class CpuSuite {
    /** Pause between two implementations, so spinning worker threads of the previous one have gone to sleep. */
    private static final long SETTLE_MILLIS = 300;

    private final Backend backend;
    private final Measure.Budget budget;
    private final Random random = new Random(42);

    public CpuSuite(Backend backend, Measure.Budget budget) {
        this.backend = backend;
        this.budget = budget;
    }

    private float[] randomFloats(long n) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = random.nextFloat() * 2 - 1;
        return x;
    }

    private static void settle() {
        try {
            Thread.sleep(SETTLE_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ------------------------------------------------------------------ SGEMM

    /**
     * Times every case on our backend and, when {@code blas} is not null, on OpenBLAS with the same inputs,
     * and checks that both computed the same product (max |diff| relative to max |C|).
     */
    public List<BenchReport.Row> sgemm(List<GemmCase> cases, OpenBlas blas, double peakGflops) {
        List<BenchReport.Row> rows = new ArrayList<>();
        for (GemmCase g : cases) {
            float[] a = randomFloats((long) g.m() * g.k());
            float[] b = randomFloats((long) g.k() * g.n());
            float[] ours;
            Measure.Timing t;
            try (Tensor ta = backend.fromHost(a, g.aShape());
                    Tensor tb = backend.fromHost(b, g.bShape());
                    Tensor tc = backend.zeros(g.m(), g.n())) {
                t = Measure.time(
                        () -> {
                            backend.gemm(g.transA(), g.transB(), 1f, ta, tb, 0f, tc);
                            backend.synchronize();
                        },
                        budget);
                ours = backend.toHostFloats(tc);
            }
            double gf = g.flops() / t.median() / 1e9;
            BenchReport.Row row =
                    BenchReport.Row.of("sgemm", g.label(), g.shape(), t.median(), gf, "GFLOP/s", gf / peakGflops);
            if (blas != null) {
                settle();
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment sa = arena.allocateFrom(ValueLayout.JAVA_FLOAT, a);
                    MemorySegment sb = arena.allocateFrom(ValueLayout.JAVA_FLOAT, b);
                    MemorySegment sc = arena.allocate(ValueLayout.JAVA_FLOAT, (long) g.m() * g.n());
                    Measure.Timing tp = Measure.time(
                            () -> blas.sgemm(g.transA(), g.transB(), g.m(), g.n(), g.k(), 1f, sa, sb, 0f, sc), budget);
                    float[] theirs = sc.toArray(ValueLayout.JAVA_FLOAT);
                    double diff = relativeMaxDiff(ours, theirs);
                    row = row.withPeer("OpenBLAS", g.flops() / tp.median() / 1e9);
                    if (!(diff < 1e-4))
                        row = row.withNote(
                                String.format(java.util.Locale.ROOT, "RESULTS DIFFER: max rel diff %.2e", diff));
                }
                settle();
            }
            rows.add(row);
        }
        return rows;
    }

    /** max |x - y| / max |y|. */
    static double relativeMaxDiff(float[] x, float[] y) {
        if (x.length != y.length) throw new IllegalArgumentException("lengths differ: " + x.length + " vs " + y.length);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < x.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((double) x[i] - y[i]));
            maxRef = Math.max(maxRef, Math.abs((double) y[i]));
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }

    // ------------------------------------------------------------------ other ops

    /** Every non-GEMM op of a training step, at the shapes of {@code cfg} with {@code batch x seq} tokens. */
    public List<BenchReport.Row> ops(LlamaConfig cfg, int batch, int seq, double peakGflops, double peakGBs) {
        int n = batch * seq, d = cfg.hiddenSize(), f = cfg.intermediateSize(), v = cfg.vocabSize();
        int h = cfg.numHeads(), hkv = cfg.numKvHeads(), hd = cfg.headDim();
        List<BenchReport.Row> rows = new ArrayList<>();
        Backend be = backend;
        String tok = n + "x";

        // attention [B,T,H,hd]
        try (Tensor q = be.fromHost(randomFloats((long) n * h * hd), batch, seq, h, hd);
                Tensor k = be.fromHost(randomFloats((long) n * hkv * hd), batch, seq, hkv, hd);
                Tensor vv = be.fromHost(randomFloats((long) n * hkv * hd), batch, seq, hkv, hd);
                Tensor out = be.zeros(batch, seq, h, hd);
                Tensor lse = be.zeros(batch, h, seq);
                Tensor dOut = be.fromHost(randomFloats((long) n * h * hd), batch, seq, h, hd);
                Tensor dq = be.zeros(batch, seq, h, hd);
                Tensor dk = be.zeros(batch, seq, hkv, hd);
                Tensor dv = be.zeros(batch, seq, hkv, hd)) {
            String shape = batch + "x" + seq + "x" + h + "x" + hd;
            rows.add(flopRow(
                    "attention fwd",
                    shape,
                    Flops.attentionForward(batch, seq, h, hd),
                    peakGflops,
                    () -> be.attentionForward(q, k, vv, out, lse)));
            rows.add(flopRow(
                    "attention bwd",
                    shape,
                    Flops.attentionBackward(batch, seq, h, hd),
                    peakGflops,
                    () -> be.attentionBackward(dOut, q, k, vv, out, lse, dq, dk, dv)));
        }
        // RMSNorm [N,D]
        try (Tensor x = be.fromHost(randomFloats((long) n * d), n, d);
                Tensor w = be.fromHost(randomFloats(d), d);
                Tensor out = be.zeros(n, d);
                Tensor rstd = be.zeros(n);
                Tensor dOut = be.fromHost(randomFloats((long) n * d), n, d);
                Tensor dx = be.zeros(n, d);
                Tensor dw = be.zeros(d)) {
            rows.add(byteRow(
                    "rmsnorm fwd",
                    tok + d,
                    Flops.rmsNormForwardBytes(n, d),
                    peakGBs,
                    () -> be.rmsNormForward(x, w, cfg.rmsNormEps(), out, rstd)));
            rows.add(byteRow(
                    "rmsnorm bwd",
                    tok + d,
                    Flops.rmsNormBackwardBytes(n, d),
                    peakGBs,
                    () -> be.rmsNormBackward(dOut, x, w, rstd, dx, dw)));
        }
        // SwiGLU [N,F]
        try (Tensor gate = be.fromHost(randomFloats((long) n * f), n, f);
                Tensor up = be.fromHost(randomFloats((long) n * f), n, f);
                Tensor out = be.zeros(n, f);
                Tensor dOut = be.fromHost(randomFloats((long) n * f), n, f);
                Tensor dGate = be.zeros(n, f);
                Tensor dUp = be.zeros(n, f)) {
            rows.add(byteRow(
                    "swiglu fwd",
                    tok + f,
                    Flops.swiGluForwardBytes(n, f),
                    peakGBs,
                    () -> be.swiGluForward(gate, up, out)));
            rows.add(byteRow(
                    "swiglu bwd",
                    tok + f,
                    Flops.swiGluBackwardBytes(n, f),
                    peakGBs,
                    () -> be.swiGluBackward(dOut, gate, up, dGate, dUp)));
        }
        // cross-entropy on the LM head chunk the model uses, [rows,V]
        int chunk = Math.max(1, Math.min(n, ai.mode.model.nn.LmHead.CHUNK_ELEMENTS / v));
        int[] targets = new int[chunk];
        for (int i = 0; i < chunk; i++) targets[i] = random.nextInt(v);
        try (Tensor logits = be.fromHost(randomFloats((long) chunk * v), chunk, v);
                Tensor tg = be.fromHost(targets, chunk);
                Tensor dLogits = be.zeros(chunk, v)) {
            rows.add(byteRow(
                    "cross-entropy fwd+bwd",
                    chunk + "x" + v,
                    Flops.crossEntropyBytes(chunk, v),
                    peakGBs,
                    () -> be.crossEntropy(logits, tg, dLogits, 1f / chunk)));
        }
        // AdamW over as many elements as the model has parameters
        int params = Math.toIntExact(cfg.parameterCount());
        try (Tensor p = be.fromHost(randomFloats(params), params);
                Tensor g = be.fromHost(randomFloats(params), params);
                Tensor m = be.zeros(params);
                Tensor s = be.zeros(params)) {
            AdamWStep step = new AdamWStep(1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f);
            rows.add(byteRow(
                    "adamw",
                    String.valueOf(params),
                    Flops.adamWBytes(params),
                    peakGBs,
                    () -> be.adamW(p, g, m, s, step)));
        }
        return rows;
    }

    private BenchReport.Row flopRow(String name, String shape, long flops, double peak, Runnable op) {
        Measure.Timing t = timeOp(op);
        double gf = flops / t.median() / 1e9;
        return BenchReport.Row.of("op", name, shape, t.median(), gf, "GFLOP/s", gf / peak);
    }

    private BenchReport.Row byteRow(String name, String shape, long bytes, double peak, Runnable op) {
        Measure.Timing t = timeOp(op);
        double gbs = bytes / t.median() / 1e9;
        return BenchReport.Row.of("op", name, shape, t.median(), gbs, "GB/s", gbs / peak);
    }

    private Measure.Timing timeOp(Runnable op) {
        return Measure.time(
                () -> {
                    op.run();
                    backend.synchronize();
                },
                budget);
    }
}
