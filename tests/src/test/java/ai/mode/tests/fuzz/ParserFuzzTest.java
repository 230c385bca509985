package ai.mode.tests.fuzz;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

import ai.mode.model.LlamaConfig;
import ai.mode.model.data.CorpusException;
import ai.mode.model.data.UserCorpus;
import ai.mode.model.io.CheckpointFormatException;
import ai.mode.model.io.HfConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.BpeTrainer;
import ai.mode.model.tokenizer.TokenizerFileException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Fuzzing of the parsers of outside bytes (issue 14) with jqwik: config.json, safetensors files (header and data),
 * tokenizer.json, user corpora (.jsonl) get random bytes and random mutations of a valid file (bytes flipped,
 * inserted, deleted, the file cut short). Every input must either parse or fail with the parser's own exception
 * type ({@link CheckpointFormatException}, {@link TokenizerFileException}, {@link CorpusException}) and a one-line
 * message: no other exception, no crash, no hang. The seed is fixed; the number of tries is jqwik's default,
 * {@code jqwik.tries.default} in junit-platform.properties (small in ./mode test; docs/faults.md gives the command
 * of a longer run).
 */
public class ParserFuzzTest {
    private static Path dir;
    private static byte[] config, safetensors, tokenizer;

    @BeforeContainer
    static void validFiles() throws IOException {
        dir = Files.createTempDirectory("mode-fuzz");
        config = HfConfig.of(new LlamaConfig(300, 16, 2, 2, 1, 24, 64, 10000f, 1e-5f, false))
                .toJsonString()
                .getBytes(StandardCharsets.UTF_8);
        NamedTensors t = new NamedTensors();
        t.put("a", new int[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        t.put("b", new int[] {4}, new float[] {-1, 0, 1, 2});
        Path st = dir.resolve("valid.safetensors");
        SafeTensors.write(st, t, Map.of("format", "pt"), SafeDType.F32);
        safetensors = Files.readAllBytes(st);
        String text = "the cat sat on the mat and the dog ran to the park with a ball. ".repeat(20);
        BpeTokenizer tok = BpeTrainer.train(List.of(text.getBytes(StandardCharsets.UTF_8)), 300);
        Path tj = dir.resolve("tokenizer.json");
        tok.save(tj);
        tokenizer = Files.readAllBytes(tj);
    }

    @AfterContainer
    static void cleanUp() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) Files.delete(p);
        }
        Files.delete(dir);
    }

    /** Random bytes, or a valid file of {@code valid} with random edits. */
    public static Arbitrary<byte[]> mutationsOf(byte[] valid) {
        Arbitrary<byte[]> random = Arbitraries.bytes().array(byte[].class).ofMaxSize(512);
        Arbitrary<byte[]> edited = Arbitraries.integers()
                .between(1, 8)
                .flatMap(n -> Arbitraries.longs().list().ofSize(n))
                .map(seeds -> Mutations.apply(valid, seeds));
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(1, random), net.jqwik.api.Tuple.of(4, edited));
    }

    @Provide
    Arbitrary<byte[]> configs() {
        return mutationsOf(config);
    }

    @Provide
    Arbitrary<byte[]> safetensorsFiles() {
        return mutationsOf(safetensors);
    }

    @Provide
    Arbitrary<byte[]> tokenizers() {
        return mutationsOf(tokenizer);
    }

    @Provide
    Arbitrary<byte[]> corpora() {
        return mutationsOf("{\"text\": \"a line\"}\n{\"text\": \"two\"}\n".getBytes(StandardCharsets.UTF_8));
    }

    /** Fails unless {@code e} is one of {@code allowed} with a one-line message. */
    static void ownOneLine(Throwable e, Class<?>... allowed) {
        for (Class<?> a : allowed) {
            if (a.isInstance(e)) {
                String m = e.getMessage();
                assertFalse(m == null || m.isBlank() || m.contains("\n"), "not one line: " + m);
                return;
            }
        }
        fail("unexpected " + e, e);
    }

    @FunctionalInterface
    public interface Parse {
        void parse() throws Exception;
    }

    /** Runs {@code parse}: it may succeed, or fail with one of {@code allowed} in one line; nothing else. */
    public static void parsesOrFails(Parse parse, Class<?>... allowed) {
        try {
            parse.parse();
        } catch (Throwable e) {
            ownOneLine(e, allowed);
        }
    }

    @Property(seed = "20261207")
    void configJson(@ForAll("configs") byte[] bytes) {
        parsesOrFails(
                () -> HfConfig.parse(new String(bytes, StandardCharsets.UTF_8), Path.of("config.json")),
                CheckpointFormatException.class);
    }

    @Property(seed = "20261207")
    void safetensorsFile(@ForAll("safetensorsFiles") byte[] bytes) throws IOException {
        Path f = Files.write(dir.resolve("fuzz.safetensors"), bytes);
        parsesOrFails(() -> SafeTensors.read(f), CheckpointFormatException.class);
    }

    @Property(seed = "20261207")
    void tokenizerJson(@ForAll("tokenizers") byte[] bytes) {
        parsesOrFails(() -> BpeTokenizer.fromJson(bytes, "tokenizer.json"), TokenizerFileException.class);
    }

    @Property(seed = "20261207")
    void jsonlCorpus(@ForAll("corpora") byte[] bytes) throws IOException {
        Path f = Files.write(dir.resolve("fuzz.jsonl"), bytes);
        parsesOrFails(() -> UserCorpus.read(f), CorpusException.class);
    }
}
