package ai.mode.model.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A pretrained model's Hugging Face {@code tokenizer.json}, encoding and decoding id for id as the {@code tokenizers}
 * library does. Covers the Llama-2 layout (SentencePiece BPE written with '▁', {@code <0xNN>} byte fallback, BOS from a
 * template) and the Llama-3 layout (byte-level BPE after a split regex, added special tokens, a template
 * post-processor); the components are listed in docs/importing.md and anything else is refused on load with a
 * one-line {@link TokenizerFileException} naming the field.
 *
 * <p>Encoding: added tokens (special or not) are found in the raw text first, leftmost and longest; each piece of text
 * between them is normalized, pre-tokenized into words and run through the BPE model; with {@code addSpecialTokens}
 * the post-processor's template puts its special tokens around the result. Decoding maps ids to token strings
 * (dropping special tokens when asked) and runs the decoder chain.
 *
 * <p>{@link BpeTokenizer} stays the tokenizer that MoDE-J trains and saves; this one is for models trained elsewhere.
 * Immutable and thread-safe.
 */
public final class HfTokenizer {

    /** A token from {@code added_tokens}. */
    record AddedToken(String content, int id, boolean special) {}

    private final String source;
    private final List<HfPipeline.Normalizer> normalizers;
    private final HfPipeline.PreTokenizer preTokenizer;
    private final HfBpeModel model;
    private final List<HfPipeline.Decoder> decoders;
    private final int[] templatePrefix;
    private final int[] templateSuffix;
    private final Map<Integer, AddedToken> addedById = new HashMap<>();
    private final Map<Character, List<AddedToken>> addedByFirstChar = new HashMap<>();
    private final int vocabSize;

    HfTokenizer(
            String source,
            List<HfPipeline.Normalizer> normalizers,
            HfPipeline.PreTokenizer preTokenizer,
            HfBpeModel model,
            List<HfPipeline.Decoder> decoders,
            List<AddedToken> added,
            int[] templatePrefix,
            int[] templateSuffix) {
        this.source = source;
        this.normalizers = List.copyOf(normalizers);
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.decoders = decoders == null ? null : List.copyOf(decoders);
        this.templatePrefix = templatePrefix.clone();
        this.templateSuffix = templateSuffix.clone();
        int n = model.size();
        for (AddedToken t : added) {
            addedById.put(t.id(), t);
            addedByFirstChar
                    .computeIfAbsent(t.content().charAt(0), c -> new ArrayList<>())
                    .add(t);
            n = Math.max(n, t.id() + 1);
        }
        for (List<AddedToken> l : addedByFirstChar.values()) {
            l.sort(Comparator.comparingInt((AddedToken t) -> t.content().length())
                    .reversed());
        }
        vocabSize = n;
    }

    /** Loads and validates a {@code tokenizer.json}. */
    public static HfTokenizer load(Path file) throws IOException {
        return fromJson(TokenizerJson.readBytes(file), file.toString());
    }

    /**
     * Parses {@code tokenizer.json} content.
     *
     * @param source names the content in error messages (a path)
     */
    public static HfTokenizer fromJson(byte[] json, String source) throws TokenizerFileException {
        return HfTokenizerParser.parse(json, source);
    }

    /** Number of ids: one more than the largest id of the model or the added tokens. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The id of a token string (an added token's content, or a model token as the vocabulary writes it). */
    public OptionalInt tokenId(String token) {
        for (AddedToken t : addedById.values()) if (t.content().equals(token)) return OptionalInt.of(t.id());
        Integer id = model.id(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** The token string of an id as {@code tokenizer.json} writes it. */
    public String token(int id) {
        AddedToken a = addedById.get(id);
        if (a != null) return a.content();
        String t = model.token(id);
        if (t == null) throw new IllegalArgumentException(source + ": no token has id " + id);
        return t;
    }

    /** Whether {@code id} is an added token marked special (dropped by {@code decode(ids, true)}). */
    public boolean isSpecial(int id) {
        AddedToken a = addedById.get(id);
        return a != null && a.special();
    }

    /** The ids the post-processor puts before the text ({@code <s>} or {@code <|begin_of_text|>}; may be empty). */
    public int[] templatePrefix() {
        return templatePrefix.clone();
    }

    /**
     * Encodes text.
     *
     * @param addSpecialTokens apply the post-processor's template (e.g. the BOS token), as {@code tokenizers} does by
     *                         default
     * @throws IllegalArgumentException when the text holds an unpaired surrogate, which is not Unicode text (the
     *                                  Python {@code tokenizers} refuses such a string too)
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        requireWellFormed(text);
        List<Integer> ids = new ArrayList<>();
        if (addSpecialTokens) for (int id : templatePrefix) ids.add(id);
        int pos = 0;
        while (true) {
            int start = pos;
            AddedToken match = null;
            while (start < text.length() && (match = addedTokenAt(text, start)) == null) start++;
            if (start > pos) encodePiece(text.substring(pos, start), pos == 0, ids);
            if (match == null) break;
            ids.add(match.id());
            pos = start + match.content().length();
        }
        if (addSpecialTokens) for (int id : templateSuffix) ids.add(id);
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) out[i] = ids.get(i);
        return out;
    }

    /**
     * Decodes ids to text.
     *
     * @param skipSpecialTokens drop the special added tokens ({@code tokenizers}' Python {@code decode} default)
     * @throws IllegalArgumentException for an id no token has
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (skipSpecialTokens && isSpecial(id)) continue;
            tokens.add(token(id));
        }
        if (decoders == null) return String.join(" ", tokens);
        for (HfPipeline.Decoder d : decoders) tokens = d.apply(tokens);
        return String.join("", tokens);
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + source + ", vocab=" + vocabSize + ", added=" + addedById.size() + "]";
    }

    private AddedToken addedTokenAt(String text, int i) {
        List<AddedToken> candidates = addedByFirstChar.get(text.charAt(i));
        if (candidates == null) return null;
        for (AddedToken t : candidates) if (text.startsWith(t.content(), i)) return t;
        return null;
    }

    /** Normalizes, pre-tokenizes and BPE-encodes one piece of text between added tokens. */
    private void encodePiece(String piece, boolean atStart, List<Integer> out) {
        for (HfPipeline.Normalizer n : normalizers) piece = n.apply(piece);
        List<String> words = new ArrayList<>();
        if (preTokenizer == null) words.add(piece);
        else preTokenizer.split(piece, atStart, words);
        for (String w : words) if (!w.isEmpty()) model.tokenize(w, out);
    }

    private static void requireWellFormed(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new IllegalArgumentException(String.format(
                        "the text holds an unpaired surrogate U+%04X at index %d, which is not Unicode text; "
                                + "replace or remove it before encoding",
                        (int) c, i));
            }
        }
    }
}
