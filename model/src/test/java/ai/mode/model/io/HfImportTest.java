// Import of synthetic Hugging Face Llama checkpoints written by the test in F16 / BF16 / F32, single-file and
// sharded: exact conversion of representable values (including f16 subnormals, infinities, NaN), nearest-even
// rounding of others, and one-line errors naming missing, mis-shaped or unexpected tensors and broken shard indexes.
package ai.mode.model.io;

import static ai.mode.model.io.SafeTensorsTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfImportTest {

    @TempDir
    Path tmp;

    /** GQA, untied head: every kind of tensor present. */
    static final LlamaConfig CFG = new LlamaConfig(11, 8, 2, 2, 1, 12, 64, 10000f, 1e-5f, false);

    /** Bit patterns per tensor, with a reference value per element decoded by the independent formula. */
    private record Synthetic(Map<String, int[]> bits, Map<String, int[]> shapes) {}

    /** Random 16-bit patterns (never NaN/inf, except where stated) for every tensor of {@link #CFG}. */
    private static Synthetic synthetic(HalfReference.Format fmt, long seed, boolean specials) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Map<String, int[]> bits = new LinkedHashMap<>(), shapes = new LinkedHashMap<>();
        TensorNames.llamaShapes(CFG).forEach((name, shape) -> {
            int[] b = new int[(int) NamedTensors.numel(shape)];
            for (int i = 0; i < b.length; i++) {
                int pattern;
                do pattern = rnd.nextInt(1 << 16);
                while (Double.isNaN(fmt.decode(pattern)) || Double.isInfinite(fmt.decode(pattern)));
                b[i] = pattern;
            }
            bits.put(name, b);
            shapes.put(name, shape);
        });
        if (specials) {
            int[] e = bits.get(TensorNames.EMBED_TOKENS);
            int inf = fmt.infBits();
            int[] sp = {0x0001, 0x8001, 0x03FF & ((1 << fmt.manBits) - 1), inf, inf | fmt.signBit(), inf | 1, 0x8000, 0
            };
            System.arraycopy(sp, 0, e, 0, sp.length);
        }
        return new Synthetic(bits, shapes);
    }

    private static void writeConfig(Path dir, LlamaConfig cfg, String dtype) throws IOException {
        Files.createDirectories(dir);
        HfConfig.of(cfg).withTorchDtype(dtype).write(dir.resolve("config.json"));
    }

    private static RawSafeTensors raw(Synthetic s, String dtype, List<String> names) {
        RawSafeTensors r = new RawSafeTensors().meta("format", "pt");
        for (String n : names) r.bits16(n, dtype, s.shapes.get(n), s.bits.get(n));
        return r;
    }

    private static void assertDecodedExactly(Synthetic s, HalfReference.Format fmt, NamedTensors w) {
        assertEquals(List.copyOf(TensorNames.llamaShapes(CFG).keySet()), w.names(), "canonical order");
        for (String n : s.bits.keySet()) {
            assertArrayEquals(s.shapes.get(n), w.shape(n));
            float[] got = w.data(n);
            int[] b = s.bits.get(n);
            for (int i = 0; i < b.length; i++) {
                double ref = fmt.decode(b[i]);
                if (Double.isNaN(ref)) assertTrue(Float.isNaN(got[i]), n + "[" + i + "]");
                else
                    assertEquals(
                            Float.floatToRawIntBits((float) ref),
                            Float.floatToRawIntBits(got[i]),
                            n + "[" + i + "] pattern 0x" + Integer.toHexString(b[i]));
            }
        }
    }

    @Test
    void singleFileF16IncludingSubnormalsInfinitiesAndNan() throws IOException {
        Path dir = tmp.resolve("f16");
        writeConfig(dir, CFG, "float16");
        Synthetic s = synthetic(HalfReference.Format.F16, 1, true);
        raw(s, "F16", List.copyOf(s.bits.keySet())).writeTo(dir.resolve("model.safetensors"));
        HfImport.Model m = HfImport.load(dir);
        assertEquals(CFG, m.config().model());
        assertEquals("float16", m.config().torchDtype());
        float[] e = m.weights().data(TensorNames.EMBED_TOKENS);
        assertEquals(0x1p-24f, e[0]);
        assertEquals(-0x1p-24f, e[1]);
        assertEquals(Float.POSITIVE_INFINITY, e[3]);
        assertEquals(Float.NEGATIVE_INFINITY, e[4]);
        assertTrue(Float.isNaN(e[5]));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(e[6]));
        assertDecodedExactly(s, HalfReference.Format.F16, m.weights());
    }

    @Test
    void shardedBf16WithIndex() throws IOException {
        Path dir = tmp.resolve("bf16");
        writeConfig(dir, CFG, "bfloat16");
        Synthetic s = synthetic(HalfReference.Format.BF16, 2, true);
        List<String> names = new ArrayList<>(s.bits.keySet());
        List<List<String>> shards = List.of(names.subList(0, 5), names.subList(5, 13), names.subList(13, names.size()));
        StringBuilder map = new StringBuilder();
        for (int i = 0; i < shards.size(); i++) {
            String file = "model-0000" + (i + 1) + "-of-00003.safetensors";
            // shards list tensors in reverse order, to show lookup is by name
            List<String> rev = new ArrayList<>(shards.get(i));
            java.util.Collections.reverse(rev);
            raw(s, "BF16", rev).writeTo(dir.resolve(file));
            for (String n : shards.get(i))
                map.append(map.isEmpty() ? "" : ",")
                        .append('"')
                        .append(n)
                        .append("\":\"")
                        .append(file)
                        .append('"');
        }
        Files.writeString(
                dir.resolve(HfImport.INDEX), "{\"metadata\":{\"total_size\":1234},\"weight_map\":{" + map + "}}");
        assertDecodedExactly(s, HalfReference.Format.BF16, HfImport.load(dir).weights());
    }

    @Test
    void nonRepresentableValuesRoundToNearestEvenThroughTheWriter() throws IOException {
        LlamaConfig tied = new LlamaConfig(11, 8, 2, 2, 1, 12, 64, 10000f, 1e-5f, true);
        NamedTensors w = CheckpointTest.randomWeights(tied, 4);
        for (NamedTensors.Entry e : w)
            for (int i = 0; i < e.data().length; i++) e.data()[i] *= 1e-5f; // spans f16 subnormals
        for (SafeDType storage : new SafeDType[] {SafeDType.F16, SafeDType.BF16}) {
            HalfReference.Format fmt = storage == SafeDType.F16 ? HalfReference.Format.F16 : HalfReference.Format.BF16;
            Path dir = tmp.resolve("round-" + storage);
            writeConfig(dir, tied, storage.torchName());
            SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"), storage);
            NamedTensors back = HfImport.load(dir).weights();
            for (NamedTensors.Entry e : w) {
                float[] got = back.data(e.name());
                for (int i = 0; i < got.length; i++) {
                    assertEquals(
                            (float) fmt.decode(fmt.encode(e.data()[i])),
                            got[i],
                            storage + " " + e.name() + "[" + i + "]");
                }
            }
        }
    }

    @Test
    void toleratedExtrasAndMixedDtypes() throws IOException {
        LlamaConfig tied = new LlamaConfig(11, 8, 2, 2, 1, 12, 64, 10000f, 1e-5f, true);
        Path dir = tmp.resolve("extras");
        writeConfig(dir, tied, "float32");
        NamedTensors w = CheckpointTest.randomWeights(tied, 5);
        RawSafeTensors r = new RawSafeTensors();
        for (NamedTensors.Entry e : w) {
            if (e.name().equals(TensorNames.FINAL_NORM)) r.f64(e.name(), e.shape(), toDoubles(e.data()));
            else r.f32(e.name(), e.shape(), e.data());
        }
        r.f32(TensorNames.LM_HEAD, new int[] {11, 8}, new float[88]); // tied: ignored
        r.f32("model.layers.0.self_attn.rotary_emb.inv_freq", new int[] {2}, 1f, 0.01f); // old buffer: ignored
        r.writeTo(dir.resolve("model.safetensors"));
        NamedTensors back = HfImport.load(dir).weights();
        assertTrue(back.bitwiseEquals(w));
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    // ------------------------------------------------------------------------------------------------ errors

    private Path dirWith(String name, java.util.function.Consumer<RawSafeTensors> edit, boolean skip)
            throws IOException {
        Path dir = tmp.resolve("e-" + name.hashCode() + "-" + skip);
        writeConfig(dir, CFG, "float32");
        RawSafeTensors r = new RawSafeTensors();
        NamedTensors w = CheckpointTest.randomWeights(CFG, 6);
        for (NamedTensors.Entry e : w) if (!(skip && e.name().equals(name))) r.f32(e.name(), e.shape(), e.data());
        edit.accept(r);
        r.writeTo(dir.resolve("model.safetensors"));
        return dir;
    }

    private static void expect(Path dir, String message) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> HfImport.load(dir));
        assertMessage(e, message);
    }

    @Test
    void missingTensorIsNamedWithItsExpectedShape() throws IOException {
        String k = TensorNames.layer(1, TensorNames.LayerTensor.K_PROJ);
        expect(dirWith(k, r -> {}, true), "missing tensor " + k + " (expected shape [4, 8] from config.json)");
        expect(dirWith(TensorNames.LM_HEAD, r -> {}, true), "missing tensor lm_head.weight");
    }

    @Test
    void wrongShapeNamesExpectedAndActual() throws IOException {
        String v = TensorNames.layer(0, TensorNames.LayerTensor.V_PROJ);
        Path dir = dirWith(v, r -> r.f32(v, new int[] {8, 8}, new float[64]), true);
        expect(dir, "tensor " + v + " has shape [8, 8] but config.json implies [4, 8]");
        String d = TensorNames.layer(0, TensorNames.LayerTensor.DOWN_PROJ);
        expect(
                dirWith(d, r -> r.f32(d, new int[] {12, 8}, new float[96]), true),
                "has shape [12, 8] but config.json implies [8, 12]");
    }

    @Test
    void unexpectedOrNonFloatTensors() throws IOException {
        expect(
                dirWith("", r -> r.f32("model.layers.0.self_attn.q_proj.bias", new int[] {8}, new float[8]), false),
                "unexpected tensor model.layers.0.self_attn.q_proj.bias");
        String n = TensorNames.FINAL_NORM;
        expect(
                dirWith(n, r -> r.i32(n, new int[] {8}, new int[8]), true),
                "has dtype I32; weights must be F32, F16, BF16 or F64");
    }

    @Test
    void brokenShardIndexes() throws IOException {
        Path dir = tmp.resolve("idx");
        writeConfig(dir, CFG, "float32");
        NamedTensors w = CheckpointTest.randomWeights(CFG, 7);
        SafeTensors.write(dir.resolve("a.safetensors"), w);
        String first = w.names().getFirst();
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":{\"" + first + "\":\"b.safetensors\"}}");
        expect(dir, "shard b.safetensors (listed for tensor " + first + ") not found");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":{\"nope\":\"a.safetensors\"}}");
        expect(dir, "has no tensor nope, though model.safetensors.index.json places it in this shard");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":{\"" + first + "\":\"../a.safetensors\"}}");
        expect(dir, "shards must be plain file names");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"metadata\":{}}");
        expect(dir, "missing the \"weight_map\" object");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":{\"x\":3}}");
        expect(dir, "must name a shard file");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":");
        expect(dir, "not valid JSON");
        StringBuilder all = new StringBuilder();
        for (String n : w.names())
            if (!n.equals(TensorNames.LM_HEAD))
                all.append(all.isEmpty() ? "" : ",").append('"').append(n).append("\":\"a.safetensors\"");
        Files.writeString(dir.resolve(HfImport.INDEX), "{\"weight_map\":{" + all + "}}");
        expect(dir, "missing tensor lm_head.weight");
    }

    @Test
    void directoriesWithoutSafetensors() throws IOException {
        Path dir = tmp.resolve("bin");
        writeConfig(dir, CFG, "float32");
        expect(dir, "no model.safetensors or model.safetensors.index.json found");
        Files.write(dir.resolve("pytorch_model.bin"), new byte[10]);
        expect(dir, "holds PyTorch .bin weights only");
        Path none = Files.createDirectories(tmp.resolve("none"));
        expect(none, "config.json: file not found");
    }

    @Test
    void truncatedShardIsReportedWithItsTensor() throws IOException {
        Path dir = tmp.resolve("trunc");
        writeConfig(dir, CFG, "float32");
        SafeTensors.write(dir.resolve("model.safetensors"), CheckpointTest.randomWeights(CFG, 8));
        byte[] b = Files.readAllBytes(dir.resolve("model.safetensors"));
        Files.write(dir.resolve("model.safetensors"), java.util.Arrays.copyOf(b, b.length - 5));
        expect(dir, "tensor \"lm_head.weight\": data ends at file byte");
    }
}
