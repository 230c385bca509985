package ai.mode.bench;

import ai.mode.bench.jmh.OpsBench;
import ai.mode.bench.jmh.ProbeBench;
import ai.mode.model.LlamaConfig;
import java.util.OptionalDouble;
import java.util.function.Function;

/**
 * Work per operation of each JMH benchmark (FLOPs, bytes or one call), so {@code mode bench --jmh} can turn JMH's time
 * per operation into GFLOP/s, GB/s or ns per call.
 */
public final class JmhWork {
    private JmhWork() {}

    public enum Unit {
        FLOP,
        BYTE,
        CALL,
        TOKEN
    }

    public record Work(double amount, Unit unit) {}

    /** Seconds per operation from a JMH average-time score, or empty for other score units. */
    public static OptionalDouble secondsPerOp(double score, String unit) {
        return switch (unit) {
            case "s/op" -> OptionalDouble.of(score);
            case "ms/op" -> OptionalDouble.of(score * 1e-3);
            case "us/op" -> OptionalDouble.of(score * 1e-6);
            case "ns/op" -> OptionalDouble.of(score * 1e-9);
            default -> OptionalDouble.empty();
        };
    }

    /** The work of benchmark {@code fqMethod} (e.g. {@code ai.mode.bench.jmh.GemmBench.sgemm}), or null if unknown. */
    public static Work of(String fqMethod, Function<String, String> param) {
        String method = fqMethod.substring(fqMethod.lastIndexOf('.') + 1);
        String cls = fqMethod.substring(0, fqMethod.lastIndexOf('.'));
        cls = cls.substring(cls.lastIndexOf('.') + 1);
        return switch (cls) {
            case "GemmBench" -> new Work(GemmCase.parse(param.apply("shape")).flops(), Unit.FLOP);
            case "OpsBench" -> opsWork(param.apply("op"));
            case "ProbeBench" ->
                method.equals("fmaLoop")
                        ? new Work(PeakProbes.fmaLoopFlops(ProbeBench.FMA_ITERATIONS), Unit.FLOP)
                        : new Work(2.0 * ProbeBench.COPY_FLOATS * Float.BYTES, Unit.BYTE);
            case "NativeCallBench" -> new Work(1, Unit.CALL);
            case "ModeJmh" -> new Work(ai.mode.bench.jmh.ModeJmh.BATCH * ai.mode.bench.jmh.ModeJmh.SEQ, Unit.TOKEN);
            default -> null;
        };
    }

    static Work opsWork(String op) {
        LlamaConfig c = OpsBench.CONFIG;
        long b = OpsBench.BATCH, t = OpsBench.SEQ, n = b * t, d = c.hiddenSize(), f = c.intermediateSize();
        return switch (op) {
            case "attention_fwd" -> new Work(Flops.attentionForward(b, t, c.numHeads(), c.headDim()), Unit.FLOP);
            case "attention_bwd" -> new Work(Flops.attentionBackward(b, t, c.numHeads(), c.headDim()), Unit.FLOP);
            case "rmsnorm_fwd" -> new Work(Flops.rmsNormForwardBytes(n, d), Unit.BYTE);
            case "rmsnorm_bwd" -> new Work(Flops.rmsNormBackwardBytes(n, d), Unit.BYTE);
            case "swiglu_fwd" -> new Work(Flops.swiGluForwardBytes(n, f), Unit.BYTE);
            case "swiglu_bwd" -> new Work(Flops.swiGluBackwardBytes(n, f), Unit.BYTE);
            case "cross_entropy" ->
                new Work(Flops.crossEntropyBytes(OpsBench.crossEntropyRows(), c.vocabSize()), Unit.BYTE);
            case "adamw" -> new Work(Flops.adamWBytes(c.parameterCount()), Unit.BYTE);
            default -> null;
        };
    }
}
