package ai.mode.model.data;

import ai.mode.model.tokenizer.BpeTokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Tokenises a corpus split into one token stream — each document's tokens followed by the end-of-text token — and
 * caches it on disk keyed by the tokenizer's and the split's fingerprints, so a second run reads it back instead of
 * re-encoding.
 *
 * <p>Cache files live in {@link #defaultDirectory()} unless a directory is passed; the format is the 8 bytes
 * {@code MODETOK1}, the token count (int64, little-endian), then the tokens (int32, little-endian). A file of the
 * wrong size or magic is ignored and rewritten. Writes are atomic (temp file, then rename).
 */
public final class TokenCache {

    private static final System.Logger LOG = System.getLogger(TokenCache.class.getName());
    private static final byte[] MAGIC = "MODETOK1".getBytes(StandardCharsets.US_ASCII);

    private TokenCache() {}

    /**
     * The default cache folder: {@code $MODE_CACHE_DIR/tokens} when that variable is set, else
     * {@code ~/.cache/mode-j/tokens}.
     */
    public static Path defaultDirectory() {
        String env = System.getenv("MODE_CACHE_DIR");
        if (env != null && !env.isBlank()) return Path.of(env, "tokens");
        return Path.of(System.getProperty("user.home"), ".cache", "mode-j", "tokens");
    }

    /** {@link #tokens(Corpus, Split, BpeTokenizer, Path)} with {@link #defaultDirectory()}. */
    public static int[] tokens(Corpus corpus, Split split, BpeTokenizer tokenizer) {
        return tokens(corpus, split, tokenizer, defaultDirectory());
    }

    /**
     * The split's token stream, from the cache when present.
     *
     * @param cacheDir folder of cache files, or {@code null} to neither read nor write a cache
     * @throws CorpusException          when the split has no documents
     * @throws IllegalArgumentException when the tokenizer has no end-of-text token
     */
    public static int[] tokens(Corpus corpus, Split split, BpeTokenizer tokenizer, Path cacheDir) {
        List<Document> docs = corpus.requireDocuments(split);
        separator(tokenizer);
        Path file = cacheDir == null
                ? null
                : cacheDir.resolve(sanitize(corpus.name()) + "-" + split.label() + "-" + tokenizer.fingerprint() + "-"
                        + corpus.fingerprint(split) + ".tok");
        if (file != null && Files.isRegularFile(file)) {
            int[] cached = read(file);
            if (cached != null) return cached;
        }
        int[] tokens = tokenize(docs, tokenizer);
        if (file != null) write(file, tokens);
        return tokens;
    }

    /** Tokens of the documents, each followed by the end-of-text token; documents are encoded in parallel. */
    public static int[] tokenize(List<Document> docs, BpeTokenizer tokenizer) {
        int eot = separator(tokenizer);
        List<int[]> encoded =
                docs.parallelStream().map(d -> tokenizer.encode(d.utf8())).toList();
        long total = 0;
        for (int[] e : encoded) total += e.length + 1L;
        if (total > Integer.MAX_VALUE - 8) {
            throw new CorpusException(
                    "split has " + total + " tokens, more than one Java array holds; use a smaller corpus");
        }
        int[] out = new int[(int) total];
        int pos = 0;
        for (int[] e : encoded) {
            System.arraycopy(e, 0, out, pos, e.length);
            pos += e.length;
            out[pos++] = eot;
        }
        return out;
    }

    private static int separator(BpeTokenizer tokenizer) {
        int eot = tokenizer.endOfTextId();
        if (eot < 0) {
            throw new IllegalArgumentException("the tokenizer has no end-of-text token (" + BpeTokenizer.END_OF_TEXT
                    + "), which separates documents; add it to the tokenizer's added_tokens");
        }
        return eot;
    }

    private static int[] read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 16) return stale(file, "shorter than its header");
            ByteBuffer header = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            while (header.hasRemaining() && ch.read(header) >= 0) {}
            header.flip();
            byte[] magic = new byte[8];
            header.get(magic);
            long count = header.getLong();
            if (!java.util.Arrays.equals(magic, MAGIC) || count < 0 || size != 16 + 4 * count) {
                return stale(file, "wrong header or size");
            }
            ByteBuffer data = ByteBuffer.allocate((int) (4 * count)).order(ByteOrder.LITTLE_ENDIAN);
            while (data.hasRemaining() && ch.read(data) >= 0) {}
            data.flip();
            int[] out = new int[(int) count];
            data.asIntBuffer().get(out);
            return out;
        } catch (IOException e) {
            return stale(file, e.getMessage());
        }
    }

    private static int[] stale(Path file, String why) {
        LOG.log(System.Logger.Level.WARNING, "ignoring token cache " + file + " (" + why + "); re-tokenising");
        return null;
    }

    private static void write(Path file, int[] tokens) {
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName() + ".", ".tmp");
            try {
                ByteBuffer buf = ByteBuffer.allocate(16 + 4 * tokens.length).order(ByteOrder.LITTLE_ENDIAN);
                buf.put(MAGIC).putLong(tokens.length);
                buf.asIntBuffer().put(tokens);
                buf.position(0);
                try (FileChannel ch =
                        FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                    while (buf.hasRemaining()) ch.write(buf);
                    ch.force(true);
                }
                try {
                    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            LOG.log(
                    System.Logger.Level.WARNING,
                    "cannot write token cache " + file + " (" + e.getMessage() + "); continuing without it");
        }
    }

    private static String sanitize(String name) {
        String s = name.replaceAll("[^A-Za-z0-9._-]", "_");
        return s.length() > 40 ? s.substring(0, 40) : s;
    }
}
