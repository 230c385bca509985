package ai.mode.runtime;

/**
 * Service-provider hook: each backend artifact registers one in
 * {@code META-INF/services/ai.mode.runtime.BackendProvider} (or a {@code provides} clause of its module), so
 * {@link Backends#create} finds it by name. A provider reads no system property or environment variable: everything it
 * needs comes in the {@link BackendSpec}.
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

    /**
     * A new backend on the device and with the settings {@code spec} names ({@code spec.backend()} is this provider's
     * name). Throws {@link IllegalArgumentException} naming the problem for an option or ordinal it cannot take.
     */
    Backend create(BackendSpec spec);
}
