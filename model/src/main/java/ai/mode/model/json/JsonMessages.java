package ai.mode.model.json;

import com.google.gson.JsonParseException;

/**
 * Gson's parse errors as one line for a user (issue 14): the cause of a wrapping {@link JsonParseException},
 * whitespace collapsed, without Gson's advice to parse leniently (which a user cannot follow and which would
 * accept malformed files) and without its troubleshooting link; what is left names the problem and its position,
 * e.g. {@code malformed JSON at line 1 column 5 path $}. Every reader of outside JSON words its errors with it; a
 * package of its own, which depends on nothing of the project, so that io, tokenizer and data can all use it.
 */
public final class JsonMessages {
    private JsonMessages() {}

    /** The one-line description of {@code t}, a JSON parse failure. */
    public static String of(Throwable t) {
        Throwable c = t instanceof JsonParseException && t.getCause() != null ? t.getCause() : t;
        String m = c.getMessage();
        if (m == null || m.isBlank()) return c.getClass().getSimpleName();
        m = m.replaceAll("\\s+", " ").strip();
        int see = m.indexOf(" See https://");
        if (see > 0) m = m.substring(0, see);
        return m.replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept malformed JSON", "malformed JSON");
    }
}
