package ai.mode.model.tokenizer;

import java.io.ByteArrayOutputStream;

/**
 * GPT-2's byte-to-symbol mapping used by Hugging Face's {@code ByteLevel} pre-tokenizer and decoder.
 *
 * <p>Every byte 0..255 gets one printable Unicode character so that token strings in {@code tokenizer.json} never
 * contain whitespace or control characters: printable Latin-1 bytes ({@code !..~}, {@code ¡..¬}, {@code ®..ÿ})
 * map to themselves, the remaining 68 bytes map in increasing order to U+0100, U+0101, ... (so space becomes
 * {@code Ġ} and newline {@code Ċ}).
 */
public final class ByteLevel {

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final short[] CHAR_TO_BYTE = new short[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevel() {}

    /** The symbol for one byte ({@code b} in 0..255). */
    public static char symbol(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a symbol stands for, or -1 when {@code c} is not a byte-level symbol. */
    public static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** Maps raw bytes to their symbol string (one char per byte). */
    public static String toSymbols(byte[] bytes) {
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }

    /**
     * Maps a symbol string back to bytes.
     *
     * @throws IllegalArgumentException naming the first character that is not a byte-level symbol
     */
    public static byte[] fromSymbols(String symbols) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(symbols.length());
        for (int i = 0; i < symbols.length(); i++) {
            int b = byteOf(symbols.charAt(i));
            if (b < 0) {
                throw new IllegalArgumentException(String.format(
                        "character U+%04X at index %d is not a byte-level symbol", (int) symbols.charAt(i), i));
            }
            out.write(b);
        }
        return out.toByteArray();
    }
}
