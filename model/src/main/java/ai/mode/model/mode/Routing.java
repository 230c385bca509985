package ai.mode.model.mode;

import java.util.Locale;

/**
 * How a MoDE gate routes: dense soft mixing of all N+1 branches (the paper), or top-k sparse routing where only the
 * chosen branches run; decided per token (the paper) or per sequence (gate on the mean input).
 *
 * @param level per token or per sequence
 * @param topK  0 = dense (every branch runs, weights = softmax); 1..N+1 = only the k most probable branches run
 *              for a token (or sequence), with their weights renormalised to sum to 1
 */
public record Routing(Level level, int topK) {

    /** Where the gate decides. */
    public enum Level {
        /** Gate on each token's block input (the paper). */
        TOKEN,
        /** Gate on the mean over the sequence of the block input; every token of a sequence gets the same weights. */
        SEQUENCE
    }

    /** The paper's routing: dense, per token. */
    public static final Routing DENSE = new Routing(Level.TOKEN, 0);

    public Routing {
        if (level == null) throw new IllegalArgumentException("routing level must be given (token or sequence)");
        if (topK < 0)
            throw new IllegalArgumentException("top-k must be >= 1, or 0 for dense routing (got " + topK + ")");
    }

    public boolean dense() {
        return topK == 0;
    }

    /** Parses {@code token} / {@code sequence}. */
    public static Level parseLevel(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "token" -> Level.TOKEN;
            case "sequence", "seq" -> Level.SEQUENCE;
            default ->
                throw new IllegalArgumentException("unknown routing level '" + s + "'; use 'token' or 'sequence'");
        };
    }

    /** Parses the string form of {@link #toString()}: {@code dense}, {@code top2}, {@code sequence-dense}, {@code sequence-top1}. */
    public static Routing parse(String s) {
        String t = s.toLowerCase(Locale.ROOT);
        Level level = Level.TOKEN;
        if (t.startsWith("sequence-")) {
            level = Level.SEQUENCE;
            t = t.substring("sequence-".length());
        }
        if (t.equals("dense")) return new Routing(level, 0);
        if (t.startsWith("top")) {
            try {
                return new Routing(level, Integer.parseInt(t.substring(3)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException(
                "unknown routing '" + s + "'; use dense, topK (e.g. top1) or sequence-dense / sequence-topK");
    }

    @Override
    public String toString() {
        return (level == Level.SEQUENCE ? "sequence-" : "") + (dense() ? "dense" : "top" + topK);
    }
}
