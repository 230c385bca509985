package ai.mode.model.data;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.ref.SoftReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * The built-in corpora: compressed samples shipped as classpath resources under {@code /corpora/} in the {@code mode-corpora}
 * artifact (see the README
 * there for sources and licences), the procedural math problems, and the JDK's own sources read at run time.
 *
 * <table>
 *   <caption>Built-in corpora</caption>
 *   <tr><th>name</th><th>content</th><th>split</th></tr>
 *   <tr><td>{@value #ENGLISH}</td><td>KJV Bible sample, Jargon File, Devil's Dictionary, two Austen novels</td><td>90/5/5</td></tr>
 *   <tr><td>{@value #RETENTION}</td><td>Moby Dick and Austen's Persuasion, never in {@value #ENGLISH}</td><td>0/10/90</td></tr>
 *   <tr><td>{@value #CODE}</td><td>Python standard library sample</td><td>90/5/5</td></tr>
 *   <tr><td>{@value #MATH}</td><td>Metamath set.mm sample (proofs stripped) + {@link MathProblemGenerator}</td><td>90/5/5</td></tr>
 *   <tr><td>{@value #LEGAL}</td><td>SPDX licence texts, grouped by licence family</td><td>90/5/5</td></tr>
 *   <tr><td>{@value #CODE_JDK}</td><td>java.base sources from the running JDK's lib/src.zip (not shipped)</td><td>90/5/5</td></tr>
 * </table>
 *
 * Loaded corpora are cached in memory (softly) so repeated loads are cheap.
 */
public final class CorpusRegistry {

    public static final String ENGLISH = "english";
    public static final String RETENTION = "english-retention";
    public static final String CODE = "code";
    public static final String MATH = "math";
    public static final String LEGAL = "legal";
    public static final String CODE_JDK = "code-jdk";

    /** Seed of the generated math problems in {@value #MATH}. */
    public static final long MATH_SEED = 7L;
    /** Generated math documents in {@value #MATH} and problems per document (about 3 MB of text in all). */
    public static final int MATH_DOCUMENTS = 2500, MATH_PROBLEMS_PER_DOCUMENT = 5;
    /** UTF-8 bytes of JDK sources taken for {@value #CODE_JDK}. */
    public static final long JDK_SOURCE_BUDGET = 6_000_000;

    private record Spec(String description, Corpus.Fractions fractions, Supplier<List<Document>> documents) {}

    private static final Map<String, Spec> SPECS = new LinkedHashMap<>();
    private static final Map<String, SoftReference<Corpus>> CACHE = new ConcurrentHashMap<>();

    static {
        SPECS.put(
                ENGLISH,
                new Spec(
                        "general English for pretraining: King James Bible (sample of books), Jargon File "
                                + "4.4.7, Devil's Dictionary, Austen's Sense and Sensibility and Pride and Prejudice (public domain)",
                        Corpus.Fractions.DEFAULT,
                        () -> resources("kjv", "jargon", "devil", "austen-train")));
        SPECS.put(
                RETENTION,
                new Spec(
                        "held-out English literature for the retention test: Melville's Moby Dick and "
                                + "Austen's Persuasion (public domain); no train split",
                        new Corpus.Fractions(0, 0.10, 0.90),
                        () -> resources("retention")));
        SPECS.put(
                CODE,
                new Spec(
                        "Python 3.11 standard library sample (PSF License 2.0)",
                        Corpus.Fractions.DEFAULT,
                        () -> resources("python")));
        SPECS.put(
                MATH,
                new Spec(
                        "Metamath set.mm sample without proofs (CC0) plus generated problems with worked "
                                + "solutions (MathProblemGenerator, seed " + MATH_SEED + ")",
                        Corpus.Fractions.DEFAULT,
                        () -> {
                            List<Document> docs = new ArrayList<>(resources("setmm"));
                            docs.addAll(MathProblemGenerator.documents(
                                    MATH_SEED, MATH_DOCUMENTS, MATH_PROBLEMS_PER_DOCUMENT));
                            return docs;
                        }));
        SPECS.put(
                LEGAL,
                new Spec(
                        "SPDX licence texts (CC0), near-duplicate licences grouped into families",
                        Corpus.Fractions.DEFAULT,
                        () -> resources("spdx")));
        SPECS.put(
                CODE_JDK,
                new Spec(
                        "java.base sources read at run time from the JDK's lib/src.zip (GPLv2 with "
                                + "Classpath Exception; never shipped)",
                        Corpus.Fractions.DEFAULT,
                        CorpusRegistry::jdkSources));
    }

    private CorpusRegistry() {}

    /** Names of the built-in corpora. */
    public static List<String> names() {
        return List.copyOf(SPECS.keySet());
    }

    public static boolean isBuiltIn(String name) {
        return SPECS.containsKey(name);
    }

    /** One-line description: sources and licences. */
    public static String describe(String name) {
        return spec(name).description();
    }

    /**
     * Loads a built-in corpus.
     *
     * @throws CorpusException for an unknown name, a missing resource, or (for {@value #CODE_JDK}) a JDK without
     *                         {@code lib/src.zip}
     */
    public static Corpus load(String name) {
        Spec spec = spec(name);
        SoftReference<Corpus> ref = CACHE.get(name);
        Corpus c = ref == null ? null : ref.get();
        if (c == null) {
            c = Corpus.of(name, spec.documents().get(), spec.fractions(), Corpus.DEFAULT_SPLIT_SEED);
            CACHE.put(name, new SoftReference<>(c));
        }
        return c;
    }

    private static Spec spec(String name) {
        Spec s = SPECS.get(name);
        if (s == null) {
            throw new CorpusException("unknown corpus '" + name + "': built-in corpora are "
                    + String.join(", ", names()) + "; a user corpus is a folder of text files or a .jsonl file");
        }
        return s;
    }

    /** Documents of shipped samples {@code /corpora/<name>.jsonl.gz}, in order. */
    static List<Document> resources(String... names) {
        List<Document> docs = new ArrayList<>();
        for (String n : names) {
            String path = "corpora/" + n + ".jsonl.gz";
            // the class loader, not the class: on the module path the samples are another module's resources
            InputStream raw = CorpusRegistry.class.getClassLoader().getResourceAsStream(path);
            if (raw == null) {
                throw new CorpusException("built-in corpus sample /" + path + " is missing from the classpath; add "
                        + "the ai.mode:mode-corpora artifact (the samples live in corpora/src/main/resources/corpora)");
            }
            try (BufferedReader r =
                    new BufferedReader(new InputStreamReader(new GZIPInputStream(raw), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.isBlank()) continue;
                    JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                    docs.add(new Document(
                            o.get("id").getAsString(),
                            o.get("group").getAsString(),
                            o.get("text").getAsString()));
                }
            } catch (IOException | RuntimeException e) {
                throw new CorpusException(
                        "built-in corpus sample /" + path + " is unreadable (" + e.getMessage()
                                + "); rebuild the mode-corpora artifact",
                        e);
            }
        }
        return docs;
    }

    /** Location of the running JDK's source archive. */
    public static Path jdkSourceZip() {
        return Path.of(System.getProperty("java.home"), "lib", "src.zip");
    }

    /**
     * java.base sources from {@link #jdkSourceZip()}: files sampled in a fixed hash order up to
     * {@link #JDK_SOURCE_BUDGET} bytes, one document per file, grouped by package.
     */
    static List<Document> jdkSources() {
        Path zip = jdkSourceZip();
        if (!Files.isRegularFile(zip)) {
            throw new CorpusException(
                    "corpus '" + CODE_JDK + "' needs the JDK sources at " + zip + ", which is absent: "
                            + "install a full JDK with sources (e.g. Temurin, or apt-get install openjdk-25-source) or use the "
                            + "built-in '" + CODE + "' corpus");
        }
        try (ZipFile z = new ZipFile(zip.toFile())) {
            List<ZipEntry> entries = new ArrayList<>();
            z.stream()
                    .filter(e -> !e.isDirectory()
                            && e.getName().startsWith("java.base/java/")
                            && e.getName().endsWith(".java"))
                    .forEach(entries::add);
            entries.sort(
                    Comparator.comparingLong((ZipEntry e) -> fnv(e.getName())).thenComparing(ZipEntry::getName));
            List<Document> docs = new ArrayList<>();
            long total = 0;
            for (ZipEntry e : entries) {
                if (total >= JDK_SOURCE_BUDGET) break;
                byte[] bytes;
                try (InputStream in = z.getInputStream(e)) {
                    bytes = in.readAllBytes();
                }
                String id = "jdk/" + e.getName();
                String text = UserCorpus.decodeUtf8(Path.of(zip + "!" + e.getName()), bytes);
                String group = id.substring(0, id.lastIndexOf('/'));
                docs.add(new Document(id, group, text));
                total += bytes.length;
            }
            docs.sort(Comparator.comparing(Document::id));
            return Collections.unmodifiableList(docs);
        } catch (IOException e) {
            throw new CorpusException("cannot read JDK sources " + zip + ": " + e.getMessage(), e);
        }
    }

    private static long fnv(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        return h ^ (h >>> 31);
    }
}
