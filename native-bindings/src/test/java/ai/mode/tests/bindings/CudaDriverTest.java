package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaException;
import ai.mode.bindings.NativeLibraryException;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Without an NVIDIA driver (or GPU), the driver bindings fail with one clear line, every time. */
class CudaDriverTest {

    @Test
    void missingDriverOrDeviceIsOneClearLine() {
        Optional<String> reason = CudaDriver.unavailableReason();
        assumeTrue(reason.isPresent(), "a CUDA driver and GPU are present; see the gpu-tagged tests");
        String msg = reason.get();
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertTrue(msg.contains("--backend cpu") || msg.contains("stubs"), msg);
        RuntimeException first = assertThrows(RuntimeException.class, CudaDriver::get);
        assertTrue(first instanceof NativeLibraryException || first instanceof CudaException, first.toString());
        assertEquals(msg, first.getMessage());
        assertEquals(
                msg, assertThrows(RuntimeException.class, CudaDriver::get).getMessage(), "the same failure each call");
        if (first instanceof NativeLibraryException) {
            assertEquals("libcuda.so.1 / libcuda.so not found: no NVIDIA driver; use --backend cpu", msg);
        }
    }
}
