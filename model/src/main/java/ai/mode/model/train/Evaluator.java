package ai.mode.model.train;

import ai.mode.model.nn.CausalLm;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Loss, perplexity and next-token accuracy of a model over a set of fixed token windows. Evaluates next-token
 * prediction on windows of {@code T+1} tokens, in batches.
 */
public final class Evaluator {
    private Evaluator() {}

    /**
     * Summed loss, correct predictions and token count over all windows (every window must have the same
     * length T+1). Gradients are not touched.
     */
    public static LossStats evaluate(CausalLm model, Iterable<int[]> windows, int batch) {
        if (batch < 1) throw new IllegalArgumentException("evaluation batch must be >= 1 (got " + batch + ")");
        LossStats total = LossStats.ZERO;
        List<int[]> pending = new ArrayList<>(batch);
        for (int[] w : windows) {
            pending.add(w);
            if (pending.size() == batch) {
                total = total.plus(evaluateBatch(model, pending));
                pending.clear();
            }
        }
        if (!pending.isEmpty()) total = total.plus(evaluateBatch(model, pending));
        return total;
    }

    private static LossStats evaluateBatch(CausalLm model, List<int[]> rows) {
        int b = rows.size(), t = rows.get(0).length - 1;
        int[] flat = new int[b * (t + 1)];
        for (int i = 0; i < b; i++) {
            int[] r = rows.get(i);
            if (r.length != t + 1)
                throw new IllegalArgumentException(
                        "evaluation windows must all have " + (t + 1) + " tokens, got one of " + r.length);
            System.arraycopy(r, 0, flat, i * (t + 1), t + 1);
        }
        Backend be = model.backend();
        try (Tensor ids = be.fromHost(inputs(flat, b, t), b, t);
                Tensor tg = be.fromHost(targets(flat, b, t), b, t)) {
            return model.evaluate(ids, tg);
        }
    }

    /** The first T tokens of each row of a [B, T+1] window block. */
    public static int[] inputs(int[] windows, int b, int t) {
        int[] out = new int[b * t];
        for (int i = 0; i < b; i++) System.arraycopy(windows, i * (t + 1), out, i * t, t);
        return out;
    }

    /** The last T tokens of each row of a [B, T+1] window block. */
    public static int[] targets(int[] windows, int b, int t) {
        int[] out = new int[b * t];
        for (int i = 0; i < b; i++) System.arraycopy(windows, i * (t + 1) + 1, out, i * t, t);
        return out;
    }
}
