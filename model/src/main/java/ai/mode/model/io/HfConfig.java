package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.text.StrictUtf8;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * Hugging Face Llama {@code config.json} to and from {@link LlamaConfig}: reads the fields our decoder needs (with
 * {@code rope_scaling} of types linear and llama3), rejects features it does not implement (other rope scaling types,
 * biases, other activations, non-llama model types) with one-line messages, and keeps every other field so that a
 * read-then-written config loses nothing (bos/eos ids, generation hints, ...).
 *
 * <p>A Hugging Face {@code config.json} for {@code LlamaForCausalLM}: the {@link LlamaConfig} it describes, the storage
 * {@code torch_dtype}, and every field this class does not interpret ({@link #extra()}), preserved on write.
 *
 * <pre>{@code
 * HfConfig cfg = HfConfig.read(dir.resolve("config.json"));     // validated, one-line errors
 * LlamaConfig model = cfg.model();
 * HfConfig.of(model).withTorchDtype("bfloat16").write(out.resolve("config.json"));   // atomic
 * }</pre>
 *
 * Defaults for absent optional fields follow transformers' {@code LlamaConfig}: num_key_value_heads =
 * num_attention_heads, max_position_embeddings 2048, rope_theta 10000, rms_norm_eps 1e-6, tie_word_embeddings false.
 *
 * @param model      the decoder shape
 * @param torchDtype storage dtype name ({@code float32}, {@code bfloat16}, {@code float16})
 * @param extra      uninterpreted fields, written back after ours (a defensive copy)
 */
public record HfConfig(LlamaConfig model, String torchDtype, JsonObject extra) {

    /** Fields this class reads or writes itself; everything else lands in {@link #extra()}. */
    private static final Set<String> KNOWN = Set.of(
            "architectures",
            "model_type",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "rope_theta",
            "rms_norm_eps",
            "tie_word_embeddings",
            "torch_dtype",
            "dtype",
            "hidden_act",
            "attention_bias",
            "mlp_bias",
            "rope_scaling",
            "rope_parameters",
            "head_dim",
            "sliding_window");

    private static final Gson PRETTY =
            new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();

    public HfConfig {
        if (model == null) throw new IllegalArgumentException("model config must be non-null");
        if (torchDtype == null || torchDtype.isBlank()) torchDtype = "float32";
        extra = extra == null ? new JsonObject() : extra.deepCopy();
        for (String k : KNOWN) extra.remove(k);
    }

    /** A config with float32 storage and no extra fields. */
    public static HfConfig of(LlamaConfig model) {
        return new HfConfig(model, "float32", null);
    }

    /** The same config with another storage dtype name. */
    public HfConfig withTorchDtype(String dtype) {
        return new HfConfig(model, dtype, extra);
    }

    /** The same config with one extra field added or replaced (e.g. {@code bos_token_id}). */
    public HfConfig withExtra(String key, JsonElement value) {
        if (KNOWN.contains(key))
            throw new IllegalArgumentException(key + " is set through LlamaConfig, not as an extra field");
        JsonObject e = extra.deepCopy();
        e.add(key, value);
        return new HfConfig(model, torchDtype, e);
    }

    /** The uninterpreted fields (a copy). */
    @Override
    public JsonObject extra() {
        return extra.deepCopy();
    }

    // ------------------------------------------------------------------------------------------------ reading

    /** Reads and validates a {@code config.json}. */
    public static HfConfig read(Path file) throws IOException {
        if (Files.isDirectory(file)) throw new CheckpointFormatException(file, "is a directory, expected config.json");
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException(file, "file not found; a checkpoint directory needs config.json", e);
        }
        String text;
        try {
            text = StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            throw new CheckpointFormatException(file, "not valid UTF-8", e);
        }
        return parse(text, file);
    }

    /** Parses and validates config JSON; {@code source} names the file in error messages. */
    public static HfConfig parse(String json, Path source) throws CheckpointFormatException {
        JsonElement root;
        try {
            root = StrictJson.parse(json);
        } catch (IOException | RuntimeException e) {
            throw new CheckpointFormatException(source, "not valid JSON: " + CheckpointFormatException.firstLine(e), e);
        }
        if (!root.isJsonObject()) throw new CheckpointFormatException(source, "must be a JSON object");
        JsonObject o = root.getAsJsonObject();
        Fields f = new Fields(o, source);

        checkArchitecture(o, f, source);
        f.requireAbsentOrEqual("hidden_act", "silu", "only SwiGLU with silu is implemented");
        f.requireFalseIfPresent("attention_bias", "attention projections with bias are not implemented");
        f.requireFalseIfPresent("mlp_bias", "MLP projections with bias are not implemented");
        int vocab = f.requiredInt("vocab_size");
        int hidden = f.requiredInt("hidden_size");
        int layers = f.requiredInt("num_hidden_layers");
        int heads = f.requiredInt("num_attention_heads");
        int ffn = f.requiredInt("intermediate_size");
        int kvHeads = f.optionalInt("num_key_value_heads", heads);
        int maxPos = f.optionalInt("max_position_embeddings", 2048);
        float theta = ropeTheta(o, f, source);
        RopeScaling scaling = ropeScaling(o, source, maxPos);
        float eps = f.optionalFloat("rms_norm_eps", 1e-6f);
        boolean tied = f.optionalBoolean("tie_word_embeddings", false);
        if (o.has("head_dim") && !o.get("head_dim").isJsonNull() && heads > 0 && hidden % heads == 0) {
            int headDim = f.requiredInt("head_dim");
            if (headDim != hidden / heads) {
                throw new CheckpointFormatException(
                        source,
                        "head_dim " + headDim + " differs from hidden_size/num_attention_heads = " + hidden / heads
                                + "; decoupled head widths are not implemented");
            }
        }
        String dtype = o.has("torch_dtype") && !o.get("torch_dtype").isJsonNull()
                ? f.string("torch_dtype")
                : o.has("dtype") && !o.get("dtype").isJsonNull() ? f.string("dtype") : "float32";
        LlamaConfig model;
        try {
            model = new LlamaConfig(vocab, hidden, layers, heads, kvHeads, ffn, maxPos, theta, eps, tied, scaling);
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(source, e.getMessage(), e);
        }
        return new HfConfig(model, dtype, o);
    }

    /**
     * rope_theta from the top level (transformers 4.x) or from {@code rope_parameters} (transformers 5.x, which also
     * carries the RoPE variant, read by {@link #ropeScaling}).
     */
    private static float ropeTheta(JsonObject o, Fields f, Path source) throws CheckpointFormatException {
        float theta = f.optionalFloat("rope_theta", 10000f);
        JsonElement rp = o.get("rope_parameters");
        if (rp == null || rp.isJsonNull()) return theta;
        if (!rp.isJsonObject())
            throw new CheckpointFormatException(source, "field rope_parameters must be an object, found " + rp);
        Fields p = new Fields(rp.getAsJsonObject(), source);
        float partial = p.optionalFloat("partial_rotary_factor", 1f);
        if (partial != 1f) {
            throw new CheckpointFormatException(
                    source, "rope_parameters partial_rotary_factor " + partial + " is not supported");
        }
        if (!rp.getAsJsonObject().has("rope_theta")) return theta;
        float nested = p.optionalFloat("rope_theta", theta);
        if (o.has("rope_theta") && !o.get("rope_theta").isJsonNull() && nested != theta) {
            throw new CheckpointFormatException(
                    source, "rope_theta " + theta + " and rope_parameters.rope_theta " + nested + " disagree");
        }
        return nested;
    }

    /**
     * The RoPE scaling of {@code rope_scaling} (transformers 4.x: {@code rope_type}, or the older {@code type}) and of
     * {@code rope_parameters} (transformers 5.x); where both name a scaling they must agree. Types {@code linear} and
     * {@code llama3} are read, {@code default} is plain RoPE, any other is refused naming the type.
     */
    private static RopeScaling ropeScaling(JsonObject o, Path source, int maxPositions)
            throws CheckpointFormatException {
        RopeScaling scaling = RopeScaling.NONE;
        for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
            JsonElement e = o.get(key);
            if (e == null || e.isJsonNull()) continue;
            if (!e.isJsonObject())
                throw new CheckpointFormatException(source, "field " + key + " must be an object, found " + e);
            RopeScaling s = ropeScaling(key, e.getAsJsonObject(), source, maxPositions);
            if (s.equals(RopeScaling.NONE)) continue;
            if (!scaling.equals(RopeScaling.NONE) && !scaling.equals(s))
                throw new CheckpointFormatException(
                        source,
                        "rope_scaling " + scaling + " and rope_parameters " + s + " disagree; keep one of them");
            scaling = s;
        }
        return scaling;
    }

    private static RopeScaling ropeScaling(String key, JsonObject s, Path source, int maxPositions)
            throws CheckpointFormatException {
        Fields p = new Fields(s, source);
        String type = s.has("rope_type") && !s.get("rope_type").isJsonNull()
                ? p.string("rope_type")
                : s.has("type") && !s.get("type").isJsonNull() ? p.string("type") : "default";
        try {
            return switch (type) {
                case "default" -> RopeScaling.NONE;
                case "linear" -> new RopeScaling.Linear(p.requiredDouble("factor", key));
                case "llama3" ->
                    new RopeScaling.Llama3(
                            p.requiredDouble("factor", key),
                            p.requiredDouble("low_freq_factor", key),
                            p.requiredDouble("high_freq_factor", key),
                            s.has("original_max_position_embeddings")
                                            && !s.get("original_max_position_embeddings")
                                                    .isJsonNull()
                                    ? p.requiredInt("original_max_position_embeddings")
                                    : maxPositions);
                default ->
                    throw new CheckpointFormatException(
                            source,
                            key + " type \"" + type + "\" is not supported (supported: " + RopeScaling.SUPPORTED
                                    + "); use a model with one of those or without " + key);
            };
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(source, e.getMessage(), e);
        }
    }

    private static void checkArchitecture(JsonObject o, Fields f, Path source) throws CheckpointFormatException {
        String type = o.has("model_type") ? f.string("model_type") : null;
        if (type == null) {
            throw new CheckpointFormatException(source, "missing required field model_type (expected \"llama\")");
        }
        if (type.equals("mistral")) {
            JsonElement window = o.get("sliding_window");
            if (window != null && !window.isJsonNull()) {
                throw new CheckpointFormatException(
                        source,
                        "model_type mistral with sliding_window " + window
                                + " is not supported (sliding-window attention is not implemented)");
            }
        } else if (!type.equals("llama")) {
            throw new CheckpointFormatException(
                    source,
                    "model_type \"" + type
                            + "\" is not supported; only Llama-architecture models (model_type \"llama\") can be loaded");
        }
        if (o.has("architectures") && !o.get("architectures").isJsonNull()) {
            JsonElement a = o.get("architectures");
            boolean causal = false;
            if (a.isJsonArray()) {
                for (JsonElement e : a.getAsJsonArray()) {
                    causal |= e.isJsonPrimitive()
                            && e.getAsJsonPrimitive().isString()
                            && e.getAsString().endsWith("ForCausalLM");
                }
            }
            if (!causal) {
                throw new CheckpointFormatException(
                        source,
                        "architectures " + a
                                + " names no causal LM (expected [\"LlamaForCausalLM\"]); only causal-LM checkpoints can be loaded");
            }
        }
    }

    /** Typed field access with one-line errors. */
    private record Fields(JsonObject o, Path source) {
        JsonPrimitive primitive(String key) throws CheckpointFormatException {
            JsonElement e = o.get(key);
            if (e == null || e.isJsonNull())
                throw new CheckpointFormatException(source, "missing required field " + key);
            if (!e.isJsonPrimitive())
                throw new CheckpointFormatException(source, "field " + key + " must be a scalar, found " + e);
            return e.getAsJsonPrimitive();
        }

        int requiredInt(String key) throws CheckpointFormatException {
            JsonPrimitive p = primitive(key);
            if (p.isNumber()) {
                BigDecimal v = p.getAsBigDecimal();
                try {
                    return v.intValueExact();
                } catch (ArithmeticException notExact) {
                    // reported below
                }
            }
            throw new CheckpointFormatException(source, "field " + key + " must be an integer, found " + p);
        }

        int optionalInt(String key, int fallback) throws CheckpointFormatException {
            return o.has(key) && !o.get(key).isJsonNull() ? requiredInt(key) : fallback;
        }

        /** A finite number field of the object {@code where} names (for messages). */
        double requiredDouble(String key, String where) throws CheckpointFormatException {
            JsonElement e = o.get(key);
            if (e == null || e.isJsonNull())
                throw new CheckpointFormatException(source, "missing required field " + where + "." + key);
            if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
                double v = e.getAsBigDecimal().doubleValue();
                if (Double.isFinite(v)) return v;
            }
            throw new CheckpointFormatException(
                    source, "field " + where + "." + key + " must be a finite number, found " + e);
        }

        float optionalFloat(String key, float fallback) throws CheckpointFormatException {
            if (!o.has(key) || o.get(key).isJsonNull()) return fallback;
            JsonPrimitive p = primitive(key);
            if (p.isNumber()) {
                double v = p.getAsBigDecimal().doubleValue();
                if (Double.isFinite(v)) return (float) v;
            }
            throw new CheckpointFormatException(source, "field " + key + " must be a finite number, found " + p);
        }

        boolean optionalBoolean(String key, boolean fallback) throws CheckpointFormatException {
            if (!o.has(key) || o.get(key).isJsonNull()) return fallback;
            JsonPrimitive p = primitive(key);
            if (!p.isBoolean())
                throw new CheckpointFormatException(source, "field " + key + " must be true or false, found " + p);
            return p.getAsBoolean();
        }

        String string(String key) throws CheckpointFormatException {
            JsonPrimitive p = primitive(key);
            if (!p.isString())
                throw new CheckpointFormatException(source, "field " + key + " must be a string, found " + p);
            return p.getAsString();
        }

        void requireAbsentOrEqual(String key, String expected, String why) throws CheckpointFormatException {
            if (!o.has(key) || o.get(key).isJsonNull()) return;
            String v = string(key);
            if (!v.equals(expected) && !(expected.equals("silu") && v.equals("swish"))) {
                throw new CheckpointFormatException(source, key + " \"" + v + "\" is not supported (" + why + ")");
            }
        }

        void requireFalseIfPresent(String key, String why) throws CheckpointFormatException {
            if (optionalBoolean(key, false))
                throw new CheckpointFormatException(source, key + " true is not supported (" + why + ")");
        }
    }

    // ------------------------------------------------------------------------------------------------ writing

    /** The config as Hugging Face JSON: our fields first (architectures, model_type, sizes...), then the extras. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("LlamaForCausalLM");
        o.add("architectures", arch);
        o.addProperty("model_type", "llama");
        o.addProperty("vocab_size", model.vocabSize());
        o.addProperty("hidden_size", model.hiddenSize());
        o.addProperty("intermediate_size", model.intermediateSize());
        o.addProperty("num_hidden_layers", model.numLayers());
        o.addProperty("num_attention_heads", model.numHeads());
        o.addProperty("num_key_value_heads", model.numKvHeads());
        o.addProperty("max_position_embeddings", model.maxSeqLen());
        o.add("rope_theta", shortestFloat(model.ropeTheta()));
        if (!model.ropeScaling().equals(RopeScaling.NONE)) o.add("rope_scaling", ropeScalingJson(model.ropeScaling()));
        o.add("rms_norm_eps", shortestFloat(model.rmsNormEps()));
        o.addProperty("tie_word_embeddings", model.tieEmbeddings());
        o.addProperty("hidden_act", "silu");
        o.addProperty("attention_bias", false);
        o.addProperty("mlp_bias", false);
        o.addProperty("torch_dtype", torchDtype);
        for (Map.Entry<String, JsonElement> e : extra.entrySet())
            o.add(e.getKey(), e.getValue().deepCopy());
        return o;
    }

    /** Hugging Face's {@code rope_scaling} object of a scaling other than none. */
    private static JsonObject ropeScalingJson(RopeScaling scaling) {
        JsonObject s = new JsonObject();
        s.addProperty("rope_type", scaling.type());
        switch (scaling) {
            case RopeScaling.Linear l -> s.addProperty("factor", l.factor());
            case RopeScaling.Llama3 l -> {
                s.addProperty("factor", l.factor());
                s.addProperty("low_freq_factor", l.lowFreqFactor());
                s.addProperty("high_freq_factor", l.highFreqFactor());
                s.addProperty("original_max_position_embeddings", l.originalMaxPositions());
            }
            case RopeScaling.None n -> throw new IllegalArgumentException("plain RoPE has no rope_scaling object");
        }
        return s;
    }

    /** Pretty-printed JSON text with a trailing newline. */
    public String toJsonString() {
        return PRETTY.toJson(toJson()) + "\n";
    }

    /** Writes {@code config.json} atomically. */
    public void write(Path file) throws IOException {
        AtomicFiles.writeString(file, toJsonString());
    }

    /** The shortest decimal that reads back as exactly this float (e.g. 1.0E-5, not 9.999999747378752E-6). */
    private static JsonPrimitive shortestFloat(float f) {
        return new JsonPrimitive(Double.parseDouble(Float.toString(f)));
    }
}
