package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.generate.Generator;
import ai.mode.model.generate.Sampling;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.HfTokenizer;
import ai.mode.model.tokenizer.SentencePieceBpe;
import ai.mode.model.tokenizer.TokenizerFileException;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama2.c import: the layout on synthetic files written here from the format's description (tied and untied head,
 * the rotary row permutation, one-line errors), and the real stories260K model and tokenizer from
 * {@code ../shared/fixtures/stories260K/} when that folder exists: greedy decoding from BOS gives the text llama2.c's
 * own forward pass gives.
 */
class Llama2cImportTest {

    static final String STORY =
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

    @TempDir
    Path dir;

    /** Writes a llama2.c legacy file: header, then the arrays in llama2.c's order, from seeded random values. */
    static float[][] writeSynthetic(
            Path file, int dim, int hidden, int layers, int heads, int kv, int vocab, int seq, boolean tied, long seed)
            throws IOException {
        int hd = dim / heads;
        int[] sizes = {
            vocab * dim,
            layers * dim,
            layers * dim * dim,
            layers * kv * hd * dim,
            layers * kv * hd * dim,
            layers * dim * dim,
            layers * dim,
            layers * hidden * dim,
            layers * dim * hidden,
            layers * hidden * dim,
            dim,
            seq * hd / 2,
            seq * hd / 2,
            tied ? 0 : vocab * dim
        };
        Random r = new Random(seed);
        float[][] arrays = new float[sizes.length][];
        int total = 0;
        for (int i = 0; i < sizes.length; i++) {
            arrays[i] = new float[sizes[i]];
            for (int k = 0; k < sizes[i]; k++) arrays[i][k] = (float) r.nextGaussian();
            total += sizes[i];
        }
        ByteBuffer b = ByteBuffer.allocate(28 + 4 * total).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {dim, hidden, layers, heads, kv, tied ? vocab : -vocab, seq}) b.putInt(v);
        for (float[] a : arrays) for (float v : a) b.putFloat(v);
        Files.write(file, b.array());
        return arrays;
    }

    @Test
    void syntheticCheckpointsMapToHuggingFaceNamesWithTheRotaryPermutation() throws IOException {
        int dim = 16, hidden = 24, layers = 2, heads = 4, kv = 2, vocab = 11, seq = 8, hd = dim / heads;
        Path untied = dir.resolve("untied.bin");
        float[][] a = writeSynthetic(untied, dim, hidden, layers, heads, kv, vocab, seq, false, 7);
        HfImport.Model m = Llama2cImport.load(untied);
        LlamaConfig c = m.config().model();
        assertEquals(new LlamaConfig(vocab, dim, layers, heads, kv, hidden, seq, 10000f, 1e-5f, false), c);
        NamedTensors w = m.weights();
        assertArrayEquals(a[0], w.get(TensorNames.EMBED_TOKENS).data());
        assertArrayEquals(a[13], w.get(TensorNames.LM_HEAD).data());
        assertArrayEquals(a[10], w.get(TensorNames.FINAL_NORM).data());
        int layer = 1;
        float[] v = Arrays.copyOfRange(a[4], layer * kv * hd * dim, (layer + 1) * kv * hd * dim);
        assertArrayEquals(v, w.get(TensorNames.layer(layer, LayerTensor.V_PROJ)).data());
        float[] down = Arrays.copyOfRange(a[8], layer * dim * hidden, (layer + 1) * dim * hidden);
        assertArrayEquals(
                down, w.get(TensorNames.layer(layer, LayerTensor.DOWN_PROJ)).data());
        float[] up = Arrays.copyOfRange(a[9], layer * hidden * dim, (layer + 1) * hidden * dim);
        assertArrayEquals(
                up, w.get(TensorNames.layer(layer, LayerTensor.UP_PROJ)).data());
        // k: head 1, pair 2 of llama2.c (rows 2*2 and 2*2+1 of the head) lands at rows 2 and hd/2 + 2 of that head
        float[] k = w.get(TensorNames.layer(layer, LayerTensor.K_PROJ)).data();
        int base = layer * kv * hd * dim, h = 1, pair = 1;
        assertArrayEquals(
                Arrays.copyOfRange(a[3], base + (h * hd + 2 * pair) * dim, base + (h * hd + 2 * pair + 1) * dim),
                Arrays.copyOfRange(k, (h * hd + pair) * dim, (h * hd + pair + 1) * dim));
        assertArrayEquals(
                Arrays.copyOfRange(a[3], base + (h * hd + 2 * pair + 1) * dim, base + (h * hd + 2 * pair + 2) * dim),
                Arrays.copyOfRange(k, (h * hd + hd / 2 + pair) * dim, (h * hd + hd / 2 + pair + 1) * dim));

        Path tied = dir.resolve("tied.bin");
        writeSynthetic(tied, dim, hidden, layers, heads, kv, vocab, seq, true, 8);
        HfImport.Model t = Llama2cImport.load(tied);
        assertTrue(t.config().model().tieEmbeddings());
        assertFalse(t.weights().names().contains(TensorNames.LM_HEAD));
    }

    @Test
    void damagedFilesAreRefusedInOneLine() throws IOException {
        Path good = dir.resolve("good.bin");
        writeSynthetic(good, 16, 24, 1, 4, 2, 11, 8, true, 9);
        byte[] bytes = Files.readAllBytes(good);
        Path cut = dir.resolve("cut.bin");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 4));
        expect(cut, "the file is truncated or not a llama2.c legacy checkpoint");
        Path tiny = dir.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        expect(tiny, "too few for a llama2.c header");
        Path badHeads = dir.resolve("heads.bin");
        byte[] edited = bytes.clone();
        ByteBuffer.wrap(edited).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 3);
        Files.write(badHeads, edited);
        expect(badHeads, "does not describe a Llama model");
        Path v1 = dir.resolve("v1.bin");
        ByteBuffer hdr = ByteBuffer.allocate(256)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putInt(0x616b3432)
                .putInt(1);
        Files.write(v1, hdr.array());
        expect(v1, "export version 1");
        expect(dir.resolve("absent.bin"), "not found");
    }

    private static void expect(Path file, String expected) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> Llama2cImport.load(file));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    static Path stories() {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.exists(root.resolve("mode"))) root = root.getParent();
        return root == null
                ? null
                : root.resolveSibling("shared").resolve("fixtures").resolve("stories260K");
    }

    @Test
    void stories260KGeneratesItsKnownStory() throws IOException {
        Path s = stories();
        assumeTrue(
                s != null && Files.isRegularFile(s.resolve("stories260K.bin")),
                "../shared/fixtures/stories260K is absent: the real llama2.c model cannot be checked here");
        HfImport.Model m = Llama2cImport.load(s.resolve("stories260K.bin"));
        LlamaConfig c = m.config().model();
        assertEquals(new LlamaConfig(512, 64, 5, 8, 4, 172, 512, 10000f, 1e-5f, true), c);
        HfTokenizer tok = HfTokenizer.fromJson(
                SentencePieceBpe.fromLlama2c(s.resolve("tok512.bin"), c.vocabSize()), "tok512.bin");
        assertEquals(512, tok.vocabSize());

        Path out = dir.resolve("stories260K-hf");
        Checkpoint.builder()
                .config(m.config())
                .model(m.weights())
                .tokenizer(SentencePieceBpe.fromLlama2c(s.resolve("tok512.bin"), c.vocabSize()))
                .writeTo(out);
        try (Backend be = Backends.create("cpu", 1);
                LlamaModel model = SavedModels.load(be, Checkpoint.open(out))) {
            int[] ids = greedy(be, model, new int[] {1}, 34);
            String text = tok.decode(ids, true);
            assertTrue(text.startsWith(STORY), text);
            int[] story = tok.encode(STORY, true);
            assertArrayEquals(story, Arrays.copyOf(ids, story.length), "the story's tokens as the tokenizer writes it");
            // mode generate's path: prefill of BOS, then one cached position per token
            Generator.Result g = new Generator(model).generate(new int[] {1}, 34, Sampling.GREEDY, null, id -> true);
            assertTrue(g.cached());
            assertArrayEquals(Arrays.copyOfRange(ids, 1, ids.length), g.tokens(), "cached greedy = recomputed greedy");
            assertTrue(tok.decode(g.tokens(), true).startsWith(STORY), tok.decode(g.tokens(), true));
        }
    }

    /** Greedy decoding: {@code steps} times, append the argmax of the last position's logits. */
    static int[] greedy(Backend be, LlamaModel model, int[] prompt, int steps) {
        int v = model.config().vocabSize();
        int[] ids = prompt.clone();
        for (int s = 0; s < steps; s++) {
            int t = ids.length;
            float[] logits;
            try (Tensor in = be.fromHost(ids, 1, t);
                    Tensor out = be.zeros(t, v)) {
                model.logits(in, out);
                logits = be.toHostFloats(out);
            }
            int best = 0;
            for (int j = 1; j < v; j++) if (logits[(t - 1) * v + j] > logits[(t - 1) * v + best]) best = j;
            ids = Arrays.copyOf(ids, t + 1);
            ids[t] = best;
        }
        return ids;
    }

    @Test
    void truncatedTokenizerIsRefused() throws IOException {
        Path f = dir.resolve("tok.bin");
        ByteBuffer b = ByteBuffer.allocate(4 + 8 + 2).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8).putFloat(0f).putInt(2).put((byte) 'a').put((byte) 'b');
        Files.write(f, b.array());
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> SentencePieceBpe.fromLlama2c(f, 3));
        assertTrue(e.getMessage().contains("inside token 1 of 3"), e.getMessage());
    }
}
