package ai.mode.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The {@code BPE} model of a Hugging Face {@code tokenizer.json} over arbitrary token strings: a word starts as one
 * symbol per Unicode character; a character missing from the vocabulary becomes its UTF-8 bytes as {@code <0xNN>}
 * tokens ({@code byte_fallback}) or the unknown token (consecutive ones fused with {@code fuse_unk}); then the merges
 * apply in rank order ({@link BpeMerges}). With {@code ignore_merges} a word that is itself in the vocabulary is that
 * token.
 */
final class HfBpeModel {

    private final Map<String, Integer> vocab;
    private final String[] tokens;
    private final LongLongMap pairRank;
    private final int[] mergeResult;
    private final boolean byteFallback;
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final int[] byteIds = new int[256];

    /**
     * @param vocab  token string to id
     * @param merges merges in rank order as {left, right} strings; a later duplicate of a pair takes its rank, as in
     *               {@code tokenizers}
     * @param unkId  the unknown token's id, or -1 for none
     * @throws IllegalArgumentException naming the first merge whose parts or result are not in the vocabulary
     */
    HfBpeModel(
            Map<String, Integer> vocab,
            List<String[]> merges,
            boolean byteFallback,
            int unkId,
            boolean fuseUnk,
            boolean ignoreMerges) {
        this.vocab = Map.copyOf(vocab);
        int n = 0;
        for (int id : vocab.values()) n = Math.max(n, id + 1);
        tokens = new String[n];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (tokens[e.getValue()] != null) {
                throw new IllegalArgumentException("model.vocab gives id " + e.getValue() + " to both '"
                        + tokens[e.getValue()] + "' and '" + e.getKey() + "'");
            }
            tokens[e.getValue()] = e.getKey();
        }
        pairRank = new LongLongMap(Math.max(1, merges.size()));
        mergeResult = new int[merges.size()];
        for (int r = 0; r < merges.size(); r++) {
            String a = merges.get(r)[0], b = merges.get(r)[1];
            Integer ia = vocab.get(a), ib = vocab.get(b), joined = vocab.get(a + b);
            if (ia == null || ib == null || joined == null) {
                String missing = ia == null ? a : ib == null ? b : a + b;
                throw new IllegalArgumentException(
                        "model.merges[" + r + "] ('" + a + " " + b + "'): '" + missing + "' is not in model.vocab");
            }
            pairRank.put(BpeTokenizer.pairKey(ia, ib), r);
            mergeResult[r] = joined;
        }
        this.byteFallback = byteFallback;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(HfPipeline.byteTokenName(b));
            byteIds[b] = id == null ? -1 : id;
        }
    }

    /** One more than the largest id. */
    int size() {
        return tokens.length;
    }

    /** The token string of an id, or null where the vocabulary has none. */
    String token(int id) {
        return id >= 0 && id < tokens.length ? tokens[id] : null;
    }

    /** The id of a token string, or null. */
    Integer id(String token) {
        return vocab.get(token);
    }

    /** Appends the ids of one word to {@code out}. */
    void tokenize(String word, List<Integer> out) {
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        List<Integer> symbols = new ArrayList<>(word.length());
        boolean lastWasUnk = false;
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            String ch = word.substring(i, i + Character.charCount(cp));
            i += ch.length();
            Integer id = vocab.get(ch);
            if (id != null) {
                symbols.add(id);
                lastWasUnk = false;
                continue;
            }
            if (byteFallback && addBytes(ch, symbols)) {
                lastWasUnk = false;
                continue;
            }
            if (unkId < 0) {
                throw new IllegalArgumentException(String.format(
                        "character U+%04X is not in the vocabulary, which has neither byte fallback nor an unknown"
                                + " token",
                        cp));
            }
            if (!(fuseUnk && lastWasUnk)) symbols.add(unkId);
            lastWasUnk = true;
        }
        int[] sym = new int[symbols.size()];
        for (int i = 0; i < sym.length; i++) sym[i] = symbols.get(i);
        for (int id : BpeMerges.apply(sym, pairRank, mergeResult)) out.add(id);
    }

    /** Adds the {@code <0xNN>} tokens of {@code ch}'s UTF-8 bytes; false (adding nothing) when one is missing. */
    private boolean addBytes(String ch, List<Integer> symbols) {
        byte[] bytes = ch.getBytes(StandardCharsets.UTF_8);
        for (byte b : bytes) if (byteIds[b & 0xFF] < 0) return false;
        for (byte b : bytes) symbols.add(byteIds[b & 0xFF]);
        return true;
    }
}
