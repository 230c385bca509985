package ai.mode.model.train;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Parameter;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The heap a run needs, estimated before it allocates it, so that a batch or a model too large for the JVM fails
 * at once with one line naming the size needed, the size available and the fix, instead of an OutOfMemoryError
 * minutes later (issue 14). All tensors of the cpu backend live on the Java heap (float arrays), so the heap the
 * JVM may still grow to ({@link Runtime#maxMemory()} less what is in use) is the limit.
 *
 * <p>The estimate counts the large allocations only, in float32 (4 bytes): the parameters still to be allocated;
 * the optimizer state (a gradient and AdamW's two moments per trainable parameter); the activations a training
 * step keeps for its backward pass, per token {@code 8d + 2 kv + 3f} floats per decoder layer (inputs, norms,
 * q/k/v, attention output, residuals, the SwiGLU gate, up and product; the attention itself is flash-style and
 * keeps no T x T scores) plus the logits and their gradient ({@code 2 V}) and the embedded input ({@code 2d}); and
 * the RoPE tables. Evaluation keeps one layer's working set and the logits. It is a floor, not a bound (scratch
 * buffers, the data and the JVM come on top), so a run it refuses cannot fit.
 *
 * @param parameterBytes  parameters still to be allocated
 * @param optimizerBytes  gradients and optimizer moments
 * @param activationBytes what a step keeps between its forward and backward pass (or evaluation's working set)
 * @param cacheBytes      RoPE tables
 * @param batch           sequences per batch
 * @param seqLen          tokens per sequence
 */
public record MemoryEstimate(
        long parameterBytes, long optimizerBytes, long activationBytes, long cacheBytes, long batch, long seqLen) {
    private static final double F32 = 4;

    /**
     * Training a model of {@code config}'s shape with {@code layers} decoder layers (or layer equivalents) on
     * batches of {@code batch} x {@code seqLen} tokens, of whose parameters {@code toAllocate} are still to be
     * allocated and {@code trainable} are trained.
     */
    public static MemoryEstimate training(
            LlamaConfig config, double layers, long toAllocate, long trainable, long batch, long seqLen) {
        double tokens = (double) batch * seqLen;
        double perLayer = 8.0 * config.hiddenSize() + 2.0 * config.kvDim() + 3.0 * config.intermediateSize();
        double perToken = layers * perLayer + 2.0 * config.vocabSize() + 2.0 * config.hiddenSize();
        return new MemoryEstimate(
                bytes(toAllocate),
                bytes(3.0 * trainable),
                bytes(tokens * perToken),
                caches(config, seqLen),
                batch,
                seqLen);
    }

    /** Evaluating a model of {@code config}'s shape, {@code toAllocate} parameters still to be allocated. */
    public static MemoryEstimate evaluation(LlamaConfig config, long toAllocate, long batch, long seqLen) {
        double tokens = (double) batch * seqLen;
        double perToken =
                8.0 * config.hiddenSize() + 2.0 * config.kvDim() + 3.0 * config.intermediateSize() + config.vocabSize();
        return new MemoryEstimate(
                bytes(toAllocate), 0, bytes(tokens * perToken), caches(config, seqLen), batch, seqLen);
    }

    /**
     * Training {@code model}, whose parameters are allocated already: its optimizer state and activations. Its
     * layers are counted as decoder-layer equivalents of its non-embedding parameters, so added experts, expanded
     * layers and adapters count with their size.
     */
    public static MemoryEstimate training(CausalLm model, long batch, long seqLen) {
        LlamaConfig c = model.config();
        long all = 0, trainable = 0;
        for (Parameter p : model.parameters()) all += p.numel();
        for (Parameter p : model.trainableParameters()) trainable += p.numel();
        long embedding = (long) c.vocabSize() * c.hiddenSize() * (c.tieEmbeddings() ? 1 : 2);
        double layers = Math.max(c.numLayers(), (double) (all - embedding) / c.layerParameterCount());
        return training(c, layers, 0, trainable, batch, seqLen);
    }

    private static long caches(LlamaConfig c, long seqLen) {
        return bytes(2.0 * seqLen * c.headDim());
    }

    private static long bytes(double floats) {
        return (long) Math.min(Long.MAX_VALUE, floats * F32); // saturates instead of overflowing
    }

    /** The whole estimate in bytes (saturating). */
    public long total() {
        double t = (double) parameterBytes + optimizerBytes + activationBytes + cacheBytes;
        return (long) Math.min(Long.MAX_VALUE, t);
    }

    /** The heap the JVM can still use: its maximum less what is in use now. */
    public static long availableHeap() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    /** {@link #require(String, long, long)} against this JVM's heap. */
    public void require(String what) {
        require(what, availableHeap(), Runtime.getRuntime().maxMemory());
    }

    /**
     * Fails with one line when the estimate exceeds {@code available} bytes (of a heap of at most {@code max}):
     * what needs how much of it and for what, what is available, and the fix: a smaller batch or sequence where
     * activations are most of it, else a smaller model; and more heap through {@code MODE_JAVA_OPTS} where this
     * machine's memory can hold it.
     */
    public void require(String what, long available, long max) {
        if (total() <= available) return;
        List<String> parts = new ArrayList<>();
        if (parameterBytes > 0) parts.add("parameters " + size(parameterBytes));
        if (optimizerBytes > 0) parts.add("optimizer state " + size(optimizerBytes));
        parts.add("activations " + size(activationBytes) + " for --batch " + batch + " x --seq " + seqLen);
        if (cacheBytes > 0) parts.add("caches " + size(cacheBytes));
        String smaller = activationBytes >= total() / 2
                ? "use a smaller --batch or --seq"
                : "use a smaller model (its parameters and optimizer state are most of it)";
        double heapNeeded = (double) total() + (max - available); // what is in use stays in use
        long physical = physicalMemory();
        String more = physical > 0 && heapNeeded > physical
                ? ", since this machine's " + size(physical) + " of memory cannot hold it even with more heap"
                : String.format(Locale.ROOT, ", or give the JVM more heap with MODE_JAVA_OPTS=-Xmx%dg", (long)
                        Math.ceil(heapNeeded * 1.25 / (1L << 30)));
        throw new IllegalArgumentException(what + " needs at least " + size(total()) + " of heap ("
                + String.join(", ", parts)
                + ") but " + size(Math.max(0, available)) + " is available (the JVM's heap is at most " + size(max)
                + "); " + smaller + more);
    }

    /** This machine's physical memory in bytes, or 0 where the JVM cannot tell. */
    private static long physicalMemory() {
        return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                ? os.getTotalMemorySize()
                : 0;
    }

    /** {@code bytes} in B, KiB, MiB, GiB, TiB or PiB with one decimal. */
    static String size(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
