package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a composed MoDE model (backbone + experts + gates) as a Hugging Face model folder that transformers loads
 * with {@code AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)}: our own configuration and modeling
 * code ({@code configuration_mode.py}, {@code modeling_mode.py}, shipped as resources of this package) are copied into
 * the folder and named by the config's {@code auto_map}.
 *
 * <p>The folder: {@code config.json} (the backbone's Llama config with {@code model_type} {@code mode_llama},
 * {@code architectures} {@code ModeForCausalLM}, {@code auto_map} and the MoDE settings as {@code mode_num_blocks},
 * {@code mode_layers_per_expert}, {@code mode_num_experts}, {@code mode_domains}, {@code mode_routing}, {@code mode_merge}, {@code mode_gate_input}),
 * {@code model.safetensors} (float32: the backbone under plain Llama names, the experts under
 * {@code mode.blocks.{i}.experts.{j}.layers.{l}.*}, the gates under {@code mode.blocks.{i}.gate.*}), the two Python
 * files and, when given, {@code tokenizer.json} (and the {@link OutputGuard#MARKER} of the command that wrote it). It is
 * assembled in a temporary sibling folder and renamed into place, so the target is either complete or untouched.
 */
public final class HfModeExport {
    private HfModeExport() {}

    /** The Python files shipped with every export, as resources beside this class. */
    public static final List<String> CODE_FILES = List.of("configuration_mode.py", "modeling_mode.py");

    /** The {@code model_type} of the exported config. */
    public static final String MODEL_TYPE = "mode_llama";

    /**
     * The MoDE settings the modeling code needs.
     *
     * @param numBlocks       B, dividing the backbone's layer count
     * @param layersPerExpert k decoder layers per expert
     * @param domains         one name per expert (N = its size)
     * @param routing         {@code dense}, {@code topK}, {@code sequence-dense} or {@code sequence-topK}
     * @param merge           {@code mixture} or {@code residual} (docs/mode.md)
     * @param gateInput       {@code raw} or {@code rmsnorm}
     */
    public record Settings(
            int numBlocks, int layersPerExpert, List<String> domains, String routing, String merge, String gateInput) {
        public Settings {
            domains = List.copyOf(domains);
        }

        /** The paper's mixture merge and raw gate input. */
        public Settings(int numBlocks, int layersPerExpert, List<String> domains, String routing) {
            this(numBlocks, layersPerExpert, domains, routing, "mixture", "raw");
        }
    }

    /**
     * Writes the folder {@code out}, replacing whatever is there (the caller decides whether it may: see
     * {@link OutputGuard#checkFolder}).
     *
     * @param backbone  the backbone's config (its extra fields, e.g. token ids, are kept)
     * @param tensors   every backbone, expert and gate tensor, by name, nothing else
     * @param tokenizer {@code tokenizer.json} content, or null
     * @param owner     the command written into the folder's {@link OutputGuard#MARKER}, or null for none
     * @return the absolute folder written
     */
    public static Path write(
            Path out, HfConfig backbone, NamedTensors tensors, Settings mode, byte[] tokenizer, String owner)
            throws IOException {
        checkTensors(backbone.model(), tensors, mode);
        Path target = out.toAbsolutePath().normalize();
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS))
            throw new FileAlreadyExistsException(
                    target.toString(), null, "exists and is not a folder; choose another output folder");
        AtomicFiles.writeDirectory(target, temp -> {
            AtomicFiles.writeString(temp.resolve(Checkpoint.CONFIG), configJson(backbone, mode));
            SafeTensors.write(temp.resolve(Checkpoint.MODEL), tensors, Map.of("format", "pt"), SafeDType.F32);
            if (tokenizer != null) AtomicFiles.writeBytes(temp.resolve(Checkpoint.TOKENIZER), tokenizer);
            for (String f : CODE_FILES) AtomicFiles.writeBytes(temp.resolve(f), resource(f));
            if (owner != null) AtomicFiles.writeString(temp.resolve(OutputGuard.MARKER), owner + "\n");
        });
        return target;
    }

    /** The exported {@code config.json}: the backbone's fields, then the remote-code entries and MoDE settings. */
    static String configJson(HfConfig backbone, Settings mode) {
        JsonObject o = backbone.withTorchDtype("float32").toJson();
        JsonArray arch = new JsonArray();
        arch.add("ModeForCausalLM");
        o.add("architectures", arch);
        o.addProperty("model_type", MODEL_TYPE);
        JsonObject autoMap = new JsonObject();
        autoMap.addProperty("AutoConfig", "configuration_mode.ModeLlamaConfig");
        autoMap.addProperty("AutoModelForCausalLM", "modeling_mode.ModeForCausalLM");
        o.add("auto_map", autoMap);
        o.addProperty("mode_num_blocks", mode.numBlocks());
        o.addProperty("mode_layers_per_expert", mode.layersPerExpert());
        o.addProperty("mode_num_experts", mode.domains().size());
        JsonArray domains = new JsonArray();
        mode.domains().forEach(domains::add);
        o.add("mode_domains", domains);
        o.addProperty("mode_routing", mode.routing());
        o.addProperty("mode_merge", mode.merge());
        o.addProperty("mode_gate_input", mode.gateInput());
        return new GsonBuilder()
                        .setPrettyPrinting()
                        .disableHtmlEscaping()
                        .create()
                        .toJson(o) + "\n";
    }

    /** Every tensor the config and settings imply, with its shape, and nothing else. */
    private static void checkTensors(LlamaConfig c, NamedTensors tensors, Settings mode) {
        if (mode.numBlocks() < 1 || c.numLayers() % mode.numBlocks() != 0)
            throw new IllegalArgumentException("MoDE export: " + mode.numBlocks() + " blocks do not divide the "
                    + c.numLayers() + " backbone layers; is this a MoDE model of this backbone?");
        LinkedHashMap<String, int[]> want = TensorNames.llamaShapes(c);
        int n = mode.domains().size();
        for (int i = 0; i < mode.numBlocks(); i++) {
            for (int j = 0; j < n; j++) want.putAll(TensorNames.expertShapes(c, i, j, mode.layersPerExpert()));
            want.put(TensorNames.gateWeight(i), TensorNames.gateWeightShape(n, c.hiddenSize()));
            want.put(TensorNames.gateBias(i), TensorNames.gateBiasShape(n));
        }
        for (Map.Entry<String, int[]> e : want.entrySet()) {
            if (!tensors.contains(e.getKey()))
                throw new IllegalArgumentException("MoDE export: tensor " + e.getKey()
                        + " is missing; pass a complete MoDE model (backbone, experts and gates)");
            if (!Arrays.equals(tensors.shape(e.getKey()), e.getValue()))
                throw new IllegalArgumentException("MoDE export: tensor " + e.getKey() + " has shape "
                        + Arrays.toString(tensors.shape(e.getKey())) + " but the config implies "
                        + Arrays.toString(e.getValue()));
        }
        for (String name : tensors.names())
            if (!want.containsKey(name))
                throw new IllegalArgumentException("MoDE export: unexpected tensor " + name + " (not part of a "
                        + mode.numBlocks() + "-block, " + n + "-expert MoDE model)");
    }

    private static byte[] resource(String name) {
        try (InputStream in = HfModeExport.class.getResourceAsStream("hf-mode/" + name)) {
            if (in == null) throw new IllegalStateException("resource hf-mode/" + name + " is missing from the build");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource hf-mode/" + name, e);
        }
    }
}
