// JMH: the machine-ceiling probes on one thread (the quick suite runs them on all threads): a Vector API FMA
// loop and a 64 MiB array copy, so per-core peak numbers come from the same harness as the op benchmarks.
package ai.mode.bench.jmh;

import ai.mode.bench.PeakProbes;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
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
@State(Scope.Thread)
public class ProbeBench {
    /** FMA iterations per call (see {@link PeakProbes#fmaLoopFlops}); short calls, so the JIT compiles the method itself. */
    public static final long FMA_ITERATIONS = 10_000;
    /** Floats copied per call. */
    public static final int COPY_FLOATS = 16 << 20;

    private final float[] src = new float[COPY_FLOATS];
    private final float[] dst = new float[COPY_FLOATS];
    private float seed = 1f;

    @Benchmark
    public float fmaLoop() {
        seed = PeakProbes.fmaLoop(FMA_ITERATIONS, seed) * 1e-9f + 1f;
        return seed;
    }

    @Benchmark
    public float arrayCopy() {
        System.arraycopy(src, 0, dst, 0, COPY_FLOATS);
        return dst[COPY_FLOATS - 1];
    }
}
