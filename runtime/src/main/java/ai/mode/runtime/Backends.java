package ai.mode.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Finds backends by name through {@link BackendProvider} services: the backend artifacts on the class or module path
 * (mode-cpu brings {@code cpu}; mode-cuda brings {@code cuda} and {@code emu}).
 */
public final class Backends {
    private Backends() {}

    /** Every registered provider, available or not. */
    public static List<BackendProvider> providers() {
        List<BackendProvider> out = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class).forEach(out::add);
        return out;
    }

    /**
     * Creates the backend {@code spec} names, or throws with a one-line reason naming the fix: {@link
     * IllegalArgumentException} for an unknown name (listing the registered ones), {@link IllegalStateException} for
     * a registered backend that cannot run here.
     */
    public static Backend create(BackendSpec spec) {
        List<String> known = new ArrayList<>();
        for (BackendProvider p : providers()) {
            known.add(p.name());
            if (p.name().equals(spec.backend())) {
                if (!p.available()) {
                    throw new IllegalStateException(
                            "backend '" + spec.backend() + "' is not available: " + p.unavailableReason());
                }
                return p.create(spec);
            }
        }
        throw new IllegalArgumentException("unknown backend '" + spec.backend() + "'; known backends: "
                + (known.isEmpty()
                        ? "none (add a backend artifact such as ai.mode:mode-cpu)"
                        : String.join(", ", known)));
    }

    /** {@code create(BackendSpec.fromEnvironment(name, threads))}: the command line's choice of backend. */
    public static Backend create(String name, int threads) {
        return create(BackendSpec.fromEnvironment(name, threads));
    }
}
