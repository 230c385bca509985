package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import ai.mode.runtime.DType;
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
 * The MoDE experts of a float32 model on a device backend keep float32 products: the grouped expert GEMM's bf16
 * tensor-core kernels take bf16 activations only (as {@code gemm} and attention do; the conformance suite checks them
 * on bf16 tensors), so a stacked decoder layer of three experts (forward, input gradient, every weight gradient) on
 * {@code emu} with tensor cores on gives the same bits as with them off, and agrees with {@code cpu} to float32
 * precision.
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
    void float32ExpertsKeepFloat32ProductsWithTensorCoresOn() {
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
        for (Map.Entry<String, float[]> e : cpu.entrySet()) {
            assertArrayEquals(f32.get(e.getKey()), tc.get(e.getKey()), e.getKey() + ": tensor cores on and off differ");
            double err = relError(tc.get(e.getKey()), e.getValue());
            // float32 products in another order than cpu's: within 1e-4 of the largest value; bf16 rounding
            // (unit roundoff 2^-9) through the layer's chain of products would give about 1e-3
            assertTrue(err < 1e-4, e.getKey() + ": emu experts differ from cpu by " + err);
        }
    }

    /**
     * The top-k experts read tokens through the grouped GEMM's token list only where its kernels do (bf16 on tensor
     * cores); float32 activations, tensor cores off and cpu compose a gather, so the model keeps its packed copy.
     */
    @Test
    void fusedGatherOnlyWhereTheTensorCoreKernelsRun() {
        assumeTrue(EmuDevice.libraryAvailable(), () -> "emu backend unavailable: " + EmuDevice.unavailableReason());
        try (Backend be = new DeviceBackend(EmuDevice.open(), "emu", true)) {
            assertTrue(be.fusedGroupedGather(DType.BF16), "bf16 on tensor cores reads token lists in place");
            assertFalse(be.fusedGroupedGather(DType.F32), "float32 activations compose the gather");
        }
        try (Backend be = new DeviceBackend(EmuDevice.open(), "emu", false)) {
            assertFalse(be.fusedGroupedGather(DType.BF16), "tensor cores off compose the gather");
        }
        try (Backend be = Backends.create("cpu", 1)) {
            assertFalse(be.fusedGroupedGather(DType.F32), "cpu composes the gather");
        }
    }
}
