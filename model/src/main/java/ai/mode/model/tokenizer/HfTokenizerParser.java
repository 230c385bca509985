package ai.mode.model.tokenizer;

import static ai.mode.model.tokenizer.TokenizerJson.array;
import static ai.mode.model.tokenizer.TokenizerJson.describe;
import static ai.mode.model.tokenizer.TokenizerJson.fail;
import static ai.mode.model.tokenizer.TokenizerJson.isPresent;
import static ai.mode.model.tokenizer.TokenizerJson.isTrue;
import static ai.mode.model.tokenizer.TokenizerJson.nonNegativeInt;
import static ai.mode.model.tokenizer.TokenizerJson.number;
import static ai.mode.model.tokenizer.TokenizerJson.object;
import static ai.mode.model.tokenizer.TokenizerJson.string;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads a Hugging Face {@code tokenizer.json} into an {@link HfTokenizer}, accepting exactly the components the
 * pipeline implements and refusing every other one (or an option of one that would change the result) with a
 * one-line {@link TokenizerFileException} that names the file and the field.
 */
final class HfTokenizerParser {

    private final String file;

    private HfTokenizerParser(String file) {
        this.file = file;
    }

    static HfTokenizer parse(byte[] bytes, String file) throws TokenizerFileException {
        return new HfTokenizerParser(file).parse(TokenizerJson.parseRoot(bytes, file));
    }

    private HfTokenizer parse(JsonObject o) throws TokenizerFileException {
        List<HfPipeline.Normalizer> normalizers = new ArrayList<>();
        if (isPresent(o, "normalizer")) normalizer(o.get("normalizer"), "normalizer", normalizers);
        HfPipeline.PreTokenizer pre =
                isPresent(o, "pre_tokenizer") ? preTokenizer(o.get("pre_tokenizer"), "pre_tokenizer") : null;
        List<HfPipeline.Decoder> decoders = null;
        if (isPresent(o, "decoder")) {
            decoders = new ArrayList<>();
            decoder(o.get("decoder"), "decoder", decoders);
        }
        List<HfTokenizer.AddedToken> added = addedTokens(o, !normalizers.isEmpty());
        HfBpeModel model = model(object(file, o, "model"), added);
        List<int[]> template = new ArrayList<>(List.of(new int[0], new int[0]));
        if (isPresent(o, "post_processor")) postProcessor(o.get("post_processor"), "post_processor", template);
        for (int[] part : template) {
            for (int id : part) {
                if (id >= Math.max(model.size(), maxId(added) + 1)) {
                    throw fail(file, "post_processor uses id " + id + ", which no token has");
                }
            }
        }
        return new HfTokenizer(file, normalizers, pre, model, decoders, added, template.get(0), template.get(1));
    }

    private static int maxId(List<HfTokenizer.AddedToken> added) {
        int m = -1;
        for (HfTokenizer.AddedToken t : added) m = Math.max(m, t.id());
        return m;
    }

    private List<HfTokenizer.AddedToken> addedTokens(JsonObject o, boolean hasNormalizer)
            throws TokenizerFileException {
        List<HfTokenizer.AddedToken> out = new ArrayList<>();
        if (!isPresent(o, "added_tokens")) return out;
        JsonArray a = array(file, o.get("added_tokens"), "added_tokens");
        Map<Integer, String> seen = new HashMap<>();
        for (int i = 0; i < a.size(); i++) {
            String where = "added_tokens[" + i + "]";
            if (!a.get(i).isJsonObject()) throw fail(file, where + " must be an object");
            JsonObject t = a.get(i).getAsJsonObject();
            if (!t.has("id") || !t.has("content")) throw fail(file, where + " needs 'id' and 'content'");
            int id = nonNegativeInt(file, t.get("id"), where + ".id");
            String content = string(file, t.get("content"), where + ".content");
            if (content.isEmpty()) throw fail(file, where + ".content is empty");
            for (String flag : new String[] {"lstrip", "rstrip", "single_word"}) {
                if (isTrue(t, flag)) {
                    throw fail(file, where + " ('" + content + "') has " + flag + "=true, which is not supported");
                }
            }
            if (hasNormalizer && (!t.has("normalized") || isTrue(t, "normalized"))) {
                throw fail(
                        file,
                        where + " ('" + content + "') is matched after normalization (normalized=true), which is "
                                + "supported only for tokenizers without a normalizer");
            }
            String previous = seen.put(id, content);
            if (previous != null) throw fail(file, where + ": id " + id + " is also '" + previous + "'");
            out.add(new HfTokenizer.AddedToken(content, id, isTrue(t, "special")));
        }
        return out;
    }

    private HfBpeModel model(JsonObject m, List<HfTokenizer.AddedToken> added) throws TokenizerFileException {
        String type = m.has("type") ? string(file, m.get("type"), "model.type") : "BPE";
        if (!type.equals("BPE")) {
            throw fail(file, "model.type '" + type + "' is not supported; only BPE models (Llama-2, Llama-3) are");
        }
        for (String f : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (isPresent(m, f) && !string(file, m.get(f), "model." + f).isEmpty()) {
                throw fail(file, "model." + f + " is not supported");
            }
        }
        if (isPresent(m, "dropout")
                && number(file, m.get("dropout"), "model.dropout").signum() != 0) {
            throw fail(file, "model.dropout is not supported (set it to null)");
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : object(file, m, "vocab").entrySet()) {
            vocab.put(e.getKey(), nonNegativeInt(file, e.getValue(), "model.vocab['" + e.getKey() + "']"));
        }
        for (HfTokenizer.AddedToken t : added) {
            Integer inVocab = vocab.get(t.content());
            if (inVocab != null && inVocab != t.id()) {
                throw fail(
                        file,
                        "added token '" + t.content() + "' has id " + t.id() + " but model.vocab gives it " + inVocab);
            }
        }
        List<String[]> merges = new ArrayList<>();
        JsonArray ma = isPresent(m, "merges") ? array(file, m.get("merges"), "model.merges") : new JsonArray();
        for (int i = 0; i < ma.size(); i++) merges.add(merge(ma.get(i), i));
        int unkId = -1;
        if (isPresent(m, "unk_token")) {
            String unk = string(file, m.get("unk_token"), "model.unk_token");
            Integer id = vocab.get(unk);
            if (id == null) throw fail(file, "model.unk_token '" + unk + "' is not in model.vocab");
            unkId = id;
        }
        try {
            return new HfBpeModel(
                    vocab,
                    merges,
                    isTrue(m, "byte_fallback"),
                    unkId,
                    isTrue(m, "fuse_unk"),
                    isTrue(m, "ignore_merges"));
        } catch (IllegalArgumentException e) {
            throw fail(file, e.getMessage());
        }
    }

    private String[] merge(JsonElement m, int i) throws TokenizerFileException {
        if (m.isJsonPrimitive() && m.getAsJsonPrimitive().isString()) {
            String s = m.getAsString();
            int space = s.indexOf(' ');
            if (space <= 0 || space == s.length() - 1 || s.indexOf(' ', space + 1) >= 0) {
                throw fail(file, "model.merges[" + i + "] ('" + s + "') is not two tokens separated by one space");
            }
            return new String[] {s.substring(0, space), s.substring(space + 1)};
        }
        if (m.isJsonArray() && m.getAsJsonArray().size() == 2) {
            return new String[] {
                string(file, m.getAsJsonArray().get(0), "model.merges[" + i + "][0]"),
                string(file, m.getAsJsonArray().get(1), "model.merges[" + i + "][1]")
            };
        }
        throw fail(file, "model.merges[" + i + "] must be a string \"a b\" or a pair [\"a\", \"b\"]");
    }

    private String type(JsonElement e, String where) throws TokenizerFileException {
        if (!e.isJsonObject()) throw fail(file, where + " must be a JSON object");
        return string(file, e.getAsJsonObject().get("type"), where + ".type");
    }

    private void normalizer(JsonElement e, String where, List<HfPipeline.Normalizer> out)
            throws TokenizerFileException {
        String type = type(e, where);
        JsonObject n = e.getAsJsonObject();
        switch (type) {
            case "Sequence" -> {
                JsonArray steps = array(file, n.get("normalizers"), where + ".normalizers");
                for (int i = 0; i < steps.size(); i++) {
                    normalizer(steps.get(i), where + ".normalizers[" + i + "]", out);
                }
            }
            case "Prepend" -> out.add(new HfPipeline.Prepend(string(file, n.get("prepend"), where + ".prepend")));
            case "Replace" ->
                out.add(new HfPipeline.Replace(
                        literalPattern(n, where), string(file, n.get("content"), where + ".content")));
            default -> throw unsupported(where, e, "Sequence, Prepend, Replace");
        }
    }

    private HfPipeline.PreTokenizer preTokenizer(JsonElement e, String where) throws TokenizerFileException {
        String type = type(e, where);
        JsonObject p = e.getAsJsonObject();
        return switch (type) {
            case "Sequence" -> {
                JsonArray steps = array(file, p.get("pretokenizers"), where + ".pretokenizers");
                List<HfPipeline.PreTokenizer> list = new ArrayList<>();
                for (int i = 0; i < steps.size(); i++) {
                    list.add(preTokenizer(steps.get(i), where + ".pretokenizers[" + i + "]"));
                }
                yield new HfPipeline.PreTokenizerSequence(list);
            }
            case "Metaspace" -> {
                HfPipeline.PrependScheme scheme;
                if (isPresent(p, "prepend_scheme")) {
                    String s = string(file, p.get("prepend_scheme"), where + ".prepend_scheme");
                    scheme = switch (s) {
                        case "always" -> HfPipeline.PrependScheme.ALWAYS;
                        case "first" -> HfPipeline.PrependScheme.FIRST;
                        case "never" -> HfPipeline.PrependScheme.NEVER;
                        default -> throw fail(file, where + ".prepend_scheme '" + s + "' is unknown");
                    };
                } else {
                    boolean prefix = !p.has("add_prefix_space") || isTrue(p, "add_prefix_space");
                    scheme = prefix ? HfPipeline.PrependScheme.ALWAYS : HfPipeline.PrependScheme.NEVER;
                }
                boolean split = !p.has("split") || isTrue(p, "split");
                yield new HfPipeline.Metaspace(singleChar(p, "replacement", where), scheme, split);
            }
            case "ByteLevel" -> {
                if (isTrue(p, "add_prefix_space")) {
                    throw fail(file, where + ".add_prefix_space=true is not supported");
                }
                yield new HfPipeline.ByteLevelWords(!p.has("use_regex") || isTrue(p, "use_regex"));
            }
            case "Split" -> {
                String behavior = string(file, p.get("behavior"), where + ".behavior");
                if (!behavior.equals("Isolated") || isTrue(p, "invert")) {
                    throw fail(
                            file,
                            where + " with behavior '" + behavior + "'" + (isTrue(p, "invert") ? " and invert" : "")
                                    + " is not supported; only Isolated without invert is");
                }
                yield new HfPipeline.Split(splitPattern(p, where));
            }
            default -> throw unsupported(where, e, "Sequence, Metaspace, ByteLevel, Split");
        };
    }

    private void postProcessor(JsonElement e, String where, List<int[]> template) throws TokenizerFileException {
        String type = type(e, where);
        JsonObject p = e.getAsJsonObject();
        switch (type) {
            case "Sequence" -> {
                JsonArray steps = array(file, p.get("processors"), where + ".processors");
                for (int i = 0; i < steps.size(); i++) {
                    postProcessor(steps.get(i), where + ".processors[" + i + "]", template);
                }
            }
            case "ByteLevel" -> {
                // changes offsets only, never ids
            }
            case "TemplateProcessing" -> {
                if (template.get(0).length + template.get(1).length > 0) {
                    throw fail(file, where + ": a second TemplateProcessing is not supported");
                }
                JsonObject specials = object(file, p, "special_tokens");
                JsonArray single = array(file, p.get("single"), where + ".single");
                List<Integer> before = new ArrayList<>(), after = new ArrayList<>();
                boolean seenSequence = false;
                for (int i = 0; i < single.size(); i++) {
                    String at = where + ".single[" + i + "]";
                    if (!single.get(i).isJsonObject()) throw fail(file, at + " must be an object");
                    JsonObject piece = single.get(i).getAsJsonObject();
                    if (piece.has("Sequence")) {
                        if (seenSequence) throw fail(file, at + ": the single template has two sequences");
                        seenSequence = true;
                    } else if (piece.has("SpecialToken")) {
                        String name =
                                string(file, object(file, piece, "SpecialToken").get("id"), at + ".SpecialToken.id");
                        if (!specials.has(name)) {
                            throw fail(file, at + ": special token '" + name + "' is not in special_tokens");
                        }
                        JsonArray ids = array(
                                file,
                                specials.getAsJsonObject(name).get("ids"),
                                where + ".special_tokens['" + name + "'].ids");
                        for (int k = 0; k < ids.size(); k++) {
                            int id = nonNegativeInt(file, ids.get(k), where + ".special_tokens['" + name + "'].ids");
                            (seenSequence ? after : before).add(id);
                        }
                    } else {
                        throw fail(file, at + " must be a Sequence or a SpecialToken");
                    }
                }
                if (!seenSequence) throw fail(file, where + ".single has no Sequence");
                template.set(0, before.stream().mapToInt(Integer::intValue).toArray());
                template.set(1, after.stream().mapToInt(Integer::intValue).toArray());
            }
            default -> throw unsupported(where, e, "Sequence, ByteLevel, TemplateProcessing");
        }
    }

    private void decoder(JsonElement e, String where, List<HfPipeline.Decoder> out) throws TokenizerFileException {
        String type = type(e, where);
        JsonObject d = e.getAsJsonObject();
        switch (type) {
            case "Sequence" -> {
                JsonArray steps = array(file, d.get("decoders"), where + ".decoders");
                for (int i = 0; i < steps.size(); i++) decoder(steps.get(i), where + ".decoders[" + i + "]", out);
            }
            case "Replace" ->
                out.add(new HfPipeline.ReplaceDecoder(
                        literalPattern(d, where), string(file, d.get("content"), where + ".content")));
            case "ByteFallback" -> out.add(new HfPipeline.ByteFallback());
            case "Fuse" -> out.add(new HfPipeline.Fuse());
            case "Strip" ->
                out.add(new HfPipeline.Strip(
                        singleChar(d, "content", where),
                        nonNegativeInt(file, d.get("start"), where + ".start"),
                        nonNegativeInt(file, d.get("stop"), where + ".stop")));
            case "ByteLevel" -> out.add(new HfPipeline.ByteLevelDecoder());
            default -> throw unsupported(where, e, "Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel");
        }
    }

    private String literalPattern(JsonObject o, String where) throws TokenizerFileException {
        JsonObject pattern = object(file, o, "pattern");
        if (!pattern.has("String")) {
            throw fail(file, where + ".pattern must be {\"String\": ...}; a regex Replace is not supported");
        }
        return string(file, pattern.get("String"), where + ".pattern.String");
    }

    private Pattern splitPattern(JsonObject o, String where) throws TokenizerFileException {
        JsonObject pattern = object(file, o, "pattern");
        if (pattern.has("String")) {
            return Pattern.compile(Pattern.quote(string(file, pattern.get("String"), where + ".pattern.String")));
        }
        String regex = string(file, pattern.get("Regex"), where + ".pattern.Regex");
        try {
            // \s, \w, \d and case folding as Unicode defines them, which is what tokenizers' Oniguruma matches
            return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException ex) {
            throw fail(
                    file,
                    where + ".pattern.Regex is not a regex Java can compile (" + ex.getDescription() + " at index "
                            + ex.getIndex() + ")");
        }
    }

    private char singleChar(JsonObject o, String field, String where) throws TokenizerFileException {
        String s = string(file, o.get(field), where + "." + field);
        if (s.length() != 1) throw fail(file, where + "." + field + " must be one character, got '" + s + "'");
        return s.charAt(0);
    }

    private TokenizerFileException unsupported(String where, JsonElement e, String known) {
        return fail(file, where + " " + describe(e) + " is not supported (supported: " + known + ")");
    }
}
