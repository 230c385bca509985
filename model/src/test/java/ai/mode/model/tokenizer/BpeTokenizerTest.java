package ai.mode.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Training against a naive BPE trainer, encoding against naive rank-order merging, and byte-exact round trips. */
class BpeTokenizerTest {

    static List<byte[]> texts;
    static BpeTokenizer tok;

    /** Small synthetic English-like corpus: Zipf-distributed made-up words, punctuation, numbers, some non-ASCII. */
    static List<byte[]> syntheticTexts(long seed, int docs) {
        String[] syllables = {
            "th", "e", "qu", "ick", "br", "own", "f", "ox", "ju", "mps", "ov", "er", "la", "zy", "d", "og", "an", "té",
            "â", "tre", "na", "ïve", "ü", "ber", "日", "本", "'s", "n't", "12", "3"
        };
        Random vocab = new Random(1000);
        String[] words = new String[300];
        for (int w = 0; w < words.length; w++) {
            StringBuilder sb = new StringBuilder();
            int n = 1 + vocab.nextInt(4);
            for (int i = 0; i < n; i++) sb.append(syllables[vocab.nextInt(syllables.length)]);
            words[w] = w % 17 == 0 ? "(" + sb + ")" : sb.toString();
        }
        Random rng = new Random(seed);
        List<byte[]> out = new ArrayList<>();
        for (int d = 0; d < docs; d++) {
            StringBuilder sb = new StringBuilder();
            int n = 20 + rng.nextInt(80);
            for (int i = 0; i < n; i++) {
                sb.append(words[(int) Math.min(words.length - 1, Math.exp(rng.nextDouble() * Math.log(words.length)))]);
                sb.append(rng.nextInt(10) == 0 ? ".\n" : rng.nextInt(15) == 0 ? ",  " : " ");
            }
            out.add(sb.toString().getBytes(StandardCharsets.UTF_8));
        }
        return out;
    }

    @BeforeAll
    static void train() {
        texts = syntheticTexts(1, 200);
        tok = BpeTrainer.train(texts, 400);
    }

    @Test
    void vocabularyHasRequestedSizeBytesFirstAndSpecialLast() {
        assertEquals(400, tok.vocabSize());
        assertEquals(400 - 256 - 1, tok.mergeCount());
        for (int b = 0; b < 256; b++) assertArrayEquals(new byte[] {(byte) b}, tok.tokenBytes(b));
        assertEquals(399, tok.endOfTextId());
        assertTrue(tok.isSpecial(399));
        assertEquals(BpeTokenizer.END_OF_TEXT, tok.tokenString(399));
        for (int r = 0; r < tok.mergeCount(); r++) {
            int[] m = tok.merge(r);
            assertEquals(256 + r, m[2]);
            byte[] joined = BpeTokenizer.concat(tok.tokenBytes(m[0]), tok.tokenBytes(m[1]));
            assertArrayEquals(joined, tok.tokenBytes(m[2]));
        }
    }

    @Test
    void trainingMatchesNaiveRecountingTrainer() {
        List<int[]> expected = naiveTrain(texts, 400 - 256 - 1);
        assertEquals(expected.size(), tok.mergeCount());
        for (int r = 0; r < expected.size(); r++) {
            int[] m = tok.merge(r);
            assertArrayEquals(expected.get(r), new int[] {m[0], m[1]}, "merge " + r);
        }
    }

    @Test
    void trainingIsDeterministicAndOrderIndependent() {
        List<byte[]> shuffled = new ArrayList<>(texts);
        Collections.shuffle(shuffled, new Random(3));
        BpeTokenizer again = BpeTrainer.train(texts, 400);
        BpeTokenizer reordered = BpeTrainer.train(shuffled, 400);
        assertEquals(tok.fingerprint(), again.fingerprint());
        assertEquals(tok.fingerprint(), reordered.fingerprint());
        BpeTokenizer other = BpeTrainer.train(syntheticTexts(2, 200), 400);
        assertNotEquals(tok.fingerprint(), other.fingerprint());
    }

    @Test
    void encodingMatchesNaiveRankOrderMerging() {
        Map<Long, Integer> rank = new HashMap<>();
        for (int r = tok.mergeCount() - 1; r >= 0; r--) {
            int[] m = tok.merge(r);
            rank.put(BpeTokenizer.pairKey(m[0], m[1]), r);
        }
        List<byte[]> probe = syntheticTexts(9, 30);
        for (byte[] text : probe) {
            List<Integer> expected = new ArrayList<>();
            for (byte[] word : PreTokenizer.split(text)) {
                List<Integer> sym = new ArrayList<>();
                for (byte b : word) sym.add(b & 0xFF);
                while (true) {
                    int best = -1, bestRank = Integer.MAX_VALUE;
                    for (int i = 0; i + 1 < sym.size(); i++) {
                        Integer r = rank.get(BpeTokenizer.pairKey(sym.get(i), sym.get(i + 1)));
                        if (r != null && r < bestRank) {
                            bestRank = r;
                            best = i;
                        }
                    }
                    if (best < 0) break;
                    sym.set(best, tok.merge(bestRank)[2]);
                    sym.remove(best + 1);
                }
                expected.addAll(sym);
            }
            int[] got = tok.encode(text);
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), got);
        }
    }

    @Test
    void roundTripsRandomBytesIncludingInvalidUtf8() {
        Random rng = new Random(11);
        for (int trial = 0; trial < 500; trial++) {
            byte[] bytes = new byte[rng.nextInt(300)];
            rng.nextBytes(bytes);
            if (trial % 3 == 0) {
                byte[] text = texts.get(trial % texts.size());
                for (int i = 0; i < bytes.length; i++) if (rng.nextInt(4) > 0) bytes[i] = text[i % text.length];
            }
            int[] ids = tok.encode(bytes);
            assertArrayEquals(bytes, tok.decode(ids));
            for (int id : ids) assertTrue(!tok.isSpecial(id), "encode emitted a special token");
        }
    }

    @Test
    void compressesTrainingTextAndTreatsSpecialTextAsBytes() {
        long bytes = 0, tokens = 0;
        for (byte[] t : texts) {
            bytes += t.length;
            tokens += tok.encode(t).length;
        }
        assertTrue(tokens * 2 < bytes, "expected > 2 bytes per token, got " + (double) bytes / tokens);
        int[] ids = tok.encode("a<|endoftext|>b");
        assertTrue(Arrays.stream(ids).noneMatch(id -> id == tok.endOfTextId()));
        assertEquals("a<|endoftext|>b", tok.decodeToString(ids));
        assertEquals(BpeTokenizer.END_OF_TEXT, tok.decodeToString(new int[] {tok.endOfTextId()}));
    }

    @Test
    void rejectsBadArguments() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTrainer.train(texts, 200));
        assertTrue(e.getMessage().contains("at least 257"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {1, 400}));
        assertTrue(e.getMessage().contains("token id 400"), e.getMessage());
    }

    @Test
    void stopsEarlyWhenPairsRunOut() {
        BpeTokenizer tiny = BpeTrainer.train(List.of("abab".getBytes(StandardCharsets.UTF_8)), 1000);
        // "abab" is one word: merges ab, then abab; nothing is left to merge.
        assertEquals(256 + 2 + 1, tiny.vocabSize());
        assertArrayEquals(new int[] {257}, tiny.encode("abab"));
    }

    /** Reference: recount every pair over the whole word table before each merge. */
    static List<int[]> naiveTrain(List<byte[]> docs, int merges) {
        Map<String, Long> freq = new HashMap<>();
        for (byte[] d : docs) {
            for (byte[] w : PreTokenizer.split(d))
                freq.merge(new String(w, StandardCharsets.ISO_8859_1), 1L, Long::sum);
        }
        List<List<Integer>> words = new ArrayList<>();
        List<Long> counts = new ArrayList<>();
        for (Map.Entry<String, Long> e : freq.entrySet()) {
            List<Integer> w = new ArrayList<>();
            for (char c : e.getKey().toCharArray()) w.add((int) c);
            words.add(w);
            counts.add(e.getValue());
        }
        List<int[]> out = new ArrayList<>();
        for (int next = 256; out.size() < merges; next++) {
            Map<Long, Long> pairs = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<Integer> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++)
                    pairs.merge(BpeTokenizer.pairKey(s.get(i), s.get(i + 1)), counts.get(w), Long::sum);
            }
            long bestPair = -1, bestCount = 0;
            for (Map.Entry<Long, Long> e : pairs.entrySet()) {
                if (e.getValue() > bestCount || (e.getValue() == bestCount && e.getKey() < bestPair)) {
                    bestCount = e.getValue();
                    bestPair = e.getKey();
                }
            }
            if (bestCount == 0) break;
            int a = (int) (bestPair >>> 32), b = (int) bestPair;
            out.add(new int[] {a, b});
            for (List<Integer> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i) == a && s.get(i + 1) == b) {
                        s.set(i, next);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return out;
    }
}
