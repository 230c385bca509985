package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.HfTokenizer;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GGUF import against Hugging Face transformers' own GGUF loading: {@code gguf-llama/} holds one tiny random Llama
 * written by the {@code gguf} package as F32, F16, BF16, Q8_0 and Q4_0 files in llama.cpp's layout (permuted q/k rows,
 * a SentencePiece vocabulary), and the logits transformers computed after loading each file itself
 * ({@code tools/gguf_fixture/make_fixture.py}). Our import must give the same logits and token ids; damaged files must
 * fail in one line.
 */
class GgufImportTest {

    @TempDir
    Path dir;

    Path resource(String name) throws IOException {
        Path p = dir.resolve(name);
        try (InputStream in = GgufImportTest.class.getResourceAsStream("/gguf-llama/" + name)) {
            if (in == null) throw new IOException("test resource gguf-llama/" + name + " is missing");
            Files.write(p, in.readAllBytes());
        }
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "f16", "bf16", "q8_0", "q4_0"})
    void logitsMatchTransformersLoadingTheSameFile(String type) throws IOException {
        GgufImport.Result r = GgufImport.load(resource("tiny-" + type + ".gguf"));
        LlamaConfig c = r.model().config().model();
        assertEquals(new LlamaConfig(320, 32, 2, 4, 2, 64, 64, 5000f, 1e-5f, false), c);
        float[] want, original;
        long[] ids;
        try (SafeTensorsReader ref = SafeTensorsReader.open(resource("reference.safetensors"))) {
            want = ref.readFloats("logits." + type);
            original = ref.readFloats("logits.original");
            ids = ref.readLongs("input_ids");
        }
        float[] got = logits(r.model(), ids, 2, 9);
        double err = 0, norm = 0, quantisation = 0;
        for (int i = 0; i < want.length; i++) {
            err = Math.max(err, Math.abs(got[i] - want[i]));
            norm = Math.max(norm, Math.abs(want[i]));
            quantisation = Math.max(quantisation, Math.abs(original[i] - want[i]));
        }
        assertTrue(err <= 2e-5 * Math.max(1, norm), type + ": logits differ from transformers' by " + err);
        // the check is finer than the format's own rounding, so a wrong dequantisation could not pass
        if (!type.equals("f32")) assertTrue(quantisation > 50 * err, type + ": rounding " + quantisation);
    }

    static float[] logits(HfImport.Model m, long[] ids, int b, int t) {
        int[] in = new int[ids.length];
        for (int i = 0; i < in.length; i++) in[i] = Math.toIntExact(ids[i]);
        int v = m.config().model().vocabSize();
        try (Backend be = Backends.create("cpu", 1);
                LlamaModel model = LlamaModel.create(be, m.config().model())) {
            Weights.load(model.parameters(), m.weights(), true);
            try (Tensor x = be.fromHost(in, b, t);
                    Tensor out = be.zeros(b * t, v)) {
                model.logits(x, out);
                return be.toHostFloats(out);
            }
        }
    }

    @Test
    void vocabularyEncodesAsTransformersConvertsIt() throws IOException {
        GgufImport.Result r = GgufImport.load(resource("tiny-f32.gguf"));
        assertNotNull(r.tokenizerJson(), r.tokenizerNote());
        HfTokenizer tok = HfTokenizer.fromJson(r.tokenizerJson(), "tiny-f32.gguf");
        Map<String, String> meta;
        try (SafeTensorsReader ref = SafeTensorsReader.open(resource("reference.safetensors"))) {
            meta = ref.metadata();
        }
        JsonObject tokens = JsonParser.parseString(meta.get("mode_gguf_reference"))
                .getAsJsonObject()
                .getAsJsonObject("tokens");
        assertTrue(tokens.size() >= 5);
        for (Map.Entry<String, JsonElement> e : tokens.entrySet()) {
            int[] want = e.getValue().getAsJsonArray().asList().stream()
                    .mapToInt(JsonElement::getAsInt)
                    .toArray();
            assertArrayEquals(want, tok.encode(e.getKey(), false), e.getKey());
        }
        assertEquals(1, tok.encode("", true).length);
        assertEquals("There is the thing.", tok.decode(tok.encode("There is the thing.", true), true));
    }

    @Test
    void damagedFilesFailInOneLine() throws IOException {
        byte[] good = Files.readAllBytes(resource("tiny-q4_0.gguf"));
        expect(with(good, b -> b.putInt(0, 0x46554746)), "does not start with the GGUF magic");
        expect(with(good, b -> b.putInt(4, 7)), "GGUF version 7 is not supported");
        // the type of the first tensor (after its name, dimension count and 2 dimensions)
        int firstTensor = firstTensorInfo(good);
        int nameLen = (int) ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getLong(firstTensor);
        int typeAt = firstTensor + 8 + nameLen + 4 + 16;
        expect(with(good, b -> b.putInt(typeAt, 12)), "ggml type 12 (Q4_K), which is not supported");
        expect(with(good, b -> b.putLong(typeAt + 4, 1L << 40)), "outside the file");
        Path cut = dir.resolve("cut.gguf");
        Files.write(cut, Arrays.copyOf(good, good.length - 1));
        expect(cut, "outside the file");
        // every prefix and random byte substitutions: either loads or one CheckpointFormatException
        Random rnd = new Random(5);
        for (int len = 0; len < good.length; len += 1 + rnd.nextInt(97)) {
            fuzz(Arrays.copyOf(good, len));
        }
        for (int i = 0; i < 300; i++) {
            byte[] b = good.clone();
            int at = rnd.nextInt(Math.min(b.length, firstTensor + 600));
            b[at] = (byte) rnd.nextInt(256);
            fuzz(b);
        }
    }

    @Test
    void ropeScalingMetadata() throws IOException {
        byte[] good = Files.readAllBytes(resource("tiny-f32.gguf"));
        GgufImport.Result linear = GgufImport.load(write(
                withMetadata(good, Map.of("llama.rope.scaling.type", "linear", "llama.rope.scaling.factor", 2.5f))));
        assertEquals(
                new RopeScaling.Linear(2.5), linear.model().config().model().ropeScaling());
        assertTrue(linear.model().config().toJsonString().contains("\"rope_scaling\""), "written back by checkpoints");
        assertEquals(
                RopeScaling.NONE,
                GgufImport.load(write(withMetadata(good, Map.of("llama.rope.scaling.type", "none"))))
                        .model()
                        .config()
                        .model()
                        .ropeScaling());
        expect(
                write(withMetadata(good, Map.of("llama.rope.scaling.type", "yarn", "llama.rope.scaling.factor", 4f))),
                "llama.rope.scaling.type 'yarn' is not supported (supported: none, linear)");
        expect(
                write(withMetadata(good, Map.of("llama.rope.scaling.type", "linear"))),
                "metadata llama.rope.scaling.factor is missing");
        expect(
                write(withMetadata(
                        good, Map.of("llama.rope.scaling.type", "linear", "llama.rope.scaling.factor", -1f))),
                "rope_scaling linear: factor must be a positive finite number");
    }

    /**
     * {@code good} with metadata entries (String or Float values) added after the others, and a padding entry so the
     * inserted bytes are a multiple of 32: the data section, aligned after the tensor infos, moves by that much and
     * every tensor offset (relative to it) stays right.
     */
    static byte[] withMetadata(byte[] good, Map<String, Object> entries) {
        ByteBuffer kv = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        for (Map.Entry<String, Object> e : entries.entrySet()) putEntry(kv, e.getKey(), e.getValue());
        int padEntry = 8 + "x.pad".length() + 4 + 8;
        putEntry(kv, "x.pad", "_".repeat((32 - (kv.position() + padEntry) % 32) % 32));
        int at = firstTensorInfo(good);
        ByteBuffer out = ByteBuffer.allocate(good.length + kv.position()).order(ByteOrder.LITTLE_ENDIAN);
        out.put(good, 0, at).put(kv.array(), 0, kv.position()).put(good, at, good.length - at);
        out.putLong(16, out.getLong(16) + entries.size() + 1);
        return out.array();
    }

    private static void putEntry(ByteBuffer b, String key, Object value) {
        byte[] k = key.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        b.putLong(k.length).put(k);
        switch (value) {
            case String str -> {
                byte[] v = str.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                b.putInt(8).putLong(v.length).put(v);
            }
            case Float f -> b.putInt(6).putFloat(f);
            default -> throw new IllegalArgumentException("value " + value);
        }
    }

    private Path write(byte[] content) throws IOException {
        Path p = Files.createTempFile(dir, "meta", ".gguf");
        Files.write(p, content);
        return p;
    }

    /** Byte offset of the first tensor info: after the header and every metadata entry. */
    static int firstTensorInfo(byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long kv = b.getLong(16);
        int pos = 24;
        for (long i = 0; i < kv; i++) {
            pos += 8 + (int) b.getLong(pos);
            int type = b.getInt(pos);
            pos = skipValue(b, pos + 4, type);
        }
        return pos;
    }

    static int skipValue(ByteBuffer b, int pos, int type) {
        return switch (type) {
            case 0, 1, 7 -> pos + 1;
            case 2, 3 -> pos + 2;
            case 4, 5, 6 -> pos + 4;
            case 10, 11, 12 -> pos + 8;
            case 8 -> pos + 8 + (int) b.getLong(pos);
            case 9 -> {
                int et = b.getInt(pos);
                long n = b.getLong(pos + 4);
                int p = pos + 12;
                for (long i = 0; i < n; i++) p = skipValue(b, p, et);
                yield p;
            }
            default -> throw new IllegalArgumentException("type " + type);
        };
    }

    interface Edit {
        void apply(ByteBuffer b);
    }

    Path with(byte[] good, Edit edit) throws IOException {
        byte[] b = good.clone();
        edit.apply(ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN));
        Path p = Files.createTempFile(dir, "edited", ".gguf");
        Files.write(p, b);
        return p;
    }

    void fuzz(byte[] content) throws IOException {
        Path p = dir.resolve("fuzz.gguf");
        Files.write(p, content);
        try {
            GgufImport.load(p);
        } catch (CheckpointFormatException e) {
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertTrue(e.getMessage().contains("fuzz.gguf"), e.getMessage());
        }
    }

    static void expect(Path file, String expected) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> GgufImport.load(file));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
