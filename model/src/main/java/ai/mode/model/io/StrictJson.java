// Strict JSON parsing shared by the checkpoint readers: RFC 8259 syntax only (Gson's JsonParser silently switches
// to lenient mode), and trailing content after the top-level value is an error rather than ignored.
package ai.mode.model.io;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.Strictness;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;

final class StrictJson {
    private StrictJson() {}

    private static final TypeAdapter<JsonElement> ELEMENT = new Gson().getAdapter(JsonElement.class);

    /** A reader in STRICT mode over {@code text}. */
    static JsonReader reader(String text) {
        JsonReader r = new JsonReader(new StringReader(text));
        r.setStrictness(Strictness.STRICT);
        return r;
    }

    /**
     * Parses exactly one JSON value. Throws IOException or a RuntimeException from Gson on malformed input, and an
     * IOException saying so when something follows the value; callers turn these into one-line format errors.
     */
    static JsonElement parse(String text) throws IOException {
        JsonReader r = reader(text);
        JsonElement e = ELEMENT.read(r);
        requireEnd(r);
        return e;
    }

    /** Throws unless the reader has consumed the whole document (trailing whitespace allowed). */
    static void requireEnd(JsonReader r) throws IOException {
        boolean end;
        try {
            end = r.peek() == JsonToken.END_DOCUMENT;
        } catch (IOException | RuntimeException e) {
            end = false;
        }
        if (!end) throw new IOException("content after the closing brace");
    }
}
