package ai.mode.tests.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import org.junit.jupiter.api.Test;

/** The emu backend runs a kernel end to end: allocation, upload, launch, download. */
class EmuSmokeTest {
    @Test
    void addRunsOnTheEmulator() {
        Backend be = EmuOps.emu();
        float[] a = {1, 2, 3, 4, 5}, b = {10, 20, 30, 40, 50};
        Tensor out = EmuOps.poisoned(be, ai.mode.runtime.DType.F32, 5);
        be.add(EmuOps.f32(be, a, 5), EmuOps.f32(be, b, 5), out);
        assertArrayEquals(new float[] {11, 22, 33, 44, 55}, EmuOps.host(be, out));
    }
}
