package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.mode.ExpertFile;
import ai.mode.tests.parallel.TrainCliTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mode compose} end to end on a tiny backbone: {@code --from COMPOSED --add NEW} adds a later stage-1 expert
 * (the composed model's experts and gate rows come out bitwise as they went in, only the new rows train, and the
 * result is an ordinary composed model that eval-mode reads), and {@code --gate-construction domain-embeddings
 * --steps 0} composes a usable model without any training.
 */
class ComposeAddExpertCliTest {
    @TempDir
    static Path dir;

    static Path alpha, beta, gamma, backbone, composed;

    private static final String[] SMALL = {
        "--batch", "4", "--seq", "12", "--val-windows", "0", "--eval-windows", "2", "--threads", "1", "-q"
    };

    @BeforeAll
    static void stageOneAndTwo() throws Exception {
        alpha = TrainCliTest.writeCorpus(
                dir.resolve("alpha"), new String[] {"the", "cat", "sat", "on", "a", "mat", "and"}, 12, 1);
        beta = TrainCliTest.writeCorpus(
                dir.resolve("beta"), new String[] {"dog", "ran", "to", "park", "with", "ball", "and"}, 12, 2);
        gamma = TrainCliTest.writeCorpus(
                dir.resolve("gamma"), new String[] {"one", "two", "three", "plus", "equals", "four"}, 12, 3);
        backbone = TrainCliTest.pretrainTiny(dir.resolve("base"), alpha);
        for (Path corpus : List.of(alpha, beta, gamma)) {
            String name = corpus.getFileName().toString();
            ok(args(
                    "expert",
                    "--checkpoint",
                    backbone.toString(),
                    "--domain",
                    corpus.toString(),
                    "--name",
                    name,
                    "--eval",
                    corpus.toString(),
                    "--steps",
                    "2",
                    "--out",
                    dir.resolve("expert-" + name).toString()));
        }
        composed = dir.resolve("mode-2x");
        ok(args(
                "compose",
                "--checkpoint",
                backbone.toString(),
                "--experts",
                "alpha,beta",
                "--runs",
                dir.toString(),
                "--domains",
                alpha + "," + beta,
                "--eval",
                alpha + "," + beta,
                "--steps",
                "2",
                "--out",
                composed.toString()));
    }

    private static String[] args(String... a) {
        String[] out = Arrays.copyOf(a, a.length + SMALL.length);
        System.arraycopy(SMALL, 0, out, a.length, SMALL.length);
        return out;
    }

    private static String ok(String... a) {
        String[] r = TrainCliTest.run(a);
        assertEquals("0", r[0], String.join(" ", a) + ": " + r[2]);
        return r[1];
    }

    private static void bitwise(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), what + "[" + i + "]");
    }

    @Test
    void addingAnExpertLeavesTheComposedExpertsAndGateRowsBitwise() throws Exception {
        Path out = dir.resolve("mode-3x");
        String printed = ok(args(
                "compose",
                "--checkpoint",
                backbone.toString(),
                "--from",
                composed.toString(),
                "--add",
                "gamma",
                "--runs",
                dir.toString(),
                "--domains",
                alpha + "," + beta + "," + gamma,
                "--eval",
                alpha + "," + gamma,
                "--steps",
                "3",
                "--out",
                out.toString()));
        assertTrue(printed.contains("adding [gamma] to ") && printed.contains("the new gate rows only"), printed);
        ExpertFile before = ExpertFile.read(composed.resolve(ExpertFile.FILE_NAME));
        ExpertFile after = ExpertFile.read(out.resolve(ExpertFile.FILE_NAME));
        ExpertFile added = ExpertFile.read(dir.resolve("expert-gamma").resolve(ExpertFile.FILE_NAME));
        assertEquals(List.of("alpha", "beta", "gamma"), after.config().domains());
        NamedTensors a = after.tensors();
        int d = a.shape(TensorNames.gateWeight(0))[1];
        for (int i = 0; i < 2; i++) {
            for (TensorNames.LayerTensor t : TensorNames.LayerTensor.values()) {
                for (int j = 0; j < 2; j++) {
                    String n = TensorNames.expertLayer(i, j, 0, t);
                    bitwise(before.tensors().data(n), a.data(n), n);
                }
                bitwise(
                        added.tensors().data(TensorNames.expertLayer(i, 0, 0, t)),
                        a.data(TensorNames.expertLayer(i, 2, 0, t)),
                        "added expert " + t);
            }
            float[] w = a.data(TensorNames.gateWeight(i)), b = a.data(TensorNames.gateBias(i));
            bitwise(before.tensors().data(TensorNames.gateWeight(i)), Arrays.copyOf(w, 3 * d), "old gate rows");
            bitwise(before.tensors().data(TensorNames.gateBias(i)), Arrays.copyOf(b, 3), "old gate biases");
        }
        assertTrue(Files.isRegularFile(out.resolve("metrics.jsonl")));
        String eval = ok(
                "eval-mode",
                "--checkpoint",
                backbone.toString(),
                "--experts",
                out.toString(),
                "--eval",
                gamma.toString(),
                "--without",
                "gamma",
                "--batch",
                "4",
                "--seq",
                "12",
                "--eval-windows",
                "2",
                "--threads",
                "1");
        assertTrue(eval.contains("experts used: [alpha, beta]"), eval);
    }

    @Test
    void theDomainEmbeddingRouterComposesWithoutTraining() throws Exception {
        Path out = dir.resolve("router");
        String printed = ok(args(
                "compose",
                "--checkpoint",
                backbone.toString(),
                "--experts",
                "alpha,beta",
                "--runs",
                dir.toString(),
                "--gate-construction",
                "domain-embeddings",
                "--backbone-domain",
                alpha.toString(),
                "--domains",
                alpha + "," + beta,
                "--eval",
                alpha + "," + beta,
                "--steps",
                "0",
                "--out",
                out.toString()));
        assertTrue(printed.contains("domain-embeddings gate") && printed.contains("0 steps"), printed);
        assertFalse(Files.exists(out.resolve("metrics.jsonl")), "no training step");
        ExpertFile f = ExpertFile.read(out.resolve(ExpertFile.FILE_NAME));
        ExpertFile stage1 = ExpertFile.read(dir.resolve("expert-beta").resolve(ExpertFile.FILE_NAME));
        String n = TensorNames.expertLayer(1, 1, 0, TensorNames.LayerTensor.Q_PROJ);
        assertArrayEquals(
                stage1.tensors().data(TensorNames.expertLayer(1, 0, 0, TensorNames.LayerTensor.Q_PROJ)),
                f.tensors().data(n));
        assertTrue(printed.contains("router on " + beta), printed);
    }
}
