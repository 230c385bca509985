package ai.mode.model.generate;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Turns generated tokens into text as they arrive, for streaming to a terminal. After each token the whole sequence
 * (prompt and generated ids) is decoded with the model's tokenizer, so word boundaries and byte-fallback pieces
 * decode exactly as in one final decode; what follows the prompt's text is released only once it is final: a trailing
 * U+FFFD (a UTF-8 character whose bytes are split across tokens and not yet complete) and a trailing piece that could
 * begin the stop string are held back until the next token decides them.
 */
public final class TextStream {
    private static final char REPLACEMENT = '\uFFFD';

    private final Function<int[], String> decode;
    private final String stop;
    private final String promptText;
    private int[] ids;
    private String generated = "";
    private int released;
    private boolean stopped;

    /**
     * @param decode the tokenizer's decode of an id sequence (special tokens dropped)
     * @param prompt the prompt's ids (their text is {@link #promptText()})
     * @param stop   a string that ends generation when the text produces it (not printed), or null
     */
    public TextStream(Function<int[], String> decode, int[] prompt, String stop) {
        if (stop != null && stop.isEmpty())
            throw new IllegalArgumentException("--stop is empty; give the text that should end generation");
        this.decode = decode;
        this.stop = stop;
        this.ids = prompt.clone();
        this.promptText = decode.apply(ids);
    }

    /** The prompt as the tokenizer decodes it. */
    public String promptText() {
        return promptText;
    }

    /** Adds one generated token; returns the text that became final (possibly empty). */
    public String add(int token) {
        if (stopped) throw new IllegalStateException("text stream already stopped at " + stop);
        ids = Arrays.copyOf(ids, ids.length + 1);
        ids[ids.length - 1] = token;
        String all = decode.apply(ids);
        generated = all.startsWith(promptText) ? all.substring(promptText.length()) : all;
        int end = generated.length();
        if (stop != null) {
            int at = generated.indexOf(stop);
            if (at >= 0) {
                stopped = true;
                return release(at);
            }
            for (int k = Math.min(stop.length() - 1, end); k > 0; k--) {
                if (generated.regionMatches(end - k, stop, 0, k)) {
                    end -= k;
                    break;
                }
            }
        }
        while (end > released && generated.charAt(end - 1) == REPLACEMENT) end--;
        return release(end);
    }

    /** Whether the stop string has appeared (generation should end). */
    public boolean stopped() {
        return stopped;
    }

    /** The text still held back (at the end of generation): everything up to the stop string or the end. */
    public String finish() {
        if (stopped) return "";
        return release(generated.length());
    }

    /** The generated text so far, up to the stop string when it appeared. */
    public String text() {
        return stopped ? generated.substring(0, generated.indexOf(stop)) : generated;
    }

    private String release(int end) {
        if (end <= released) return "";
        String out = generated.substring(released, end);
        released = end;
        return out;
    }
}
