package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.StackedLayerWeights;
import ai.mode.model.mode.StackedLayout;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.DecoderLayer;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import ai.mode.tests.reference.TestData;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The MoDE experts on a device backend run the grouped expert GEMM on bf16 tensor cores by default: a stacked
 * decoder layer of three experts (forward, input gradient, every weight gradient) on {@code emu} agrees with {@code
 * cpu}'s float32 result to bf16 precision and not to float32 precision (so the tensor-core kernels ran), while the
 * same device with tensor cores off (the grouped ops composed from float32 GEMMs) agrees to float32 precision.
 */
class GroupedExpertsEmuTest {
    private static final LlamaConfig CFG = new LlamaConfig(40, 32, 1, 4, 2, 48, 16, 10000f, 1e-5f, false);
    private static final int EXPERTS = 3, BATCH = 2, SEQ = 5;

    /** Output, input gradient and weight gradients of one forward and backward, by name. */
    private static Map<String, float[]> run(Backend be) {
        Map<String, float[]> out = new LinkedHashMap<>();
        List<String> prefixes = new ArrayList<>();
        for (int j = 0; j < EXPERTS; j++) prefixes.add(ModeModel.expertLayerPrefix(0, j, 0));
        int d = CFG.hiddenSize(), rows = EXPERTS * BATCH;
        try (BufferPool scratch = new BufferPool(be);
                StackedLayerWeights w = StackedLayerWeights.allocate(be, CFG, prefixes)) {
            long seed = 5;
            for (Parameter p : w.parameters()) {
                float[] v = TestData.normal(seed++, Math.toIntExact(p.numel()), 0.3);
                if (p.shape().length == 1) for (int i = 0; i < v.length; i++) v[i] += 1f; // norm gains near 1
                be.copyFromHost(v, p.value());
                p.setTrainable(true);
            }
            DecoderLayer layer = StackedLayout.layer(be, CFG, w, Map.of(), scratch);
            try (Tensor x = be.fromHost(TestData.normal(1, rows * SEQ * d), rows, SEQ, d);
                    Tensor dy = be.fromHost(TestData.normal(2, rows * SEQ * d), rows, SEQ, d)) {
                out.put("y", be.toHostFloats(layer.forward(x)));
                out.put("dx", be.toHostFloats(layer.backward(dy)));
            }
            for (Parameter p : w.parameters()) out.put(p.name(), be.toHostFloats(p.grad()));
            layer.releaseBuffers();
        }
        return out;
    }

    /** max |a - ref| / max |ref|. */
    private static double relError(float[] a, float[] ref) {
        double err = 0, scale = Double.MIN_NORMAL;
        for (int i = 0; i < a.length; i++) {
            err = Math.max(err, Math.abs((double) a[i] - ref[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        return Double.isNaN(err) ? Double.POSITIVE_INFINITY : err / scale;
    }

    @Test
    void expertsRunTheGroupedTensorCoreKernelsWithinBf16Precision() {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "emu backend unavailable: " + EmuDevice.unavailableReason());
        Map<String, float[]> cpu, tc, f32;
        try (Backend be = Backends.create("cpu", 1)) {
            cpu = run(be);
        }
        try (Backend be = new DeviceBackend(EmuDevice.open(), "emu", true)) {
            tc = run(be);
        }
        try (Backend be = new DeviceBackend(EmuDevice.open(), "emu", false)) {
            f32 = run(be);
        }
        double worstTc = 0;
        for (Map.Entry<String, float[]> e : cpu.entrySet()) {
            double eTc = relError(tc.get(e.getKey()), e.getValue()), eF32 = relError(f32.get(e.getKey()), e.getValue());
            // bf16 operands (unit roundoff 2^-9) through a decoder layer's chain of products: within 2^-6 of the
            // largest value; a wrong kernel gives errors of order 1
            assertTrue(eTc < 0x1p-6, e.getKey() + ": tensor-core experts differ from cpu by " + eTc);
            assertTrue(eF32 < 1e-4, e.getKey() + ": float32 grouped ops differ from cpu by " + eF32);
            worstTc = Math.max(worstTc, eTc);
        }
        assertTrue(worstTc > 1e-4, "the tensor-core path must round to bf16 (worst difference " + worstTc + ")");
    }
}
