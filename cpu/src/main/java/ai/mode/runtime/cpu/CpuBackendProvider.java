package ai.mode.runtime.cpu;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.BackendSpec;
import java.util.Set;

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

    /** Options {@value BackendSpec#CPU_GEMM} and {@value BackendSpec#CPU_VECTOR} (see {@link CpuBackend#CpuBackend(BackendSpec)}). */
    @Override
    public Backend create(BackendSpec spec) {
        spec.requireOnlyOptions(Set.of(BackendSpec.CPU_GEMM, BackendSpec.CPU_VECTOR));
        return new CpuBackend(spec);
    }
}
