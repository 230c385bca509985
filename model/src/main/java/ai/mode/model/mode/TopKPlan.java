package ai.mode.model.mode;

import ai.mode.model.nn.BufferPool;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * The top-k (sparse) routing plan of one MoDE block for one forward pass, shared by {@link ModeBlock} and the
 * multi-device scheduler so that both select, pack, weight and differentiate the same way.
 *
 * <p>From the gate probabilities per routing row {@code [R, N+1]} (R = B·T tokens, or B sequences at sequence
 * level) it keeps the k chosen branches of every row and their weights renormalised to sum to 1 ({@code [R, k]},
 * on the device). For a branch it gives the {@link Selection} of tokens routed to it, in (sequence, position)
 * order; a branch that runs on those tokens sees them {@link Packed} per sequence, in order, into a batch
 * {@code [rows, len, D]} whose rows are padded at the end by repeating the row's first token (causal attention
 * keeps padding from affecting routed tokens, and its outputs are dropped). {@link Branch} merges a branch's
 * outputs into the block output with their weights and back. The index tensors live until {@link #close()}.
 */
public final class TopKPlan implements AutoCloseable {
    private final Backend backend;
    private final int k, branches, batch, seq;
    private final boolean perSequence;
    private final int[] index; // [R, k] chosen branches per routing row
    private final float[] probs; // [R, N+1] gate probabilities per routing row
    private final Tensor weights; // [R·k, 1] renormalised weights of the chosen branches
    private final List<Tensor> temps = new ArrayList<>();

    /** Tokens routed to one branch: {@code tokens[i] = b·T + t}, {@code weightIndex[i]} = its slot in [R·k], and how many per sequence. */
    public record Selection(int[] tokens, int[] weightIndex, int[] perSequence) {
        public int size() {
            return tokens.length;
        }
    }

    /**
     * A packed batch of {@code selected} items: {@code gather [rows·len]} (source row of every packed row, padding
     * included) and {@code slot [selected]} (packed row of every item).
     */
    public record Packed(int rows, int len, int selected, Tensor gather, Tensor slot) {
        /**
         * Packs {@code items} (grouped by sequence, {@code perSequence[b]} of them for sequence b, in order) into
         * rows of one sequence each; {@code gather} holds the items themselves (token or buffer row numbers).
         * {@code toDevice} makes the index tensors (the caller owns them).
         */
        public static Packed of(int[] items, int[] perSequence, Function<int[], Tensor> toDevice) {
            int rows = 0, len = 0;
            for (int c : perSequence)
                if (c > 0) {
                    rows++;
                    len = Math.max(len, c);
                }
            int[] gather = new int[rows * len], slot = new int[items.length];
            int row = 0, u = 0;
            for (int c : perSequence) {
                if (c == 0) continue;
                for (int t = 0; t < len; t++) gather[row * len + t] = items[u + (t < c ? t : 0)]; // padding: first
                for (int t = 0; t < c; t++) slot[u + t] = row * len + t;
                u += c;
                row++;
            }
            return new Packed(rows, len, items.length, toDevice.apply(gather), toDevice.apply(slot));
        }

        /** dst {@code [rows, len, D]} = the packed rows of src2 {@code [n, D]}; returns dst. */
        public Tensor gatherInput(Backend be, Tensor src2, Tensor dst) {
            be.gatherRows(src2, gather, be.view(dst, rows * len, src2.dim(1)));
            return dst;
        }

        /** out {@code [selected, D]} = the items' rows of a packed output {@code ye} (any view of rows·len·D floats). */
        public void selectOutputs(Backend be, Tensor ye, Tensor out) {
            be.gatherRows(be.view(ye, rows * len, out.dim(1)), slot, out);
        }

        /** The packed gradient {@code [rows, len, D]}: dsel {@code [selected, D]} at the items' rows, zeros elsewhere (in dye). */
        public Tensor scatterGradient(Backend be, Tensor dsel, Tensor dye) {
            be.fill(dye, 0f);
            be.scatterAddRows(dsel, slot, dye);
            return be.view(dye, rows, len, dsel.dim(1));
        }
    }

    /**
     * A branch's selection as device indices: {@code token [selected]} and {@code weightIndex [selected]}. Its
     * buffers live in the caller's pool under {@code key}: the outputs {@code key.ysel [1, selected, D]}, the
     * weights {@code key.w [selected, 1]} and the output gradient {@code key.dysel [1, selected, D]}.
     */
    public record Branch(int selected, Tensor token, Tensor weightIndex, String key) {
        /** The buffer for the branch's outputs on its selected tokens, {@code [1, selected, D]}. */
        public Tensor outputs(BufferPool own, int d) {
            return own.get(key + ".ysel", 1, selected, d);
        }

        /** The output gradient written by {@link #mergeBackward}, {@code [1, selected, D]}. */
        public Tensor outputGradient(BufferPool own, int d) {
            return own.get(key + ".dysel", 1, selected, d);
        }

        /** y2 {@code [m, D]} += w · outputs on the selected tokens; wFlat {@code [R·k, 1]} are the plan's weights. */
        public void mergeForward(Backend be, BufferPool own, BufferPool scratch, Tensor wFlat, Tensor y2) {
            int d = y2.dim(1);
            Tensor wsel = own.get(key + ".w", selected, 1);
            be.gatherRows(wFlat, weightIndex, wsel);
            Tensor contrib = scratch.get("topk.contrib", selected, d);
            be.weightedMergeForward(outputs(own, d), wsel, contrib); // w_n · f(x)_n
            be.scatterAddRows(contrib, token, y2);
        }

        /**
         * Backward of {@link #mergeForward}: adds the weight gradients into dw {@code [R·k, 1]} and returns the
         * output gradient {@code [1, selected, D]} (owned by the pool, key.dysel).
         */
        public Tensor mergeBackward(Backend be, BufferPool own, BufferPool scratch, Tensor dy2, Tensor dw) {
            int d = dy2.dim(1);
            Tensor dContrib = scratch.get("topk.dcontrib", selected, d);
            be.gatherRows(dy2, token, dContrib);
            Tensor dysel = outputGradient(own, d);
            Tensor dwsel = scratch.get("topk.dwsel", selected, 1);
            be.weightedMergeBackward(dContrib, outputs(own, d), own.get(key + ".w", selected, 1), dysel, dwsel);
            be.scatterAddRows(dwsel, weightIndex, dw);
            return dysel;
        }

        /** dx2 {@code [m, D]} += the selected tokens' input gradients dxsel {@code [selected, D]}. */
        public void addInputGradient(Backend be, Tensor dxsel, Tensor dx2) {
            be.scatterAddRows(dxsel, token, dx2);
        }
    }

    /**
     * Routes {@code batch × seq} tokens: top-k of {@code routedProbs [R, N+1]} into the pool's {@code key.index}
     * and {@code key.weight} buffers, with host copies of the chosen branches and the probabilities.
     */
    public TopKPlan(Backend be, Tensor routedProbs, Routing routing, int batch, int seq, BufferPool own, String key) {
        int r = routedProbs.dim(0);
        this.backend = be;
        this.k = routing.topK();
        this.batch = batch;
        this.seq = seq;
        this.perSequence = routing.level() == Routing.Level.SEQUENCE;
        Tensor idx = own.get(key + ".index", DType.I32, r, k), w = own.get(key + ".weight", r, k);
        be.topK(routedProbs, k, idx, w);
        this.index = new int[r * k];
        be.toHost(idx, index);
        this.probs = be.toHostFloats(routedProbs);
        this.branches = routedProbs.dim(1);
        this.weights = be.view(w, r * k, 1);
    }

    /** The renormalised weights of the chosen branches, {@code [R·k, 1]}. */
    public Tensor weights() {
        return weights;
    }

    /** Sequences of the routed batch. */
    public int batch() {
        return batch;
    }

    /** The tokens routed to branch br (0 = backbone, j+1 = expert j). */
    public Selection select(int br) {
        int[] tokens = new int[batch * seq], widx = new int[batch * seq], perSeq = new int[batch];
        int n = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                int row = perSequence ? b : b * seq + t;
                int kpos = slotOf(row, br);
                if (kpos < 0) continue;
                tokens[n] = b * seq + t;
                widx[n] = row * k + kpos;
                perSeq[b]++;
                n++;
            }
        }
        return new Selection(Arrays.copyOf(tokens, n), Arrays.copyOf(widx, n), perSeq);
    }

    /** Tokens of each sequence routed to each branch, {@code [B, N+1]} row-major (each sequence's row sums to k·T). */
    public int[] routedPerSequence() {
        int[] out = new int[batch * branches];
        for (int r = 0; r < index.length / k; r++) {
            int b = perSequence ? r : r / seq;
            for (int j = 0; j < k; j++) out[b * branches + index[r * k + j]] += perSequence ? seq : 1;
        }
        return out;
    }

    /** Position of branch br among routing row r's top-k, or -1. */
    private int slotOf(int r, int br) {
        for (int j = 0; j < k; j++) if (index[r * k + j] == br) return j;
        return -1;
    }

    /** A selection's device indices, with its buffers under {@code key} (see {@link Branch}). */
    public Branch branch(Selection s, String key) {
        return new Branch(s.size(), ints(s.tokens()), ints(s.weightIndex()), key);
    }

    /** {@link Packed#of} with index tensors that live as long as this plan. */
    public Packed pack(int[] items, int[] perSequence) {
        return Packed.of(items, perSequence, this::ints);
    }

    /** A device copy of {@code v} that lives as long as this plan. */
    public Tensor ints(int[] v) {
        Tensor t = backend.fromHost(v, v.length);
        temps.add(t);
        return t;
    }

    /**
     * Gradient of the gate probabilities {@code [R, N+1]} from the gradient g {@code [R·k]} of the renormalised
     * weights: with {@code w_i = p_i / S} (S = sum of the chosen p), {@code dp_i = (g_i - Σ_j g_j w_j) / S} for the
     * chosen branches and 0 for the others.
     */
    public float[] probabilityGradient(float[] g) {
        int r = index.length / k, e = branches;
        float[] dP = new float[r * e];
        for (int row = 0; row < r; row++) {
            double s = 0, dot = 0;
            for (int j = 0; j < k; j++) s += probs[row * e + index[row * k + j]];
            for (int j = 0; j < k; j++) dot += g[row * k + j] * (probs[row * e + index[row * k + j]] / s);
            for (int j = 0; j < k; j++) dP[row * e + index[row * k + j]] = (float) ((g[row * k + j] - dot) / s);
        }
        return dP;
    }

    /** k, the branches chosen per routing row. */
    public int k() {
        return k;
    }

    /** R, the routing rows (tokens, or sequences at sequence level). */
    public int routingRows() {
        return index.length / k;
    }

    /** N+1, the branches. */
    public int branches() {
        return branches;
    }

    @Override
    public void close() {
        for (Tensor t : temps) t.close();
        temps.clear();
    }
}
