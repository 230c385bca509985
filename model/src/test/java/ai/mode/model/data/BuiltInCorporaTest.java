package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.BpeTrainer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The shipped corpora load offline, split sensibly, keep retention books out of pretraining, and round-trip. */
class BuiltInCorporaTest {

    static final List<String> SHIPPED = List.of(
            CorpusRegistry.ENGLISH,
            CorpusRegistry.RETENTION,
            CorpusRegistry.CODE,
            CorpusRegistry.MATH,
            CorpusRegistry.LEGAL);
    static BpeTokenizer tok;

    @BeforeAll
    static void trainSmallTokenizer() {
        // A small vocabulary from ~300 KB of English train text keeps this fast.
        List<byte[]> texts = new ArrayList<>();
        long bytes = 0;
        for (Document d : CorpusRegistry.load(CorpusRegistry.ENGLISH).documents(Split.TRAIN)) {
            if (bytes > 300_000) break;
            texts.add(d.utf8());
            bytes += d.utf8().length;
        }
        tok = BpeTrainer.train(texts, 512);
    }

    @Test
    void everyShippedCorpusLoadsWithAllSplits() {
        for (String name : SHIPPED) {
            Corpus c = Corpus.load(name);
            assertEquals(name, c.name());
            CorpusSplitTest.assertPartition(c);
            assertTrue(c.bytes(Split.TEST) > 100_000, name + " test split too small: " + c.bytes(Split.TEST));
            assertTrue(c.bytes(Split.VALIDATION) > 100_000, name + " validation split too small");
            if (!name.equals(CorpusRegistry.RETENTION)) {
                double all = c.bytes(Split.TRAIN) + c.bytes(Split.VALIDATION) + c.bytes(Split.TEST);
                assertTrue(c.bytes(Split.TRAIN) / all > 0.8, name + " train share " + c.bytes(Split.TRAIN) / all);
                assertTrue(c.bytes(Split.TRAIN) > 2_000_000, name + " train split too small");
            }
            assertFalse(CorpusRegistry.describe(name).isBlank());
        }
        assertTrue(Corpus.load(CorpusRegistry.RETENTION).documents(Split.TRAIN).isEmpty());
    }

    @Test
    void retentionBooksNeverAppearInPretrainingText() {
        Corpus english = Corpus.load(CorpusRegistry.ENGLISH);
        Corpus retention = Corpus.load(CorpusRegistry.RETENTION);
        Set<String> retentionIds = new HashSet<>();
        for (Document d : retention.documents()) retentionIds.add(d.id());
        assertTrue(retentionIds.stream().anyMatch(id -> id.startsWith("moby-dick/")));
        assertTrue(retentionIds.stream().anyMatch(id -> id.startsWith("austen/persuasion/")));
        for (Document d : english.documents()) {
            assertFalse(retentionIds.contains(d.id()), d.id());
            assertFalse(d.id().startsWith("moby-dick/") || d.id().startsWith("austen/persuasion/"), d.id());
            assertFalse(d.text().contains("Call me Ishmael"), d.id());
            assertFalse(d.text().contains("Sir Walter Elliot, of Kellynch Hall"), d.id());
        }
    }

    @Test
    void legalFamiliesStayInOneSplit() {
        Corpus legal = Corpus.load(CorpusRegistry.LEGAL);
        // GPL, LGPL and AGPL texts are near-duplicates: one family, hence one split.
        Set<Split> gplSplits = new HashSet<>();
        for (Split s : Split.values()) {
            for (Document d : legal.documents(s)) {
                String id = d.id();
                if (id.startsWith("spdx/GPL-3.0") || id.startsWith("spdx/AGPL-3.0") || id.startsWith("spdx/LGPL-3.0")) {
                    gplSplits.add(s);
                }
            }
        }
        assertEquals(1, gplSplits.size(), "GPL family split across " + gplSplits);
    }

    @Test
    void tokenizerRoundTripsASampleOfEveryCorpus() {
        for (String name : SHIPPED) {
            List<Document> docs = Corpus.load(name).documents();
            int step = Math.max(1, docs.size() / 40);
            for (int i = 0; i < docs.size(); i += step) {
                byte[] bytes = docs.get(i).utf8();
                assertArrayEquals(
                        bytes,
                        tok.decode(tok.encode(bytes)),
                        name + " " + docs.get(i).id());
            }
        }
    }

    @Test
    void mathMixesMetamathAndGeneratedProblems() {
        Corpus math = Corpus.load(CorpusRegistry.MATH);
        long setmm = math.documents().stream()
                .filter(d -> d.id().startsWith("setmm/"))
                .count();
        long generated = math.documents().stream()
                .filter(d -> d.id().startsWith("math-gen/"))
                .count();
        assertTrue(setmm > 100, "set.mm documents: " + setmm);
        assertEquals(CorpusRegistry.MATH_DOCUMENTS, generated);
        assertTrue(
                math.documents().stream()
                        .filter(d -> d.id().startsWith("setmm/"))
                        .noneMatch(d -> d.text().contains("$= (")),
                "compressed proofs were not stripped");
    }

    @Test
    void jdkSourcesLoadOrExplainWhatIsMissing() {
        if (Files.isRegularFile(CorpusRegistry.jdkSourceZip())) {
            Corpus jdk = Corpus.load(CorpusRegistry.CODE_JDK);
            CorpusSplitTest.assertPartition(jdk);
            assertTrue(jdk.documents().stream().allMatch(d -> d.id().endsWith(".java")));
        } else {
            CorpusException e = assertThrows(CorpusException.class, () -> Corpus.load(CorpusRegistry.CODE_JDK));
            assertTrue(e.getMessage().contains("src.zip"), e.getMessage());
        }
    }

    @Test
    void unknownNamesAndMissingPathsAreExplained() {
        CorpusException e = assertThrows(CorpusException.class, () -> Corpus.load("/no/such/corpus/dir"));
        assertTrue(e.getMessage().contains("corpus not found"), e.getMessage());
        assertTrue(e.getMessage().contains(CorpusRegistry.ENGLISH), e.getMessage());
        e = assertThrows(CorpusException.class, () -> CorpusRegistry.load("klingon"));
        assertTrue(e.getMessage().contains("unknown corpus 'klingon'"), e.getMessage());
    }
}
