package ai.mode.tests.emu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.kernels.KernelResources;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.DType;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.device.Device;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.runtime.emu.EmuDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The Java side's kernel parameters match the C side. Kernels take scalars only (no structs), so this
 * checks (1) the C sizes and alignments of every parameter type against the Java layouts KernelArgs
 * writes, (2) a probe kernel echoing one parameter of every type and the launch geometry back, and (3)
 * that every kernel the build indexed is launched by DeviceBackend with exactly the parameter types the
 * C++ compiler recorded for it (the emulator records them from the kernels' prototypes).
 */
class KernelArgsLayoutTest {

    private static EmuDevice device() {
        assumeTrue(EmuDevice.libraryAvailable(), EmuDevice.unavailableReason());
        return EmuDevice.open();
    }

    @Test
    void scalarSizesAndAlignmentsMatchJava() {
        int[][] layout = device().library().scalarLayout();
        // order: pointer, int, unsigned, long long, float, double
        ValueLayout[] java = {
            ValueLayout.ADDRESS,
            ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_FLOAT,
            ValueLayout.JAVA_DOUBLE
        };
        assertEquals(java.length, layout[0].length);
        for (int i = 0; i < java.length; i++) {
            assertEquals(java[i].byteSize(), layout[0][i], "sizeof of parameter type " + i);
            assertEquals(java[i].byteAlignment(), layout[1][i], "alignof of parameter type " + i);
            assertTrue(layout[0][i] <= 8, "every parameter fits KernelArgs' 8-byte slot");
        }
    }

    @Test
    void probeEchoesEveryScalarTypeAndTheGeometry() {
        EmuDevice dev = device();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG, 12),
                    counter = arena.allocate(ValueLayout.JAVA_INT);
            counter.set(ValueLayout.JAVA_INT, 0, 0);
            MemorySegment marker = arena.allocate(16);
            int i = -123456789;
            long l = 0x7edcba9876543210L;
            float f = -0.0f;
            double d = Math.PI;
            int u = 0xFFFFFFFE;
            KernelArgs args = new KernelArgs(arena, 8)
                    .i32(i)
                    .i64(l)
                    .f32(f)
                    .f64(d)
                    .u32(u)
                    .ptr(marker.address())
                    .ptr(out.address())
                    .ptr(counter.address());
            KernelFunction fn = dev.function("mode_probe_params_fwd_f32");
            dev.verifyParameters(fn, args.signature());
            dev.launch(fn, 2, 3, 1, 4, 2, 2, 0, args.build());
            long[] got = out.toArray(ValueLayout.JAVA_LONG);
            assertEquals(i, got[0]);
            assertEquals(l, got[1]);
            assertEquals(Float.floatToRawIntBits(f) & 0xFFFFFFFFL, got[2]);
            assertEquals(Double.doubleToRawLongBits(d), got[3]);
            assertEquals(0xFFFFFFFEL, got[4]);
            assertEquals(marker.address(), got[5]);
            assertArrayEquals(new long[] {2, 3, 1, 4, 2, 2}, java.util.Arrays.copyOfRange(got, 6, 12));
            assertEquals(2 * 3 * 4 * 2 * 2, counter.get(ValueLayout.JAVA_INT, 0), "every thread of every block ran");
        }
    }

    @Test
    void everyKernelIsLaunchedWithItsCSignature() {
        EmuDevice emu = device();
        Recording rec = new Recording(emu);
        try (DeviceBackend tc = new DeviceBackend(rec, "emu", true);
                DeviceBackend tiled = new DeviceBackend(rec, "emu", false)) {
            for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                exerciseAllOps(tc, dt);
                attention(tiled, dt); // BF16: the CUDA-core kernels (tc runs the tensor-core ones)
                gemm(tc, dt, dt);
                gemm(tiled, dt, dt);
                gemm(tc, DType.BF16, DType.F32);
                gemm(tiled, DType.BF16, DType.F32);
            }
        }
        Set<String> indexed = new TreeSet<>(KernelResources.entryPoints().keySet());
        indexed.remove("mode_probe_params_fwd_f32"); // diagnostics only, checked above
        assertEquals(indexed, new TreeSet<>(rec.signatures.keySet()), "DeviceBackend launches every indexed kernel");
        Set<String> inLibrary = new TreeSet<>();
        for (int k = 0; k < emu.library().kernelCount(); k++)
            inLibrary.add(emu.library().kernelName(k));
        assertEquals(
                new TreeSet<>(KernelResources.entryPoints().keySet()),
                inLibrary,
                "the emulator library holds exactly the indexed kernels");
        for (Map.Entry<String, String> e : rec.signatures.entrySet()) {
            assertEquals(
                    emu.library().kernelSignature(e.getKey()).orElseThrow(),
                    e.getValue(),
                    "parameters of " + e.getKey());
        }
    }

    /** One GEMM above the op contract's small size (which always runs the tiled kernel), so WMMA runs too. */
    private static void gemm(DeviceBackend be, DType ab, DType c) {
        be.gemm(false, true, 1f, be.allocate(ab, 17, 16), be.allocate(ab, 17, 16), 0f, be.allocate(c, 17, 17));
    }

    /** Calls every Backend op once on tiny tensors of {@code dt} (values do not matter here). */
    private static void exerciseAllOps(DeviceBackend be, DType dt) {
        int n = 4, d = 6;
        Tensor x = be.allocate(dt, n, d), y = be.allocate(dt, n, d), o = be.allocate(dt, n, d);
        Tensor ids = be.fromHost(new int[] {0, 1, 2, 1}, n);
        be.fill(be.zeros(3), 1f);
        be.add(x, y, o);
        be.axpy(2f, x, y);
        be.scale(x, 0.5f);
        be.sumSquares(x);
        be.sumRowsAccumulate(x, be.zeros(d));
        be.embeddingForward(be.allocate(dt, 3, d), ids, o);
        be.embeddingBackward(o, ids, be.zeros(3, d));
        be.rmsNormForward(x, be.zeros(d), 1e-5f, o, be.zeros(n));
        be.rmsNormBackward(o, x, be.zeros(d), be.zeros(n), y, be.zeros(d));
        Tensor r = be.allocate(dt, 1, 2, 2, 4);
        be.ropeForward(r, RopeFrequencies.plain(10000f, 4), 0, r);
        be.ropeBackward(r, RopeFrequencies.of(0.5, 0.25), 3, r);
        attention(be, dt);
        be.swiGluForward(x, y, o);
        be.swiGluBackward(o, x, y, be.allocate(dt, n, d), be.allocate(dt, n, d));
        be.crossEntropy(x, be.fromHost(new int[] {0, 5, -100, 2}, n), o, 1f);
        be.adamW(
                be.zeros(5),
                be.zeros(5),
                be.zeros(5),
                be.zeros(5),
                new AdamWStep(1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1, 1f));
        Tensor p = be.allocate(dt, n, 3);
        be.softmaxForward(p, p);
        be.softmaxBackward(p, p, p);
        be.weightedMergeForward(be.allocate(dt, 3, n, d), p, o);
        be.weightedMergeBackward(o, be.allocate(dt, 3, n, d), p, be.allocate(dt, 3, n, d), be.allocate(dt, n, 3));
        be.topK(p, 2, be.fromHost(new int[n * 2], n, 2), be.allocate(dt, n, 2));
        be.gatherRows(x, ids, o);
        be.scatterAddRows(o, ids, y);
        Tensor w = be.zeros(2, 5, d), offsets = be.fromHost(new int[] {0, 1, n}, 3);
        be.groupedGemmForward(x, ids, w, offsets, 0f, be.allocate(dt, n, 5));
        be.groupedSwiGluForward(x, null, w, w, null, be.allocate(dt, n, 5), null, be.allocate(dt, n, 5));
        be.groupedGemmBackwardData(be.allocate(dt, n, 5), w, offsets, 1f, be.allocate(dt, n, d));
        be.groupedGemmBackwardWeight(be.allocate(dt, n, 5), x, ids, offsets, 0f, be.zeros(2, 5, d));
        be.synchronize();
    }

    /** Attention forward, backward and cached forward at a head dimension of each tile (8, 40, 72), tiny shapes. */
    private static void attention(DeviceBackend be, DType dt) {
        for (int hd : new int[] {8, 40, 72}) {
            Tensor q = be.allocate(dt, 1, 3, 2, hd), k = be.allocate(dt, 1, 3, 1, hd), v = be.allocate(dt, 1, 3, 1, hd);
            Tensor out = be.allocate(dt, 1, 3, 2, hd), lse = be.zeros(1, 2, 3);
            be.attentionForward(q, k, v, out, lse);
            be.attentionBackward(
                    out,
                    q,
                    k,
                    v,
                    out,
                    lse,
                    be.allocate(dt, 1, 3, 2, hd),
                    be.allocate(dt, 1, 3, 1, hd),
                    be.allocate(dt, 1, 3, 1, hd));
            be.attentionCachedForward(be.allocate(dt, 1, 1, 2, hd), k, v, 2, be.allocate(dt, 1, 1, 2, hd));
        }
    }

    /**
     * A device that records the marshalled parameter types of every kernel and the entry points launched, in order,
     * delegating everything to the emulator; it may claim another compute capability than the emulator's.
     */
    static final class Recording implements Device {
        final Map<String, String> signatures = new TreeMap<>();
        final List<String> launched = new ArrayList<>();
        private final Device inner;
        private final int computeCapability;

        Recording(Device inner) {
            this(inner, inner.computeCapability());
        }

        Recording(Device inner, int computeCapability) {
            this.inner = inner;
            this.computeCapability = computeCapability;
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public int computeCapability() {
            return computeCapability;
        }

        @Override
        public long malloc(long bytes) {
            return inner.malloc(bytes);
        }

        @Override
        public void free(long ptr) {
            inner.free(ptr);
        }

        @Override
        public void memset(long ptr, int byteValue, long bytes) {
            inner.memset(ptr, byteValue, bytes);
        }

        @Override
        public void copyHostToDevice(MemorySegment src, long dst, long bytes) {
            inner.copyHostToDevice(src, dst, bytes);
        }

        @Override
        public void copyDeviceToHost(long src, MemorySegment dst, long bytes) {
            inner.copyDeviceToHost(src, dst, bytes);
        }

        @Override
        public void copyDeviceToDevice(long src, long dst, long bytes) {
            inner.copyDeviceToDevice(src, dst, bytes);
        }

        @Override
        public KernelFunction function(String entryPoint) {
            return inner.function(entryPoint);
        }

        @Override
        public void synchronize() {
            inner.synchronize();
        }

        @Override
        public Optional<ai.mode.runtime.device.Gemm> vendorGemm() {
            return inner.vendorGemm();
        }

        @Override
        public void close() {}

        @Override
        public void verifyParameters(KernelFunction f, String signature) {
            String previous = signatures.put(f.entryPoint(), signature);
            assertTrue(previous == null || previous.equals(signature), "one signature per kernel: " + f.entryPoint());
            inner.verifyParameters(f, signature);
        }

        @Override
        public void launch(
                KernelFunction f,
                int gx,
                int gy,
                int gz,
                int bx,
                int by,
                int bz,
                int sharedBytes,
                MemorySegment params) {
            launched.add(f.entryPoint());
            inner.launch(f, gx, gy, gz, bx, by, bz, sharedBytes, params);
        }
    }
}
