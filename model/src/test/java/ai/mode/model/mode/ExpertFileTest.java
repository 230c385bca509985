// Expert files: written by separate stage-1 runs, read back exactly, composed into one model whose experts are
// the runs' experts; files from another backbone or of another kind are rejected with clear messages.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExpertFileTest {
    private static final LlamaConfig CFG = ModeTestSupport.TINY;
    private static Backend be;

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static LlamaModel backbone(long seed) {
        LlamaModel m = LlamaModel.create(be, CFG);
        Random rnd = new Random(seed);
        for (Parameter p : m.parameters()) ModeTestSupport.randomize(be, p, rnd, 0.3);
        return m;
    }

    /** A stage-1 run: one expert for {@code domain}, a few training steps, written to {@code file}. */
    private static NamedTensors stageOne(LlamaModel base, String domain, long seed, Path file) throws IOException {
        try (ModeModel m = ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of(domain)), seed)) {
            m.selectTrainable(true);
            new Trainer(
                            m,
                            new ModeTestSupport.RandomStream(seed, 300, CFG.vocabSize()),
                            null,
                            ModeModelTest.options(2),
                            null,
                            List.of())
                    .run();
            ExpertFile.write(file, m);
            return m.addedTensors();
        }
    }

    private static float[] logits(ModeModel model, int[] ids, int b, int t) {
        try (Tensor it = be.fromHost(ids, b, t);
                Tensor out = be.zeros(b * t, CFG.vocabSize())) {
            model.logits(it, out);
            return be.toHostFloats(out);
        }
    }

    @Test
    void expertsFromTwoSeparateRunsCompose(@TempDir Path dir) throws IOException {
        Path code = dir.resolve("code.safetensors"), math = dir.resolve("math.safetensors");
        int b = 2, t = 6;
        int[] ids = ModeTestSupport.tokens(9, b * t, CFG.vocabSize());
        try (LlamaModel base = backbone(1)) {
            NamedTensors codeTensors = stageOne(base, "code", 11, code);
            NamedTensors mathTensors = stageOne(base, "math", 22, math);
            ExpertFile cf = ExpertFile.read(code), mf = ExpertFile.read(math);
            assertEquals(List.of("code"), cf.config().domains());
            assertEquals(codeTensors.size(), cf.tensors().size());
            for (String n : codeTensors.names())
                assertArrayEquals(codeTensors.data(n), cf.tensors().data(n), "the file must hold " + n + " exactly");

            try (ModeModel composed =
                    Composer.compose(base, List.of(cf, mf), Routing.DENSE, 0.9, Composer.GateConstruction.STACKED)) {
                assertEquals(List.of("code", "math"), composed.modeConfig().domains());
                NamedTensors got = composed.addedTensors();
                for (int block = 0; block < 2; block++) {
                    for (TensorNames.LayerTensor lt : TensorNames.LayerTensor.values()) {
                        assertArrayEquals(
                                codeTensors.data(TensorNames.expertLayer(block, 0, 0, lt)),
                                got.data(TensorNames.expertLayer(block, 0, 0, lt)));
                        assertArrayEquals(
                                mathTensors.data(TensorNames.expertLayer(block, 0, 0, lt)),
                                got.data(TensorNames.expertLayer(block, 1, 0, lt)));
                    }
                    // stacked gate: expert rows from their runs, backbone row the mean of both runs'
                    float[] w = got.data(TensorNames.gateWeight(block)),
                            cw = codeTensors.data(TensorNames.gateWeight(block)),
                            mw = mathTensors.data(TensorNames.gateWeight(block));
                    int d = CFG.hiddenSize();
                    for (int c = 0; c < d; c++) {
                        assertEquals(cw[d + c], w[d + c]);
                        assertEquals(mw[d + c], w[2 * d + c]);
                        assertEquals((cw[c] + mw[c]) / 2, w[c], 1e-7);
                    }
                }
                Path out = dir.resolve("composed.safetensors");
                ExpertFile.write(out, composed);
                ExpertFile back = ExpertFile.read(out);
                assertEquals(2, back.numExperts());
                assertEquals(got.size(), back.tensors().size());
                for (String n : got.names())
                    assertArrayEquals(got.data(n), back.tensors().data(n), n);
                // Routed entirely to expert j, the composed model computes exactly what run j's model computes.
                try (ModeModel codeOnly = Composer.load(base, cf, Routing.DENSE)) {
                    composed.forceGates(1);
                    codeOnly.forceGates(1);
                    assertArrayEquals(logits(codeOnly, ids, b, t), logits(composed, ids, b, t), 1e-6f);
                }
            }
        }
    }

    @Test
    void expertFilesFromAnotherBackboneAreRejected(@TempDir Path dir) throws IOException {
        Path code = dir.resolve("code.safetensors");
        try (LlamaModel base = backbone(1)) {
            stageOne(base, "code", 3, code);
        }
        ExpertFile f = ExpertFile.read(code);
        try (LlamaModel other = backbone(2)) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> Composer.compose(other, List.of(f), Routing.DENSE, 0.9, Composer.GateConstruction.FRESH));
            assertTrue(
                    e.getMessage().contains("different backbone weights")
                            && e.getMessage().contains("use the backbone checkpoint"),
                    e.getMessage());
        }
        LlamaConfig wider = new LlamaConfig(13, 16, 4, 2, 1, 12, 16, 10000f, 1e-5f, true);
        try (LlamaModel other = LlamaModel.create(be, wider)) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class,
                    () -> Composer.compose(other, List.of(f), Routing.DENSE, 0.9, Composer.GateConstruction.FRESH));
            assertTrue(e.getMessage().contains("backbone of another shape"), e.getMessage());
        }
    }

    @Test
    void otherFilesAndDuplicateDomainsAreRejected(@TempDir Path dir) throws IOException {
        Path plain = dir.resolve("plain.safetensors");
        SafeTensors.write(plain, new NamedTensors().put("w", new int[] {2}, new float[] {1, 2}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ExpertFile.read(plain));
        assertTrue(e.getMessage().contains("is not a MoDE expert file"), e.getMessage());

        Path code = dir.resolve("code.safetensors");
        try (LlamaModel base = backbone(1)) {
            stageOne(base, "code", 3, code);
            ExpertFile f = ExpertFile.read(code);
            e = assertThrows(
                    IllegalArgumentException.class,
                    () -> Composer.compose(base, List.of(f, f), Routing.DENSE, 0.9, Composer.GateConstruction.FRESH));
            assertTrue(e.getMessage().contains("domain 'code' appears in more than one expert file"), e.getMessage());
        }
    }
}
