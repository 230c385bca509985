package ai.mode.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link HfTokenizer} against Hugging Face {@code tokenizers} itself: the fixtures in {@code hf-tokenizers/} are small
 * BPE tokenizers that {@code tokenizers} trained in the Llama-2 layout (legacy normalizer and the newer Metaspace
 * pre-tokenizer) and the Llama-3 layout, with the ids and decoded strings {@code tokenizers} produced for varied texts
 * ({@code tools/hf_tokenizers/make_fixtures.py}); every one must come out id for id and character for character.
 */
class HfTokenizerTest {

    static final List<String> NAMES = List.of("llama2-style", "llama2-metaspace", "llama3-style");

    static byte[] resource(String name) throws IOException {
        try (InputStream in = HfTokenizerTest.class.getResourceAsStream("/hf-tokenizers/" + name)) {
            if (in == null) throw new IOException("test resource hf-tokenizers/" + name + " is missing");
            return in.readAllBytes();
        }
    }

    static JsonObject expected(String name) throws IOException {
        JsonObject all = JsonParser.parseString(new String(resource("expected.json"), StandardCharsets.UTF_8))
                .getAsJsonObject();
        return all.getAsJsonObject("tokenizers").getAsJsonObject(name);
    }

    static HfTokenizer load(String name) throws IOException {
        return HfTokenizer.fromJson(resource(name + ".json"), name + ".json");
    }

    static Stream<String> names() {
        return NAMES.stream();
    }

    @ParameterizedTest
    @MethodSource("names")
    void encodesAndDecodesAsHuggingFaceTokenizers(String name) throws IOException {
        checkAgainstFixture(load(name), expected(name), name);
    }

    /** Llama-2's and Llama-3's own files write merges as "a b" strings; newer tokenizers writes pairs. */
    @ParameterizedTest
    @MethodSource("names")
    void mergesWrittenAsStringsGiveTheSameResult(String name) throws IOException {
        JsonObject o = JsonParser.parseString(new String(resource(name + ".json"), StandardCharsets.UTF_8))
                .getAsJsonObject();
        JsonArray merges = o.getAsJsonObject("model").getAsJsonArray("merges");
        JsonArray strings = new JsonArray();
        for (JsonElement m : merges) {
            strings.add(m.getAsJsonArray().get(0).getAsString() + " "
                    + m.getAsJsonArray().get(1).getAsString());
        }
        o.getAsJsonObject("model").add("merges", strings);
        HfTokenizer tok = HfTokenizer.fromJson(o.toString().getBytes(StandardCharsets.UTF_8), name);
        checkAgainstFixture(tok, expected(name), name + " (string merges)");
    }

    static void checkAgainstFixture(HfTokenizer tok, JsonObject expected, String name) {
        int checked = 0;
        for (JsonElement c : expected.getAsJsonArray("encodings")) {
            JsonObject e = c.getAsJsonObject();
            String text = e.get("text").getAsString();
            String what = name + " on " + new JsonPrimitive(text);
            if (e.has("error")) {
                IllegalArgumentException ex =
                        assertThrows(IllegalArgumentException.class, () -> tok.encode(text, true), what);
                assertTrue(ex.getMessage().contains("unpaired surrogate U+D800"), ex.getMessage());
                continue;
            }
            int[] plain = ints(e.getAsJsonArray("ids"));
            int[] special = ints(e.getAsJsonArray("ids_with_special_tokens"));
            assertArrayEquals(plain, tok.encode(text, false), what);
            assertArrayEquals(special, tok.encode(text, true), what + " with special tokens");
            assertEquals(e.get("decoded").getAsString(), tok.decode(special, false), what + " decoded");
            assertEquals(
                    e.get("decoded_skipping_special_tokens").getAsString(),
                    tok.decode(special, true),
                    what + " decoded without special tokens");
            checked++;
        }
        for (JsonElement c : expected.getAsJsonArray("decodings")) {
            JsonObject e = c.getAsJsonObject();
            int[] ids = ints(e.getAsJsonArray("ids"));
            assertEquals(e.get("decoded").getAsString(), tok.decode(ids, false), name + " decoding " + e.get("ids"));
            assertEquals(
                    e.get("decoded_skipping_special_tokens").getAsString(),
                    tok.decode(ids, true),
                    name + " decoding " + e.get("ids") + " without special tokens");
        }
        assertTrue(checked >= 20, "only " + checked + " texts in the fixture");
    }

    @Test
    void specialTokensAndTemplatesAreRead() throws IOException {
        HfTokenizer l2 = load("llama2-style");
        assertArrayEquals(new int[] {1}, l2.templatePrefix());
        assertEquals(1, l2.tokenId("<s>").orElseThrow());
        assertEquals(3 + 0xE6, l2.tokenId("<0xE6>").orElseThrow());
        assertTrue(l2.isSpecial(2));
        assertFalse(l2.isSpecial(3));
        HfTokenizer l3 = load("llama3-style");
        int bos = l3.tokenId("<|begin_of_text|>").orElseThrow();
        assertArrayEquals(new int[] {bos}, l3.templatePrefix());
        int tool = l3.tokenId("<tool>").orElseThrow();
        assertFalse(l3.isSpecial(tool));
        assertArrayEquals(new int[] {tool}, l3.encode("<tool>", false));
        assertEquals("<tool>", l3.decode(new int[] {bos, tool}, true));
        assertEquals(l3.vocabSize(), tool + 1);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> l3.decode(new int[] {l3.vocabSize()}, false));
        assertTrue(e.getMessage().contains("no token has id " + l3.vocabSize()), e.getMessage());
    }

    @Test
    void unsupportedComponentsAreRefusedInOneLine() throws IOException {
        expectRefused(
                "llama2-style",
                o -> o.add("normalizer", JsonParser.parseString("{\"type\":\"NFKC\"}")),
                "normalizer 'NFKC' is not supported");
        expectRefused(
                "llama3-style",
                o -> o.getAsJsonObject("pre_tokenizer")
                        .getAsJsonArray("pretokenizers")
                        .get(0)
                        .getAsJsonObject()
                        .addProperty("behavior", "Removed"),
                "pre_tokenizer.pretokenizers[0] with behavior 'Removed' is not supported");
        expectRefused(
                "llama3-style",
                o -> o.getAsJsonObject("model").addProperty("type", "WordPiece"),
                "model.type 'WordPiece' is not supported");
        expectRefused(
                "llama3-style",
                o -> o.getAsJsonArray("added_tokens").get(0).getAsJsonObject().addProperty("lstrip", true),
                "added_tokens[0] ('<|begin_of_text|>') has lstrip=true");
        expectRefused(
                "llama2-style",
                o -> o.getAsJsonArray("added_tokens").get(1).getAsJsonObject().addProperty("normalized", true),
                "added_tokens[1] ('<s>') is matched after normalization");
        expectRefused(
                "llama2-style",
                o -> o.add("decoder", JsonParser.parseString("{\"type\":\"WordPiece\"}")),
                "decoder 'WordPiece' is not supported");
        expectRefused(
                "llama2-style",
                o -> o.add("post_processor", JsonParser.parseString("{\"type\":\"BertProcessing\"}")),
                "post_processor 'BertProcessing' is not supported");
        expectRefused(
                "llama2-style",
                o -> o.getAsJsonObject("model").getAsJsonObject("vocab").remove("▁t"),
                "model.merges[0] ('▁ t'): '▁t' is not in model.vocab");
        expectRefused(
                "llama3-style",
                o -> o.getAsJsonObject("pre_tokenizer")
                        .getAsJsonArray("pretokenizers")
                        .get(0)
                        .getAsJsonObject()
                        .add("pattern", JsonParser.parseString("{\"Regex\":\"(unclosed\"}")),
                "pre_tokenizer.pretokenizers[0].pattern.Regex is not a regex Java can compile");
    }

    private static void expectRefused(String name, Consumer<JsonObject> edit, String expected) throws IOException {
        JsonObject o = JsonParser.parseString(new String(resource(name + ".json"), StandardCharsets.UTF_8))
                .getAsJsonObject();
        edit.accept(o);
        TokenizerFileException e = assertThrows(
                TokenizerFileException.class,
                () -> HfTokenizer.fromJson(o.toString().getBytes(StandardCharsets.UTF_8), "edited/" + name + ".json"));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().startsWith("edited/" + name + ".json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    static int[] ints(JsonArray a) {
        List<Integer> l = new ArrayList<>();
        for (JsonElement x : a) l.add(x.getAsInt());
        return l.stream().mapToInt(Integer::intValue).toArray();
    }
}
