package ai.mode.model.data;

import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * Deterministic evaluation batches over one token stream: non-overlapping windows of {@code seqLen + 1} tokens at
 * stride {@code seqLen} (so every token after the first is predicted exactly once), in stream order, grouped into
 * batches of up to {@code batchSize} rows (the last batch may be smaller). Tokens after the last whole window are
 * not evaluated. With {@code maxWindows > 0} only that many windows are used, spread evenly over the stream.
 */
public final class EvalBatches implements Iterable<Batch> {

    private final int[] tokens;
    private final int batchSize;
    private final int seqLen;
    private final long[] starts;

    /** All windows of the stream. */
    public EvalBatches(int[] tokens, int batchSize, int seqLen) {
        this(tokens, batchSize, seqLen, 0);
    }

    /**
     * @param maxWindows at most this many windows, evenly spaced; 0 for all
     * @throws IllegalArgumentException when the stream is shorter than one window
     */
    public EvalBatches(int[] tokens, int batchSize, int seqLen, int maxWindows) {
        if (batchSize < 1 || seqLen < 1 || maxWindows < 0) {
            throw new IllegalArgumentException("batch size and sequence length must be >= 1 and maxWindows >= 0 (got "
                    + batchSize + ", " + seqLen + ", " + maxWindows + ")");
        }
        long available = (tokens.length - 1L) / seqLen;
        if (available < 1) {
            throw new IllegalArgumentException(
                    "evaluation stream has " + tokens.length + " tokens, fewer than one window of " + (seqLen + 1)
                            + "; use a shorter sequence length or more data");
        }
        int n = (int) (maxWindows > 0 ? Math.min(available, maxWindows) : available);
        starts = new long[n];
        for (int i = 0; i < n; i++) starts[i] = (available == n ? i : (long) ((double) i * available / n)) * seqLen;
        this.tokens = tokens;
        this.batchSize = batchSize;
        this.seqLen = seqLen;
    }

    /** Number of windows (sequences) evaluated. */
    public int windows() {
        return starts.length;
    }

    /** Number of predicted tokens: windows × seqLen. */
    public long predictedTokens() {
        return (long) starts.length * seqLen;
    }

    /** Number of batches. */
    public int batches() {
        return (starts.length + batchSize - 1) / batchSize;
    }

    @Override
    public Iterator<Batch> iterator() {
        return new Iterator<>() {
            int next = 0;

            @Override
            public boolean hasNext() {
                return next < starts.length;
            }

            @Override
            public Batch next() {
                if (!hasNext()) throw new NoSuchElementException();
                int rows = Math.min(batchSize, starts.length - next);
                int[] out = new int[rows * (seqLen + 1)];
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(tokens, (int) starts[next + r], out, r * (seqLen + 1), seqLen + 1);
                }
                next += rows;
                return new Batch(out, rows, seqLen, new int[rows]);
            }
        };
    }
}
