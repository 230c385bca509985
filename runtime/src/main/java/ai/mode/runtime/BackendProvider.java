package ai.mode.runtime;

/**
 * Service-provider hook: each backend module registers one in
 * {@code META-INF/services/ai.mode.runtime.BackendProvider}, so {@link Backends#create} finds it by name.
 */
public interface BackendProvider {
    /** The name users pass, e.g. {@code cpu}. */
    String name();

    /** Whether this backend can run here (e.g. a driver is present); {@link #unavailableReason()} says why not. */
    boolean available();

    /** One line naming what is missing and how to fix it; empty when available. */
    default String unavailableReason() {
        return "";
    }

    /** A new backend; {@code threads <= 0} means one per available core. */
    Backend create(int threads);
}
