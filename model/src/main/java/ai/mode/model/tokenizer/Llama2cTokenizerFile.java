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
 * Converts llama2.c's {@code tokenizer.bin} (a SentencePiece BPE vocabulary exported by llama2.c: int32 max token
 * length, then per token a float32 score, an int32 length and the UTF-8 piece, with '▁' written as a space) into a
 * Hugging Face {@code tokenizer.json} in the Llama-2 layout, which {@link HfTokenizer} reads.
 *
 * <p>llama2.c merges the adjacent pair whose concatenation is the highest-scoring vocabulary piece; the BPE merges
 * written here are every split of each piece into two pieces, ranked by the piece's score (highest first), which is the
 * same order (transformers' SentencePiece conversion builds Llama-2's merges the same way). Ids 0, 1, 2 are
 * {@code <unk>}, {@code <s>}, {@code </s>} and ids 3..258 the byte tokens, as in every Llama-2 vocabulary.
 */
public final class Llama2cTokenizerFile {

    private Llama2cTokenizerFile() {}

    /**
     * Reads {@code file} and returns the equivalent {@code tokenizer.json} content.
     *
     * @param vocabSize the model's vocabulary size (the file does not store it)
     */
    public static byte[] toTokenizerJson(Path file, int vocabSize) throws IOException {
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
        return json(pieces, scores).toString().getBytes(StandardCharsets.UTF_8);
    }

    private static JsonObject json(String[] pieces, float[] scores) {
        String[] special = {"<unk>", "<s>", "</s>"};
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < pieces.length; i++) {
            String token = i < 3 ? special[i] : pieces[i].replace(' ', '▁');
            vocab.putIfAbsent(token, i);
        }
        List<String[]> merges = new ArrayList<>();
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < pieces.length; i++) order.add(i);
        order.sort(Comparator.comparingDouble((Integer i) -> -scores[i]).thenComparingInt(i -> i));
        Map<String, Integer> rankOf = new HashMap<>();
        for (int i : order) {
            if (i < 3 + 256) continue;
            String t = pieces[i].replace(' ', '▁');
            for (int cut = 1; cut < t.length(); cut++) {
                if (Character.isLowSurrogate(t.charAt(cut))) continue;
                String a = t.substring(0, cut), b = t.substring(cut);
                if (vocab.containsKey(a)
                        && vocab.containsKey(b)
                        && rankOf.putIfAbsent(a + " " + b, merges.size()) == null) {
                    merges.add(new String[] {a, b});
                }
            }
        }
        JsonObject o = new JsonObject();
        o.addProperty("version", "1.0");
        JsonArray added = new JsonArray();
        for (int i = 0; i < 3; i++) {
            JsonObject t = new JsonObject();
            t.addProperty("id", i);
            t.addProperty("content", special[i]);
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
        o.add(
                "post_processor",
                JsonParser.parseString("{\"type\":\"TemplateProcessing\","
                        + "\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                        + "\"pair\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
                        + "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":1}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],"
                        + "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}"));
        o.add(
                "decoder",
                JsonParser.parseString(
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"▁\"},"
                                + "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                                + "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"));
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", null);
        model.addProperty("unk_token", "<unk>");
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
