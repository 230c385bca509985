// JMH: every non-GEMM op of a training step on our cpu backend, at the reference model's shapes
// (batch 8 x seq 256 tokens, d_model 256, 4 heads of 64, ffn 688, vocab 4096, LM head chunk 512 rows).
package ai.mode.bench.jmh;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LmHead;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {
            "--add-modules",
            "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "-XX:+UseParallelGC",
            "-XX:+UseCountedLoopSafepoints",
            "-XX:LoopStripMiningIter=1000"
        })
@State(Scope.Benchmark)
public class OpsBench {
    /** Shapes of the benchmarks (shared with {@link ai.mode.bench.JmhWork}). */
    public static final int BATCH = 8, SEQ = 256;

    public static final LlamaConfig CONFIG = LlamaConfig.tinyDefault(4096);

    @Param({
        "attention_fwd",
        "attention_bwd",
        "rmsnorm_fwd",
        "rmsnorm_bwd",
        "swiglu_fwd",
        "swiglu_bwd",
        "cross_entropy",
        "adamw"
    })
    public String op;

    /** 0 = all cores. */
    @Param("0")
    public int threads;

    private Backend be;
    private final List<Tensor> owned = new ArrayList<>();
    private Runnable call;
    private final Random random = new Random(3);

    private Tensor rand(int... shape) {
        long n = 1;
        for (int s : shape) n *= s;
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = random.nextFloat() * 2 - 1;
        Tensor t = be.fromHost(x, shape);
        owned.add(t);
        return t;
    }

    private Tensor zeros(int... shape) {
        Tensor t = be.zeros(shape);
        owned.add(t);
        return t;
    }

    @Setup(Level.Trial)
    public void setup() {
        be = Backends.create("cpu", threads);
        LlamaConfig c = CONFIG;
        int n = BATCH * SEQ,
                d = c.hiddenSize(),
                f = c.intermediateSize(),
                v = c.vocabSize(),
                h = c.numHeads(),
                hd = c.headDim();
        call = switch (op) {
            case "attention_fwd" -> {
                Tensor q = rand(BATCH, SEQ, h, hd), k = rand(BATCH, SEQ, h, hd), vv = rand(BATCH, SEQ, h, hd);
                Tensor out = zeros(BATCH, SEQ, h, hd), lse = zeros(BATCH, h, SEQ);
                yield () -> be.attentionForward(q, k, vv, out, lse);
            }
            case "attention_bwd" -> {
                Tensor q = rand(BATCH, SEQ, h, hd), k = rand(BATCH, SEQ, h, hd), vv = rand(BATCH, SEQ, h, hd);
                Tensor out = zeros(BATCH, SEQ, h, hd), lse = zeros(BATCH, h, SEQ), dOut = rand(BATCH, SEQ, h, hd);
                Tensor dq = zeros(BATCH, SEQ, h, hd), dk = zeros(BATCH, SEQ, h, hd), dv = zeros(BATCH, SEQ, h, hd);
                be.attentionForward(q, k, vv, out, lse);
                yield () -> be.attentionBackward(dOut, q, k, vv, out, lse, dq, dk, dv);
            }
            case "rmsnorm_fwd" -> {
                Tensor x = rand(n, d), w = rand(d), out = zeros(n, d), rstd = zeros(n);
                yield () -> be.rmsNormForward(x, w, c.rmsNormEps(), out, rstd);
            }
            case "rmsnorm_bwd" -> {
                Tensor x = rand(n, d),
                        w = rand(d),
                        out = zeros(n, d),
                        rstd = zeros(n),
                        dOut = rand(n, d),
                        dx = zeros(n, d),
                        dw = zeros(d);
                be.rmsNormForward(x, w, c.rmsNormEps(), out, rstd);
                yield () -> be.rmsNormBackward(dOut, x, w, rstd, dx, dw);
            }
            case "swiglu_fwd" -> {
                Tensor g = rand(n, f), u = rand(n, f), out = zeros(n, f);
                yield () -> be.swiGluForward(g, u, out);
            }
            case "swiglu_bwd" -> {
                Tensor g = rand(n, f), u = rand(n, f), dOut = rand(n, f), dg = zeros(n, f), du = zeros(n, f);
                yield () -> be.swiGluBackward(dOut, g, u, dg, du);
            }
            case "cross_entropy" -> {
                int rows = crossEntropyRows();
                int[] tg = new int[rows];
                for (int i = 0; i < rows; i++) tg[i] = random.nextInt(v);
                Tensor logits = rand(rows, v), dLogits = zeros(rows, v), targets = be.fromHost(tg, rows);
                owned.add(targets);
                yield () -> be.crossEntropy(logits, targets, dLogits, 1f / rows);
            }
            case "adamw" -> {
                int p = Math.toIntExact(c.parameterCount());
                Tensor w = rand(p), g = rand(p), m = zeros(p), s = zeros(p);
                AdamWStep step = new AdamWStep(1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f);
                yield () -> be.adamW(w, g, m, s, step);
            }
            default -> throw new IllegalArgumentException("unknown op " + op);
        };
    }

    /** Rows of one LM-head chunk, the unit the model computes cross-entropy on. */
    public static int crossEntropyRows() {
        return Math.max(1, Math.min(BATCH * SEQ, LmHead.CHUNK_ELEMENTS / CONFIG.vocabSize()));
    }

    @Benchmark
    public void run() {
        call.run();
        be.synchronize();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : owned) t.close();
        be.close();
    }
}
