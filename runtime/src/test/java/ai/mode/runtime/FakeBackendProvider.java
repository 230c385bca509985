package ai.mode.runtime;

import java.lang.reflect.Proxy;
import java.util.Set;

/**
 * Test providers registered in the runtime module's test resources: {@code fake}, which records the spec it was given
 * in a backend whose {@link Backend#name()} and {@link Backend#numerics()} echo it, and {@code absent}, never available.
 */
public final class FakeBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "fake";
    }

    @Override
    public boolean available() {
        return true;
    }

    @Override
    public Backend create(BackendSpec spec) {
        spec.requireOnlyOptions(Set.of("color"));
        String numerics = "fake #" + spec.ordinal() + " threads=" + spec.threads() + " " + spec.options();
        return (Backend) Proxy.newProxyInstance(
                Backend.class.getClassLoader(),
                new Class<?>[] {Backend.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "name" -> "fake";
                    case "numerics" -> numerics;
                    case "close" -> null;
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }

    /** A provider whose backend cannot run here. */
    public static final class Absent implements BackendProvider {
        @Override
        public String name() {
            return "absent";
        }

        @Override
        public boolean available() {
            return false;
        }

        @Override
        public String unavailableReason() {
            return "no absent device here; use --backend fake";
        }

        @Override
        public Backend create(BackendSpec spec) {
            throw new AssertionError("create must not be called on an unavailable provider");
        }
    }
}
