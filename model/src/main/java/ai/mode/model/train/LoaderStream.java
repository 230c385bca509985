package ai.mode.model.train;

import ai.mode.model.data.Batch;
import ai.mode.model.data.DataLoader;
import ai.mode.model.data.EvalBatches;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.List;

/**
 * Adapts the data package's resumable DataLoader (single corpus or a domain mix) to the trainer's TokenStream. A
 * {@link TokenStream} over a {@link DataLoader}; the loader's batch size and sequence length must match the trainer's.
 */
public final class LoaderStream implements TokenStream {
    private final DataLoader loader;
    private int[] rowSources;

    public LoaderStream(DataLoader loader) {
        this.loader = loader;
    }

    @Override
    public void next(int batch, int seqLen, int[] dst) {
        if (batch != loader.batchSize() || seqLen != loader.seqLen()) {
            throw new IllegalArgumentException("data loader serves " + loader.batchSize() + " x " + loader.seqLen()
                    + " batches but the trainer asks for " + batch + " x " + seqLen);
        }
        Batch b = loader.next();
        System.arraycopy(b.tokens(), 0, dst, 0, dst.length);
        rowSources = b.sources();
    }

    /** The loader's source of every row of the last batch, in the order its sources were given. */
    @Override
    public int[] rowSources() {
        return rowSources == null ? null : rowSources.clone();
    }

    @Override
    public JsonElement state() {
        return JsonParser.parseString(loader.state().toJson());
    }

    @Override
    public void restore(JsonElement state) {
        loader.restore(DataLoader.State.fromJson(state.toString()));
    }

    /** The windows (rows of T+1 tokens) of evaluation batches, in order. */
    public static List<int[]> windows(EvalBatches batches) {
        List<int[]> out = new ArrayList<>();
        for (Batch b : batches) {
            for (int r = 0; r < b.rows(); r++) out.add(b.row(r));
        }
        return out;
    }
}
