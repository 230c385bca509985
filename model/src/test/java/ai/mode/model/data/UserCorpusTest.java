package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** User corpora: folders and JSON lines, and the one-line errors for every way they can be wrong. */
class UserCorpusTest {

    @TempDir
    Path dir;

    @Test
    void folderOfTextFilesOneDocumentPerFileInPathOrder() throws IOException {
        Path root = dir.resolve("texts");
        Files.createDirectories(root.resolve("sub"));
        Files.createDirectories(root.resolve(".git"));
        Files.writeString(root.resolve("b.txt"), "second file");
        Files.writeString(root.resolve("a.txt"), "\uFEFFfirst file, with a byte-order mark");
        Files.writeString(root.resolve("sub/c.md"), "nested ünïcode");
        Files.writeString(root.resolve("blank.txt"), "   \n");
        Files.writeString(root.resolve(".hidden"), "skip me");
        Files.writeString(root.resolve(".git/config"), "skip me too");
        Corpus c = Corpus.load(root.toString());
        assertEquals("texts", c.name());
        assertEquals(
                List.of("a.txt", "b.txt", "sub/c.md"),
                c.documents().stream().map(Document::id).toList());
        assertEquals("first file, with a byte-order mark", c.documents().get(0).text());
        assertEquals("nested ünïcode", c.documents().get(2).text());
        CorpusSplitTest.assertPartition(c);
    }

    @Test
    void jsonLinesWithOptionalIdAndGroup() throws IOException {
        Path f = dir.resolve("data.jsonl");
        Files.writeString(f, """
                {"text": "alpha", "id": "first", "group": "g1"}

                {"text": "beta", "group": "g1"}
                {"text": "gamma\\nwith a newline", "id": 7}\r
                {"text": "delta", "meta": {"ignored": true}}
                """);
        Corpus c = Corpus.load(f.toString());
        assertEquals(
                List.of("first", "line-3", "7", "line-5"),
                c.documents().stream().map(Document::id).toList());
        assertEquals("g1", c.documents().get(1).group());
        assertEquals("gamma\nwith a newline", c.documents().get(2).text());
        CorpusSplitTest.assertPartition(c);
        // The two "g1" documents share a split.
        Split s0 = splitOf(c, "first"), s1 = splitOf(c, "line-3");
        assertEquals(s0, s1);

        Path gz = dir.resolve("data.jsonl.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gz))) {
            out.write(Files.readAllBytes(f));
        }
        assertEquals(c.documents(), Corpus.load(gz.toString()).documents());
    }

    @Test
    void invalidUtf8IsRejectedWithFileAndByteOffset() throws IOException {
        Path root = dir.resolve("bad");
        Files.createDirectories(root);
        Files.writeString(root.resolve("ok.txt"), "fine");
        byte[] latin1 = "line one\ncaf\u00e9 au lait".getBytes(StandardCharsets.ISO_8859_1);
        Files.write(root.resolve("latin1.txt"), latin1);
        CorpusException e = assertThrows(CorpusException.class, () -> Corpus.load(root.toString()));
        assertOneLine(e);
        assertTrue(e.getMessage().contains("latin1.txt"), e.getMessage());
        assertTrue(e.getMessage().contains("invalid UTF-8 at byte offset 12 (line 2, byte 0xE9)"), e.getMessage());

        Path jsonl = dir.resolve("bad.jsonl");
        byte[] head = "{\"text\": \"ok\"}\n{\"text\": \"".getBytes(StandardCharsets.UTF_8);
        byte[] bytes = new byte[head.length + 3];
        System.arraycopy(head, 0, bytes, 0, head.length);
        bytes[head.length] = (byte) 0xC3;
        bytes[head.length + 1] = '"';
        bytes[head.length + 2] = '}';
        Files.write(jsonl, bytes);
        e = assertThrows(CorpusException.class, () -> Corpus.load(jsonl.toString()));
        assertTrue(e.getMessage().contains("invalid UTF-8 at byte offset " + head.length), e.getMessage());
    }

    @Test
    void malformedJsonLinesNameTheLine() throws IOException {
        expect("broken.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"\n", "broken.jsonl line 2: not valid JSON");
        expect("notext.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n", "line 2: missing string field 'text'");
        expect("numtext.jsonl", "{\"text\": 5}\n", "line 1: missing string field 'text'");
        expect("array.jsonl", "[\"text\"]\n", "line 1: expected a JSON object");
        expect("empty.jsonl", "\n\n{\"text\": \"  \"}\n", "is empty");
        expect("notes.txt", "just a text file", "is a file but not .jsonl");
    }

    @Test
    void emptyAndMissingFoldersAreExplained() throws IOException {
        Path empty = dir.resolve("empty");
        Files.createDirectories(empty.resolve(".cache"));
        Files.writeString(empty.resolve(".cache/x"), "hidden only");
        CorpusException e = assertThrows(CorpusException.class, () -> Corpus.load(empty.toString()));
        assertOneLine(e);
        assertTrue(e.getMessage().contains("is empty"), e.getMessage());
        e = assertThrows(
                CorpusException.class, () -> Corpus.load(dir.resolve("nope").toString()));
        assertOneLine(e);
        assertTrue(e.getMessage().contains("corpus not found"), e.getMessage());
    }

    private void expect(String name, String content, String expected) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, content);
        CorpusException e = assertThrows(CorpusException.class, () -> Corpus.load(f.toString()), name);
        assertOneLine(e);
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    private static void assertOneLine(CorpusException e) {
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    private static Split splitOf(Corpus c, String id) {
        for (Split s : Split.values()) {
            if (c.documents(s).stream().anyMatch(d -> d.id().equals(id))) return s;
        }
        throw new AssertionError("no split holds " + id);
    }
}
