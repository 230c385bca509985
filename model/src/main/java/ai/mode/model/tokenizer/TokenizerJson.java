package ai.mode.model.tokenizer;

import ai.mode.model.json.JsonMessages;
import ai.mode.model.text.StrictUtf8;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.io.Writer;
import java.math.BigDecimal;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes Hugging Face {@code tokenizer.json} files for byte-level BPE: {@code model.type = "BPE"} with
 * {@code vocab} and {@code merges}, a {@code ByteLevel} pre-tokenizer and decoder, special tokens in
 * {@code added_tokens}. Anything else (normalizers, other models, byte fallback, prefix spaces) is rejected with a
 * one-line message naming the field.
 */
final class TokenizerJson {

    private TokenizerJson() {}

    static void write(BpeTokenizer tok, Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, file.getFileName() + ".", ".tmp");
        try {
            try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                writeJson(tok, w);
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void writeJson(BpeTokenizer tok, Writer out) throws IOException {
        JsonWriter w = new JsonWriter(out);
        w.setIndent("  ");
        w.setHtmlSafe(false);
        w.setSerializeNulls(true);
        w.beginObject();
        w.name("version").value("1.0");
        w.name("truncation").nullValue();
        w.name("padding").nullValue();
        w.name("added_tokens").beginArray();
        for (Map.Entry<String, Integer> e : tok.specialTokens().entrySet()) {
            w.beginObject();
            w.name("id").value(e.getValue());
            w.name("content").value(e.getKey());
            w.name("single_word").value(false);
            w.name("lstrip").value(false);
            w.name("rstrip").value(false);
            w.name("normalized").value(false);
            w.name("special").value(true);
            w.endObject();
        }
        w.endArray();
        w.name("normalizer").nullValue();
        w.name("pre_tokenizer");
        byteLevel(w, false);
        w.name("post_processor");
        byteLevel(w, false);
        w.name("decoder");
        byteLevel(w, true);
        w.name("model").beginObject();
        w.name("type").value("BPE");
        w.name("dropout").nullValue();
        w.name("unk_token").nullValue();
        w.name("continuing_subword_prefix").nullValue();
        w.name("end_of_word_suffix").nullValue();
        w.name("fuse_unk").value(false);
        w.name("byte_fallback").value(false);
        w.name("ignore_merges").value(tok.ignoresMerges());
        w.name("vocab").beginObject();
        byte[][] ordinary = tok.ordinaryTokenBytes();
        for (int id = 0; id < ordinary.length; id++) {
            if (ordinary[id] != null) w.name(ByteLevel.toSymbols(ordinary[id])).value(id);
        }
        w.endObject();
        w.name("merges").beginArray();
        for (int[] m : tok.mergePairs()) {
            // Byte-level symbols never include U+0020, so "left right" is unambiguous.
            w.value(tok.tokenString(m[0]) + " " + tok.tokenString(m[1]));
        }
        w.endArray();
        w.endObject();
        w.endObject();
        w.flush();
        out.write('\n');
    }

    private static void byteLevel(JsonWriter w, boolean decoder) throws IOException {
        w.beginObject();
        w.name("type").value("ByteLevel");
        w.name("add_prefix_space").value(false);
        w.name("trim_offsets").value(!decoder);
        w.name("use_regex").value(true);
        w.endObject();
    }

    static BpeTokenizer read(Path file) throws IOException {
        return parse(readBytes(file), file.toString());
    }

    /** The file's content; a missing file is a one-line {@link TokenizerFileException}. */
    static byte[] readBytes(Path file) throws IOException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new TokenizerFileException("tokenizer file not found: " + file);
        }
    }

    /** Serialised form, exactly what {@link #write} puts in the file. */
    static byte[] toBytes(BpeTokenizer tok) {
        java.io.StringWriter w = new java.io.StringWriter();
        try {
            writeJson(tok, w);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return w.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** Parses and validates {@code tokenizer.json} content; {@code file} names it in error messages. */
    static BpeTokenizer parse(byte[] bytes, String file) throws TokenizerFileException {
        JsonObject o = parseRoot(bytes, file);
        if (isPresent(o, "normalizer")) {
            throw fail(
                    file,
                    "normalizer " + describe(o.get("normalizer")) + " is not supported; only byte-level BPE "
                            + "without a normalizer can be loaded");
        }
        checkByteLevel(file, o, "pre_tokenizer", true);
        checkByteLevel(file, o, "decoder", false);
        JsonObject model = object(file, o, "model");
        String type = model.has("type") ? string(file, model.get("type"), "model.type") : "BPE";
        if (!type.equals("BPE")) {
            throw fail(file, "model.type is '" + type + "'; only byte-level BPE tokenizers are supported");
        }
        if (isTrue(model, "byte_fallback")) throw fail(file, "model.byte_fallback=true is not supported");
        for (String f : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (isPresent(model, f) && !string(file, model.get(f), "model." + f).isEmpty()) {
                throw fail(file, "model." + f + " is not supported for byte-level BPE");
            }
        }
        if (isPresent(model, "dropout")
                && number(file, model.get("dropout"), "model.dropout").doubleValue() != 0) {
            throw fail(file, "model.dropout is not supported (set it to null)");
        }
        boolean ignoreMerges = isTrue(model, "ignore_merges");

        // Special tokens first: a special token may also appear in the vocab (GPT-2 lists <|endoftext|> in both).
        Map<String, Integer> specials = new LinkedHashMap<>();
        if (isPresent(o, "added_tokens")) {
            JsonArray added = array(file, o.get("added_tokens"), "added_tokens");
            for (int i = 0; i < added.size(); i++) {
                String where = "added_tokens[" + i + "]";
                if (!added.get(i).isJsonObject()) throw fail(file, where + " must be an object");
                JsonObject t = added.get(i).getAsJsonObject();
                if (!t.has("id") || !t.has("content")) throw fail(file, where + " needs 'id' and 'content'");
                int id = nonNegativeInt(file, t.get("id"), where + ".id");
                String content = string(file, t.get("content"), where + ".content");
                if (content.isEmpty()) throw fail(file, where + ".content is empty");
                Integer previous = specials.put(content, id);
                if (previous != null && previous != id) {
                    throw fail(file, where + ": '" + content + "' is listed with ids " + previous + " and " + id);
                }
            }
        }
        JsonObject vocab = object(file, model, "vocab");
        Map<Integer, String> byId = new HashMap<>();
        Map<String, Integer> idOf = new HashMap<>();
        int maxId = -1;
        for (Map.Entry<String, JsonElement> e : vocab.entrySet()) {
            String token = e.getKey();
            int id = nonNegativeInt(file, e.getValue(), "model.vocab['" + token + "']");
            Integer specialId = specials.get(token);
            if (specialId != null) {
                if (specialId != id) {
                    throw fail(
                            file,
                            "special token '" + token + "' has id " + specialId + " in added_tokens but " + id
                                    + " in model.vocab");
                }
                continue;
            }
            String previous = byId.put(id, token);
            if (previous != null)
                throw fail(file, "model.vocab gives id " + id + " to both '" + previous + "' and '" + token + "'");
            idOf.put(token, id);
            maxId = Math.max(maxId, id);
        }
        for (Map.Entry<String, Integer> e : specials.entrySet()) {
            if (byId.containsKey(e.getValue())) {
                throw fail(
                        file,
                        "special token '" + e.getKey() + "' and vocab token '" + byId.get(e.getValue()) + "' share id "
                                + e.getValue());
            }
            maxId = Math.max(maxId, e.getValue());
        }
        int n = maxId + 1;
        byte[][] tokenBytes = new byte[n][];
        for (int id = 0; id < n; id++) {
            String token = byId.get(id);
            if (token == null) {
                if (specials.containsValue(id)) continue;
                throw fail(file, "ids must be contiguous from 0 to " + maxId + " but no token has id " + id);
            }
            try {
                tokenBytes[id] = ByteLevel.fromSymbols(token);
            } catch (IllegalArgumentException e) {
                throw fail(
                        file,
                        "model.vocab token '" + token + "' (id " + id + "): " + e.getMessage()
                                + "; only byte-level BPE vocabularies are supported");
            }
            if (tokenBytes[id].length == 0) throw fail(file, "model.vocab has an empty token (id " + id + ")");
        }
        List<int[]> merges = new ArrayList<>();
        JsonArray mergeArray =
                isPresent(model, "merges") ? array(file, model.get("merges"), "model.merges") : new JsonArray();
        for (int i = 0; i < mergeArray.size(); i++) {
            JsonElement m = mergeArray.get(i);
            String left, right;
            if (m.isJsonPrimitive() && m.getAsJsonPrimitive().isString()) {
                String s = m.getAsString();
                int space = s.indexOf(' ');
                if (space <= 0 || space == s.length() - 1 || s.indexOf(' ', space + 1) >= 0) {
                    throw fail(file, "model.merges[" + i + "] ('" + s + "') is not two tokens separated by one space");
                }
                left = s.substring(0, space);
                right = s.substring(space + 1);
            } else if (m.isJsonArray()
                    && m.getAsJsonArray().size() == 2
                    && m.getAsJsonArray().get(0).isJsonPrimitive()
                    && m.getAsJsonArray().get(1).isJsonPrimitive()) {
                left = m.getAsJsonArray().get(0).getAsString();
                right = m.getAsJsonArray().get(1).getAsString();
            } else {
                throw fail(file, "model.merges[" + i + "] must be a string \"a b\" or a pair [\"a\", \"b\"]");
            }
            Integer a = idOf.get(left), b = idOf.get(right);
            if (a == null || b == null) {
                throw fail(
                        file,
                        "model.merges[" + i + "] ('" + left + " " + right + "'): '" + (a == null ? left : right)
                                + "' is not in model.vocab");
            }
            merges.add(new int[] {a, b});
        }
        try {
            return new BpeTokenizer(tokenBytes, merges, specials, ignoreMerges);
        } catch (IllegalArgumentException e) {
            throw fail(file, e.getMessage());
        }
    }

    /** The top-level object of {@code tokenizer.json} content, checked to be UTF-8 JSON. */
    static JsonObject parseRoot(byte[] bytes, String file) throws TokenizerFileException {
        String text;
        try {
            text = StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            throw fail(file, "not valid UTF-8 (at byte offset " + e.offset() + ")");
        }
        JsonElement root;
        try (Reader r = new StringReader(text)) {
            root = JsonParser.parseReader(r);
        } catch (JsonParseException | IllegalStateException | IOException e) {
            throw fail(file, "not valid JSON (" + JsonMessages.of(e) + ")");
        }
        if (!root.isJsonObject()) throw fail(file, "top level must be a JSON object");
        return root.getAsJsonObject();
    }

    private static void checkByteLevel(String file, JsonObject o, String field, boolean required)
            throws TokenizerFileException {
        if (!isPresent(o, field)) {
            if (required) throw fail(file, field + " is missing; expected {\"type\": \"ByteLevel\"}");
            return;
        }
        JsonElement e = o.get(field);
        if (!e.isJsonObject()
                || !e.getAsJsonObject().has("type")
                || !"ByteLevel".equals(e.getAsJsonObject().get("type").getAsString())) {
            throw fail(file, field + " " + describe(e) + " is not supported; expected {\"type\": \"ByteLevel\"}");
        }
        JsonObject b = e.getAsJsonObject();
        if (isTrue(b, "add_prefix_space") && required) {
            throw fail(file, field + ".add_prefix_space=true is not supported");
        }
        if (b.has("use_regex")
                && !b.get("use_regex").isJsonNull()
                && !b.get("use_regex").getAsBoolean()
                && required) {
            throw fail(file, field + ".use_regex=false is not supported");
        }
    }

    static boolean isPresent(JsonObject o, String field) {
        return o.has(field) && !o.get(field).isJsonNull();
    }

    static boolean isTrue(JsonObject o, String field) {
        JsonElement e = o.get(field);
        return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean() && e.getAsBoolean();
    }

    static JsonObject object(String file, JsonObject o, String field) throws TokenizerFileException {
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) throw fail(file, "'" + field + "' is missing");
        if (!e.isJsonObject()) throw fail(file, "'" + field + "' must be a JSON object");
        return e.getAsJsonObject();
    }

    static JsonArray array(String file, JsonElement e, String what) throws TokenizerFileException {
        if (!e.isJsonArray()) throw fail(file, what + " must be a JSON array");
        return e.getAsJsonArray();
    }

    static String string(String file, JsonElement e, String what) throws TokenizerFileException {
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw fail(file, what + " must be a string");
        }
        return e.getAsString();
    }

    static BigDecimal number(String file, JsonElement e, String what) throws TokenizerFileException {
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw fail(file, what + " must be a number");
        return e.getAsBigDecimal();
    }

    static int nonNegativeInt(String file, JsonElement e, String what) throws TokenizerFileException {
        BigDecimal v = number(file, e, what);
        if (v.signum() < 0
                || v.stripTrailingZeros().scale() > 0
                || v.compareTo(BigDecimal.valueOf(Integer.MAX_VALUE)) > 0) {
            throw fail(file, what + " must be a non-negative integer id (got " + e + ")");
        }
        return v.intValueExact();
    }

    static String describe(JsonElement e) {
        if (e.isJsonObject() && e.getAsJsonObject().has("type")) {
            JsonElement t = e.getAsJsonObject().get("type");
            return "'" + (t.isJsonPrimitive() ? t.getAsString() : t.toString()) + "'";
        }
        return e instanceof JsonPrimitive p ? p.toString() : "of this form";
    }

    static TokenizerFileException fail(String file, String message) {
        return new TokenizerFileException(file + ": " + message);
    }
}
