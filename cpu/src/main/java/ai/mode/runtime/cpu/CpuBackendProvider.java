package ai.mode.runtime.cpu;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;

/** Registers the {@code cpu} backend with {@link ai.mode.runtime.Backends}; always available. */
public final class CpuBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean available() {
        return true;
    }

    @Override
    public Backend create(int threads) {
        return new CpuBackend(threads);
    }
}
