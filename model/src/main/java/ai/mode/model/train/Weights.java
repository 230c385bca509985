package ai.mode.model.train;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Copies parameters between device tensors and host NamedTensors (the io helper's checkpoint format). Export and import
 * of parameter values by name.
 */
public final class Weights {
    private Weights() {}

    /** Host copies of the parameters' values, by name, in the given order. */
    public static NamedTensors export(Collection<Parameter> params) {
        NamedTensors out = new NamedTensors();
        for (Parameter p : params)
            out.put(p.name(), p.shape(), p.value().backend().toHostFloats(p.value()));
        return out;
    }

    /** Host copies of device tensors by name. */
    public static NamedTensors exportTensors(Map<String, Tensor> tensors) {
        NamedTensors out = new NamedTensors();
        tensors.forEach((name, t) -> out.put(name, t.shape(), t.backend().toHostFloats(t)));
        return out;
    }

    /**
     * Copies {@code source} into the parameters of the same names. Every parameter must be present with its
     * shape; with {@code allowExtra} false, tensors that match no parameter are an error too.
     */
    public static void load(Collection<Parameter> params, NamedTensors source, boolean allowExtra) {
        List<String> used = new ArrayList<>();
        for (Parameter p : params) {
            if (!source.contains(p.name())) {
                throw new IllegalArgumentException(
                        "checkpoint has no tensor " + p.name() + "; it was saved from a different model");
            }
            int[] shape = source.shape(p.name());
            if (!Arrays.equals(shape, p.shape())) {
                throw new IllegalArgumentException("checkpoint tensor " + p.name() + " has shape "
                        + Arrays.toString(shape) + " but the model expects " + Arrays.toString(p.shape()));
            }
            p.value().backend().copyFromHost(source.data(p.name()), p.value());
            used.add(p.name());
        }
        if (!allowExtra) {
            for (String n : source.names()) {
                if (!used.contains(n))
                    throw new IllegalArgumentException("checkpoint tensor " + n + " matches no model parameter");
            }
        }
    }
}
