package ai.mode.model.data;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A named collection of documents split into train / validation / test.
 *
 * <p>Splitting is by group (a group is one document unless near-duplicates were tied together): groups are put in an
 * order fixed by the seed and each goes to the split furthest below its target share of the corpus bytes. So the
 * assignment is deterministic, sizes track the fractions, and no group straddles two splits. When a corpus has at
 * least three groups, each split with a non-zero fraction gets at least one.
 *
 * <p>Get one with {@link #load(String)} (a built-in name from {@link CorpusRegistry}, or a path to a user corpus),
 * or build one with {@link #of}. Immutable.
 */
public final class Corpus {

    /** Seed of the document split used by every built-in and user corpus unless told otherwise. */
    public static final long DEFAULT_SPLIT_SEED = 20241014L;

    /** Target shares of the corpus bytes per split; non-negative, summing to 1. */
    public record Fractions(double train, double validation, double test) {
        /** 90% train, 5% validation, 5% test. */
        public static final Fractions DEFAULT = new Fractions(0.90, 0.05, 0.05);

        public Fractions {
            if (!(train >= 0 && validation >= 0 && test >= 0) || Math.abs(train + validation + test - 1) > 1e-9) {
                throw new IllegalArgumentException("split fractions must be non-negative and sum to 1 (got " + train
                        + ", " + validation + ", " + test + ")");
            }
        }

        double of(Split s) {
            return switch (s) {
                case TRAIN -> train;
                case VALIDATION -> validation;
                case TEST -> test;
            };
        }
    }

    private final String name;
    private final List<Document> documents;
    private final Fractions fractions;
    private final long seed;
    private final Map<Split, List<Document>> splits = new EnumMap<>(Split.class);
    private final Map<Split, String> fingerprints = new EnumMap<>(Split.class);

    private Corpus(String name, List<Document> documents, Fractions fractions, long seed) {
        this.name = name;
        this.documents = List.copyOf(documents);
        this.fractions = fractions;
        this.seed = seed;
        assign();
    }

    /**
     * A corpus from documents.
     *
     * @throws CorpusException when there are no documents with non-blank text, or two documents share an id
     */
    public static Corpus of(String name, List<Document> documents, Fractions fractions, long seed) {
        List<Document> kept = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        for (Document d : documents) {
            if (!ids.add(d.id()))
                throw new CorpusException("corpus '" + name + "' has two documents with id '" + d.id() + "'");
            if (!d.text().isBlank()) kept.add(d);
        }
        if (kept.isEmpty())
            throw new CorpusException("corpus '" + name + "' is empty: it has no document with non-blank text");
        return new Corpus(name, kept, fractions, seed);
    }

    /** {@link #of(String, List, Fractions, long)} with the default 90/5/5 fractions and seed. */
    public static Corpus of(String name, List<Document> documents) {
        return of(name, documents, Fractions.DEFAULT, DEFAULT_SPLIT_SEED);
    }

    /**
     * A built-in corpus by name ({@link CorpusRegistry#names()}), else a user corpus at that path: a folder of UTF-8
     * text files (one document per file) or a JSON-lines file with a {@code text} field (see {@link UserCorpus}).
     */
    public static Corpus load(String nameOrPath) {
        if (CorpusRegistry.isBuiltIn(nameOrPath)) return CorpusRegistry.load(nameOrPath);
        return UserCorpus.read(Path.of(nameOrPath));
    }

    public String name() {
        return name;
    }

    public Fractions fractions() {
        return fractions;
    }

    public long splitSeed() {
        return seed;
    }

    /** All documents, in corpus order. */
    public List<Document> documents() {
        return documents;
    }

    /** The documents of one split, in corpus order (possibly empty, e.g. the train split of a retention corpus). */
    public List<Document> documents(Split split) {
        return splits.get(split);
    }

    /**
     * The documents of one split, failing with a clear message when it is empty.
     *
     * @throws CorpusException when the split has no documents
     */
    public List<Document> requireDocuments(Split split) {
        List<Document> docs = splits.get(split);
        if (docs.isEmpty()) {
            throw new CorpusException(
                    "corpus '" + name + "' has no " + split.label() + " documents (" + documents.size()
                            + " documents in " + groupCount() + " groups, split " + describeFractions()
                            + "); add more documents or use another split");
        }
        return docs;
    }

    /** UTF-8 bytes of the split's texts, e.g. to train a tokenizer: {@code BpeTrainer.train(c.utf8(TRAIN), 4096)}. */
    public List<byte[]> utf8(Split split) {
        List<byte[]> out = new ArrayList<>();
        for (Document d : requireDocuments(split)) out.add(d.utf8());
        return out;
    }

    /** Total UTF-8 bytes of the split's texts. */
    public long bytes(Split split) {
        long n = 0;
        for (Document d : splits.get(split)) n += utf8Length(d.text());
        return n;
    }

    /** Number of distinct groups. */
    public int groupCount() {
        Set<String> g = new HashSet<>();
        for (Document d : documents) g.add(d.group());
        return g.size();
    }

    /** Stable hex digest of the split's document ids and texts; keys token caches. */
    public synchronized String fingerprint(Split split) {
        return fingerprints.computeIfAbsent(split, s -> {
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                for (Document d : splits.get(s)) {
                    byte[] id = d.id().getBytes(StandardCharsets.UTF_8);
                    byte[] text = d.text().getBytes(StandardCharsets.UTF_8);
                    md.update(lengthPrefix(id.length));
                    md.update(id);
                    md.update(lengthPrefix(text.length));
                    md.update(text);
                }
                return HexFormat.of().formatHex(md.digest(), 0, 16);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 unavailable", e);
            }
        });
    }

    @Override
    public String toString() {
        return String.format(
                "Corpus[%s: %d documents, train %d / validation %d / test %d bytes]",
                name, documents.size(), bytes(Split.TRAIN), bytes(Split.VALIDATION), bytes(Split.TEST));
    }

    private String describeFractions() {
        return String.format("%.0f/%.0f/%.0f", fractions.train * 100, fractions.validation * 100, fractions.test * 100);
    }

    /** Group-wise deficit assignment, see the class comment. */
    private void assign() {
        Map<String, List<Document>> groups = new LinkedHashMap<>();
        Map<String, Long> groupBytes = new LinkedHashMap<>();
        long total = 0;
        for (Document d : documents) {
            groups.computeIfAbsent(d.group(), g -> new ArrayList<>()).add(d);
            long b = utf8Length(d.text());
            groupBytes.merge(d.group(), b, Long::sum);
            total += b;
        }
        List<String> order = new ArrayList<>(groups.keySet());
        order.sort((a, b) -> {
            int c = Long.compareUnsigned(mix(seed, a), mix(seed, b));
            return c != 0 ? c : a.compareTo(b);
        });
        Map<Split, List<String>> assigned = new EnumMap<>(Split.class);
        long[] filled = new long[3];
        for (Split s : Split.values()) assigned.put(s, new ArrayList<>());
        for (String g : order) {
            Split best = null;
            double bestDeficit = Double.NEGATIVE_INFINITY;
            for (Split s : Split.values()) {
                if (fractions.of(s) == 0) continue;
                double deficit = fractions.of(s) * total - filled[s.ordinal()];
                if (deficit > bestDeficit) {
                    bestDeficit = deficit;
                    best = s;
                }
            }
            assigned.get(best).add(g);
            filled[best.ordinal()] += groupBytes.get(g);
        }
        if (order.size() >= 3) {
            // Guarantee a non-empty split wherever the fraction asks for one: move the smallest group of the
            // split that has the most groups.
            for (Split s : Split.values()) {
                if (fractions.of(s) == 0 || !assigned.get(s).isEmpty()) continue;
                Split donor = null;
                for (Split d : Split.values()) {
                    if (d != s
                            && (donor == null
                                    || assigned.get(d).size()
                                            > assigned.get(donor).size())) donor = d;
                }
                List<String> from = assigned.get(donor);
                String smallest = Collections.min(from, (a, b) -> {
                    int c = Long.compare(groupBytes.get(a), groupBytes.get(b));
                    return c != 0 ? c : a.compareTo(b);
                });
                from.remove(smallest);
                assigned.get(s).add(smallest);
            }
        }
        Map<String, Split> splitOf = new LinkedHashMap<>();
        for (Split s : Split.values()) for (String g : assigned.get(s)) splitOf.put(g, s);
        Map<Split, List<Document>> lists = new EnumMap<>(Split.class);
        for (Split s : Split.values()) lists.put(s, new ArrayList<>());
        for (Document d : documents) lists.get(splitOf.get(d.group())).add(d);
        for (Split s : Split.values()) splits.put(s, Collections.unmodifiableList(lists.get(s)));
    }

    /** 64-bit hash of (seed, group name): FNV-1a over UTF-8 then a SplitMix64 finaliser. */
    private static long mix(long seed, String s) {
        long h = 0xcbf29ce484222325L ^ seed;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
    }

    static long utf8Length(String s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) n++;
            else if (c < 0x800) n += 2;
            else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else n += 3;
        }
        return n;
    }

    private static byte[] lengthPrefix(int n) {
        return new byte[] {(byte) (n >>> 24), (byte) (n >>> 16), (byte) (n >>> 8), (byte) n};
    }
}
