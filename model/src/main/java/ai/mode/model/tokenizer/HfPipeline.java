package ai.mode.model.tokenizer;

import ai.mode.model.text.StrictUtf8;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The text stages of a Hugging Face {@code tokenizer.json} around its model, each the same transformation as the
 * {@code tokenizers} component of the same name: normalizers (on each piece of text between added tokens),
 * pre-tokenizers (cutting a normalized piece into words for the model) and decoders (turning token strings back into
 * text). Only the components that the Llama-2 and Llama-3 tokenizer layouts use exist here; {@link HfTokenizerParser}
 * refuses the others.
 */
final class HfPipeline {

    private HfPipeline() {}

    /** A normalizer: rewrites one piece of text between added tokens. */
    sealed interface Normalizer {
        String apply(String s);
    }

    /** {@code Prepend}: puts {@code prefix} before a non-empty piece. */
    record Prepend(String prefix) implements Normalizer {
        @Override
        public String apply(String s) {
            return s.isEmpty() ? s : prefix + s;
        }
    }

    /** {@code Replace} with a literal pattern: every occurrence of {@code pattern} becomes {@code content}. */
    record Replace(String pattern, String content) implements Normalizer {
        @Override
        public String apply(String s) {
            return s.replace(pattern, content);
        }
    }

    /** A pre-tokenizer: cuts one normalized piece into words. */
    sealed interface PreTokenizer {
        /**
         * Appends the words of {@code s} to {@code out}.
         *
         * @param atStart whether {@code s} begins at offset 0 of the original text (Metaspace's {@code first})
         */
        void split(String s, boolean atStart, List<String> out);
    }

    /** When Metaspace puts its replacement character before a piece. */
    enum PrependScheme {
        ALWAYS,
        FIRST,
        NEVER
    }

    /**
     * {@code Metaspace}: spaces become {@code replacement} (SentencePiece's '▁'); the piece gets one in front per the
     * scheme unless it already starts with one; with {@code split}, each replacement character starts a new word.
     */
    record Metaspace(char replacement, PrependScheme scheme, boolean split) implements PreTokenizer {
        @Override
        public void split(String s, boolean atStart, List<String> out) {
            String r = s.replace(' ', replacement);
            boolean prepend = scheme == PrependScheme.ALWAYS || (scheme == PrependScheme.FIRST && atStart);
            if (prepend && !r.isEmpty() && r.charAt(0) != replacement) r = replacement + r;
            if (!split) {
                out.add(r);
                return;
            }
            int start = 0;
            for (int i = 1; i < r.length(); i++) {
                if (r.charAt(i) == replacement) {
                    out.add(r.substring(start, i));
                    start = i;
                }
            }
            if (start < r.length()) out.add(r.substring(start));
        }
    }

    /**
     * {@code ByteLevel} (without a prefix space): optionally GPT-2's split pattern ({@link
     * ai.mode.model.tokenizer.PreTokenizer}), then each word's UTF-8 bytes written as byte-level symbols.
     */
    record ByteLevelWords(boolean useRegex) implements PreTokenizer {
        @Override
        public void split(String s, boolean atStart, List<String> out) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            if (!useRegex) {
                out.add(ByteLevel.toSymbols(bytes));
                return;
            }
            for (byte[] word : ai.mode.model.tokenizer.PreTokenizer.split(bytes)) out.add(ByteLevel.toSymbols(word));
        }
    }

    /** {@code Split} with behavior {@code Isolated}: every match of the pattern and every gap between is a word. */
    record Split(Pattern pattern) implements PreTokenizer {
        @Override
        public void split(String s, boolean atStart, List<String> out) {
            Matcher m = pattern.matcher(s);
            int last = 0;
            while (m.find()) {
                if (m.start() > last) out.add(s.substring(last, m.start()));
                if (m.end() > m.start()) out.add(s.substring(m.start(), m.end()));
                last = m.end();
            }
            if (last < s.length()) out.add(s.substring(last));
        }
    }

    /** {@code Sequence} of pre-tokenizers: each one cuts every word the previous one produced. */
    record PreTokenizerSequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(String s, boolean atStart, List<String> out) {
            List<String> words = List.of(s);
            for (PreTokenizer step : steps) {
                List<String> next = new ArrayList<>();
                for (int i = 0; i < words.size(); i++) step.split(words.get(i), atStart && i == 0, next);
                words = next;
            }
            out.addAll(words);
        }
    }

    /** A decoder: rewrites the list of token strings; the tokenizer concatenates what is left. */
    sealed interface Decoder {
        List<String> apply(List<String> tokens);
    }

    /** {@code Replace} with a literal pattern, in every token. */
    record ReplaceDecoder(String pattern, String content) implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            return tokens.stream().map(t -> t.replace(pattern, content)).toList();
        }
    }

    /**
     * {@code ByteFallback}: each run of {@code <0xNN>} tokens becomes its bytes as UTF-8 text when they are valid
     * UTF-8, otherwise one U+FFFD per byte.
     */
    record ByteFallback() implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            for (String t : tokens) {
                int b = byteToken(t);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                flush(run, out);
                out.add(t);
            }
            flush(run, out);
            return out;
        }

        private static void flush(ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) return;
            byte[] bytes = run.toByteArray();
            run.reset();
            String text = decodeStrict(bytes);
            out.add(text != null ? text : "\uFFFD".repeat(bytes.length));
        }
    }

    /** {@code Fuse}: all tokens joined into one. */
    record Fuse() implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            return List.of(String.join("", tokens));
        }
    }

    /** {@code Strip}: up to {@code start} leading and {@code stop} trailing {@code content} characters per token. */
    record Strip(char content, int start, int stop) implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                int from = 0, to = t.length();
                while (from < start && from < to && t.charAt(from) == content) from++;
                int cut = 0;
                while (cut < stop && to > from && t.charAt(to - 1) == content) {
                    to--;
                    cut++;
                }
                out.add(t.substring(from, to));
            }
            return out;
        }
    }

    /**
     * {@code ByteLevel}: every token's byte-level symbols back to bytes (a token holding any other character, such
     * as an added token's text, contributes its own UTF-8), all decoded as one UTF-8 string with U+FFFD for each
     * maximal invalid sequence.
     */
    record ByteLevelDecoder() implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            for (String t : tokens) {
                byte[] b;
                try {
                    b = ByteLevel.fromSymbols(t);
                } catch (IllegalArgumentException notSymbols) {
                    b = t.getBytes(StandardCharsets.UTF_8);
                }
                bytes.writeBytes(b);
            }
            return List.of(decodeLossy(bytes.toByteArray()));
        }
    }

    /** {@code Sequence} of decoders, applied in order. */
    record DecoderSequence(List<Decoder> steps) implements Decoder {
        @Override
        public List<String> apply(List<String> tokens) {
            for (Decoder d : steps) tokens = d.apply(tokens);
            return tokens;
        }
    }

    /** {@code bytes} as UTF-8 text, or null when they are not valid UTF-8. */
    static String decodeStrict(byte[] bytes) {
        try {
            return StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            return null;
        }
    }

    /** {@code bytes} as UTF-8 text with U+FFFD for each maximal invalid subsequence (what Rust's lossy decode does). */
    static String decodeLossy(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The byte of a {@code <0xNN>} token (two upper- or lower-case hex digits), or -1 for any other token. */
    static int byteToken(String t) {
        if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') return -1;
        int hi = Character.digit(t.charAt(3), 16), lo = Character.digit(t.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
    }

    /** The {@code <0xNN>} token of a byte, as Hugging Face and SentencePiece spell it (upper-case hex). */
    static String byteTokenName(int b) {
        return String.format("<0x%02X>", b & 0xFF);
    }
}
