package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.io.SafeTensorsReader;
import ai.mode.model.io.TensorNames;
import ai.mode.model.io.TensorNames.LayerTensor;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The MoDE expert file: experts and gates of one run in their own safetensors file beside an untouched Hugging Face
 * backbone, with metadata (config, domains, backbone fingerprint) so that files from separate runs can be checked
 * against the backbone and composed.
 *
 * <p>{@code experts.safetensors}: tensors {@code mode.blocks.{i}.experts.{j}.layers.{l}.<llama layer suffix>} and
 * {@code mode.blocks.{i}.gate.weight} [N+1, D] / {@code .bias} [N+1], float32, plus {@code __metadata__}:
 * <ul>
 *   <li>{@code format} = {@value #FORMAT}</li>
 *   <li>{@code mode_config}: the {@link ModeConfig} as JSON (num_blocks B, layers_per_expert k, domains, expert_init,
 *       gate_init_backbone, routing)</li>
 *   <li>{@code backbone_config_hash}, {@code backbone_weights_hash}: the {@link BackboneFingerprint} of the backbone
 *       the experts were trained on</li>
 * </ul>
 *
 * @param config      the MoDE config the file was written with
 * @param fingerprint the backbone it belongs to
 * @param tensors     expert and gate tensors
 * @param source      where it was read from (for messages)
 */
public record ExpertFile(ModeConfig config, BackboneFingerprint fingerprint, NamedTensors tensors, Path source) {
    /** Value of the {@code format} metadata key. */
    public static final String FORMAT = "mode-experts/1";
    /** Conventional file name inside a run folder. */
    public static final String FILE_NAME = "experts.safetensors";

    /** Writes the experts and gates of {@code model} atomically. */
    public static void write(Path file, ModeModel model) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("mode_config", model.modeConfig().toJson().toString());
        meta.put("backbone_config_hash", model.fingerprint().configHash());
        meta.put("backbone_weights_hash", model.fingerprint().weightsHash());
        SafeTensors.write(file, model.addedTensors(), meta, SafeDType.F32);
    }

    /** Reads and validates an expert file (format, metadata, every expected tensor present). */
    public static ExpertFile read(Path file) throws IOException {
        NamedTensors tensors;
        Map<String, String> meta;
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            meta = r.metadata();
            tensors = r.readAll();
        }
        if (!FORMAT.equals(meta.get("format"))) {
            throw new IllegalArgumentException(
                    file + " is not a MoDE expert file (metadata format is " + meta.get("format") + ", expected "
                            + FORMAT + "); pass the experts.safetensors written by 'mode expert' or 'mode compose'");
        }
        ModeConfig cfg = parseConfig(file, meta.get("mode_config"));
        String ch = meta.get("backbone_config_hash"), wh = meta.get("backbone_weights_hash");
        if (ch == null || wh == null) throw new IllegalArgumentException(file + ": metadata lacks the backbone hashes");
        ExpertFile f = new ExpertFile(cfg, new BackboneFingerprint(ch, wh), tensors, file);
        f.checkTensors();
        return f;
    }

    private static ModeConfig parseConfig(Path file, String json) {
        if (json == null) throw new IllegalArgumentException(file + ": metadata lacks mode_config");
        try {
            JsonObject o = JsonParser.parseString(json).getAsJsonObject();
            List<String> domains = new ArrayList<>();
            JsonArray arr = o.getAsJsonArray("domains");
            for (JsonElement e : arr) domains.add(e.getAsString());
            return new ModeConfig(
                    o.get("num_blocks").getAsInt(),
                    o.get("layers_per_expert").getAsInt(),
                    domains,
                    ModeConfig.ExpertInit.parse(o.get("expert_init").getAsString()),
                    o.get("gate_init_backbone").getAsDouble(),
                    Routing.parse(o.get("routing").getAsString()),
                    // files written before these options existed used the paper's mixture and raw gate input
                    o.has("merge") ? ModeConfig.Merge.parse(o.get("merge").getAsString()) : ModeConfig.Merge.MIXTURE,
                    o.has("gate_input")
                            ? ModeConfig.GateInput.parse(o.get("gate_input").getAsString())
                            : ModeConfig.GateInput.RAW);
        } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException e) {
            throw new IllegalArgumentException(file + ": metadata mode_config is malformed (" + e.getMessage() + ")");
        }
    }

    /** Number of experts in the file. */
    public int numExperts() {
        return config.numExperts();
    }

    /** Every expert and gate tensor the config implies must be present, and nothing else. */
    private void checkTensors() {
        int expected = 0;
        for (int i = 0; i < config.numBlocks(); i++) {
            for (String n : List.of(TensorNames.gateWeight(i), TensorNames.gateBias(i))) {
                if (!tensors.contains(n)) throw new IllegalArgumentException(source + " lacks tensor " + n);
                expected++;
            }
            if (tensors.shape(TensorNames.gateBias(i))[0] != config.numBranches()) {
                throw new IllegalArgumentException(
                        source + ": gate of block " + i + " has " + tensors.shape(TensorNames.gateBias(i))[0]
                                + " outputs but the file declares " + config.numExperts() + " experts");
            }
            for (int j = 0; j < config.numExperts(); j++) {
                for (int l = 0; l < config.layersPerExpert(); l++) {
                    for (LayerTensor t : TensorNames.LayerTensor.values()) {
                        String n = TensorNames.expertLayer(i, j, l, t);
                        if (!tensors.contains(n)) throw new IllegalArgumentException(source + " lacks tensor " + n);
                        expected++;
                    }
                }
            }
        }
        if (tensors.size() != expected) {
            throw new IllegalArgumentException(
                    source + " holds " + tensors.size() + " tensors but its config implies " + expected);
        }
    }

    /**
     * Rejects a backbone this file was not trained on, naming both fingerprints and the fix.
     */
    public void checkBackbone(LlamaConfig backboneConfig, BackboneFingerprint backbone) {
        if (!fingerprint.configHash().equals(backbone.configHash())) {
            throw new IllegalArgumentException(source + " was trained on a backbone of another shape (config hash "
                    + BackboneFingerprint.shortHash(fingerprint.configHash()) + ", this backbone "
                    + BackboneFingerprint.shortHash(backbone.configHash())
                    + "); use the backbone checkpoint the experts were trained with");
        }
        if (!fingerprint.weightsHash().equals(backbone.weightsHash())) {
            throw new IllegalArgumentException(source + " was trained on different backbone weights (weights hash "
                    + BackboneFingerprint.shortHash(fingerprint.weightsHash()) + ", this backbone "
                    + BackboneFingerprint.shortHash(backbone.weightsHash())
                    + "); use the backbone checkpoint the experts were trained with");
        }
        config.validateAgainst(backboneConfig);
    }
}
