package ai.mode.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.emu.EmuDevice;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * The device backends' side of {@link BackendSpec}: the {@code cuda} options and their errors, the {@code emu}
 * backend opened through the registry with a spec, and the refusal to wrap caller memory.
 */
class DeviceBackendSpecTest {
    @Test
    void cudaOptionsParseWithDefaults() {
        assertEquals(CudaOptions.DEFAULT, CudaOptions.of(BackendSpec.of("cuda", 0)));
        assertEquals(
                new CudaOptions(true, true, true),
                CudaOptions.of(BackendSpec.of("cuda", 0)
                        .withOption("gemm", "kernel")
                        .withOption("kernels", "NVRTC")
                        .withOption("tf32", "true")));
        assertEquals(
                CudaOptions.DEFAULT,
                CudaOptions.of(BackendSpec.of("cuda", 0)
                        .withOption("gemm", "cublaslt")
                        .withOption("kernels", "fatbin")
                        .withOption("tf32", "false")));
    }

    @Test
    void cudaOptionErrorsNameTheOptionAndTheChoices() {
        IllegalArgumentException value = assertThrows(
                IllegalArgumentException.class,
                () -> CudaOptions.of(BackendSpec.of("cuda", 0).withOption("gemm", "cublas")));
        assertEquals("cuda option gemm=cublas is not one of cublaslt, kernel", value.getMessage());
        IllegalArgumentException name = assertThrows(
                IllegalArgumentException.class,
                () -> CudaOptions.of(BackendSpec.of("cuda", 0).withOption("threads", "4")));
        assertEquals("backend 'cuda' has no option 'threads'; its options are gemm, kernels, tf32", name.getMessage());
    }

    @Test
    void emuOpensThroughTheRegistryAndTakesNoOptions() {
        assumeTrue(EmuDevice.libraryAvailable(), EmuDevice.unavailableReason());
        try (Backend emu = Backends.create(BackendSpec.of("emu", 0))) {
            assertEquals("emu", emu.name());
            Tensor a = emu.fromHost(new float[] {1, 2, 3}, 3), b = emu.fromHost(new float[] {10, 20, 30}, 3);
            Tensor out = emu.zeros(3);
            emu.add(a, b, out);
            assertArrayEquals(new float[] {11, 22, 33}, emu.toHostFloats(out));
            UnsupportedOperationException wrap = assertThrows(
                    UnsupportedOperationException.class,
                    () -> emu.wrap(MemorySegment.ofArray(new float[3]), DType.F32, 3));
            assertTrue(wrap.getMessage().contains("fromHost"), wrap.getMessage());
        }
        IllegalArgumentException option = assertThrows(
                IllegalArgumentException.class,
                () -> Backends.create(BackendSpec.of("emu", 0).withOption("gemm", "kernel")));
        assertEquals("backend 'emu' has no option 'gemm'; it takes none", option.getMessage());
    }
}
