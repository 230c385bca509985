package ai.mode.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The byte scanner against GPT-2's regex (run by java.util.regex as the independent reference), and losslessness. */
class PreTokenizerTest {

    /** GPT-2's pattern; UNICODE_CHARACTER_CLASS makes \s Unicode White_Space, as in the Rust/Oniguruma engines. */
    private static final Pattern GPT2 = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static List<String> reference(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = GPT2.matcher(text);
        while (m.find()) out.add(m.group());
        return out;
    }

    private static List<String> ours(String text) {
        List<String> out = new ArrayList<>();
        for (byte[] w : PreTokenizer.split(text.getBytes(StandardCharsets.UTF_8))) {
            out.add(new String(w, StandardCharsets.UTF_8));
        }
        return out;
    }

    @Test
    void handWrittenCasesMatchTheRegex() {
        String[] cases = {
            "Hello world",
            "  two  spaces  ",
            "don't you'll I'M we've they're",
            "''s x's 's",
            "tab\tand\nnewline\n\nparagraph",
            "trailing   ",
            "\n\n\nlead",
            "abc123def 456 7.5e-3",
            "fn(x) { return x+1; }",
            "naïve café — “quotes”",
            "日本語のテキスト 123",
            "emoji 😀😀 ok",
            "nbsp\u00a0here\u00a0 x",
            "ⅻ Ⅳ ½",
            "e\u0301 combining",
            " ",
            "",
            "a",
            "\r\n\r\n",
            "x \n y",
        };
        for (String c : cases) assertEquals(reference(c), ours(c), () -> "text: " + c);
    }

    @Test
    void randomTextMatchesTheRegex() {
        String alphabet = "ab Z9'0 \n\t\r.,!?-_()'stremvld\u00a0\u2003é日½😀\u0301";
        int[] cps = alphabet.codePoints().toArray();
        Random rng = new Random(42);
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder sb = new StringBuilder();
            int len = rng.nextInt(40);
            for (int i = 0; i < len; i++) sb.appendCodePoint(cps[rng.nextInt(cps.length)]);
            String text = sb.toString();
            assertEquals(reference(text), ours(text), () -> "text: " + text.replace("\n", "\\n"));
        }
    }

    @Test
    void wordsConcatenateToAnyInputBytes() {
        Random rng = new Random(7);
        for (int trial = 0; trial < 2000; trial++) {
            byte[] bytes = new byte[rng.nextInt(64)];
            rng.nextBytes(bytes);
            if (trial % 2 == 0) {
                // Bias towards ASCII and UTF-8 lead/continuation bytes so truncated sequences are common.
                for (int i = 0; i < bytes.length; i++) if (rng.nextBoolean()) bytes[i] = (byte) (32 + rng.nextInt(95));
            }
            ByteArrayOutputStream joined = new ByteArrayOutputStream();
            List<byte[]> words = PreTokenizer.split(bytes);
            for (byte[] w : words) {
                assertEquals(true, w.length > 0, "empty word");
                joined.writeBytes(w);
            }
            assertArrayEquals(bytes, joined.toByteArray());
        }
    }

    @Test
    void invalidUtf8BytesGroupWithPunctuation() {
        byte[] text = {'a', (byte) 0xFF, (byte) 0xC3, '!', ' ', (byte) 0x80, 'b', (byte) 0xE2, (byte) 0x82};
        List<byte[]> words = PreTokenizer.split(text);
        assertEquals(5, words.size());
        assertArrayEquals(new byte[] {'a'}, words.get(0));
        assertArrayEquals(new byte[] {(byte) 0xFF, (byte) 0xC3, '!'}, words.get(1));
        assertArrayEquals(new byte[] {' ', (byte) 0x80}, words.get(2));
        assertArrayEquals(new byte[] {'b'}, words.get(3));
        assertArrayEquals(new byte[] {(byte) 0xE2, (byte) 0x82}, words.get(4));
    }

    @Test
    void byteLevelSymbolsAreABijection() {
        boolean[] seen = new boolean[1024];
        for (int b = 0; b < 256; b++) {
            char c = ByteLevel.symbol(b);
            assertEquals(false, Character.isWhitespace(c) || Character.isISOControl(c), "symbol of " + b);
            assertEquals(false, seen[c]);
            seen[c] = true;
            assertEquals(b, ByteLevel.byteOf(c));
        }
        assertEquals('Ġ', ByteLevel.symbol(' '));
        assertEquals('Ċ', ByteLevel.symbol('\n'));
        assertEquals('A', ByteLevel.symbol('A'));
        assertEquals(-1, ByteLevel.byteOf(' '));
    }
}
