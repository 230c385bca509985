package ai.mode.runtime.cuda;

import ai.mode.bindings.CudaDriver;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.device.DeviceBackend;
import java.util.Optional;

/**
 * The {@code cuda} backend: {@link DeviceBackend} (the project's kernels, cuBLASLt GEMMs) over a
 * {@link CudaDevice}. Unavailable, with one line saying why, when there is no NVIDIA driver or no GPU; the
 * {@code cpu} backend is unaffected. The device is the spec's ordinal, its settings
 * the spec's {@link CudaOptions}.
 */
public final class CudaBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public boolean available() {
        return problem().isEmpty();
    }

    @Override
    public String unavailableReason() {
        return problem().orElse("");
    }

    private static Optional<String> problem() {
        Optional<String> driver = CudaDriver.unavailableReason();
        if (driver.isPresent()) return driver;
        try {
            if (CudaDriver.get().deviceCount() == 0) return Optional.of("no CUDA device is visible; use --backend cpu");
        } catch (RuntimeException e) {
            return Optional.of(e.getMessage());
        }
        return Optional.empty();
    }

    /**
     * The GPU {@code spec.ordinal()} with the {@link CudaOptions} of {@code spec}; {@code threads} is ignored: the GPU
     * schedules its own work.
     */
    @Override
    public Backend create(BackendSpec spec) {
        return new DeviceBackend(CudaDevice.open(spec.ordinal(), CudaOptions.of(spec)), "cuda");
    }
}
