package ai.mode.tests.model;

import static ai.mode.tests.model.HfReferenceTest.float64;
import static ai.mode.tests.model.HfReferenceTest.relativeL2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.io.GgufImport;
import ai.mode.model.io.HfImport;
import ai.mode.model.io.SafeTensorsReader;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.tests.model.HfReferenceTest.BackendCase;
import ai.mode.tests.reference.HfPython;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code rope_scaling} llama3 and linear against Hugging Face transformers' own implementation: at test time,
 * tools/hf_reference/rope_scaling.py (run by the Python of {@link HfPython}) writes two random small Llama checkpoints
 * with those scalings, both also as GGUF files the way llama.cpp's converter writes them (linear in metadata, llama3 as a
 * rope_freqs tensor of divisors), and transformers' inverse frequencies and float64 logits for a batch at positions
 * 0..47, past the original context of 32. Each import on each backend must match them within {@link HfReferenceTest}'s
 * logits bound (relative L2 5e-6); the frequency table our config computes must equal transformers' within 1e-6
 * (transformers computes it in float32). Unscaled RoPE on the same checkpoint moves the logits by far more than the
 * bound (checked too), so a scaling that is read but not applied cannot pass. Skipped with the reason where there is
 * no Python with transformers.
 */
class HfRopeScalingTest {
    @TempDir
    static Path out;

    /** Why the checkpoints could not be written here (no Python, no script), or empty. */
    private static Optional<String> skip;

    @BeforeAll
    static void writeCheckpoints() throws IOException, InterruptedException {
        skip = HfPython.unavailable();
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isRegularFile(root.resolve("tools/hf_reference/rope_scaling.py")))
            root = root.getParent();
        if (skip.isEmpty() && root == null)
            skip = Optional.of("tools/hf_reference/rope_scaling.py not found above the working directory");
        if (skip.isPresent()) return;
        Process p = new ProcessBuilder(
                        HfPython.require().toString(),
                        root.resolve("tools/hf_reference/rope_scaling.py").toString(),
                        "--out",
                        out.toString())
                .redirectErrorStream(true)
                .start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "rope_scaling.py did not finish");
        assertEquals(0, p.exitValue(), log);
    }

    /** Every imported file (a checkpoint folder or a GGUF file under the output) on every backend. */
    static Stream<Arguments> casesOnBackends() {
        return Stream.of("llama3", "linear", "llama3.gguf", "linear.gguf")
                .flatMap(item -> HfReferenceTest.backends().map(b -> Arguments.of(item, b)));
    }

    private static HfImport.Model load(String item) throws IOException {
        Path p = out.resolve(item);
        return item.endsWith(".gguf") ? GgufImport.load(p).model() : HfImport.load(p);
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("casesOnBackends")
    void logitsMatchTransformers(String item, BackendCase backend) throws IOException {
        assumeTrue(skip.isEmpty(), () -> skip.orElseThrow());
        Optional<String> why = backend.unavailable().get();
        assumeTrue(why.isEmpty(), () -> "backend unavailable: " + why.orElse(""));
        String ref = item.startsWith("llama3") ? "llama3" : "linear";
        HfImport.Model m = load(item);
        LlamaConfig c = m.config().model();
        RopeScaling scaling = switch (item) {
            case "llama3" -> new RopeScaling.Llama3(8, 1, 4, 32);
            // the GGUF divisors fix only the factor, C/low and C/high; the import takes Meta's C = 8192
            case "llama3.gguf" -> new RopeScaling.Llama3(8, 256, 1024, 8192);
            default -> new RopeScaling.Linear(4);
        };
        assertEquals(scaling, c.ropeScaling(), item + ": the scaling read");
        try (SafeTensorsReader r = SafeTensorsReader.open(out.resolve("reference.safetensors"));
                Backend be = backend.open().get()) {
            long[] ids = r.readLongs("input_ids");
            int[] shape = r.info("input_ids").shape();
            int b = shape[0], t = shape[1];
            assertTrue(t > 32, "positions beyond original_max_position_embeddings");

            double[] theirs = float64(r, "inv_freq." + ref);
            RopeFrequencies ours = c.ropeFrequencies();
            assertEquals(theirs.length, ours.pairs());
            for (int i = 0; i < theirs.length; i++)
                assertEquals(theirs[i], ours.inverse(i), 1e-6 * theirs[i], "inverse frequency " + i);

            double[] want = float64(r, "logits." + ref);
            double error = relativeL2(logits(be, c, m, ids, b, t), want);
            assertTrue(error <= HfReferenceTest.LOGITS_REL_L2, item + ": logits relative L2 error " + error);
            double unscaled = relativeL2(logits(be, c.withRopeScaling(RopeScaling.NONE), m, ids, b, t), want);
            assertTrue(unscaled > 1000 * HfReferenceTest.LOGITS_REL_L2, "plain RoPE is only " + unscaled + " off");
            System.out.printf(
                    "%s: %s, logits relative L2 %.3g (unscaled: %.3g)%n", item, c.ropeScaling(), error, unscaled);
        }
    }

    private static float[] logits(Backend be, LlamaConfig c, HfImport.Model m, long[] ids, int b, int t) {
        int[] in = new int[ids.length];
        for (int i = 0; i < in.length; i++) in[i] = Math.toIntExact(ids[i]);
        try (LlamaModel model = LlamaModel.create(be, c)) {
            Weights.load(model.parameters(), m.weights(), true);
            try (Tensor x = be.fromHost(in, b, t);
                    Tensor logits = be.zeros(b * t, c.vocabSize())) {
                model.logits(x, logits);
                return be.toHostFloats(logits);
            }
        }
    }
}
