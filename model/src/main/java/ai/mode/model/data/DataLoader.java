package ai.mode.model.data;

import com.google.gson.Gson;
import com.google.gson.JsonParseException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic, resumable training batches drawn from one or more token streams (domains).
 *
 * <p>Each stream is cut into windows of {@code seqLen + 1} tokens at stride {@code seqLen}, starting at a per-epoch
 * offset in {@code [0, seqLen)}; the windows are visited in a per-epoch random permutation. Offset and permutation
 * depend only on (seed, stream index, epoch), so a loader is fully described by its {@link State}: the epoch, the
 * index within the epoch and the rows taken, per stream. Saving {@link #state()} and calling {@link #restore(State)}
 * on a fresh loader over the same streams resumes exactly: the following batches are identical.
 *
 * <p>With several streams, rows are assigned so each stream's share of all rows served stays within one row of its
 * weight's share (weights equal by default: the equal mix of MoDE's stage 2). Streams cycle independently: a small
 * stream starts its next epoch while a large one is still in its first.
 *
 * <p>Not thread-safe.
 */
public final class DataLoader {

    /**
     * A named token stream with a mixing weight.
     *
     * @param name   domain name (recorded in the state to catch a mismatched resume)
     * @param tokens the stream, e.g. from {@link TokenCache#tokens}; at least {@code seqLen + 1} tokens
     * @param weight relative share of rows, positive
     */
    public record Source(String name, int[] tokens, double weight) {
        public Source {
            if (name == null || tokens == null)
                throw new IllegalArgumentException("source name and tokens are required");
            if (!(weight > 0) || Double.isInfinite(weight)) {
                throw new IllegalArgumentException(
                        "source '" + name + "' weight must be a positive number (got " + weight + ")");
            }
        }

        /** Weight 1. */
        public Source(String name, int[] tokens) {
            this(name, tokens, 1.0);
        }
    }

    /** Position of one stream. */
    public record StreamState(String name, long tokens, int epoch, long index, long taken) implements Serializable {}

    /**
     * The whole loader position: enough, with the same sources, to resume exactly. Serialisable with Java
     * serialisation or as JSON ({@link #toJson()}, {@link #fromJson(String)}).
     *
     * @param seed      the loader's seed
     * @param batchSize rows per batch
     * @param seqLen    sequence length
     * @param batches   batches served so far
     * @param streams   per-stream position, in source order
     */
    public record State(long seed, int batchSize, int seqLen, long batches, List<StreamState> streams)
            implements Serializable {
        public State {
            streams = List.copyOf(streams);
        }

        public String toJson() {
            return new Gson().toJson(this);
        }

        /** @throws IllegalArgumentException with a one-line message when the JSON is not a loader state */
        public static State fromJson(String json) {
            State s;
            try {
                s = new Gson().fromJson(json, State.class);
            } catch (JsonParseException | IllegalStateException e) {
                String why =
                        String.valueOf(e.getMessage()).replaceAll("\\s+", " ").replaceAll(" See https://\\S+", "");
                throw new IllegalArgumentException("data loader state is not valid JSON: " + why.trim());
            }
            if (s == null || s.streams() == null || s.streams().isEmpty()) {
                throw new IllegalArgumentException("data loader state has no streams");
            }
            return s;
        }
    }

    private final long seed;
    private final int batchSize;
    private final int seqLen;
    private final Cursor[] streams;
    private final double weightSum;
    private long batches;

    /**
     * @param sources   one or more streams
     * @param batchSize rows per batch B
     * @param seqLen    sequence length T (each row holds T + 1 tokens)
     * @param seed      fixes every epoch's offset and order
     * @throws IllegalArgumentException when a stream is shorter than one window, or sizes are not positive
     */
    public DataLoader(List<Source> sources, int batchSize, int seqLen, long seed) {
        if (sources.isEmpty()) throw new IllegalArgumentException("a data loader needs at least one source");
        if (batchSize < 1 || seqLen < 1) {
            throw new IllegalArgumentException(
                    "batch size and sequence length must be >= 1 (got " + batchSize + ", " + seqLen + ")");
        }
        this.seed = seed;
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.streams = new Cursor[sources.size()];
        double w = 0;
        for (int i = 0; i < streams.length; i++) {
            Source s = sources.get(i);
            if (s.tokens().length < seqLen + 1) {
                throw new IllegalArgumentException("source '" + s.name() + "' has " + s.tokens().length
                        + " tokens, fewer " + "than one sequence of " + (seqLen + 1)
                        + "; use a shorter sequence length or more data");
            }
            streams[i] = new Cursor(i, s);
            w += s.weight();
        }
        weightSum = w;
        for (Cursor s : streams) s.startEpoch(0);
    }

    /** A loader over a single stream. */
    public static DataLoader of(int[] tokens, int batchSize, int seqLen, long seed) {
        return new DataLoader(List.of(new Source("stream", tokens)), batchSize, seqLen, seed);
    }

    public int batchSize() {
        return batchSize;
    }

    public int seqLen() {
        return seqLen;
    }

    /** Batches served so far. */
    public long batchesServed() {
        return batches;
    }

    /** The current epoch of source {@code i} (0-based; the number of complete passes over it). */
    public int epoch(int i) {
        return streams[i].epoch;
    }

    /** Windows per epoch of source {@code i} in its current epoch. */
    public int windowsPerEpoch(int i) {
        return streams[i].perm.length;
    }

    /** The next batch of {@code batchSize} rows. */
    public Batch next() {
        int[] tokens = new int[batchSize * (seqLen + 1)];
        int[] sources = new int[batchSize];
        for (int r = 0; r < batchSize; r++) {
            Cursor s = pickStream();
            sources[r] = s.index;
            s.copyNext(tokens, r * (seqLen + 1));
        }
        batches++;
        return new Batch(tokens, batchSize, seqLen, sources);
    }

    /** The position after the batches served so far. */
    public State state() {
        List<StreamState> out = new ArrayList<>();
        for (Cursor s : streams) out.add(new StreamState(s.name, s.tokens.length, s.epoch, s.position, s.taken));
        return new State(seed, batchSize, seqLen, batches, out);
    }

    /**
     * Moves to a saved position.
     *
     * @throws IllegalArgumentException naming the mismatch when the state was saved by a loader with another seed,
     *                                  shape or streams (e.g. the corpus or tokenizer changed)
     */
    public void restore(State state) {
        List<String> problems = new ArrayList<>();
        if (state.seed() != seed) problems.add("seed " + state.seed() + " vs " + seed);
        if (state.batchSize() != batchSize) problems.add("batch size " + state.batchSize() + " vs " + batchSize);
        if (state.seqLen() != seqLen) problems.add("sequence length " + state.seqLen() + " vs " + seqLen);
        if (state.streams().size() != streams.length) {
            problems.add(state.streams().size() + " sources vs " + streams.length);
        } else {
            for (int i = 0; i < streams.length; i++) {
                StreamState ss = state.streams().get(i);
                if (!ss.name().equals(streams[i].name) || ss.tokens() != streams[i].tokens.length) {
                    problems.add("source " + i + " '" + ss.name() + "' with " + ss.tokens() + " tokens vs '"
                            + streams[i].name + "' with " + streams[i].tokens.length
                            + " (corpus or tokenizer changed?)");
                }
                if (ss.epoch() < 0 || ss.index() < 0 || ss.taken() < 0)
                    problems.add("negative position in source " + i);
            }
        }
        if (state.batches() < 0) problems.add("negative batch count");
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(
                    "cannot resume data loader: saved state differs: " + String.join("; ", problems));
        }
        for (int i = 0; i < streams.length; i++) {
            StreamState ss = state.streams().get(i);
            Cursor s = streams[i];
            s.startEpoch(ss.epoch());
            if (ss.index() > s.perm.length) {
                throw new IllegalArgumentException("cannot resume data loader: source '" + s.name + "' position "
                        + ss.index() + " is beyond its " + s.perm.length + " windows in epoch " + ss.epoch());
            }
            s.position = ss.index();
            s.taken = ss.taken();
        }
        batches = state.batches();
    }

    /** The stream furthest below its weighted share of the rows served so far (ties: the first). */
    private Cursor pickStream() {
        long total = 0;
        for (Cursor s : streams) total += s.taken;
        Cursor best = streams[0];
        double bestDeficit = Double.NEGATIVE_INFINITY;
        for (Cursor s : streams) {
            double deficit = s.weight / weightSum * (total + 1) - s.taken;
            if (deficit > bestDeficit + 1e-12) {
                bestDeficit = deficit;
                best = s;
            }
        }
        return best;
    }

    private final class Cursor {
        final int index;
        final String name;
        final int[] tokens;
        final double weight;
        int epoch;
        long position;
        long taken;
        int offset;
        int[] perm;

        Cursor(int index, Source source) {
            this.index = index;
            this.name = source.name();
            this.tokens = source.tokens();
            this.weight = source.weight();
        }

        void startEpoch(int e) {
            epoch = e;
            position = 0;
            SplittableRandom rng = new SplittableRandom(
                    seed ^ (0x9E3779B97F4A7C15L * (index + 1)) ^ ((long) e << 40) ^ (0xD1B54A32D192ED03L * (e + 1)));
            int maxOffset = Math.min(seqLen - 1, tokens.length - (seqLen + 1));
            offset = maxOffset > 0 ? rng.nextInt(maxOffset + 1) : 0;
            int n = (tokens.length - offset - 1) / seqLen;
            perm = new int[n];
            for (int i = 0; i < n; i++) perm[i] = i;
            for (int i = n - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }

        void copyNext(int[] out, int at) {
            if (position == perm.length) startEpoch(epoch + 1);
            int start = offset + perm[(int) position] * seqLen;
            System.arraycopy(tokens, start, out, at, seqLen + 1);
            position++;
            taken++;
        }
    }
}
