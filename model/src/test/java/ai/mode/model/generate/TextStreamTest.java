package ai.mode.model.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Streaming decode over a byte-level vocabulary where characters split across tokens: what is released equals the
 * final decode, never shows a partial character, and stops before the stop string.
 */
class TextStreamTest {
    /** Token i is the byte i (a byte-level tokenizer with no merges). */
    static final Function<int[], String> BYTES = ids -> {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int id : ids) b.write(id);
        return b.toString(StandardCharsets.UTF_8);
    };

    static int[] bytesOf(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xFF;
        return ids;
    }

    @Test
    void splitCharactersAreReleasedWhole() {
        String text = "Zoë ate 寿司 🍣!";
        TextStream s = new TextStream(BYTES, bytesOf("Say: "), null);
        assertEquals("Say: ", s.promptText());
        StringBuilder out = new StringBuilder();
        for (int id : bytesOf(text)) {
            String piece = s.add(id);
            assertFalse(piece.contains("\uFFFD"), "no partial character is printed: " + piece);
            out.append(piece);
        }
        out.append(s.finish());
        assertEquals(text, out.toString());
        assertEquals(text, s.text());
    }

    @Test
    void stopsBeforeTheStopStringAndHoldsItsPrefix() {
        TextStream s = new TextStream(BYTES, bytesOf(">"), "\n\n");
        StringBuilder out = new StringBuilder();
        for (int id : bytesOf("one\ntwo\n\nthree")) {
            out.append(s.add(id));
            if (s.stopped()) break;
            if (out.toString().equals("one")) assertFalse(s.stopped());
        }
        out.append(s.finish());
        assertTrue(s.stopped());
        assertEquals("one\ntwo", out.toString());
        assertEquals("one\ntwo", s.text());
    }

    @Test
    void anIncompleteTailIsFlushedAtTheEnd() {
        TextStream s = new TextStream(BYTES, new int[0], null);
        assertEquals("a", s.add('a'));
        assertEquals("", s.add(0xE2)); // the first byte of a three-byte character
        assertEquals("\uFFFD", s.finish(), "what the tokenizer decodes is printed at the end");
    }
}
