package ai.mode.model.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Splits raw bytes into "words" before BPE, following GPT-2's pattern
 * {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}
 * (the one Hugging Face's {@code ByteLevel} pre-tokenizer applies), implemented as a hand-written scanner over bytes.
 *
 * <p>Well-formed UTF-8 is decoded to code points and classified as letter ({@code \p{L}}), number ({@code \p{N}}),
 * whitespace (Unicode White_Space) or other. A byte that does not start a well-formed UTF-8 sequence counts as one
 * "other" character, so any byte sequence splits without loss: the words always concatenate back to the input.
 */
public final class PreTokenizer {

    /** Receives each word as the byte range {@code [start, end)} of {@code text}. */
    @FunctionalInterface
    public interface WordSink {
        void word(byte[] text, int start, int end);
    }

    private static final int LETTER = 0, NUMBER = 1, SPACE = 2, OTHER = 3;
    /** Code point reported for a byte that does not start a well-formed UTF-8 sequence. */
    private static final int INVALID = 0x110000;

    private static final byte[] ASCII_CLASS = new byte[128];

    static {
        for (int c = 0; c < 128; c++) ASCII_CLASS[c] = (byte) classify(c);
    }

    private PreTokenizer() {}

    /** Splits {@code text[from, to)} into words, in order, reporting each to {@code sink}. */
    public static void split(byte[] text, int from, int to, WordSink sink) {
        int i = from;
        while (i < to) {
            int b = text[i] & 0xFF;
            if (b == '\'') {
                int n = contractionLength(text, i, to);
                if (n > 0) {
                    sink.word(text, i, i + n);
                    i += n;
                    continue;
                }
            }
            int unit = unit(text, i, to);
            int cls = classOf(unit);
            if (cls != SPACE) {
                int end = runEnd(text, i, to, cls);
                sink.word(text, i, end);
                i = end;
                continue;
            }
            // " ?X+": a single ASCII space joins the run of letters, numbers or other characters after it.
            if (b == ' ' && i + 1 < to) {
                int nextCls = classOf(unit(text, i + 1, to));
                if (nextCls != SPACE) {
                    int end = runEnd(text, i + 1, to, nextCls);
                    sink.word(text, i, end);
                    i = end;
                    continue;
                }
            }
            // "\s+(?!\S)|\s+": a whitespace run; when a non-space follows, its last character starts the next word.
            int j = i, lastStart = i;
            while (j < to) {
                int u = unit(text, j, to);
                if (classOf(u) != SPACE) break;
                lastStart = j;
                j += u & 7;
            }
            int end = (j < to && lastStart > i) ? lastStart : j;
            sink.word(text, i, end);
            i = end;
        }
    }

    /** Convenience form of {@link #split(byte[], int, int, WordSink)} returning copies of the words. */
    public static List<byte[]> split(byte[] text) {
        List<byte[]> words = new ArrayList<>();
        split(text, 0, text.length, (t, s, e) -> words.add(Arrays.copyOfRange(t, s, e)));
        return words;
    }

    private static int contractionLength(byte[] t, int i, int to) {
        if (i + 1 >= to) return 0;
        int c1 = t[i + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (i + 2 >= to) return 0;
        int c2 = t[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
        return 0;
    }

    private static int runEnd(byte[] t, int i, int to, int cls) {
        while (i < to) {
            int u = unit(t, i, to);
            if (classOf(u) != cls) break;
            i += u & 7;
        }
        return i;
    }

    private static int classOf(int unit) {
        int cp = unit >>> 3;
        return cp < 128 ? ASCII_CLASS[cp] : classify(cp);
    }

    /**
     * Decodes the character starting at {@code i}: returns {@code codePoint << 3 | byteLength}, with code point
     * {@link #INVALID} and length 1 for a byte that does not start a well-formed (shortest-form, non-surrogate)
     * UTF-8 sequence within {@code [i, to)}.
     */
    private static int unit(byte[] t, int i, int to) {
        int b0 = t[i] & 0xFF;
        if (b0 < 0x80) return b0 << 3 | 1;
        int need, cp, lo = 0x80, hi = 0xBF;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            need = 1;
            cp = b0 & 0x1F;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            need = 2;
            cp = b0 & 0x0F;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            need = 3;
            cp = b0 & 0x07;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        } else {
            return INVALID << 3 | 1;
        }
        if (i + need >= to) return INVALID << 3 | 1;
        for (int k = 1; k <= need; k++) {
            int b = t[i + k] & 0xFF;
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return INVALID << 3 | 1;
            cp = cp << 6 | (b & 0x3F);
        }
        return cp << 3 | (need + 1);
    }

    private static int classify(int cp) {
        if (cp == INVALID) return OTHER;
        if (isWhiteSpace(cp)) return SPACE;
        if (Character.isLetter(cp)) return LETTER;
        int type = Character.getType(cp);
        if (type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER || type == Character.OTHER_NUMBER)
            return NUMBER;
        return OTHER;
    }

    /** Unicode's White_Space property (what {@code \s} matches in the Rust and Oniguruma regex engines). */
    private static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D)
                || cp == 0x20
                || cp == 0x85
                || cp == 0xA0
                || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028
                || cp == 0x2029
                || cp == 0x202F
                || cp == 0x205F
                || cp == 0x3000;
    }
}
