package ai.mode.model.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts a SentencePiece BPE vocabulary (pieces, scores and piece types), as llama2.c's {@code tokenizer.bin} and
 * GGUF's {@code tokenizer.ggml.*} "llama" metadata store it, into a Hugging Face {@code tokenizer.json} in the Llama-2
 * layout, which {@link HfTokenizer} reads.
 *
 * <p>SentencePiece (and llama2.c) merge the adjacent pair whose concatenation is the highest-scoring vocabulary piece;
 * the BPE merges written here are every split of each normal piece into two pieces, ranked by the piece's score
 * (highest first), which is the same order (transformers' SentencePiece conversion builds Llama-2's merges the same
 * way). Control and unknown pieces become special added tokens, byte pieces ({@code <0xNN>}) the byte fallback.
 */
public final class SentencePieceBpe {

    private SentencePieceBpe() {}

    /** SentencePiece's piece types, as GGUF's {@code tokenizer.ggml.token_type} stores them. */
    public static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    /**
     * Reads llama2.c's {@code tokenizer.bin} (int32 max token length, then per token a float32 score, an int32 length
     * and the UTF-8 piece, '▁' written as a space; ids 0, 1, 2 are unknown, BOS, EOS and 3..258 the bytes, as in every
     * Llama-2 vocabulary) and returns the equivalent {@code tokenizer.json} content.
     *
     * @param vocabSize the model's vocabulary size (the file does not store it)
     */
    public static byte[] fromLlama2c(Path file, int vocabSize) throws IOException {
        byte[] raw = TokenizerJson.readBytes(file);
        String where = file.toString();
        ByteBuffer in = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        if (raw.length < 4)
            throw TokenizerJson.fail(where, "too short for a llama2.c tokenizer (" + raw.length + " bytes)");
        int maxLen = in.getInt();
        String[] pieces = new String[vocabSize];
        float[] scores = new float[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            if (in.remaining() < 8) {
                throw TokenizerJson.fail(
                        where,
                        "ends at byte " + in.position() + " inside token " + i + " of " + vocabSize
                                + "; the file is truncated or belongs to a model with a smaller vocabulary");
            }
            scores[i] = in.getFloat();
            int len = in.getInt();
            if (len < 0 || len > maxLen || len > in.remaining()) {
                throw TokenizerJson.fail(
                        where,
                        "token " + i + " at byte " + (in.position() - 4) + " has length " + len + " (max token length "
                                + maxLen + ", " + in.remaining() + " bytes left)");
            }
            byte[] piece = new byte[len];
            in.get(piece);
            String s = HfPipeline.decodeStrict(piece);
            if (s == null) throw TokenizerJson.fail(where, "token " + i + " is not valid UTF-8");
            pieces[i] = s;
        }
        if (in.hasRemaining()) {
            throw TokenizerJson.fail(
                    where,
                    in.remaining() + " bytes follow the " + vocabSize + " tokens; the tokenizer belongs to a model "
                            + "with a larger vocabulary");
        }
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            types[i] = i == 0 ? UNKNOWN : i < 3 ? CONTROL : i < 3 + 256 ? BYTE : NORMAL;
            if (i < 3) pieces[i] = new String[] {"<unk>", "<s>", "</s>"}[i];
            pieces[i] = pieces[i].replace(' ', '▁');
        }
        return toTokenizerJson(pieces, scores, types, 1, true);
    }

    /**
     * The {@code tokenizer.json} of a SentencePiece BPE vocabulary.
     *
     * @param pieces  the pieces by id, spaces written as '▁'
     * @param types   each piece's type ({@link #NORMAL}, {@link #CONTROL}, ...)
     * @param bosId   the id of the begin-of-sequence token the template adds, or -1
     * @param addBos  whether encoding with special tokens starts with it
     * @throws IllegalArgumentException when the arrays disagree in length or the vocabulary has two unknown pieces
     */
    public static byte[] toTokenizerJson(String[] pieces, float[] scores, int[] types, int bosId, boolean addBos) {
        if (pieces.length != scores.length || pieces.length != types.length) {
            throw new IllegalArgumentException("pieces, scores and types have different lengths (" + pieces.length
                    + ", " + scores.length + ", " + types.length + ")");
        }
        return json(pieces, scores, types, bosId, addBos).toString().getBytes(StandardCharsets.UTF_8);
    }

    private static JsonObject json(String[] pieces, float[] scores, int[] types, int bosId, boolean addBos) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        String unk = null;
        for (int i = 0; i < pieces.length; i++) {
            vocab.putIfAbsent(pieces[i], i);
            if (types[i] == UNKNOWN) {
                if (unk != null) throw new IllegalArgumentException("two unknown pieces: " + unk + " and " + pieces[i]);
                unk = pieces[i];
            }
        }
        List<String[]> merges = new ArrayList<>();
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < pieces.length; i++) if (types[i] == NORMAL || types[i] == USER_DEFINED) order.add(i);
        order.sort(Comparator.comparingDouble((Integer i) -> -scores[i]).thenComparingInt(i -> i));
        Map<String, Integer> rankOf = new HashMap<>();
        for (int i : order) {
            String t = pieces[i];
            for (int cut = 1; cut < t.length(); cut++) {
                if (Character.isLowSurrogate(t.charAt(cut))) continue;
                String a = t.substring(0, cut), b = t.substring(cut);
                Integer ia = vocab.get(a), ib = vocab.get(b);
                if (ia == null || ib == null || types[ia] == CONTROL || types[ib] == CONTROL) continue;
                if (rankOf.putIfAbsent(a + " " + b, merges.size()) == null) merges.add(new String[] {a, b});
            }
        }
        JsonObject o = new JsonObject();
        o.addProperty("version", "1.0");
        JsonArray added = new JsonArray();
        for (int i = 0; i < pieces.length; i++) {
            if (types[i] != CONTROL && types[i] != UNKNOWN) continue;
            JsonObject t = new JsonObject();
            t.addProperty("id", i);
            t.addProperty("content", pieces[i]);
            t.addProperty("single_word", false);
            t.addProperty("lstrip", false);
            t.addProperty("rstrip", false);
            t.addProperty("normalized", false);
            t.addProperty("special", true);
            added.add(t);
        }
        o.add("added_tokens", added);
        o.add(
                "normalizer",
                JsonParser.parseString(
                        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"▁\"},"
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]}"));
        o.add("pre_tokenizer", null);
        if (addBos && bosId >= 0) {
            JsonObject bos = new JsonObject();
            bos.addProperty("id", pieces[bosId]);
            bos.addProperty("type_id", 0);
            JsonObject special = new JsonObject();
            special.add("SpecialToken", bos);
            JsonObject seq = JsonParser.parseString("{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}")
                    .getAsJsonObject();
            JsonArray single = new JsonArray();
            single.add(special);
            single.add(seq);
            JsonObject entry = new JsonObject();
            entry.addProperty("id", pieces[bosId]);
            JsonArray ids = new JsonArray();
            ids.add(bosId);
            entry.add("ids", ids);
            JsonArray names = new JsonArray();
            names.add(pieces[bosId]);
            entry.add("tokens", names);
            JsonObject specials = new JsonObject();
            specials.add(pieces[bosId], entry);
            JsonObject template = new JsonObject();
            template.addProperty("type", "TemplateProcessing");
            template.add("single", single);
            template.add("special_tokens", specials);
            o.add("post_processor", template);
        }
        o.add(
                "decoder",
                JsonParser.parseString(
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"▁\"},"
                                + "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                                + "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"));
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", null);
        if (unk != null) model.addProperty("unk_token", unk);
        model.add("continuing_subword_prefix", null);
        model.add("end_of_word_suffix", null);
        model.addProperty("fuse_unk", true);
        model.addProperty("byte_fallback", true);
        model.addProperty("ignore_merges", false);
        JsonObject v = new JsonObject();
        vocab.forEach(v::addProperty);
        model.add("vocab", v);
        JsonArray m = new JsonArray();
        for (String[] pair : merges) m.add(pair[0] + " " + pair[1]);
        model.add("merges", m);
        o.add("model", model);
        return o;
    }
}
