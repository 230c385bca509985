package ai.mode.model.io;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Everything beyond the weights that exact (bitwise) resume needs: the step, AdamW first and second moments per
 * trainable parameter (float32, stored bit-exactly), and the trainer's own state (RNG, data position, schedule) as a
 * JSON object that this package stores verbatim and does not interpret.
 *
 * <p>Optimizer and trainer state, saved as {@code trainer_state.safetensors}: tensors {@code optimizer.m.<param>} and
 * {@code optimizer.v.<param>} (F32) and {@code __metadata__} {@code format=mode-trainer-state}, {@code version=1},
 * {@code step}, {@code state} (the JSON text).
 *
 * <pre>{@code
 * TrainerState s = new TrainerState(step, m, v, "{\"rng\":[12345,678],\"data_position\":4096}");
 * s.write(dir.resolve(TrainerState.FILE));
 * TrainerState back = TrainerState.read(dir.resolve(TrainerState.FILE));
 * back.requireMatches(trainableParams, dir);   // same names and shapes as the model's trainable parameters
 * }</pre>
 *
 * @param step      optimizer steps completed
 * @param adamM     first moments by parameter name
 * @param adamV     second moments, same names, order and shapes as {@code adamM}
 * @param stateJson a JSON object with the trainer's RNG, data-loader and schedule state
 */
public record TrainerState(long step, NamedTensors adamM, NamedTensors adamV, String stateJson) {

    /** File name inside a checkpoint directory. */
    public static final String FILE = "trainer_state.safetensors";

    static final String FORMAT = "mode-trainer-state";
    static final String M_PREFIX = "optimizer.m.";
    static final String V_PREFIX = "optimizer.v.";

    public TrainerState {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0 (got " + step + ")");
        if (!adamM.names().equals(adamV.names())) {
            throw new IllegalArgumentException(
                    "first and second moments must name the same parameters in the same order");
        }
        for (NamedTensors.Entry e : adamM) {
            if (!Arrays.equals(e.shape(), adamV.shape(e.name()))) {
                throw new IllegalArgumentException("moments of " + e.name() + " differ in shape: "
                        + Arrays.toString(e.shape()) + " vs " + Arrays.toString(adamV.shape(e.name())));
            }
        }
        if (stateJson == null) stateJson = "{}";
        String problem = jsonObjectProblem(stateJson);
        if (problem != null) throw new IllegalArgumentException("trainer state must be a JSON object: " + problem);
    }

    /** The trainer state parsed as a JSON object. */
    public JsonObject state() {
        try {
            return StrictJson.parse(stateJson).getAsJsonObject();
        } catch (IOException e) {
            throw new IllegalStateException("validated on construction", e);
        }
    }

    /** The first NaN or infinite moment, named with its file prefix ({@code optimizer.m.<param>}), if any. */
    public Optional<String> firstNonFinite() {
        return adamM.firstNonFinite(M_PREFIX).or(() -> adamV.firstNonFinite(V_PREFIX));
    }

    /** Writes the state atomically. */
    public void write(Path file) throws IOException {
        NamedTensors all = new NamedTensors();
        for (NamedTensors.Entry e : adamM) all.put(M_PREFIX + e.name(), e.shape(), e.data());
        for (NamedTensors.Entry e : adamV) all.put(V_PREFIX + e.name(), e.shape(), e.data());
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("version", "1");
        meta.put("step", Long.toString(step));
        meta.put("state", stateJson);
        SafeTensors.write(file, all, meta, SafeDType.F32);
    }

    /** Reads and validates a state file. */
    public static TrainerState read(Path file) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            Map<String, String> meta = r.metadata();
            if (!FORMAT.equals(meta.get("format"))) {
                throw new CheckpointFormatException(
                        file,
                        "not a trainer state file (__metadata__ format is "
                                + (meta.get("format") == null ? "absent" : SafeTensorsReader.quote(meta.get("format")))
                                + ", expected " + FORMAT + ")");
            }
            if (!"1".equals(meta.get("version"))) {
                throw new CheckpointFormatException(file, "unsupported trainer state version " + meta.get("version"));
            }
            long step;
            try {
                step = Long.parseLong(meta.getOrDefault("step", ""));
                if (step < 0) throw new NumberFormatException();
            } catch (NumberFormatException e) {
                throw new CheckpointFormatException(
                        file,
                        "__metadata__ step must be a non-negative integer, found "
                                + SafeTensorsReader.quote(String.valueOf(meta.get("step"))));
            }
            String state = meta.getOrDefault("state", "{}");
            String problem = jsonObjectProblem(state);
            if (problem != null)
                throw new CheckpointFormatException(file, "__metadata__ state is not a JSON object: " + problem);
            NamedTensors m = new NamedTensors(), v = new NamedTensors();
            for (TensorInfo t : r.infos()) {
                if (t.dtype() != SafeDType.F32) {
                    throw new CheckpointFormatException(
                            file,
                            "tensor " + t.name() + " is " + t.dtype()
                                    + "; optimizer moments must be F32 for exact resume");
                }
                if (t.name().startsWith(M_PREFIX))
                    m.put(t.name().substring(M_PREFIX.length()), t.shape(), r.readFloats(t.name()));
                else if (t.name().startsWith(V_PREFIX))
                    v.put(t.name().substring(V_PREFIX.length()), t.shape(), r.readFloats(t.name()));
                else
                    throw new CheckpointFormatException(
                            file,
                            "unexpected tensor " + t.name() + " (expected only " + M_PREFIX + "* and " + V_PREFIX
                                    + "*)");
            }
            for (String name : m.names()) {
                if (!v.contains(name)) throw new CheckpointFormatException(file, "missing tensor " + V_PREFIX + name);
                if (!Arrays.equals(m.shape(name), v.shape(name))) {
                    throw new CheckpointFormatException(
                            file,
                            "tensors " + M_PREFIX + name + " and " + V_PREFIX + name + " differ in shape: "
                                    + Arrays.toString(m.shape(name)) + " vs " + Arrays.toString(v.shape(name)));
                }
            }
            for (String name : v.names()) {
                if (!m.contains(name)) throw new CheckpointFormatException(file, "missing tensor " + M_PREFIX + name);
            }
            NamedTensors vOrdered = new NamedTensors();
            for (String name : m.names()) vOrdered.put(name, v.shape(name), v.data(name));
            return new TrainerState(step, m, vOrdered, state);
        }
    }

    /**
     * Checks that the moments cover exactly the given trainable parameters with the same shapes; the error names the
     * first missing, extra or mis-shaped parameter. {@code source} names the checkpoint in the message.
     */
    public void requireMatches(NamedTensors trainable, Path source) throws CheckpointFormatException {
        for (NamedTensors.Entry p : trainable) {
            if (!adamM.contains(p.name())) {
                throw new CheckpointFormatException(
                        source,
                        "trainer state has no optimizer moments for parameter " + p.name()
                                + "; the checkpoint was saved with a different set of trainable parameters");
            }
            if (!Arrays.equals(p.shape(), adamM.shape(p.name()))) {
                throw new CheckpointFormatException(
                        source,
                        "optimizer moments of " + p.name() + " have shape " + Arrays.toString(adamM.shape(p.name()))
                                + " but the parameter has " + Arrays.toString(p.shape()));
            }
        }
        for (String name : adamM.names()) {
            if (!trainable.contains(name)) {
                throw new CheckpointFormatException(
                        source,
                        "trainer state has moments for " + name + ", which is not a trainable parameter of this run");
            }
        }
    }

    /** Null if {@code text} is exactly one JSON object, else a one-line description of the problem. */
    private static String jsonObjectProblem(String text) {
        try {
            JsonElement e = StrictJson.parse(text);
            if (!e.isJsonObject())
                return "found " + (e.isJsonNull() ? "null" : e.isJsonArray() ? "an array" : "a scalar");
            return null;
        } catch (IOException | RuntimeException e) {
            return CheckpointFormatException.firstLine(e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TrainerState s
                && step == s.step
                && adamM.bitwiseEquals(s.adamM)
                && adamV.bitwiseEquals(s.adamV)
                && stateJson.equals(s.stateJson);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(step) * 31 + stateJson.hashCode();
    }
}
