package ai.mode.model.nn;

import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A causal language model assembled from parts: embedding, a stack of Layers, final norm, LM head. The Llama backbone
 * is one instance; a MoDE model is another over the same embedding/norm/head parameters.
 *
 * <p>{@code ids [B,T] → Embedding → blocks[0..] → RMSNorm → LmHead → next-token cross-entropy}.
 *
 * <p>{@link #forwardBackward} runs one micro-batch: forward, fused loss and head backward, then the
 * backward through the blocks in reverse. Backward stops early below the lowest part that has a trainable
 * parameter (a MoDE model with frozen embeddings and first backbone layers does no work there); when
 * nothing is trainable it computes the loss only. Parameter gradients accumulate, so gradient
 * accumulation is just several calls before one optimizer step; the trainer zeroes them.
 */
public class CausalLm {
    protected final Backend backend;
    protected final LlamaConfig config;
    protected final Embedding embedding;
    protected final List<Layer> blocks;
    protected final RMSNorm finalNorm;
    protected final LmHead head;
    protected final BufferPool scratch;

    /**
     * @param scratch the scratch pool the blocks were built with (released with the model's buffers)
     */
    public CausalLm(
            Backend backend,
            LlamaConfig config,
            Embedding embedding,
            List<? extends Layer> blocks,
            RMSNorm finalNorm,
            LmHead head,
            BufferPool scratch) {
        this.backend = backend;
        this.config = config;
        this.embedding = embedding;
        this.blocks = List.copyOf(blocks);
        this.finalNorm = finalNorm;
        this.head = head;
        this.scratch = scratch;
    }

    public Backend backend() {
        return backend;
    }

    public LlamaConfig config() {
        return config;
    }

    public Embedding embedding() {
        return embedding;
    }

    public List<Layer> blocks() {
        return blocks;
    }

    public RMSNorm finalNorm() {
        return finalNorm;
    }

    public LmHead head() {
        return head;
    }

    public BufferPool scratch() {
        return scratch;
    }

    /** Every parameter once (a tied head is listed once, as the embedding), in model order. */
    public List<Parameter> parameters() {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> out = new ArrayList<>();
        List<Parameter> all = new ArrayList<>(embedding.parameters());
        for (Layer l : blocks) all.addAll(l.parameters());
        all.addAll(finalNorm.parameters());
        all.addAll(head.parameters());
        for (Parameter p : all) if (seen.add(p)) out.add(p);
        return out;
    }

    /** Parameters by name, in model order; duplicate names are an error. */
    public Map<String, Parameter> parametersByName() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        for (Parameter p : parameters()) {
            if (out.put(p.name(), p) != null) throw new IllegalStateException("duplicate parameter name " + p.name());
        }
        return out;
    }

    /** The trainable parameters, in model order. */
    public List<Parameter> trainableParameters() {
        return parameters().stream().filter(Parameter::trainable).toList();
    }

    /** Zeroes the gradients of all trainable parameters. */
    public void zeroGrad() {
        for (Parameter p : parameters()) p.zeroGrad();
    }

    /** Forward through embedding and blocks to the final normalised hidden state [B,T,D]. */
    public Tensor forwardHidden(Tensor ids) {
        checkIds(ids);
        Tensor x = embedding.forward(ids);
        for (Layer l : blocks) x = l.forward(x);
        return finalNorm.forward(x);
    }

    /**
     * One training micro-batch: loss, and gradients accumulated into every trainable parameter.
     *
     * @param ids       I32 [B,T] input tokens
     * @param targets   I32 [B,T] next tokens (IGNORE_INDEX skipped)
     * @param gradScale multiplies d(sum of token losses); 1/(tokens per optimizer step) gives the mean
     */
    public LossStats forwardBackward(Tensor ids, Tensor targets, float gradScale) {
        Tensor h = forwardHidden(ids);
        int lowest = lowestTrainable();
        boolean any = lowest <= blocks.size() + 1;
        LossStats stats = head.loss(h, targets, gradScale, any, lowest <= blocks.size());
        if (lowest > blocks.size()) return stats; // only the head (or nothing) trains
        Tensor d = finalNorm.backward(head.inputGradient());
        for (int i = blocks.size() - 1; i >= Math.max(0, lowest); i--)
            d = blocks.get(i).backward(d);
        if (lowest < 0) embedding.backward(d);
        return stats;
    }

    /** Loss and accuracy without gradients. */
    public LossStats evaluate(Tensor ids, Tensor targets) {
        return head.loss(forwardHidden(ids), targets, 0f, false, false);
    }

    /** Full logits [B*T, V] into {@code out}. */
    public void logits(Tensor ids, Tensor out) {
        head.logits(forwardHidden(ids), out);
    }

    /** Whether every block supports {@link #forwardCached} (else generation recomputes the whole sequence per token). */
    public boolean supportsCache() {
        return blocks.stream().allMatch(Layer::supportsCache);
    }

    /**
     * Generation with a key/value cache: appends ids I32 [1, t] after the {@code cache.length()} cached positions,
     * writes the logits of the last new position into {@code logits} [1, V] and advances the cache by t. The
     * logits equal, up to float32 rounding, the last row of {@link #logits} over the whole sequence.
     */
    public void forwardCached(Tensor ids, KvCache cache, Tensor logits) {
        checkIds(ids);
        if (ids.dim(0) != 1)
            throw new IllegalArgumentException(
                    "cached generation runs one sequence, ids must be i32[1, t] but are " + ids.describe());
        int t = ids.dim(1), d = config.hiddenSize();
        if (cache.length() + t > config.maxSeqLen())
            throw new IllegalArgumentException(cache.length() + t + " positions exceed the model's"
                    + " max_position_embeddings " + config.maxSeqLen());
        Tensor x = embedding.forward(ids);
        for (Layer l : blocks) x = l.forwardCached(x, cache);
        Tensor last = backend.view(backend.slice(backend.view(x, t, d), t - 1, 1), 1, 1, d);
        head.logits(finalNorm.forward(last), logits);
        cache.advance(t);
    }

    /**
     * Where backward must reach:    /**
     * Where backward must reach: -1 when the embedding trains; else the lowest block index with a trainable
     * parameter; blocks.size() when only the final norm trains; blocks.size()+1 when only the head weight
     * trains; blocks.size()+2 when nothing trains.
     */
    private int lowestTrainable() {
        if (embedding.table().trainable()) return -1;
        for (int i = 0; i < blocks.size(); i++) {
            for (Parameter p : blocks.get(i).parameters()) if (p.trainable()) return i;
        }
        if (finalNorm.weight().trainable()) return blocks.size();
        if (head.weight().trainable()) return blocks.size() + 1;
        return blocks.size() + 2;
    }

    private void checkIds(Tensor ids) {
        if (ids.dtype() != DType.I32 || ids.rank() != 2) {
            throw new IllegalArgumentException("model input must be i32[B, T] token ids but is " + ids.describe());
        }
        if (ids.dim(1) > config.maxSeqLen()) {
            throw new IllegalArgumentException("sequence length " + ids.dim(1)
                    + " exceeds the model's max_position_embeddings " + config.maxSeqLen() + "; use a shorter --seq");
        }
    }

    /** Frees all activation and scratch buffers (re-allocated on next use). */
    public void releaseBuffers() {
        embedding.releaseBuffers();
        for (Layer l : blocks) l.releaseBuffers();
        finalNorm.releaseBuffers();
        head.releaseBuffers();
        scratch.release();
    }
}
