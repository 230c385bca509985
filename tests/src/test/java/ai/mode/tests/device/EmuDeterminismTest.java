package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.emu.EmuDevice;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every op twice on fresh emulated devices (the same DeviceBackend launches as on a GPU, blocks run by several
 * host threads) and on the cpu backend: the outputs hash to the same bits ({@link OpHashes}). The GPU version is
 * {@code CudaDeterminismGpuTest}.
 */
class EmuDeterminismTest {
    @ParameterizedTest
    @EnumSource(
            value = DType.class,
            names = {"F32", "BF16"})
    void everyOpGivesTheSameBitsTwice(DType act) {
        assumeTrue(EmuDevice.libraryAvailable(), "emu backend unavailable: " + EmuDevice.unavailableReason());
        for (String backend : new String[] {"emu", "cpu"}) {
            if (backend.equals("cpu") && act == DType.BF16) continue; // the cpu backend stores float32
            Map<String, String> first, second;
            try (Backend be = Backends.create(backend, 2)) {
                first = OpHashes.of(be, act);
            }
            try (Backend be = Backends.create(backend, 2)) {
                second = OpHashes.of(be, act);
            }
            assertEquals(first, second, backend + " " + act);
        }
    }
}
