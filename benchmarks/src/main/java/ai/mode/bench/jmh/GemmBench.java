// JMH: SGEMM of our cpu backend (its Vector API kernel, and its gemm op on oneMKL) and of OpenBLAS (same threads,
// same inputs) at the shapes of the reference model (2048 tokens, d_model 256, ffn 688, vocab 4096; the LM head
// at its 2048-row chunk) and square sizes.
package ai.mode.bench.jmh;

import ai.mode.bench.GemmCase;
import ai.mode.bench.OpenBlas;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
public class GemmBench {

    /** {@code MxNxK:XY}, see {@link GemmCase#parse}. */
    @Param({
        "2048x256x256:NT", "2048x256x256:NN", "256x256x2048:TN",
        "2048x688x256:NT", "2048x256x688:NN", "688x256x2048:TN",
        "2048x256x688:NT", "2048x688x256:NN", "256x688x2048:TN",
        "2048x4096x256:NT", "2048x256x4096:NN", "4096x256x2048:TN",
        "512x512x512:NN", "1024x1024x1024:NN", "2048x2048x2048:NN"
    })
    public String shape;

    /**
     * {@code mode} (our cpu backend's Vector API SGEMM), {@code mkl} (its gemm op on oneMKL, as {@code auto} picks
     * where oneMKL loads) or {@code openblas} (bytedeco's libopenblas through FFM).
     */
    @Param({"mode", "mkl", "openblas"})
    public String impl;

    /** Threads for either implementation; 0 = all cores. */
    @Param("0")
    public int threads;

    private GemmCase g;
    private Backend backend;
    private Tensor a, b, c;
    private OpenBlas blas;
    private Arena arena;
    private MemorySegment sa, sb, sc;

    @Setup(Level.Trial)
    public void setup() {
        g = GemmCase.parse(shape);
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        Random r = new Random(1);
        float[] x = new float[g.m() * g.k()], y = new float[g.k() * g.n()];
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat() - 0.5f;
        for (int i = 0; i < y.length; i++) y[i] = r.nextFloat() - 0.5f;
        if (impl.equals("mode") || impl.equals("mkl")) {
            backend = new CpuBackend(n, impl.equals("mkl") ? CpuGemm.MKL : CpuGemm.VECTOR);
            a = backend.fromHost(x, g.aShape());
            b = backend.fromHost(y, g.bShape());
            c = backend.zeros(g.m(), g.n());
        } else if (impl.equals("openblas")) {
            blas = OpenBlas.load(System.getProperty("mode.openblas", "bytedeco"));
            blas.setThreads(n);
            arena = Arena.ofShared();
            sa = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            sb = arena.allocateFrom(ValueLayout.JAVA_FLOAT, y);
            sc = arena.allocate(ValueLayout.JAVA_FLOAT, (long) g.m() * g.n());
        } else {
            throw new IllegalArgumentException("impl must be mode, mkl or openblas, got " + impl);
        }
    }

    @Benchmark
    public void sgemm() {
        if (backend != null) {
            backend.gemm(g.transA(), g.transB(), 1f, a, b, 0f, c);
        } else {
            blas.sgemm(g.transA(), g.transB(), g.m(), g.n(), g.k(), 1f, sa, sb, 0f, sc);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (backend != null) backend.close();
        if (arena != null) arena.close();
        if (blas != null) blas.close();
    }
}
