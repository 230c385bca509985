package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Import of Hugging Face Llama-architecture checkpoints: config.json plus safetensors weights, single-file or sharded
 * (model.safetensors.index.json), in F32/F16/BF16. Every expected tensor is checked for presence, dtype and shape
 * against config.json before any data is converted, with one-line messages naming the tensor.
 *
 * <p>Loads a Hugging Face Llama checkpoint directory as float32 host tensors under HF names (see {@link TensorNames}).
 *
 * <pre>{@code
 * HfImport.Model m = HfImport.load(Path.of("TinyLlama-1.1B"));   // config.json + *.safetensors
 * LlamaConfig cfg = m.config().model();
 * float[] embed = m.weights().data(TensorNames.EMBED_TOKENS);     // [V, D] row-major
 * }</pre>
 *
 * Accepted extras: {@code *.rotary_emb.inv_freq} buffers (ignored) and {@code lm_head.weight} when embeddings are
 * tied (ignored). Any other unexpected tensor is an error, since it means the weights do not match config.json.
 * PyTorch {@code .bin} weights are not read (convert them to safetensors first).
 */
public final class HfImport {
    private HfImport() {}

    public static final String INDEX = "model.safetensors.index.json";

    private static final System.Logger LOG = System.getLogger(HfImport.class.getName());

    /** A loaded checkpoint: its config and float32 weights in canonical order ({@link TensorNames#llamaShapes}). */
    public record Model(HfConfig config, NamedTensors weights) {}

    /** Reads config.json and all weights of a directory. */
    public static Model load(Path dir) throws IOException {
        HfConfig config = HfConfig.read(dir.resolve(Checkpoint.CONFIG));
        return new Model(config, loadWeights(dir, config.model()));
    }

    /** Reads and validates the weights of a directory against a config. */
    public static NamedTensors loadWeights(Path dir, LlamaConfig config) throws IOException {
        List<SafeTensorsReader> readers = new ArrayList<>();
        try {
            Map<String, SafeTensorsReader> location = locate(dir, readers);
            LinkedHashMap<String, int[]> expected = TensorNames.llamaShapes(config);
            for (Map.Entry<String, int[]> e : expected.entrySet()) {
                SafeTensorsReader r = location.get(e.getKey());
                if (r == null) {
                    throw new CheckpointFormatException(
                            dir,
                            "missing tensor " + e.getKey() + " (expected shape " + Arrays.toString(e.getValue())
                                    + " from config.json)" + moreMissing(expected, location, e.getKey()));
                }
                TensorInfo info = r.info(e.getKey());
                if (!info.dtype().isFloat()) {
                    throw new CheckpointFormatException(
                            r.path(),
                            "tensor " + e.getKey() + " has dtype " + info.dtype()
                                    + "; weights must be F32, F16, BF16 or F64");
                }
                if (!Arrays.equals(info.shape(), e.getValue())) {
                    throw new CheckpointFormatException(
                            r.path(),
                            "tensor " + e.getKey() + " has shape " + Arrays.toString(info.shape())
                                    + " but config.json implies " + Arrays.toString(e.getValue()));
                }
            }
            List<String> unexpected = new ArrayList<>();
            for (String name : location.keySet()) {
                if (expected.containsKey(name)) continue;
                if (name.endsWith(".rotary_emb.inv_freq")) continue;
                if (name.equals(TensorNames.LM_HEAD) && config.tieEmbeddings()) {
                    LOG.log(
                            System.Logger.Level.INFO,
                            "{0}: ignoring lm_head.weight since tie_word_embeddings is true",
                            dir);
                    continue;
                }
                unexpected.add(name);
            }
            if (!unexpected.isEmpty()) {
                throw new CheckpointFormatException(
                        dir,
                        "unexpected tensor " + unexpected.getFirst()
                                + (unexpected.size() > 1 ? " (and " + (unexpected.size() - 1) + " more)" : "")
                                + ": the weights do not match a plain Llama model with this config.json (biases? another architecture?)");
            }
            NamedTensors out = new NamedTensors();
            for (Map.Entry<String, int[]> e : expected.entrySet()) {
                out.put(e.getKey(), e.getValue(), location.get(e.getKey()).readFloats(e.getKey()));
            }
            return out;
        } finally {
            for (SafeTensorsReader r : readers) r.close();
        }
    }

    /**
     * Null if {@code weights} holds exactly the tensors {@link TensorNames#llamaShapes} expects with matching shapes,
     * else a one-line description of the first difference.
     */
    public static String shapeProblem(NamedTensors weights, LlamaConfig config) {
        LinkedHashMap<String, int[]> expected = TensorNames.llamaShapes(config);
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            if (!weights.contains(e.getKey())) {
                return "missing tensor " + e.getKey() + " (expected shape " + Arrays.toString(e.getValue()) + ")";
            }
            if (!Arrays.equals(weights.shape(e.getKey()), e.getValue())) {
                return "tensor " + e.getKey() + " has shape " + Arrays.toString(weights.shape(e.getKey()))
                        + " but the config implies " + Arrays.toString(e.getValue());
            }
        }
        for (String name : weights.names()) {
            if (!expected.containsKey(name)) return "unexpected tensor " + name;
        }
        return null;
    }

    private static String moreMissing(
            Map<String, int[]> expected, Map<String, SafeTensorsReader> location, String first) {
        long missing =
                expected.keySet().stream().filter(n -> !location.containsKey(n)).count();
        return missing > 1 ? " (" + (missing - 1) + " more tensors missing)" : "";
    }

    /** Maps every tensor name to the open reader of the file holding it; opened readers are added to {@code readers}. */
    private static Map<String, SafeTensorsReader> locate(Path dir, List<SafeTensorsReader> readers) throws IOException {
        Path index = dir.resolve(INDEX);
        Path single = dir.resolve(Checkpoint.MODEL);
        LinkedHashMap<String, SafeTensorsReader> location = new LinkedHashMap<>();
        if (Files.exists(index)) {
            Map<String, String> weightMap = readIndex(index);
            Map<String, SafeTensorsReader> shards = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafeTensorsReader r = shards.get(e.getValue());
                if (r == null) {
                    Path shard = dir.resolve(e.getValue());
                    if (!Files.isRegularFile(shard)) {
                        throw new CheckpointFormatException(
                                index,
                                "shard " + e.getValue() + " (listed for tensor " + e.getKey() + ") not found in "
                                        + dir);
                    }
                    r = SafeTensorsReader.open(shard);
                    readers.add(r);
                    shards.put(e.getValue(), r);
                }
                if (!r.contains(e.getKey())) {
                    throw new CheckpointFormatException(
                            r.path(), "has no tensor " + e.getKey() + ", though " + INDEX + " places it in this shard");
                }
                location.put(e.getKey(), r);
            }
            return location;
        }
        if (Files.exists(single)) {
            SafeTensorsReader r = SafeTensorsReader.open(single);
            readers.add(r);
            for (String name : r.names()) location.put(name, r);
            return location;
        }
        if (Files.exists(dir.resolve("pytorch_model.bin"))
                || Files.exists(dir.resolve("pytorch_model.bin.index.json"))) {
            throw new CheckpointFormatException(
                    dir,
                    "holds PyTorch .bin weights only; convert them to safetensors "
                            + "(model.safetensors) first, this loader does not read pickle files");
        }
        throw new CheckpointFormatException(dir, "no " + Checkpoint.MODEL + " or " + INDEX + " found");
    }

    /** The {@code weight_map} of a shard index: tensor name -> shard file name (a plain name in the same directory). */
    private static Map<String, String> readIndex(Path index) throws IOException {
        JsonObject root;
        try {
            JsonElement e = StrictJson.parse(Files.readString(index, StandardCharsets.UTF_8));
            if (!e.isJsonObject()) throw new CheckpointFormatException(index, "must be a JSON object");
            root = e.getAsJsonObject();
        } catch (CheckpointFormatException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new CheckpointFormatException(index, "not valid JSON: " + CheckpointFormatException.firstLine(e), e);
        }
        JsonElement map = root.get("weight_map");
        if (map == null || !map.isJsonObject()) {
            throw new CheckpointFormatException(index, "missing the \"weight_map\" object (tensor name -> shard file)");
        }
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : map.getAsJsonObject().entrySet()) {
            JsonElement v = e.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
                throw new CheckpointFormatException(
                        index, "weight_map entry " + e.getKey() + " must name a shard file, found " + v);
            }
            String shard = v.getAsString();
            if (shard.isEmpty()
                    || shard.contains("/")
                    || shard.contains("\\")
                    || shard.equals("..")
                    || shard.equals(".")) {
                throw new CheckpointFormatException(
                        index,
                        "weight_map entry " + e.getKey() + " names " + SafeTensorsReader.quote(shard)
                                + "; shards must be plain file names in the same directory");
            }
            out.put(e.getKey(), shard);
        }
        return out;
    }
}
