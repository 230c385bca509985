package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.BpeTrainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Token streams with separators, the on-disk cache, and evaluation windows. */
class TokenPipelineTest {

    @TempDir
    Path dir;

    static Corpus corpus;
    static BpeTokenizer tok;

    @BeforeAll
    static void setUp() {
        List<Document> docs = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            docs.add(new Document(
                    "d" + i, "d" + i, "Document number " + i + " says: " + "lorem ipsum dolor ".repeat(i % 7 + 1)));
        }
        corpus = Corpus.of("toy", docs);
        List<byte[]> texts = corpus.utf8(Split.TRAIN);
        tok = BpeTrainer.train(texts, 300);
    }

    @Test
    void streamIsEachDocumentFollowedBySeparator() {
        int[] stream = TokenCache.tokens(corpus, Split.TRAIN, tok, null);
        int pos = 0;
        for (Document d : corpus.documents(Split.TRAIN)) {
            int[] expected = tok.encode(d.utf8());
            for (int t : expected) assertEquals(t, stream[pos++]);
            assertEquals(tok.endOfTextId(), stream[pos++]);
        }
        assertEquals(stream.length, pos);
    }

    @Test
    void cacheIsWrittenReusedKeyedAndRepairedWhenCorrupt() throws IOException {
        int[] first = TokenCache.tokens(corpus, Split.TRAIN, tok, dir);
        List<Path> files = list();
        assertEquals(1, files.size());
        assertTrue(files.get(0).getFileName().toString().contains(tok.fingerprint()));
        assertEquals(16 + 4L * first.length, Files.size(files.get(0)));
        assertArrayEquals(first, TokenCache.tokens(corpus, Split.TRAIN, tok, dir));

        // A corrupt (truncated) cache file is ignored and rewritten.
        byte[] bytes = Files.readAllBytes(files.get(0));
        Files.write(files.get(0), java.util.Arrays.copyOf(bytes, bytes.length - 7));
        assertArrayEquals(first, TokenCache.tokens(corpus, Split.TRAIN, tok, dir));
        assertEquals(bytes.length, Files.size(files.get(0)));

        // Another tokenizer or split gets its own file.
        BpeTokenizer other = BpeTrainer.train(corpus.utf8(Split.TRAIN), 280);
        TokenCache.tokens(corpus, Split.TRAIN, other, dir);
        TokenCache.tokens(corpus, Split.TEST, tok, dir);
        assertEquals(3, list().size());
    }

    @Test
    void evalWindowsAreNonOverlappingAndCoverTheStream() {
        int[] stream = DataLoaderTest.ramp(0, 1003);
        EvalBatches eval = new EvalBatches(stream, 4, 10);
        assertEquals(100, eval.windows());
        assertEquals(25, eval.batches());
        int expectedStart = 0, batches = 0;
        for (Batch b : eval) {
            batches++;
            for (int r = 0; r < b.rows(); r++) {
                int[] row = b.row(r);
                assertEquals(expectedStart, row[0]);
                for (int i = 0; i < row.length; i++) assertEquals(expectedStart + i, row[i]);
                expectedStart += 10;
            }
        }
        assertEquals(25, batches);
        assertEquals(1000, expectedStart);

        EvalBatches partial = new EvalBatches(stream, 3, 10, 0);
        int rows = 0;
        Batch last = null;
        for (Batch b : partial) {
            rows += b.rows();
            last = b;
        }
        assertEquals(100, rows);
        assertEquals(1, last.rows());

        EvalBatches capped = new EvalBatches(stream, 8, 10, 10);
        List<Integer> starts = new ArrayList<>();
        for (Batch b : capped) for (int r = 0; r < b.rows(); r++) starts.add(b.row(r)[0]);
        assertEquals(List.of(0, 100, 200, 300, 400, 500, 600, 700, 800, 900), starts);
        assertThrows(IllegalArgumentException.class, () -> new EvalBatches(new int[5], 1, 10));
    }

    private List<Path> list() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".tok")).sorted().toList();
        }
    }
}
