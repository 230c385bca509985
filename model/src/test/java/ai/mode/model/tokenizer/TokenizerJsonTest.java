package ai.mode.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** tokenizer.json: save/load identity, Hugging Face layout, GPT-2-style variants, and one-line errors for bad files. */
class TokenizerJsonTest {

    @TempDir
    static Path dir;

    static BpeTokenizer tok;
    static Path saved;

    @BeforeAll
    static void trainAndSave() throws IOException {
        tok = BpeTrainer.train(BpeTokenizerTest.syntheticTexts(5, 100), 330, List.of("<|pad|>"));
        saved = dir.resolve("tokenizer.json");
        tok.save(saved);
    }

    @Test
    void saveThenLoadGivesTheSameTokenizer() throws IOException {
        BpeTokenizer loaded = BpeTokenizer.load(saved);
        assertEquals(tok.fingerprint(), loaded.fingerprint());
        assertEquals(tok.vocabSize(), loaded.vocabSize());
        assertEquals(tok.specialTokens(), loaded.specialTokens());
        assertEquals(tok.endOfTextId(), loaded.endOfTextId());
        for (byte[] t : BpeTokenizerTest.syntheticTexts(6, 20)) assertArrayEquals(tok.encode(t), loaded.encode(t));
        Path again = dir.resolve("again.json");
        loaded.save(again);
        assertArrayEquals(Files.readAllBytes(saved), Files.readAllBytes(again), "save is not byte-stable");
        assertArrayEquals(Files.readAllBytes(saved), tok.toJson());
        assertEquals(tok, BpeTokenizer.fromJson(tok.toJson(), "in-memory"));
    }

    @Test
    void fileHasHuggingFaceByteLevelBpeLayout() throws IOException {
        JsonObject o = JsonParser.parseString(Files.readString(saved)).getAsJsonObject();
        JsonObject model = o.getAsJsonObject("model");
        assertEquals("BPE", model.get("type").getAsString());
        assertEquals("ByteLevel", o.getAsJsonObject("pre_tokenizer").get("type").getAsString());
        assertEquals("ByteLevel", o.getAsJsonObject("decoder").get("type").getAsString());
        assertEquals(tok.vocabSize() - 2, model.getAsJsonObject("vocab").size());
        assertEquals((int) 'A', model.getAsJsonObject("vocab").get("A").getAsInt());
        assertEquals(' ', tok.tokenBytes(model.getAsJsonObject("vocab").get("Ġ").getAsInt())[0]);
        assertEquals(tok.mergeCount(), model.getAsJsonArray("merges").size());
        JsonArray added = o.getAsJsonArray("added_tokens");
        assertEquals(
                BpeTokenizer.END_OF_TEXT,
                added.get(0).getAsJsonObject().get("content").getAsString());
        assertEquals(tok.endOfTextId(), added.get(0).getAsJsonObject().get("id").getAsInt());
        assertTrue(added.get(1).getAsJsonObject().get("special").getAsBoolean());
    }

    @Test
    void acceptsGpt2StyleVariants() throws IOException {
        // GPT-2 lists <|endoftext|> in the vocab too, and newer files write merges as pairs.
        BpeTokenizer loaded = loadEdited("variant.json", o -> {
            JsonObject model = o.getAsJsonObject("model");
            model.getAsJsonObject("vocab").addProperty(BpeTokenizer.END_OF_TEXT, tok.endOfTextId());
            JsonArray pairs = new JsonArray();
            for (var m : model.getAsJsonArray("merges")) {
                String[] parts = m.getAsString().split(" ");
                JsonArray p = new JsonArray();
                p.add(parts[0]);
                p.add(parts[1]);
                pairs.add(p);
            }
            model.add("merges", pairs);
        });
        assertEquals(tok.fingerprint(), loaded.fingerprint());
    }

    @Test
    void ignoreMergesEncodesWholeVocabularyWords() throws IOException {
        // A vocabulary word that no merge reaches: only ignore_merges maps " zqx" to it directly.
        Consumer<JsonObject> addWord =
                o -> o.getAsJsonObject("model").getAsJsonObject("vocab").addProperty("Ġzqx", 330);
        BpeTokenizer plain = loadEdited("plain.json", addWord);
        BpeTokenizer direct = loadEdited(
                "ignore.json", addWord.andThen(o -> o.getAsJsonObject("model").addProperty("ignore_merges", true)));
        assertTrue(direct.ignoresMerges());
        assertArrayEquals(new int[] {330}, direct.encode(" zqx"));
        assertTrue(plain.encode(" zqx").length > 1);
        byte[] text = "the quick brown fox zqx".getBytes(StandardCharsets.UTF_8);
        assertArrayEquals(text, direct.decode(direct.encode(text)));
    }

    @Test
    void malformedFilesGiveOneLineErrors() throws IOException {
        String good = Files.readString(saved);
        expectError("missing.json", null, "tokenizer file not found");
        expectError("truncated.json", good.substring(0, good.length() / 2), "not valid JSON");
        expectError("garbage.json", "{\"model\": [1, 2,", "not valid JSON");
        expectError("array.json", "[1, 2]", "top level must be a JSON object");
        expectEdited(
                "wordpiece.json",
                o -> o.getAsJsonObject("model").addProperty("type", "WordPiece"),
                "model.type is 'WordPiece'");
        expectEdited(
                "normalizer.json",
                o -> {
                    JsonObject n = new JsonObject();
                    n.addProperty("type", "NFC");
                    o.add("normalizer", n);
                },
                "normalizer 'NFC' is not supported");
        expectEdited(
                "metaspace.json",
                o -> o.getAsJsonObject("pre_tokenizer").addProperty("type", "Metaspace"),
                "pre_tokenizer 'Metaspace' is not supported");
        expectEdited("nomodel.json", o -> o.remove("model"), "'model' is missing");
        expectEdited(
                "nobyte.json",
                o -> o.getAsJsonObject("model").getAsJsonObject("vocab").remove("Ċ"),
                "no token has id 10");
        expectEdited(
                "gap.json",
                o -> {
                    JsonObject v = o.getAsJsonObject("model").getAsJsonObject("vocab");
                    v.addProperty("Ċ", 5000);
                },
                "no token has id 10");
        expectEdited(
                "badmerge.json",
                o -> o.getAsJsonObject("model")
                        .getAsJsonArray("merges")
                        .set(0, new com.google.gson.JsonPrimitive("Ġ zzzq")),
                "'zzzq' is not in model.vocab");
        expectEdited(
                "mergeform.json",
                o -> o.getAsJsonObject("model")
                        .getAsJsonArray("merges")
                        .set(0, new com.google.gson.JsonPrimitive("nospace")),
                "is not two tokens separated by one space");
        expectEdited(
                "notbyte.json",
                o -> o.getAsJsonObject("model").getAsJsonObject("vocab").addProperty("a b", 330),
                "is not a byte-level symbol");
        expectEdited(
                "negid.json",
                o -> o.getAsJsonObject("model").getAsJsonObject("vocab").addProperty("Ġzz", -3),
                "must be a non-negative integer id");
        expectEdited(
                "fallback.json",
                o -> o.getAsJsonObject("model").addProperty("byte_fallback", true),
                "byte_fallback=true is not supported");
        expectEdited(
                "mergeproduct.json",
                o -> {
                    JsonArray merges = o.getAsJsonObject("model").getAsJsonArray("merges");
                    merges.add("Ċ Ċ");
                    if (o.getAsJsonObject("model").getAsJsonObject("vocab").has("ĊĊ")) {
                        o.getAsJsonObject("model").getAsJsonObject("vocab").remove("ĊĊ");
                    }
                },
                null);
        Path invalid = dir.resolve("latin1.json");
        Files.write(invalid, new byte[] {'{', '"', (byte) 0xE9, '"', ':', '1', '}'});
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> BpeTokenizer.load(invalid));
        assertOneLine(e.getMessage());
        assertTrue(e.getMessage().contains("not valid UTF-8 (at byte offset 2)"), e.getMessage());
    }

    private static BpeTokenizer loadEdited(String name, Consumer<JsonObject> edit) throws IOException {
        JsonObject o = JsonParser.parseString(Files.readString(saved)).getAsJsonObject();
        edit.accept(o);
        Path p = dir.resolve(name);
        Files.writeString(p, o.toString());
        return BpeTokenizer.load(p);
    }

    private static void expectEdited(String name, Consumer<JsonObject> edit, String expected) {
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> loadEdited(name, edit), name);
        assertOneLine(e.getMessage());
        assertTrue(e.getMessage().contains(name), e.getMessage());
        if (expected != null) assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    private static void expectError(String name, String content, String expected) throws IOException {
        Path p = dir.resolve(name);
        if (content != null) Files.writeString(p, content);
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> BpeTokenizer.load(p));
        assertOneLine(e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().contains(name), e.getMessage());
    }

    private static void assertOneLine(String message) {
        assertFalse(message.contains("\n"), "multi-line message: " + message);
        assertTrue(message.length() < 400, "overlong message: " + message);
    }
}
