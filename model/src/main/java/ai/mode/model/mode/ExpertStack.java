package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.KvCache;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A runnable group of experts of one MoDE block: k batched decoder layers over E experts that all read the same block
 * input. The dense path runs all N experts as one stack; sparse routing and multi-device placement run sub-ranges (one
 * expert, or the experts on one device) as separate stacks sharing the weights.
 *
 * <p>{@code x [B,T,D] → y [E, B·T, D]}: x is broadcast to the E experts, which run k {@link DecoderLayer}s over a {@link StackedLayout};
 * backward sums the E input gradients into {@code dx [B,T,D]}. Owns its activation buffers, not its weights.
 */
public final class ExpertStack {
    private final Backend backend;
    private final LlamaConfig cfg;
    private final List<DecoderLayer> layers;
    private final int count;
    private final BufferPool own;
    private int batch, seq;
    private int sourceRows = -1; // S of the last forward when it was gathered, else -1

    /** @param depthWeights the experts' weights at each depth (k entries, all with the same expert count) */
    public ExpertStack(Backend backend, LlamaConfig cfg, List<StackedLayerWeights> depthWeights, BufferPool scratch) {
        if (depthWeights.isEmpty()) throw new IllegalArgumentException("an expert needs at least one layer");
        this.backend = backend;
        this.cfg = cfg;
        this.count = depthWeights.get(0).count();
        List<DecoderLayer> ls = new ArrayList<>();
        for (StackedLayerWeights w : depthWeights) {
            if (w.count() != count)
                throw new IllegalArgumentException(
                        "every depth of an expert stack needs " + count + " experts, got " + w.count());
            ls.add(StackedLayout.layer(backend, cfg, w, Map.of(), scratch));
        }
        this.layers = List.copyOf(ls);
        this.own = new BufferPool(backend);
    }

    /** E, the experts in this stack. */
    public int count() {
        return count;
    }

    /** k, the layers per expert. */
    public int depth() {
        return layers.size();
    }

    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        for (DecoderLayer l : layers) out.addAll(l.parameters());
        return out;
    }

    /** x [B,T,D] → y [E, B·T, D] (a buffer of the last layer, valid until the next forward). */
    public Tensor forward(Tensor x) {
        return run(x, null);
    }

    /**
     * Generation: x [B,t,D] new positions → y [E, B·t, D], every expert layer appending its keys and values to
     * {@code cache} (see {@link DecoderLayer#forwardCached}).
     */
    public Tensor forwardCached(Tensor x, KvCache cache) {
        return run(x, cache);
    }

    /**
     * One expert (E = 1) on the batch {@code [rows, len]} of the rows {@code tokens} (I32 [rows·len]) of src
     * {@code [S, D]}, read in place by its first layer ({@link DecoderLayer#forwardGathered}): y {@code [1, rows·len,
     * D]}, and {@link #backward} returns the gradient of src {@code [S, D]}. Needs {@link #readsRows()}.
     */
    public Tensor forwardGathered(Tensor src, Tensor tokens, int rows, int len) {
        if (!readsRows())
            throw new UnsupportedOperationException(
                    "experts: a gathered forward needs one expert whose projections take token lists, got " + count);
        batch = rows;
        seq = len;
        sourceRows = src.dim(0);
        Tensor h = layers.get(0).forwardGathered(src, tokens, rows, len);
        for (int i = 1; i < layers.size(); i++) h = layers.get(i).forward(h);
        return backend.view(h, 1, rows * len, cfg.hiddenSize());
    }

    /** Whether {@link #forwardGathered} applies: one expert whose projections read token lists in place. */
    public boolean readsRows() {
        return count == 1 && layers.get(0).layout().readsRows();
    }

    private Tensor run(Tensor x, KvCache cache) {
        int d = cfg.hiddenSize();
        if (x.rank() != 3 || x.dim(2) != d)
            throw new IllegalArgumentException("experts: input must be f32[B, T, " + d + "] but is " + x.describe());
        sourceRows = -1;
        batch = x.dim(0);
        seq = x.dim(1);
        int m = batch * seq;
        Tensor xs = own.get("x", count * batch, seq, d);
        Tensor x2 = backend.view(x, m, d), xs2 = backend.view(xs, count * m, d);
        for (int e = 0; e < count; e++) backend.copy(x2, backend.slice(xs2, e * m, m));
        Tensor h = xs;
        for (DecoderLayer l : layers) h = cache == null ? l.forward(h) : l.forwardCached(h, cache);
        return backend.view(h, count, m, d);
    }

    /**
     * dy [E, B·T, D] → dx [B,T,D] = Σ_e dx_e (owned buffer), accumulating trainable expert gradients. With
     * {@code inputGradient} false the sum is skipped and null returned (the layers still run for their weights).
     * After {@link #forwardGathered}, dx is the gradient of its src, {@code [S, D]} (owned by the first layer).
     */
    public Tensor backward(Tensor dy, boolean inputGradient) {
        int d = cfg.hiddenSize(), m = batch * seq;
        Tensor g = backend.view(dy, count * batch, seq, d);
        for (int i = layers.size() - 1; i >= 0; i--) g = layers.get(i).backward(g);
        if (!inputGradient) return null;
        if (sourceRows >= 0) return g; // [S, D]
        Tensor dx = own.get("dx", batch, seq, d);
        Tensor g2 = backend.view(g, count * m, d), dx2 = backend.view(dx, m, d);
        backend.copy(backend.slice(g2, 0, m), dx2);
        for (int e = 1; e < count; e++) backend.add(dx2, backend.slice(g2, e * m, m), dx2);
        return dx;
    }

    public void releaseBuffers() {
        own.release();
        for (DecoderLayer l : layers) l.releaseBuffers();
    }
}
