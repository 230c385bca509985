// config.json <-> LlamaConfig: a real-world-shaped config parses, defaults apply, round trips keep every field,
// and each unsupported or malformed field gives a one-line error naming it.
package ai.mode.model.io;

import static ai.mode.model.io.SafeTensorsTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfConfigTest {

    @TempDir
    Path tmp;

    /** Shaped like TinyLlama-1.1B's config.json (values shrunk), including fields we do not interpret. */
    private static final String TINYLLAMA_LIKE = """
            {
              "architectures": ["LlamaForCausalLM"],
              "attention_bias": false,
              "bos_token_id": 1,
              "eos_token_id": 2,
              "hidden_act": "silu",
              "hidden_size": 64,
              "initializer_range": 0.02,
              "intermediate_size": 176,
              "max_position_embeddings": 2048,
              "model_type": "llama",
              "num_attention_heads": 8,
              "num_hidden_layers": 3,
              "num_key_value_heads": 2,
              "pretraining_tp": 1,
              "rms_norm_eps": 1e-05,
              "rope_scaling": null,
              "rope_theta": 10000.0,
              "tie_word_embeddings": false,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.35.0",
              "use_cache": true,
              "vocab_size": 320
            }
            """;

    private static final Path SRC = Path.of("config.json");

    @Test
    void parsesARealisticConfig() throws IOException {
        HfConfig c = HfConfig.parse(TINYLLAMA_LIKE, SRC);
        assertEquals(new LlamaConfig(320, 64, 3, 8, 2, 176, 2048, 10000f, 1e-5f, false), c.model());
        assertEquals("bfloat16", c.torchDtype());
        assertEquals(1, c.extra().get("bos_token_id").getAsInt());
        assertEquals("4.35.0", c.extra().get("transformers_version").getAsString());
        assertTrue(!c.extra().has("hidden_size"), "interpreted fields are not extras");
    }

    @Test
    void optionalFieldsTakeTransformersDefaults() throws IOException {
        HfConfig c = HfConfig.parse("""
                {"model_type":"llama","vocab_size":50,"hidden_size":16,"num_hidden_layers":2,
                 "num_attention_heads":4,"intermediate_size":40}""", SRC);
        assertEquals(new LlamaConfig(50, 16, 2, 4, 4, 40, 2048, 10000f, 1e-6f, false), c.model());
        assertEquals("float32", c.torchDtype());
        HfConfig newer = HfConfig.parse("""
                {"model_type":"llama","vocab_size":50,"hidden_size":16,"num_hidden_layers":2,
                 "num_attention_heads":4,"intermediate_size":40,"dtype":"float16","num_key_value_heads":null}""", SRC);
        assertEquals("float16", newer.torchDtype());
        assertEquals(4, newer.model().numKvHeads());
    }

    @Test
    void roundTripKeepsEveryFieldAndExactFloats() throws IOException {
        LlamaConfig m = new LlamaConfig(1000, 96, 5, 6, 3, 250, 512, 500000f, 1e-5f, true);
        HfConfig c = HfConfig.of(m).withTorchDtype("bfloat16").withExtra("bos_token_id", new JsonPrimitive(0));
        Path f = tmp.resolve("config.json");
        c.write(f);
        HfConfig back = HfConfig.read(f);
        assertEquals(m, back.model());
        assertEquals("bfloat16", back.torchDtype());
        assertEquals(0, back.extra().get("bos_token_id").getAsInt());

        JsonObject raw = JsonParser.parseString(Files.readString(f)).getAsJsonObject();
        assertEquals("[\"LlamaForCausalLM\"]", raw.get("architectures").toString());
        assertEquals("llama", raw.get("model_type").getAsString());
        assertEquals("1.0E-5", raw.get("rms_norm_eps").toString(), "floats are written as their shortest decimal");
        assertEquals(3, raw.get("num_key_value_heads").getAsInt());
        assertEquals(true, raw.get("tie_word_embeddings").getAsBoolean());

        HfConfig again = HfConfig.parse(TINYLLAMA_LIKE, SRC);
        Path g = tmp.resolve("again.json");
        again.write(g);
        JsonObject original = JsonParser.parseString(TINYLLAMA_LIKE).getAsJsonObject();
        JsonObject rewritten = JsonParser.parseString(Files.readString(g)).getAsJsonObject();
        for (String key : original.keySet()) {
            if (key.equals("rope_scaling")) continue; // null, dropped
            assertTrue(rewritten.has(key), "field " + key + " lost on rewrite");
            if (!key.equals("rms_norm_eps") && !key.equals("rope_theta"))
                assertEquals(original.get(key), rewritten.get(key), key);
            else
                assertEquals(original.get(key).getAsDouble(), rewritten.get(key).getAsDouble(), 0.0, key);
        }
    }

    private static String with(String field, String json) {
        JsonObject o = JsonParser.parseString(TINYLLAMA_LIKE).getAsJsonObject();
        if (json == null) o.remove(field);
        else o.add(field, JsonParser.parseString(json));
        return o.toString();
    }

    private static void expect(String config, String message) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> HfConfig.parse(config, SRC));
        assertMessage(e, message);
        assertTrue(e.getMessage().startsWith("config.json: "), e.getMessage());
    }

    @Test
    void missingAndMistypedFields() {
        expect(with("hidden_size", null), "missing required field hidden_size");
        expect(with("hidden_size", "\"64\""), "field hidden_size must be an integer, found \"64\"");
        expect(with("hidden_size", "64.5"), "field hidden_size must be an integer, found 64.5");
        expect(with("vocab_size", "3000000000"), "field vocab_size must be an integer");
        expect(with("num_hidden_layers", "[3]"), "field num_hidden_layers must be a scalar");
        expect(with("rms_norm_eps", "\"small\""), "field rms_norm_eps must be a finite number");
        expect(with("tie_word_embeddings", "1"), "field tie_word_embeddings must be true or false");
        expect(with("model_type", null), "missing required field model_type");
    }

    @Test
    void rangeErrorsComeFromLlamaConfig() {
        expect(with("num_attention_heads", "7"), "hidden_size 64 must be divisible by num_attention_heads 7");
        expect(with("num_key_value_heads", "3"), "num_attention_heads 8 must be divisible by num_key_value_heads 3");
        expect(with("vocab_size", "0"), "vocab_size must be >= 2");
    }

    @Test
    void unsupportedFeatures() {
        expect(with("model_type", "\"gpt2\""), "model_type \"gpt2\" is not supported");
        for (String type : new String[] {"dynamic", "yarn", "longrope"})
            expect(
                    with("rope_scaling", "{\"rope_type\":\"" + type + "\",\"factor\":8.0}"),
                    "rope_scaling type \"" + type + "\" is not supported (supported: linear, llama3 (or none))");
        expect(with("attention_bias", "true"), "attention_bias true is not supported");
        expect(with("mlp_bias", "true"), "mlp_bias true is not supported");
        expect(with("hidden_act", "\"gelu\""), "hidden_act \"gelu\" is not supported");
        expect(with("head_dim", "16"), "head_dim 16 differs from hidden_size/num_attention_heads = 8");
        expect(with("architectures", "[\"LlamaForSequenceClassification\"]"), "names no causal LM");
        String mistral = with("model_type", "\"mistral\"");
        JsonObject o = JsonParser.parseString(mistral).getAsJsonObject();
        o.addProperty("sliding_window", 4096);
        expect(o.toString(), "sliding_window 4096 is not supported");
    }

    @Test
    void acceptsEquivalentVariants() throws IOException {
        JsonObject o = JsonParser.parseString(with("model_type", "\"mistral\"")).getAsJsonObject();
        o.add("sliding_window", null);
        o.addProperty("head_dim", 8);
        o.addProperty("hidden_act", "swish");
        assertEquals(2, HfConfig.parse(o.toString(), SRC).model().numKvHeads());
    }

    @Test
    void transformers5RopeParameters() throws IOException {
        // transformers 5 writes the RoPE base inside rope_parameters instead of a top-level rope_theta
        String v5 = with("rope_theta", null)
                .replace(
                        "\"vocab_size\"",
                        "\"rope_parameters\":{\"rope_theta\":500000.0,\"rope_type\":\"default\"},\"vocab_size\"");
        assertEquals(500000f, HfConfig.parse(v5, SRC).model().ropeTheta());
        expect(v5.replace("\"default\"", "\"yarn\""), "rope_parameters type \"yarn\" is not supported");
        expect(
                with("rope_theta", "10000.0")
                        .replace("\"vocab_size\"", "\"rope_parameters\":{\"rope_theta\":500000.0},\"vocab_size\""),
                "disagree");
        expect(
                with("rope_parameters", "{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}"),
                "partial_rotary_factor 0.5 is not supported");
        expect(with("rope_parameters", "[1]"), "field rope_parameters must be an object");
    }

    /** Llama 3.1's rope_scaling, as its config.json writes it (values of Meta-Llama-3.1-8B). */
    private static final String LLAMA31_SCALING = "{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
            + "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}";

    @Test
    void ropeScalingLinearAndLlama3ReadAndWrittenBack() throws IOException {
        RopeScaling llama3 = HfConfig.parse(with("rope_scaling", LLAMA31_SCALING), SRC)
                .model()
                .ropeScaling();
        assertEquals(new RopeScaling.Llama3(8, 1, 4, 8192), llama3);
        // transformers 4.x's older key "type", and transformers 5.x's rope_parameters
        assertEquals(
                new RopeScaling.Linear(2.5),
                HfConfig.parse(with("rope_scaling", "{\"type\":\"linear\",\"factor\":2.5}"), SRC)
                        .model()
                        .ropeScaling());
        String v5 = with("rope_theta", null)
                .replace(
                        "\"vocab_size\"",
                        "\"rope_parameters\":{\"rope_theta\":500000.0,\"rope_type\":\"llama3\",\"factor\":32.0,"
                                + "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0},\"vocab_size\"");
        LlamaConfig fromV5 = HfConfig.parse(v5, SRC).model();
        assertEquals(new RopeScaling.Llama3(32, 1, 4, fromV5.maxSeqLen()), fromV5.ropeScaling(), "default original");
        assertEquals(
                RopeScaling.NONE,
                HfConfig.parse(with("rope_scaling", "{\"rope_type\":\"default\"}"), SRC)
                        .model()
                        .ropeScaling());

        for (RopeScaling scaling : new RopeScaling[] {llama3, new RopeScaling.Linear(2.5), fromV5.ropeScaling()}) {
            LlamaConfig model = HfConfig.parse(TINYLLAMA_LIKE, SRC).model().withRopeScaling(scaling);
            String written = HfConfig.of(model).toJsonString();
            assertTrue(written.contains("\"rope_scaling\""), written);
            assertEquals(model, HfConfig.parse(written, SRC).model(), "round trip of " + scaling);
        }
        assertTrue(!HfConfig.of(HfConfig.parse(TINYLLAMA_LIKE, SRC).model())
                .toJsonString()
                .contains("rope_scaling"));
    }

    @Test
    void ropeScalingErrorsNameTheField() {
        expect(
                with("rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}"),
                "missing required field rope_scaling.low_freq_factor");
        expect(with("rope_scaling", "{\"rope_type\":\"linear\"}"), "missing required field rope_scaling.factor");
        expect(
                with("rope_scaling", "{\"rope_type\":\"linear\",\"factor\":\"2\"}"),
                "field rope_scaling.factor must be a finite number");
        expect(
                with("rope_scaling", "{\"rope_type\":\"linear\",\"factor\":-2}"),
                "rope_scaling linear: factor must be a positive finite number");
        expect(
                with("rope_scaling", LLAMA31_SCALING.replace("\"high_freq_factor\":4.0", "\"high_freq_factor\":0.5")),
                "high_freq_factor 0.5 must be greater than low_freq_factor 1.0");
        expect(with("rope_scaling", "[1]"), "field rope_scaling must be an object");
        expect(
                with("rope_scaling", LLAMA31_SCALING)
                        .replace(
                                "\"vocab_size\"",
                                "\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0},\"vocab_size\""),
                "disagree");
    }

    @Test
    void malformedJson() throws IOException {
        expect("{\"model_type\": \"llama\",", "not valid JSON");
        expect("[1]", "must be a JSON object");
        expect(TINYLLAMA_LIKE + "}", "content after the closing brace");
        expect("{model_type: llama}", "not valid JSON");
        Path f = tmp.resolve("config.json");
        Files.write(f, new byte[] {'{', (byte) 0xFF, '}'});
        assertMessage(assertThrows(CheckpointFormatException.class, () -> HfConfig.read(f)), "not valid UTF-8");
        assertMessage(
                assertThrows(CheckpointFormatException.class, () -> HfConfig.read(tmp.resolve("none.json"))),
                "file not found");
    }
}
