// Top-k experts read the block input through the packed token list (the grouped GEMM's fused gather) where the
// backend's grouped ops take token lists in place: the same results as the packed copy, two fewer copies of the
// routed tokens per expert, and the token-list grouped GEMMs really run.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class GatheredExpertsTest {
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    /** What a run moved and which grouped GEMMs read token lists. */
    private static final class Record {
        long moved; // elements written by gatherRows and copy
        final List<Integer> tokenListRows = new ArrayList<>(); // R of each groupedGemmForward with a rows list
        int tokenListWeightGradients; // groupedGemmBackwardWeight calls with a rows list
    }

    /** The cpu backend, recording, that claims (fused) or denies (packed) in-place token lists for the grouped ops. */
    private static Backend recording(boolean fused, Record rec) {
        return (Backend) Proxy.newProxyInstance(
                Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "fusedGroupedGather" -> {
                            return fused;
                        }
                        case "gatherRows", "copy" -> rec.moved += ((Tensor) args[args.length - 1]).numel();
                        case "groupedGemmForward" -> {
                            if (args[1] != null) rec.tokenListRows.add(Math.toIntExact(((Tensor) args[1]).numel()));
                        }
                        case "groupedGemmBackwardWeight" -> {
                            if (args[2] != null) rec.tokenListWeightGradients++;
                        }
                        default -> {}
                    }
                    try {
                        // the cpu backend's own grouped ops (a gather and gemm calls) are not the model's and stay
                        // unrecorded
                        return method.invoke(be, args);
                    } catch (InvocationTargetException ex) {
                        throw ex.getCause();
                    }
                });
    }

    private record Run(float[] logits, double loss, Map<String, float[]> grads, long moved) {}

    private static Run run(Backend rb, Record rec, Routing routing, int[] ids, int[] targets, int b, int t) {
        try (LlamaModel base = ModeTestSupport.backbone(rb, 4);
                ModeModel mode = ModeModel.create(
                        base,
                        ModeConfig.residualRandom(2, 2, List.of("x", "y", "z")).withRouting(routing),
                        1);
                Tensor it = rb.fromHost(ids, b, t);
                Tensor tt = rb.fromHost(targets, b, t)) {
            ModeTestSupport.randomizeAdded(rb, mode, 9);
            mode.selectTrainable(true);
            rec.moved = 0;
            float[] logits = ModeTestSupport.logits(rb, mode, ids, b, t);
            long moved = rec.moved;
            double loss = mode.forwardBackward(it, tt, 1f / (b * t)).meanLoss();
            Map<String, float[]> grads = new HashMap<>();
            for (Parameter p : ((CausalLm) mode).trainableParameters()) grads.put(p.name(), rb.toHostFloats(p.grad()));
            return new Run(logits, loss, grads, moved);
        }
    }

    @Test
    void tokenListExpertsEqualThePackedCopyAndMoveTwoFewerCopies() {
        int b = 3, t = 9, d = ModeTestSupport.TINY.hiddenSize();
        int[] ids = ModeTestSupport.tokens(5, b * t, ModeTestSupport.TINY.vocabSize()),
                targets = ModeTestSupport.tokens(6, b * t, ModeTestSupport.TINY.vocabSize());
        for (Routing routing : List.of(new Routing(Routing.Level.TOKEN, 2), new Routing(Routing.Level.SEQUENCE, 2))) {
            Record packedRec = new Record(), fusedRec = new Record();
            Run packed = run(recording(false, packedRec), packedRec, routing, ids, targets, b, t);
            int packedTokenLists = packedRec.tokenListRows.size();
            fusedRec.tokenListRows.clear();
            Run fused = run(recording(true, fusedRec), fusedRec, routing, ids, targets, b, t);

            assertEquals(0, packedTokenLists, routing + ": the packed path hands the grouped GEMMs no token lists");
            assertTrue(!fusedRec.tokenListRows.isEmpty(), routing + ": no expert read its tokens through a list");
            // q, k, v of every routed expert's first layer, in the logits pass and again in forwardBackward
            assertEquals(0, fusedRec.tokenListRows.size() % 3, routing + ": q, k and v read the token list");
            assertTrue(fusedRec.tokenListWeightGradients > 0, routing + ": weight gradients read the token list");
            long packedRows = 0; // Σ rows·len over the experts run in the logits pass (every third call: q)
            List<Integer> lists = fusedRec.tokenListRows.subList(0, fusedRec.tokenListRows.size() / 2);
            for (int i = 0; i < lists.size(); i += 3) packedRows += lists.get(i);
            // the packed path writes each expert's tokens three times (packed copy, the stack's input, the residual
            // stream); the token list writes only the residual stream
            assertEquals(2 * packedRows * d, packed.moved() - fused.moved(), routing + ": elements moved");

            assertArrayEquals(packed.logits(), fused.logits(), routing + ": logits, bit for bit");
            assertEquals(packed.loss(), fused.loss(), routing + ": loss, bit for bit");
            assertEquals(packed.grads().keySet(), fused.grads().keySet());
            for (String n : packed.grads().keySet()) {
                float[] g1 = packed.grads().get(n), g2 = fused.grads().get(n);
                if (n.startsWith("mode.") && n.endsWith(".layers.0.input_layernorm.weight")) {
                    // summed over all B·T source rows (zeros where not routed) instead of the packed rows
                    float scale = 0;
                    for (float v : g1) scale = Math.max(scale, Math.abs(v));
                    assertArrayEquals(g1, g2, 1e-6f * Math.max(scale, 1e-3f), routing + ": gradient of " + n);
                } else {
                    assertArrayEquals(g1, g2, routing + ": gradient of " + n + ", bit for bit");
                }
            }
        }
    }
}
