// JMH: MoDE block forward + backward and the experts of a block batched versus one by one, on the reference
// backbone (4 layers, d_model 256, ffn 688, vocab 4096), 2 blocks, k = 2 layers per expert, batch 8 x seq 256.
package ai.mode.bench.jmh;

import ai.mode.bench.ModeBench;
import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.Routing;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
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
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
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
public class ModeJmh {
    public static final int BATCH = 8, SEQ = 256;

    @Param({"2", "4"})
    public int experts;

    /** {@code block} (one MoDE block fwd+bwd), {@code batched} or {@code oneByOne} (the block's experts fwd+bwd). */
    @Param({"block", "batched", "oneByOne"})
    public String pass;

    /** 0 = all cores. */
    @Param("0")
    public int threads;

    private Backend be;
    private ModeBench bench;
    private Runnable step;

    @Setup(Level.Trial)
    public void setup() {
        be = Backends.create("cpu", threads);
        bench = new ModeBench(be, LlamaConfig.tinyDefault(4096), experts, 2, 2, Routing.DENSE, 42);
        step = switch (pass) {
            case "block" -> bench.blockStep(BATCH, SEQ);
            case "batched" -> bench.expertsStep(BATCH, SEQ, true);
            case "oneByOne" -> bench.expertsStep(BATCH, SEQ, false);
            default -> throw new IllegalArgumentException("pass must be block, batched or oneByOne, got " + pass);
        };
    }

    @Benchmark
    public void run() {
        step.run();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        bench.close();
        be.close();
    }
}
