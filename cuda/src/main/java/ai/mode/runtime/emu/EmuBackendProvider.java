package ai.mode.runtime.emu;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.device.DeviceBackend;
import java.util.Set;

/**
 * The {@code emu} backend: {@link DeviceBackend}, the same code path as {@code cuda}, over the CPU
 * emulator ({@link EmuDevice}). For tests of the kernels and of the device runtime on machines without a
 * GPU; it is slow (every CUDA thread is a fiber on one emulator thread).
 */
public final class EmuBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "emu";
    }

    @Override
    public boolean available() {
        return EmuDevice.libraryAvailable();
    }

    @Override
    public String unavailableReason() {
        return available() ? "" : EmuDevice.unavailableReason();
    }

    /**
     * A new emulator instance; no options. Every ordinal is its own instance (placements such as {@code emu:0-1} open
     * several), and {@code threads} is ignored: the emulator runs kernels on its own thread.
     */
    @Override
    public Backend create(BackendSpec spec) {
        spec.requireOnlyOptions(Set.of());
        return new DeviceBackend(EmuDevice.open(), "emu");
    }
}
