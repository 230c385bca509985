package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.tests.device.OpHashes;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The GPU contract of docs/cuda.md: on one GPU, driver and set of libraries, every op run twice (each time on a
 * freshly opened backend, cuBLASLt included where present) gives the same bits, compared as SHA-256 hashes of
 * every output ({@link OpHashes}). Skips by assumption without a GPU.
 */
@Tag("gpu")
class CudaDeterminismGpuTest {
    @ParameterizedTest
    @EnumSource(
            value = DType.class,
            names = {"F32", "BF16"})
    void everyOpGivesTheSameBitsTwice(DType act) {
        Gpu.requireGpu();
        Map<String, String> first, second;
        try (Backend be = Backends.create("cuda", 0)) {
            first = OpHashes.of(be, act);
        }
        try (Backend be = Backends.create("cuda", 0)) {
            second = OpHashes.of(be, act);
        }
        assertEquals(first, second, "cuda " + act);
    }
}
