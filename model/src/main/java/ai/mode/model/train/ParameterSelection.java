package ai.mode.model.train;

import ai.mode.model.nn.Parameter;
import java.util.List;
import java.util.function.Predicate;

/**
 * Pluggable choice of which parameters train: full training, MoDE (experts + gates only), LoRA (adapters only), or
 * anything else expressible as a predicate over parameters. Decides per parameter whether it trains; {@link #apply}
 * sets the flags (allocating or freeing gradients).
 */
@FunctionalInterface
public interface ParameterSelection {

    boolean trainable(Parameter p);

    /** Sets every parameter's trainable flag; returns the number of trainable elements. */
    default long apply(List<Parameter> params) {
        long n = 0;
        for (Parameter p : params) {
            boolean on = trainable(p);
            p.setTrainable(on);
            if (on) n += p.numel();
        }
        return n;
    }

    static ParameterSelection all() {
        return p -> true;
    }

    static ParameterSelection none() {
        return p -> false;
    }

    /** Parameters whose name starts with any of the prefixes. */
    static ParameterSelection prefixes(String... prefixes) {
        List<String> list = List.of(prefixes);
        return p -> list.stream().anyMatch(p.name()::startsWith);
    }

    static ParameterSelection of(Predicate<Parameter> predicate) {
        return predicate::test;
    }
}
