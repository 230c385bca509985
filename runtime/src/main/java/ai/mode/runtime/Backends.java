package ai.mode.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Finds backends by name through {@link BackendProvider} services. */
public final class Backends {
    private Backends() {}

    public static List<BackendProvider> providers() {
        List<BackendProvider> out = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class).forEach(out::add);
        return out;
    }

    /** Creates the named backend, or throws with a one-line reason naming the fix. */
    public static Backend create(String name, int threads) {
        List<String> known = new ArrayList<>();
        for (BackendProvider p : providers()) {
            known.add(p.name());
            if (p.name().equals(name)) {
                if (!p.available()) {
                    throw new IllegalStateException(
                            "backend '" + name + "' is not available: " + p.unavailableReason());
                }
                return p.create(threads);
            }
        }
        throw new IllegalArgumentException(
                "unknown backend '" + name + "'; known backends: " + String.join(", ", known));
    }
}
