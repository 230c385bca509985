package ai.mode.model.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-level BPE tokenizer (GPT-2 style): bytes are split into words by {@link PreTokenizer}, each word starts as
 * one token per byte and merges apply in rank order. Works on bytes, so {@code decode(encode(b))} equals {@code b}
 * for every byte sequence, including invalid UTF-8.
 *
 * <p>Special tokens (e.g. {@value #END_OF_TEXT}) are never produced by {@link #encode(byte[])}; text that spells a
 * special token is encoded as ordinary bytes. The data pipeline inserts {@link #endOfTextId()} between documents.
 *
 * <p>Immutable and thread-safe; encoding caches the tokens of each distinct word. Saved and loaded as a Hugging Face
 * {@code tokenizer.json} ({@link #save(Path)}, {@link #load(Path)}).
 */
public final class BpeTokenizer {

    /** Name of the end-of-text / document separator token that {@link BpeTrainer} always adds. */
    public static final String END_OF_TEXT = "<|endoftext|>";
    /** Special-token names recognised as the document separator, in order of preference. */
    private static final List<String> EOT_NAMES = List.of(END_OF_TEXT, "<|end_of_text|>", "</s>", "<eos>");

    private static final int CACHE_LIMIT = 1 << 19;

    private final byte[][] tokenBytes;
    private final boolean[] special;
    private final int[] byteToId = new int[256];
    private final int[] mergeLeft;
    private final int[] mergeRight;
    private final int[] mergeResult;
    private final LongLongMap pairRank;
    private final Map<String, Integer> specialIds;
    private final boolean ignoreMerges;
    private final Map<String, Integer> wordIds;
    private final int endOfTextId;
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();
    private volatile String fingerprint;

    /**
     * Builds a tokenizer from raw token bytes and merges.
     *
     * @param tokenBytes   bytes of each ordinary token by id; {@code null} at the ids of special tokens
     * @param merges       merges in rank order, each {left id, right id}; the result is the token whose bytes are
     *                     the concatenation
     * @param specials     special-token content to id (ids must be the {@code null} slots of {@code tokenBytes})
     * @param ignoreMerges when true a word that is itself a vocabulary token encodes to that token directly
     * @throws IllegalArgumentException when the vocabulary lacks a single-byte token, a merge result is missing,
     *                                  or ids collide
     */
    BpeTokenizer(byte[][] tokenBytes, List<int[]> merges, Map<String, Integer> specials, boolean ignoreMerges) {
        int n = tokenBytes.length;
        this.tokenBytes = new byte[n][];
        this.special = new boolean[n];
        this.specialIds = Collections.unmodifiableMap(new LinkedHashMap<>(specials));
        this.ignoreMerges = ignoreMerges;
        Map<String, Integer> bytesToId = new HashMap<>(n * 2);
        for (int id = 0; id < n; id++) {
            if (tokenBytes[id] == null) continue;
            this.tokenBytes[id] = tokenBytes[id].clone();
            Integer previous = bytesToId.put(key(tokenBytes[id], 0, tokenBytes[id].length), id);
            if (previous != null) {
                throw new IllegalArgumentException("tokens " + previous + " and " + id + " have the same bytes");
            }
        }
        for (Map.Entry<String, Integer> e : specials.entrySet()) {
            int id = e.getValue();
            if (id < 0 || id >= n) {
                throw new IllegalArgumentException(
                        "special token '" + e.getKey() + "' has id " + id + " outside the vocabulary [0, " + n + ")");
            }
            if (this.tokenBytes[id] != null || special[id]) {
                throw new IllegalArgumentException("special token '" + e.getKey() + "' reuses id " + id);
            }
            special[id] = true;
            this.tokenBytes[id] = e.getKey().getBytes(StandardCharsets.UTF_8);
        }
        for (int id = 0; id < n; id++) {
            if (this.tokenBytes[id] == null) throw new IllegalArgumentException("no token has id " + id);
        }
        for (int b = 0; b < 256; b++) {
            Integer id = bytesToId.get(String.valueOf((char) b));
            if (id == null) {
                throw new IllegalArgumentException(String.format(
                        "the vocabulary lacks the single-byte token for byte 0x%02X ('%s')", b, ByteLevel.symbol(b)));
            }
            byteToId[b] = id;
        }
        int m = merges.size();
        mergeLeft = new int[m];
        mergeRight = new int[m];
        mergeResult = new int[m];
        pairRank = new LongLongMap(m);
        for (int r = 0; r < m; r++) {
            int a = merges.get(r)[0], b = merges.get(r)[1];
            if (a < 0 || a >= n || b < 0 || b >= n || special[a] || special[b]) {
                throw new IllegalArgumentException(
                        "merge " + r + " refers to id " + a + " or " + b + " that is not an ordinary token");
            }
            byte[] joined = concat(this.tokenBytes[a], this.tokenBytes[b]);
            Integer result = bytesToId.get(key(joined, 0, joined.length));
            if (result == null) {
                throw new IllegalArgumentException("merge " + r + " ('" + ByteLevel.toSymbols(this.tokenBytes[a]) + " "
                        + ByteLevel.toSymbols(this.tokenBytes[b]) + "') produces '" + ByteLevel.toSymbols(joined)
                        + "' which is not in the vocabulary");
            }
            long pair = pairKey(a, b);
            if (pairRank.get(pair, -1) < 0) pairRank.put(pair, r);
            mergeLeft[r] = a;
            mergeRight[r] = b;
            mergeResult[r] = result;
        }
        wordIds = ignoreMerges ? bytesToId : null;
        int eot = -1;
        for (String name : EOT_NAMES) {
            Integer id = specials.get(name);
            if (id != null) {
                eot = id;
                break;
            }
        }
        endOfTextId = eot;
    }

    /** Loads and validates a Hugging Face {@code tokenizer.json} (byte-level BPE only). */
    public static BpeTokenizer load(Path file) throws IOException {
        return TokenizerJson.read(file);
    }

    /**
     * Parses {@code tokenizer.json} content (e.g. read from a checkpoint).
     *
     * @param source names the content in error messages (a path or "checkpoint step 100")
     */
    public static BpeTokenizer fromJson(byte[] json, String source) throws TokenizerFileException {
        return TokenizerJson.parse(json, source);
    }

    /** The {@code tokenizer.json} content {@link #save(Path)} writes (UTF-8). */
    public byte[] toJson() {
        return TokenizerJson.toBytes(this);
    }

    /** Writes this tokenizer as a Hugging Face {@code tokenizer.json}, atomically (temp file, then rename). */
    public void save(Path file) throws IOException {
        TokenizerJson.write(this, file);
    }

    /** Number of token ids, special tokens included. */
    public int vocabSize() {
        return tokenBytes.length;
    }

    /** Number of merges. */
    public int mergeCount() {
        return mergeResult.length;
    }

    /**
     * Id of the end-of-text / document separator token ({@value #END_OF_TEXT}, or {@code <|end_of_text|>},
     * {@code </s>}, {@code <eos>} in a loaded file), or -1 when the tokenizer has none.
     */
    public int endOfTextId() {
        return endOfTextId;
    }

    /** Special tokens by content, in id order of definition. */
    public Map<String, Integer> specialTokens() {
        return specialIds;
    }

    /** Whether {@code id} is a special token. */
    public boolean isSpecial(int id) {
        checkId(id);
        return special[id];
    }

    /** The bytes a token decodes to (a special token's UTF-8 content). */
    public byte[] tokenBytes(int id) {
        checkId(id);
        return tokenBytes[id].clone();
    }

    /** The token's string in {@code tokenizer.json}: byte-level symbols, or a special token's content. */
    public String tokenString(int id) {
        checkId(id);
        return special[id] ? new String(tokenBytes[id], StandardCharsets.UTF_8) : ByteLevel.toSymbols(tokenBytes[id]);
    }

    /** Whether a word that is itself a vocabulary token bypasses the merges (Hugging Face {@code ignore_merges}). */
    public boolean ignoresMerges() {
        return ignoreMerges;
    }

    /** Merge {@code rank} as {left id, right id, result id}. */
    public int[] merge(int rank) {
        return new int[] {mergeLeft[rank], mergeRight[rank], mergeResult[rank]};
    }

    /** Encodes UTF-8 text ({@link String#getBytes} with UTF-8; unpaired surrogates become '?'). */
    public int[] encode(String text) {
        return encode(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Encodes arbitrary bytes; never emits special tokens. */
    public int[] encode(byte[] bytes) {
        IntArrayBuilder out = new IntArrayBuilder(Math.max(16, bytes.length / 3));
        PreTokenizer.split(bytes, 0, bytes.length, (t, s, e) -> out.addAll(encodeWord(t, s, e)));
        return out.toArray();
    }

    /** Decodes ids to bytes (special tokens become their UTF-8 content). */
    public byte[] decode(int[] ids) {
        int total = 0;
        for (int id : ids) {
            checkId(id);
            total += tokenBytes[id].length;
        }
        byte[] out = new byte[total];
        int pos = 0;
        for (int id : ids) {
            byte[] b = tokenBytes[id];
            System.arraycopy(b, 0, out, pos, b.length);
            pos += b.length;
        }
        return out;
    }

    /** Decodes ids to text; malformed UTF-8 becomes U+FFFD. */
    public String decodeToString(int[] ids) {
        return new String(decode(ids), StandardCharsets.UTF_8);
    }

    /**
     * Stable identity of the vocabulary, merges and special tokens (hex SHA-256 prefix), used to key token caches;
     * equal for a tokenizer and its saved-then-loaded copy.
     */
    public String fingerprint() {
        String f = fingerprint;
        if (f == null) {
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                md.update("byte-level-bpe/v1".getBytes(StandardCharsets.UTF_8));
                for (int id = 0; id < tokenBytes.length; id++) {
                    md.update((byte) (special[id] ? 1 : 0));
                    md.update(intBytes(tokenBytes[id].length));
                    md.update(tokenBytes[id]);
                }
                for (int r = 0; r < mergeResult.length; r++) {
                    md.update(intBytes(mergeLeft[r]));
                    md.update(intBytes(mergeRight[r]));
                }
                md.update((byte) (ignoreMerges ? 1 : 0));
                f = HexFormat.of().formatHex(md.digest(), 0, 16);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 unavailable", e);
            }
            fingerprint = f;
        }
        return f;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BpeTokenizer t && t.fingerprint().equals(fingerprint());
    }

    @Override
    public int hashCode() {
        return fingerprint().hashCode();
    }

    @Override
    public String toString() {
        return "BpeTokenizer[vocab=" + vocabSize() + ", merges=" + mergeCount() + ", specials=" + specialIds.keySet()
                + ", fingerprint=" + fingerprint() + "]";
    }

    /** Tokens of one pre-tokenised word {@code t[s, e)}, from the cache when seen before. */
    private int[] encodeWord(byte[] t, int s, int e) {
        if (e - s == 1) return new int[] {byteToId[t[s] & 0xFF]};
        String k = key(t, s, e);
        int[] hit = cache.get(k);
        if (hit != null) return hit;
        int[] ids = mergeWord(t, s, e, k);
        if (cache.size() >= CACHE_LIMIT) cache.clear();
        cache.put(k, ids);
        return ids;
    }

    /** Applies merges to one word: repeatedly the lowest-ranked adjacent pair, leftmost first. */
    private int[] mergeWord(byte[] t, int s, int e, String k) {
        if (wordIds != null) {
            Integer whole = wordIds.get(k);
            if (whole != null) return new int[] {whole};
        }
        int[] sym = new int[e - s];
        for (int i = 0; i < sym.length; i++) sym[i] = byteToId[t[s + i] & 0xFF];
        return BpeMerges.apply(sym, pairRank, mergeResult);
    }

    private void checkId(int id) {
        if (id < 0 || id >= tokenBytes.length) {
            throw new IllegalArgumentException(
                    "token id " + id + " is outside the vocabulary [0, " + tokenBytes.length + ")");
        }
    }

    static long pairKey(int a, int b) {
        return (long) a << 32 | (b & 0xFFFFFFFFL);
    }

    /** Compact hashable key for bytes: one Latin-1 char per byte. */
    static String key(byte[] t, int s, int e) {
        return new String(t, s, e - s, StandardCharsets.ISO_8859_1);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static byte[] intBytes(int v) {
        return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
    }

    /** Ordinary token bytes by id ({@code null} at special ids), for serialisation. */
    byte[][] ordinaryTokenBytes() {
        byte[][] out = new byte[tokenBytes.length][];
        for (int id = 0; id < out.length; id++) if (!special[id]) out[id] = tokenBytes[id];
        return out;
    }

    /** Growable int array. */
    static final class IntArrayBuilder {
        private int[] data;
        private int size;

        IntArrayBuilder(int capacity) {
            data = new int[Math.max(1, capacity)];
        }

        void add(int v) {
            if (size == data.length) data = Arrays.copyOf(data, size * 2);
            data[size++] = v;
        }

        void addAll(int[] v) {
            if (size + v.length > data.length) data = Arrays.copyOf(data, Math.max(size + v.length, size * 2));
            System.arraycopy(v, 0, data, size, v.length);
            size += v.length;
        }

        int size() {
            return size;
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }

    /** Merges as id pairs in rank order (for serialisation). */
    List<int[]> mergePairs() {
        List<int[]> out = new ArrayList<>(mergeLeft.length);
        for (int r = 0; r < mergeLeft.length; r++) out.add(new int[] {mergeLeft[r], mergeRight[r]});
        return out;
    }
}
