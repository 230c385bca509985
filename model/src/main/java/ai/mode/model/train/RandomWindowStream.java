package ai.mode.model.train;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.SplittableRandom;

/**
 * A simple resumable TokenStream over one in-memory token array: windows at seeded random offsets. Used by tests and as
 * the fallback when a corpus is given as a plain token array.
 *
 * <p>Draws each row's start offset uniformly from {@code [0, tokens.length - seqLen - 1]} with a
 * SplittableRandom seeded once; the state is the number of rows drawn, so restoring re-seeds and skips.
 */
public final class RandomWindowStream implements TokenStream {
    private final int[] tokens;
    private final long seed;
    private SplittableRandom rng;
    private long drawn;
    private long pendingSkip;

    public RandomWindowStream(int[] tokens, long seed) {
        if (tokens.length < 2)
            throw new IllegalArgumentException("training data has " + tokens.length + " tokens; need at least 2");
        this.tokens = tokens;
        this.seed = seed;
        this.rng = new SplittableRandom(seed);
    }

    @Override
    public void next(int batch, int seqLen, int[] dst) {
        int span = seqLen + 1;
        if (tokens.length < span) {
            throw new IllegalArgumentException("training data has " + tokens.length
                    + " tokens, fewer than one window of --seq " + seqLen + " + 1; use a shorter --seq or more data");
        }
        for (; pendingSkip > 0; pendingSkip--) { // replay draws of a restored position
            rng.nextInt(tokens.length - span + 1);
            drawn++;
        }
        for (int r = 0; r < batch; r++) {
            int start = rng.nextInt(tokens.length - span + 1);
            System.arraycopy(tokens, start, dst, r * span, span);
            drawn++;
        }
    }

    @Override
    public JsonElement state() {
        JsonObject o = new JsonObject();
        o.addProperty("seed", seed);
        o.addProperty("rows_drawn", drawn + pendingSkip);
        return o;
    }

    @Override
    public void restore(JsonElement state) {
        JsonObject o = state.getAsJsonObject();
        if (o.get("seed").getAsLong() != seed)
            throw new IllegalArgumentException("data stream state was saved with another seed");
        long n = o.get("rows_drawn").getAsLong();
        rng = new SplittableRandom(seed);
        drawn = 0;
        pendingSkip = n; // replayed on the next call, when the window length is known
    }
}
