// Adding a stage-1 expert to a composed model later: the old experts (and, training new rows only, the old gate
// rows) stay bitwise as they were through training and the file round trip, and opting the new expert out gives
// back the composed model; the new row starts from its stage-1 gate relative to the backbone; other backbones,
// widths and vocabularies are refused in one line.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AddExpertTest {
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

    private static LlamaModel backbone(LlamaConfig cfg, long seed) {
        LlamaModel m = LlamaModel.create(be, cfg);
        Random rnd = new Random(seed);
        for (Parameter p : m.parameters()) ModeTestSupport.randomize(be, p, rnd, 0.3);
        return m;
    }

    private static void train(ModeModel m, long seed, int steps) {
        new Trainer(
                        m,
                        new ModeTestSupport.RandomStream(seed, 300, m.config().vocabSize()),
                        null,
                        ModeModelTest.options(steps),
                        null,
                        List.of())
                .run();
    }

    /** A stage-1 run for {@code domain} over {@code base}, written to {@code dir/domain.safetensors}. */
    private static ExpertFile stageOne(LlamaModel base, String domain, long seed, Path dir) throws IOException {
        Path file = dir.resolve(domain + ".safetensors");
        try (ModeModel m = ModeModel.create(base, ModeConfig.residualRandom(2, 1, List.of(domain)), seed)) {
            m.selectTrainable(true);
            train(m, seed, 2);
            ExpertFile.write(file, m);
        }
        return ExpertFile.read(file);
    }

    /** code + math composed and trained (gate + experts), written to {@code dir/mode-2x.safetensors}. */
    private static ExpertFile composed(LlamaModel base, Path dir) throws IOException {
        Path file = dir.resolve("mode-2x.safetensors");
        try (ModeModel m = Composer.compose(
                base,
                List.of(stageOne(base, "code", 11, dir), stageOne(base, "math", 12, dir)),
                Routing.DENSE,
                0.9,
                Composer.GateConstruction.FRESH)) {
            m.selectTrainable(true);
            train(m, 13, 2);
            ExpertFile.write(file, m);
        }
        return ExpertFile.read(file);
    }

    private static void assertBitwise(NamedTensors want, NamedTensors got, String name) {
        assertArrayEquals(want.shape(name), got.shape(name), name);
        float[] a = want.data(name), b = got.data(name);
        for (int i = 0; i < a.length; i++)
            assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), name + "[" + i + "]");
    }

    /** Expert j's tensors of {@code src} equal expert j of {@code dst}, bit for bit. */
    private static void sameExpert(NamedTensors src, int srcExpert, NamedTensors dst, int dstExpert) {
        for (int i = 0; i < 2; i++) {
            for (TensorNames.LayerTensor t : TensorNames.LayerTensor.values()) {
                String a = TensorNames.expertLayer(i, srcExpert, 0, t), b = TensorNames.expertLayer(i, dstExpert, 0, t);
                NamedTensors one = new NamedTensors().put(a, src.shape(a), src.data(a));
                NamedTensors other = new NamedTensors().put(a, dst.shape(b), dst.data(b));
                assertBitwise(one, other, a);
            }
        }
    }

    private static float[] rows(float[] data, int from, int count, int width) {
        return Arrays.copyOfRange(data, from * width, (from + count) * width);
    }

    @Test
    void oldExpertsAndGateRowsStayBitwiseWhileTheNewRowsTrain(@TempDir Path dir) throws IOException {
        int d = CFG.hiddenSize();
        try (LlamaModel base = backbone(CFG, 1)) {
            ExpertFile two = composed(base, dir);
            ExpertFile law = stageOne(base, "law", 14, dir);
            Path out = dir.resolve("mode-3x.safetensors");
            try (ModeModel m =
                    Composer.addExperts(base, two, List.of(law), null, Composer.GateConstruction.STACKED, null)) {
                assertEquals(List.of("code", "math", "law"), m.modeConfig().domains());
                NamedTensors start = m.addedTensors();
                for (int i = 0; i < 2; i++) {
                    float[] w = start.data(TensorNames.gateWeight(i)), b = start.data(TensorNames.gateBias(i));
                    float[] cw = two.tensors().data(TensorNames.gateWeight(i)),
                            cb = two.tensors().data(TensorNames.gateBias(i));
                    float[] lw = law.tensors().data(TensorNames.gateWeight(i)),
                            lb = law.tensors().data(TensorNames.gateBias(i));
                    assertArrayEquals(cw, rows(w, 0, 3, d), "the composed gate's rows are kept");
                    assertArrayEquals(cb, Arrays.copyOf(b, 3));
                    // the new expert's logit relative to the backbone is its stage-1 one, for any input x
                    Random rnd = new Random(i);
                    for (int trial = 0; trial < 5; trial++) {
                        double composedGap = b[3] - b[0], stageOneGap = lb[1] - lb[0];
                        for (int c = 0; c < d; c++) {
                            double x = rnd.nextGaussian();
                            composedGap += (w[3 * d + c] - w[c]) * x;
                            stageOneGap += (lw[d + c] - lw[c]) * x;
                        }
                        assertEquals(stageOneGap, composedGap, 1e-5);
                    }
                }
                m.selectGateRows(2);
                assertEquals(2L * (d + 1), ModeTraining.trainableCount(m), "one new row of W and b per block");
                train(m, 15, 3);
                ExpertFile.write(out, m);
                // opting the new expert out gives back the composed model: its rows and experts are untouched
                int b = 2, t = 6;
                int[] ids = ModeTestSupport.tokens(21, b * t, CFG.vocabSize());
                m.useExperts(List.of("code", "math"));
                float[] without = ModeTestSupport.logits(be, m, ids, b, t);
                try (ModeModel old = Composer.load(base, two, two.config().routing())) {
                    assertArrayEquals(ModeTestSupport.logits(be, old, ids, b, t), without, 1e-6f);
                }
            }
            NamedTensors after = ExpertFile.read(out).tensors();
            sameExpert(two.tensors(), 0, after, 0);
            sameExpert(two.tensors(), 1, after, 1);
            sameExpert(law.tensors(), 0, after, 2);
            for (int i = 0; i < 2; i++) {
                float[] w = after.data(TensorNames.gateWeight(i)), b = after.data(TensorNames.gateBias(i));
                float[] cw = two.tensors().data(TensorNames.gateWeight(i)),
                        cb = two.tensors().data(TensorNames.gateBias(i));
                for (int k = 0; k < 3 * d; k++)
                    assertEquals(Float.floatToRawIntBits(cw[k]), Float.floatToRawIntBits(w[k]), "old gate row");
                for (int k = 0; k < 3; k++)
                    assertEquals(Float.floatToRawIntBits(cb[k]), Float.floatToRawIntBits(b[k]), "old gate bias");
                float[] lw = law.tensors().data(TensorNames.gateWeight(i));
                float[] startRow = new float[d];
                for (int c = 0; c < d; c++) startRow[c] = cw[c] + (lw[d + c] - lw[c]);
                assertFalse(Arrays.equals(startRow, rows(w, 3, 1, d)), "the new row trained");
            }
            ExpertFile reread = ExpertFile.read(out);
            assertEquals(List.of("code", "math", "law"), reread.config().domains());
            try (ModeModel loaded = Composer.load(base, reread, reread.config().routing())) {
                assertEquals(3, loaded.modeConfig().numExperts(), "an ordinary composed model");
            }
        }
    }

    @Test
    void trainingTheWholeGateStillLeavesEveryExpertBitwise(@TempDir Path dir) throws IOException {
        try (LlamaModel base = backbone(CFG, 1)) {
            ExpertFile two = composed(base, dir);
            ExpertFile law = stageOne(base, "law", 14, dir);
            try (ModeModel m =
                    Composer.addExperts(base, two, List.of(law), null, Composer.GateConstruction.STACKED, null)) {
                m.selectTrainable(false);
                train(m, 15, 3);
                NamedTensors after = m.addedTensors();
                sameExpert(two.tensors(), 0, after, 0);
                sameExpert(two.tensors(), 1, after, 1);
                sameExpert(law.tensors(), 0, after, 2);
                float[] cw = two.tensors().data(TensorNames.gateWeight(0));
                assertFalse(
                        Arrays.equals(cw, rows(after.data(TensorNames.gateWeight(0)), 0, 3, CFG.hiddenSize())),
                        "the old rows train too");
            }
        }
    }

    @Test
    void expertsOfAnotherBackboneWidthOrVocabularyAreRefused(@TempDir Path dir) throws IOException {
        LlamaConfig wide = new LlamaConfig(13, 12, 4, 2, 1, 12, 16, 10000f, 1e-5f, true);
        LlamaConfig vocab = new LlamaConfig(15, 8, 4, 2, 1, 12, 16, 10000f, 1e-5f, true);
        try (LlamaModel base = backbone(CFG, 1);
                LlamaModel other = backbone(CFG, 2);
                LlamaModel widerBase = backbone(wide, 1);
                LlamaModel vocabBase = backbone(vocab, 1)) {
            ExpertFile two = composed(base, dir);
            ExpertFile fromOther = stageOne(other, "other", 16, dir);
            ExpertFile wider = stageOne(widerBase, "wide", 17, dir);
            ExpertFile bigger = stageOne(vocabBase, "vocab", 18, dir);
            ExpertFile again = stageOne(base, "math", 19, dir);
            String w = add(base, two, wider);
            assertTrue(w.contains("its experts have hidden size 12 but the composed model's have 8"), w);
            String v = add(base, two, bigger);
            assertTrue(v.contains("was trained on a backbone of another shape"), v);
            String o = add(base, two, fromOther);
            assertTrue(o.contains("was trained on different backbone weights"), o);
            String dup = add(base, two, again);
            assertTrue(dup.contains("domain 'math' appears in more than one expert file"), dup);
            for (String msg : List.of(w, v, o, dup)) assertFalse(msg.contains("\n"), msg);
        }
    }

    private static String add(LlamaModel base, ExpertFile composed, ExpertFile added) {
        return assertThrows(
                        IllegalArgumentException.class,
                        () -> Composer.addExperts(
                                base, composed, List.of(added), null, Composer.GateConstruction.STACKED, null))
                .getMessage();
    }
}
