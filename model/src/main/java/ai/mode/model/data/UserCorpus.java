package ai.mode.model.data;

import ai.mode.model.json.JsonMessages;
import ai.mode.model.text.StrictUtf8;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Reads a user's corpus from disk. Two forms:
 * <ul>
 *   <li>a folder: every regular file below it (recursively, hidden files and folders skipped) is one document,
 *       its id and group the path relative to the folder; files are read in path order;</li>
 *   <li>a JSON-lines file ({@code .jsonl}, or {@code .jsonl.gz}): one JSON object per line with a string field
 *       {@code text}, optional {@code id} (default: the line number) and optional {@code group} (default: the id;
 *       give near-duplicates one group so they stay in one split); blank lines are skipped.</li>
 * </ul>
 * Files must be UTF-8: invalid UTF-8 is rejected (never silently replaced) with the file and byte offset. A leading
 * UTF-8 byte-order mark is dropped. Documents whose text is blank are skipped; a corpus with none left is an error.
 * The corpus is split 90/5/5 by {@link Corpus#DEFAULT_SPLIT_SEED}.
 */
public final class UserCorpus {

    private UserCorpus() {}

    /**
     * Reads a folder or JSON-lines file.
     *
     * @throws CorpusException naming the path and the problem (missing, unreadable, invalid UTF-8 with byte offset,
     *                         malformed JSON with line number, or empty)
     */
    public static Corpus read(Path path) {
        if (!Files.exists(path)) {
            throw new CorpusException("corpus not found: '" + path + "' is neither a built-in corpus ("
                    + String.join(", ", CorpusRegistry.names()) + ") nor an existing folder or .jsonl file");
        }
        String name = path.getFileName() == null
                ? path.toString()
                : path.getFileName().toString();
        List<Document> docs;
        if (Files.isDirectory(path)) {
            docs = readFolder(path);
            if (docs.stream().allMatch(d -> d.text().isBlank())) {
                throw new CorpusException(
                        "corpus folder '" + path + "' is empty: it holds no non-hidden file with " + "non-blank text");
            }
        } else if (isJsonl(path)) {
            docs = readJsonl(path);
            if (docs.stream().allMatch(d -> d.text().isBlank())) {
                throw new CorpusException("corpus file '" + path + "' is empty: no line has a non-blank 'text'");
            }
        } else {
            throw new CorpusException("corpus path '" + path + "' is a file but not .jsonl or .jsonl.gz: pass a folder "
                    + "of text files or a JSON-lines file with a 'text' field");
        }
        return Corpus.of(name, docs);
    }

    private static boolean isJsonl(Path p) {
        String n = p.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        return n.endsWith(".jsonl") || n.endsWith(".jsonl.gz");
    }

    private static List<Document> readFolder(Path root) {
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
            files = walk.filter(Files::isRegularFile)
                    .filter(p -> !isHidden(root.relativize(p)))
                    .sorted((a, b) -> relative(root, a).compareTo(relative(root, b)))
                    .toList();
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new CorpusException("cannot list corpus folder '" + root + "': " + e.getMessage(), e);
        }
        List<Document> docs = new ArrayList<>();
        for (Path f : files) {
            String rel = relative(root, f);
            docs.add(new Document(rel, rel, decodeUtf8(f, readBytes(f))));
        }
        return docs;
    }

    private static List<Document> readJsonl(Path file) {
        String text = decodeUtf8(file, readBytes(file));
        List<Document> docs = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty()) continue;
            int lineNo = i + 1;
            JsonElement e;
            try {
                e = JsonParser.parseString(line);
            } catch (JsonParseException ex) {
                throw new CorpusException(file + " line " + lineNo + ": not valid JSON (" + JsonMessages.of(ex)
                        + "); each line must be one object like {\"text\": \"...\"}");
            }
            if (!e.isJsonObject()) {
                throw new CorpusException(
                        file + " line " + lineNo + ": expected a JSON object like {\"text\": \"...\"}");
            }
            JsonObject o = e.getAsJsonObject();
            JsonElement t = o.get("text");
            if (t == null || !t.isJsonPrimitive() || !t.getAsJsonPrimitive().isString()) {
                throw new CorpusException(file + " line " + lineNo + ": missing string field 'text'");
            }
            String id =
                    o.has("id") && o.get("id").isJsonPrimitive() ? o.get("id").getAsString() : "line-" + lineNo;
            String group = o.has("group") && o.get("group").isJsonPrimitive()
                    ? o.get("group").getAsString()
                    : id;
            docs.add(new Document(id, group, t.getAsString()));
        }
        return docs;
    }

    private static byte[] readBytes(Path f) {
        try {
            if (f.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".gz")) {
                try (InputStream in = new GZIPInputStream(Files.newInputStream(f))) {
                    return in.readAllBytes();
                }
            }
            return Files.readAllBytes(f);
        } catch (IOException e) {
            throw new CorpusException("cannot read corpus file '" + f + "': " + e.getMessage(), e);
        }
    }

    /**
     * Strict UTF-8 decoding.
     *
     * @throws CorpusException giving the byte offset and line of the first malformed sequence
     */
    static String decodeUtf8(Path file, byte[] bytes) {
        String s;
        try {
            s = StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            int offset = e.offset();
            int line = 1;
            for (int i = 0; i < offset; i++) if (bytes[i] == '\n') line++;
            throw new CorpusException(String.format(
                    "%s: invalid UTF-8 at byte offset %d (line %d, byte 0x%02X); "
                            + "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8",
                    file, offset, line, bytes[offset] & 0xFF));
        }
        return s.startsWith("\uFEFF") ? s.substring(1) : s;
    }

    private static boolean isHidden(Path rel) {
        for (Path part : rel) if (part.toString().startsWith(".")) return true;
        return false;
    }

    private static String relative(Path root, Path p) {
        return root.relativize(p).toString().replace('\\', '/');
    }
}
