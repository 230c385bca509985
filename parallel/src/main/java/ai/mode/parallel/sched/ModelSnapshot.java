package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.nn.Parameter;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Everything a rank needs to build its part of a MoDE model: shapes, MoDE options, every parameter's values (host
 * copies) and which parameters train. Taken once from a single-device ModeModel before ranks start.
 *
 * @param config    the backbone's shape
 * @param mode      blocks, experts, routing
 * @param values    every parameter of the model by name (embedding, backbone layers, final norm, head, experts, gates)
 * @param trainable names of the parameters that train
 */
public record ModelSnapshot(LlamaConfig config, ModeConfig mode, NamedTensors values, Set<String> trainable) {
    public ModelSnapshot {
        trainable = Set.copyOf(trainable);
    }

    /** Copies a model's parameters to the host and records which are trainable. */
    public static ModelSnapshot of(ModeModel model) {
        NamedTensors v = new NamedTensors();
        Set<String> t = new LinkedHashSet<>();
        for (Parameter p : model.parameters()) {
            v.put(p.name(), p.shape(), model.backend().toHostFloats(p.value()));
            if (p.trainable()) t.add(p.name());
        }
        return new ModelSnapshot(model.config(), model.modeConfig(), v, t);
    }

    /** The values of parameter {@code name}, checked against the shape a rank expects. */
    float[] values(String name, int[] shape) {
        if (!values.contains(name)) throw new IllegalArgumentException("model snapshot has no parameter " + name);
        int[] have = values.shape(name);
        if (!java.util.Arrays.equals(have, shape)) {
            throw new IllegalArgumentException("parameter " + name + " has shape " + java.util.Arrays.toString(have)
                    + " but the rank expects " + java.util.Arrays.toString(shape));
        }
        return values.data(name);
    }
}
