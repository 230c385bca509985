package ai.mode.tests.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cuda.CudaBackendProvider;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.Bf16;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import ai.mode.tests.reference.Tolerance;
import java.util.Arrays;

/**
 * Shared fixtures of the kernel tests: one {@code emu} backend (the kernels on the CPU emulator, through
 * the same DeviceBackend code path as {@code cuda}; {@code cuda} itself with {@code -Dmode.kernels.backend=cuda})
 * and one {@code cpu} backend per JVM, host/device conversions, NaN-poisoned outputs, and the tolerance rule of
 * docs/design.md for float32 and bf16 storage.
 * Tests skip by assumption when the emulator library was not built (no g++).
 */
public final class EmuOps {
    private EmuOps() {}

    private static DeviceBackend emu;
    private static DeviceBackend emuTiled;
    private static Backend cpu;

    /**
     * The device the kernel tests run on: {@code -Dmode.kernels.backend=emu} (the default, the CPU emulator) or
     * {@code cuda} (a GPU, as {@code gpu-check.sh} runs them: the same shapes and error rule; GEMMs then go to the
     * project's kernels only under {@code -Dmode.cuda.gemm=kernel}).
     */
    private static final String DEVICE = System.getProperty("mode.kernels.backend", "emu");

    /** The device backend (tensor-core GEMM kernels on); skips the calling test if that device is unavailable. */
    public static synchronized DeviceBackend emu() {
        if (emu == null) emu = open(true);
        return emu;
    }

    /** A device backend whose BF16 GEMMs use the tiled kernel instead of WMMA. */
    public static synchronized DeviceBackend emuTiled() {
        if (emuTiled == null) emuTiled = open(false);
        return emuTiled;
    }

    private static DeviceBackend open(boolean tensorCores) {
        switch (DEVICE) {
            case "emu" -> {
                assumeTrue(EmuDevice.libraryAvailable(), "emu backend unavailable: " + EmuDevice.unavailableReason());
                return new DeviceBackend(EmuDevice.open(), "emu", tensorCores);
            }
            case "cuda" -> {
                CudaBackendProvider cuda = new CudaBackendProvider();
                assumeTrue(cuda.available(), () -> "cuda backend unavailable: " + cuda.unavailableReason());
                return new DeviceBackend(
                        CudaDevice.open(BackendSpec.fromEnvironment("cuda", 1).ordinal()), "cuda", tensorCores);
            }
            default ->
                throw new IllegalArgumentException(
                        "-Dmode.kernels.backend=" + DEVICE + " is not a device backend; use emu or cuda");
        }
    }

    /** The cpu backend, two threads. */
    public static synchronized Backend cpu() {
        if (cpu == null) cpu = Backends.create("cpu", 2);
        return cpu;
    }

    /** A tensor of {@code dtype} holding {@code data} (bf16 rounds to nearest even). */
    public static Tensor tensor(Backend be, DType dtype, float[] data, int... shape) {
        Tensor t = be.allocate(dtype, shape);
        be.copyFromHost(data, t);
        return t;
    }

    public static Tensor f32(Backend be, float[] data, int... shape) {
        return be.fromHost(data, shape);
    }

    public static Tensor i32(Backend be, int[] data, int... shape) {
        return be.fromHost(data, shape);
    }

    /** An output tensor filled with NaN, so elements a kernel fails to write are caught. */
    public static Tensor poisoned(Backend be, DType dtype, int... shape) {
        Tensor t = be.allocate(dtype, shape);
        float[] nan = new float[Math.toIntExact(t.numel())];
        Arrays.fill(nan, Float.NaN);
        be.copyFromHost(nan, t);
        return t;
    }

    public static float[] host(Backend be, Tensor t) {
        return be.toHostFloats(t);
    }

    public static int[] hostInts(Backend be, Tensor t) {
        int[] out = new int[Math.toIntExact(t.numel())];
        be.toHost(t, out);
        return out;
    }

    /** {@code x} rounded through bfloat16 (the values a BF16 tensor holds). */
    public static float[] roundBf16(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) out[i] = Bf16.round(x[i]);
        return out;
    }

    public static float[] round(DType dtype, float[] x) {
        return dtype == DType.BF16 ? roundBf16(x) : x.clone();
    }

    /**
     * The tolerance rule (docs/design.md, "Verification") for an op's output: {@code got} within twice the naive
     * float32 error against float64, plus, for BF16 storage, the rounding of the output to bfloat16 (half a bf16 ulp,
     * 2^-9 relative, of each reference value, doubled). Every element must be finite (the output was poisoned with
     * NaN).
     */
    public static void assertKernel(String what, DType dtype, float[] got, double[] naive32, double[] ref64) {
        for (int i = 0; i < got.length; i++) {
            if (!Float.isFinite(got[i])) fail(what + ": element " + i + " is " + got[i] + " (not written or overflow)");
        }
        if (dtype == DType.F32) {
            Tolerance.assertWithinNaiveBound(what, got, naive32, ref64);
            return;
        }
        double naiveErr = Tolerance.maxAbsError(naive32, ref64);
        double floor = Math.ulp((float) Tolerance.maxAbs(ref64));
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < got.length; i++) {
            double allowed = Math.max(2 * naiveErr, floor) + 2 * Math.abs(ref64[i]) * 0x1p-9;
            double e = Math.abs(got[i] - ref64[i]);
            if (e > allowed && (worst < 0 || e - allowed > worstExcess)) {
                worst = i;
                worstExcess = e - allowed;
            }
        }
        if (worst >= 0) {
            fail(what + " (bf16): element " + worst + " is " + got[worst] + " but float64 gives " + ref64[worst]
                    + " (naive float32 error " + naiveErr + ")");
        }
    }

    /**
     * The emu result agrees with the cpu backend's: both were checked against float64, so they may differ
     * by at most the sum of their errors against it (plus one float32 ulp of the largest value).
     */
    public static void assertMatchesCpu(String what, float[] emuOut, float[] cpuOut, double[] ref64) {
        assertTrue(emuOut.length == cpuOut.length, what + ": emu and cpu lengths differ");
        double bound = Tolerance.maxAbsError(emuOut, ref64)
                + Tolerance.maxAbsError(cpuOut, ref64)
                + Math.ulp((float) Tolerance.maxAbs(ref64));
        for (int i = 0; i < emuOut.length; i++) {
            double d = Math.abs((double) emuOut[i] - cpuOut[i]);
            if (!(d <= bound))
                fail(what + ": emu " + emuOut[i] + " vs cpu " + cpuOut[i] + " at " + i + " (bound " + bound + ")");
        }
    }
}
