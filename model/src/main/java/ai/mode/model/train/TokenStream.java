package ai.mode.model.train;

import com.google.gson.JsonElement;

/**
 * Source of training micro-batches with a resumable position: the trainer's only view of the data. An endless stream of
 * token windows whose position can be saved and restored exactly.
 */
public interface TokenStream {

    /**
     * Fills {@code dst} (length {@code batch * (seqLen + 1)}) with {@code batch} rows of {@code seqLen + 1}
     * consecutive tokens, row-major: inputs are a row's first seqLen tokens, targets its last seqLen.
     */
    void next(int batch, int seqLen, int[] dst);

    /**
     * The source (domain) of each row of the last {@link #next}, as an index in the stream's source order, or null
     * when the stream does not know (the default).
     */
    default int[] rowSources() {
        return null;
    }

    /** The position after the last {@link #next}, as JSON (saved in checkpoints). */
    JsonElement state();

    /** Moves to a position returned by {@link #state()}. */
    void restore(JsonElement state);
}
