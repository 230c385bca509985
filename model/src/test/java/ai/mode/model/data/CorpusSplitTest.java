package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Splitting by group: disjoint, complete, deterministic, close to the fractions, never cutting a group. */
class CorpusSplitTest {

    static List<Document> syntheticDocs(int n, int groupEvery) {
        List<Document> docs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String group = "g" + (i / groupEvery);
            docs.add(new Document("doc" + i, group, "text of document " + i + " ".repeat(1 + (i * 37) % 200) + "end"));
        }
        return docs;
    }

    static void assertPartition(Corpus c) {
        Set<String> seen = new HashSet<>();
        Map<String, Split> groupSplit = new HashMap<>();
        int total = 0;
        for (Split s : Split.values()) {
            for (Document d : c.documents(s)) {
                assertTrue(seen.add(d.id()), "document in two splits: " + d.id());
                Split previous = groupSplit.put(d.group(), s);
                assertTrue(
                        previous == null || previous == s,
                        "group " + d.group() + " straddles " + previous + " and " + s);
                total++;
            }
        }
        assertEquals(c.documents().size(), total, "splits must cover every document");
    }

    @Test
    void splitsPartitionByGroupAndTrackFractions() {
        Corpus c = Corpus.of("synthetic", syntheticDocs(400, 3));
        assertPartition(c);
        double all = c.bytes(Split.TRAIN) + c.bytes(Split.VALIDATION) + c.bytes(Split.TEST);
        assertEquals(0.90, c.bytes(Split.TRAIN) / all, 0.02);
        assertEquals(0.05, c.bytes(Split.VALIDATION) / all, 0.02);
        assertEquals(0.05, c.bytes(Split.TEST) / all, 0.02);
    }

    @Test
    void splitsAreDeterministicAndDependOnTheSeed() {
        List<Document> docs = syntheticDocs(300, 1);
        Corpus a = Corpus.of("a", docs), b = Corpus.of("b", new ArrayList<>(docs));
        Corpus other = Corpus.of("c", docs, Corpus.Fractions.DEFAULT, 99);
        for (Split s : Split.values()) {
            assertEquals(ids(a, s), ids(b, s));
            assertEquals(a.fingerprint(s), b.fingerprint(s));
        }
        assertNotEquals(ids(a, Split.TEST), ids(other, Split.TEST));
    }

    @Test
    void smallCorporaStillGetValidationAndTestWhenPossible() {
        Corpus three = Corpus.of("three", syntheticDocs(3, 1));
        assertPartition(three);
        for (Split s : Split.values()) assertEquals(1, three.documents(s).size(), s.label());
        Corpus two = Corpus.of("two", syntheticDocs(2, 1));
        assertPartition(two);
        assertEquals(2, two.documents(Split.TRAIN).size());
        CorpusException e = assertThrows(CorpusException.class, () -> two.requireDocuments(Split.TEST));
        assertTrue(e.getMessage().contains("has no test documents"), e.getMessage());
    }

    @Test
    void zeroFractionSplitsStayEmpty() {
        Corpus c = Corpus.of("held-out", syntheticDocs(50, 1), new Corpus.Fractions(0, 0.1, 0.9), 1);
        assertPartition(c);
        assertTrue(c.documents(Split.TRAIN).isEmpty());
        assertFalse(c.documents(Split.VALIDATION).isEmpty());
        assertTrue(
                c.documents(Split.TEST).size() > c.documents(Split.VALIDATION).size());
    }

    @Test
    void rejectsEmptyAndDuplicateCorpora() {
        CorpusException e = assertThrows(
                CorpusException.class, () -> Corpus.of("blank", List.of(new Document("a", "a", "  \n\t"))));
        assertTrue(e.getMessage().contains("is empty"), e.getMessage());
        e = assertThrows(
                CorpusException.class,
                () -> Corpus.of("dup", List.of(new Document("a", "a", "x"), new Document("a", "b", "y"))));
        assertTrue(e.getMessage().contains("two documents with id 'a'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Corpus.Fractions(0.5, 0.5, 0.5));
    }

    private static List<String> ids(Corpus c, Split s) {
        return c.documents(s).stream().map(Document::id).toList();
    }
}
