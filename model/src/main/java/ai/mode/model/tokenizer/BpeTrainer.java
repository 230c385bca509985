package ai.mode.model.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Trains a byte-level BPE vocabulary: pre-tokenises the texts into a word-frequency table, then repeatedly merges
 * the most frequent adjacent token pair (ties: the pair with the smaller ids) until the vocabulary is full.
 *
 * <p>Pair counts are kept incrementally: a merge only revisits the words that contain the merged pair (an index from
 * pair to words) and adjusts the counts of the neighbouring pairs, so each merge costs time proportional to the
 * words it touches rather than to the corpus. Deterministic: the same texts and size give the same tokenizer.
 *
 * <p>Ids: 0..255 are the single bytes in byte order, then one id per merge in merge order, then the special tokens
 * ({@value BpeTokenizer#END_OF_TEXT} first).
 */
public final class BpeTrainer {

    private static final System.Logger LOG = System.getLogger(BpeTrainer.class.getName());

    private BpeTrainer() {}

    /** Trains with {@value BpeTokenizer#END_OF_TEXT} as the only special token. */
    public static BpeTokenizer train(Iterable<byte[]> texts, int vocabSize) {
        return train(texts, vocabSize, List.of(BpeTokenizer.END_OF_TEXT));
    }

    /**
     * Trains a tokenizer of {@code vocabSize} ids in total (256 bytes + merges + special tokens). When the texts run
     * out of pairs to merge, the vocabulary is smaller.
     *
     * @param texts         training documents as raw bytes (any bytes; UTF-8 text in practice)
     * @param vocabSize     total number of ids, at least 256 + number of special tokens
     * @param specialTokens special-token contents; {@value BpeTokenizer#END_OF_TEXT} is added first when absent
     */
    public static BpeTokenizer train(Iterable<byte[]> texts, int vocabSize, List<String> specialTokens) {
        List<String> specials = new ArrayList<>();
        specials.add(BpeTokenizer.END_OF_TEXT);
        for (String s : specialTokens) {
            if (s == null || s.isEmpty()) throw new IllegalArgumentException("special tokens must be non-empty");
            if (!specials.contains(s)) specials.add(s);
        }
        int minimum = 256 + specials.size();
        if (vocabSize < minimum) {
            throw new IllegalArgumentException(
                    "vocab size " + vocabSize + " is too small: byte-level BPE needs at least " + minimum
                            + " (256 bytes + " + specials.size() + " special tokens)");
        }
        long start = System.nanoTime();
        WordTable table = WordTable.count(texts);
        List<int[]> merges = new ArrayList<>();
        List<byte[]> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) tokens.add(new byte[] {(byte) b});
        table.merge(vocabSize - specials.size() - 256, merges, tokens);
        byte[][] tokenBytes = new byte[tokens.size() + specials.size()][];
        for (int i = 0; i < tokens.size(); i++) tokenBytes[i] = tokens.get(i);
        Map<String, Integer> specialIds = new LinkedHashMap<>();
        for (int i = 0; i < specials.size(); i++) specialIds.put(specials.get(i), tokens.size() + i);
        BpeTokenizer tok = new BpeTokenizer(tokenBytes, merges, specialIds, false);
        LOG.log(
                System.Logger.Level.DEBUG,
                () -> String.format(
                        "trained BPE: %d words (%d distinct), %d merges in %.2f s",
                        table.totalWords, table.words.length, merges.size(), (System.nanoTime() - start) / 1e9));
        return tok;
    }

    /** Distinct words with their counts and current token sequences, plus the incremental pair statistics. */
    private static final class WordTable {
        final int[][] words;
        final int[] lengths;
        final long[] counts;
        long totalWords;

        private WordTable(int[][] words, long[] counts, long totalWords) {
            this.words = words;
            this.counts = counts;
            this.totalWords = totalWords;
            this.lengths = new int[words.length];
            for (int i = 0; i < words.length; i++) lengths[i] = words[i].length;
        }

        static WordTable count(Iterable<byte[]> texts) {
            HashMap<String, long[]> freq = new HashMap<>();
            long[] total = {0};
            for (byte[] text : texts) {
                PreTokenizer.split(text, 0, text.length, (t, s, e) -> {
                    total[0]++;
                    if (e - s < 2) return; // a single byte has no pair to merge
                    freq.computeIfAbsent(BpeTokenizer.key(t, s, e), k -> new long[1])[0]++;
                });
            }
            // Deterministic order regardless of hash iteration order.
            String[] keys = freq.keySet().toArray(new String[0]);
            Arrays.sort(keys);
            int[][] words = new int[keys.length][];
            long[] counts = new long[keys.length];
            for (int w = 0; w < keys.length; w++) {
                String k = keys[w];
                int[] sym = new int[k.length()];
                for (int i = 0; i < sym.length; i++) sym[i] = k.charAt(i);
                words[w] = sym;
                counts[w] = freq.get(k)[0];
            }
            return new WordTable(words, counts, total[0]);
        }

        /** Performs up to {@code maxMerges} merges, appending them and the new tokens' bytes. */
        void merge(int maxMerges, List<int[]> merges, List<byte[]> tokens) {
            LongLongMap pairCount = new LongLongMap(1 << 16);
            HashMap<Long, IntList> where = new HashMap<>();
            for (int w = 0; w < words.length; w++) {
                int[] sym = words[w];
                for (int i = 0; i + 1 < lengths[w]; i++) {
                    long p = BpeTokenizer.pairKey(sym[i], sym[i + 1]);
                    pairCount.add(p, counts[w]);
                    where.computeIfAbsent(p, k -> new IntList()).addDistinctLast(w);
                }
            }
            LongPairHeap heap = new LongPairHeap();
            pairCount.forEach((p, c) -> heap.push(-c, p));
            int[] visited = new int[words.length];
            Arrays.fill(visited, -1);
            while (merges.size() < maxMerges && !heap.isEmpty()) {
                long count = -heap.peekPrimary();
                long pair = heap.peekSecondary();
                heap.pop();
                long current = pairCount.get(pair, 0);
                if (current != count) {
                    // Counts of existing pairs only fall; re-queue with the current count.
                    if (current > 0) heap.push(-current, pair);
                    continue;
                }
                if (count <= 0) break;
                int a = (int) (pair >>> 32), b = (int) pair;
                int z = tokens.size();
                int rank = merges.size();
                merges.add(new int[] {a, b});
                tokens.add(BpeTokenizer.concat(tokens.get(a), tokens.get(b)));
                LongLongMap touched = new LongLongMap(64);
                IntList list = where.remove(pair);
                for (int idx = 0; idx < list.size; idx++) {
                    int w = list.data[idx];
                    if (visited[w] == rank) continue;
                    visited[w] = rank;
                    replace(w, a, b, z, pairCount, where, touched);
                }
                pairCount.put(pair, 0);
                touched.forEach((p, unused) -> {
                    long c = pairCount.get(p, 0);
                    if (c > 0) heap.push(-c, p);
                });
            }
        }

        /** Replaces every non-overlapping (a, b) in word {@code w} with z, left to right, updating pair counts. */
        private void replace(
                int w, int a, int b, int z, LongLongMap pairCount, HashMap<Long, IntList> where, LongLongMap touched) {
            int[] sym = words[w];
            int len = lengths[w];
            long c = counts[w];
            int out = 0;
            for (int i = 0; i < len; ) {
                if (i + 1 < len && sym[i] == a && sym[i + 1] == b) {
                    if (out > 0) {
                        int prev = sym[out - 1];
                        pairCount.add(BpeTokenizer.pairKey(prev, a), -c);
                        long np = BpeTokenizer.pairKey(prev, z);
                        pairCount.add(np, c);
                        touched.put(np, 1);
                        where.computeIfAbsent(np, k -> new IntList()).addDistinctLast(w);
                    }
                    if (i + 2 < len) {
                        int next = sym[i + 2];
                        pairCount.add(BpeTokenizer.pairKey(b, next), -c);
                        long np = BpeTokenizer.pairKey(z, next);
                        pairCount.add(np, c);
                        touched.put(np, 1);
                        where.computeIfAbsent(np, k -> new IntList()).addDistinctLast(w);
                    }
                    sym[out++] = z;
                    i += 2;
                } else {
                    sym[out++] = sym[i++];
                }
            }
            lengths[w] = out;
        }
    }

    /** Append-only int list that skips a value equal to the last one appended. */
    private static final class IntList {
        int[] data = new int[4];
        int size;

        void addDistinctLast(int v) {
            if (size > 0 && data[size - 1] == v) return;
            if (size == data.length) data = Arrays.copyOf(data, size * 2);
            data[size++] = v;
        }
    }
}
