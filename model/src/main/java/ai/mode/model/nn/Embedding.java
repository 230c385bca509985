package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.List;

/**
 * Token embedding lookup (forward) and scatter-add of gradients into the table (backward).
 *
 * <p>{@code x[b,t,:] = table[ids[b,t],:]}; table [V,D] ({@code model.embed_tokens.weight}).
 */
public final class Embedding {
    private final Backend backend;
    private final Parameter table;
    private final BufferPool own;
    private Tensor ids;

    public Embedding(Backend backend, Parameter table) {
        this.backend = backend;
        this.table = table;
        this.own = new BufferPool(backend);
    }

    public Parameter table() {
        return table;
    }

    /** ids I32 [B,T] → x [B,T,D] (owned buffer, valid until the next forward). */
    public Tensor forward(Tensor ids) {
        if (ids.dtype() != DType.I32 || ids.rank() != 2) {
            throw new IllegalArgumentException("embedding: token ids must be i32[B, T] but are " + ids.describe());
        }
        this.ids = ids;
        int b = ids.dim(0), t = ids.dim(1), d = table.shape()[1];
        Tensor x = own.get("x", b, t, d);
        backend.embeddingForward(table.value(), backend.view(ids, b * t), backend.view(x, b * t, d));
        return x;
    }

    /** Accumulates dx [B,T,D] into the table gradient (no-op when the table is frozen). */
    public void backward(Tensor dx) {
        if (!table.trainable()) return;
        if (ids == null) throw new IllegalStateException("embedding: backward before forward");
        int n = Math.toIntExact(ids.numel()), d = table.shape()[1];
        backend.embeddingBackward(backend.view(dx, n, d), backend.view(ids, n), table.grad());
    }

    public List<Parameter> parameters() {
        return List.of(table);
    }

    public void releaseBuffers() {
        own.release();
        ids = null;
    }
}
