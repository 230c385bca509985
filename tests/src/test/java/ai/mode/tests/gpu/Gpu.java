package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CudaDriver;
import ai.mode.runtime.device.Device;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;

/** Helpers for the gpu-tagged tests: the GPU assumption, host/device copies, bf16 rounding. */
final class Gpu {
    private Gpu() {}

    /** Skips the test (by assumption, with the reason) unless a CUDA driver and at least one GPU are present. */
    static CudaDriver requireGpu() {
        Optional<String> reason = CudaDriver.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "no usable CUDA GPU: " + reason.orElse(""));
        CudaDriver d = CudaDriver.get();
        assumeTrue(d.deviceCount() > 0, "CUDA driver present but no device visible");
        return d;
    }

    static long upload(Device dev, float[] data) {
        long ptr = dev.malloc(4L * data.length);
        dev.copyHostToDevice(MemorySegment.ofArray(data), ptr, 4L * data.length);
        return ptr;
    }

    static long upload(Device dev, short[] data) {
        long ptr = dev.malloc(2L * data.length);
        dev.copyHostToDevice(MemorySegment.ofArray(data), ptr, 2L * data.length);
        return ptr;
    }

    static float[] downloadFloats(Device dev, long ptr, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(4L * n);
            dev.copyDeviceToHost(ptr, host, 4L * n);
            return host.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    static short[] downloadShorts(Device dev, long ptr, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(2L * n);
            dev.copyDeviceToHost(ptr, host, 2L * n);
            return host.toArray(ValueLayout.JAVA_SHORT);
        }
    }

    /** float32 to bf16 bits, round to nearest even (finite inputs). */
    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    static float fromBf16(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    static short[] toBf16(float[] x) {
        short[] out = new short[x.length];
        for (int i = 0; i < x.length; i++) out[i] = toBf16(x[i]);
        return out;
    }

    static float[] fromBf16(short[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) out[i] = fromBf16(x[i]);
        return out;
    }
}
