package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Mkl;
import ai.mode.model.LlamaConfig;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensorsReader;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.BatchGradients;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.Backends;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * An outside reference: loss, logits and every parameter gradient of a tiny GQA Llama, computed in float64 by Hugging
 * Face transformers (tools/hf_reference), matched by the model loaded through our HF import on each backend.
 *
 * <p>The fixture (tests/src/test/resources/hf-llama-reference) is a Hugging Face checkpoint, config.json +
 * model.safetensors (float32 weights), and reference.safetensors: the batch, the mean token loss, the logits and
 * the gradient of that loss for every parameter, all float64, from {@code LlamaForCausalLM} run in float64 on the
 * same (exactly widened) weights. Each backend loads the checkpoint as {@code mode grads} does and must reproduce
 * them to float32 accuracy.
 *
 * <p>Bounds. Float32 rounding alone gives, measured on the four backends here (2 threads each): loss within
 * 3e-9..1.1e-7 of the reference (about 4.93 nats), logits 4.8e-7..6.4e-7 and gradients 3.8e-7..1.4e-6 relative L2
 * error. The bounds leave a margin of about 8x for other machines' kernels: loss 1e-6 absolute (2 float32 ulps),
 * logits 5e-6 and each gradient 1e-5 relative L2. Real faults land orders of magnitude above them: rope_theta
 * 10000 instead of the config's 1000 moves the logits by 0.13, rms_norm_eps 1e-6 instead of 1e-4 by 0.2, the
 * input norms' eps off by 1% by 1.8e-3; the wrong theta in the backward of k alone leaves loss and logits exact
 * but puts the gradients under it up to 0.19 off (the embeddings' by 0.094).
 */
class HfReferenceTest {
    static final double LOSS_ABS = 1e-6;
    static final double LOGITS_REL_L2 = 5e-6;
    static final double GRAD_REL_L2 = 1e-5;

    /** A backend to check: why it cannot run here (empty if it can) and how to make one. */
    record BackendCase(Supplier<Optional<String>> unavailable, Supplier<Backend> open) {}

    /** Every backend checked against the reference; a new backend or cpu GEMM provider is one more entry. */
    static Stream<Named<BackendCase>> backends() {
        return Stream.of(
                cpu("cpu vector kernels, our gemm", true, CpuGemm.VECTOR, Optional::empty),
                cpu("cpu vector kernels, oneMKL gemm", true, CpuGemm.MKL, Mkl::unavailableReason),
                cpu("cpu scalar kernels, our gemm", false, CpuGemm.VECTOR, Optional::empty),
                registered("emu"));
    }

    private static Named<BackendCase> cpu(
            String label, boolean vector, CpuGemm gemm, Supplier<Optional<String>> unavailable) {
        return Named.of(label, new BackendCase(unavailable, () -> new CpuBackend(2, vector, gemm)));
    }

    /** A backend from {@link Backends} by name, unavailable where its provider says so (emu without g++). */
    private static Named<BackendCase> registered(String name) {
        Supplier<Optional<String>> unavailable = () -> {
            BackendProvider p = Backends.providers().stream()
                    .filter(q -> q.name().equals(name))
                    .findFirst()
                    .orElse(null);
            if (p == null) return Optional.of("no " + name + " backend provider");
            return p.available() ? Optional.empty() : Optional.of(p.unavailableReason());
        };
        return Named.of(name, new BackendCase(unavailable, () -> Backends.create(name, 2)));
    }

    private static Path fixture;
    private static int batch, seq;
    private static int[] windows;

    @BeforeAll
    static void readBatch() throws IOException, URISyntaxException {
        fixture = Path.of(Objects.requireNonNull(
                                HfReferenceTest.class.getResource("/hf-llama-reference/config.json"),
                                "fixture hf-llama-reference not on the test classpath")
                        .toURI())
                .getParent();
        try (SafeTensorsReader r = reference()) {
            long[] in = r.readLongs("input_ids"), tg = r.readLongs("targets");
            int[] shape = r.info("input_ids").shape();
            assertArrayEquals(shape, r.info("targets").shape());
            batch = shape[0];
            seq = shape[1];
            windows = new int[batch * (seq + 1)];
            for (int b = 0; b < batch; b++) {
                for (int t = 0; t < seq; t++) {
                    windows[b * (seq + 1) + t] = Math.toIntExact(in[b * seq + t]);
                    if (t > 0)
                        assertEquals(in[b * seq + t], tg[b * seq + t - 1], "targets are the inputs shifted by one");
                }
                windows[b * (seq + 1) + seq] = Math.toIntExact(tg[b * seq + seq - 1]);
            }
        }
    }

    private static SafeTensorsReader reference() throws IOException {
        return SafeTensorsReader.open(fixture.resolve("reference.safetensors"));
    }

    static double[] float64(SafeTensorsReader r, String name) throws IOException {
        assertEquals(SafeDType.F64, r.info(name).dtype(), name);
        return r.bytes(name).toArray(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }

    /** ||got - ref|| / ||ref||. */
    static double relativeL2(float[] got, double[] ref) {
        assertEquals(ref.length, got.length);
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = got[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        assertTrue(den > 0, "reference is all zeros");
        return Math.sqrt(num / den);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTransformers(BackendCase backend) throws IOException {
        Optional<String> why = backend.unavailable().get();
        assumeTrue(why.isEmpty(), () -> "backend unavailable: " + why.orElse(""));
        Checkpoint checkpoint = SavedModels.resolve(fixture);
        try (Backend be = backend.open().get();
                LlamaModel model = SavedModels.load(be, checkpoint);
                SafeTensorsReader ref = reference()) {
            requireNonTrivialFixture(model);
            BatchGradients got = BatchGradients.compute(model, windows, batch, seq);

            double lossError = Math.abs(got.loss() - float64(ref, "loss")[0]);
            assertTrue(lossError <= LOSS_ABS, "loss " + got.loss() + " differs from the reference by " + lossError);
            double logitsError = relativeL2(got.tensors().data("logits"), float64(ref, "logits"));
            assertTrue(logitsError <= LOGITS_REL_L2, "logits: relative L2 error " + logitsError);
            for (Parameter p : model.parameters()) {
                String name = BatchGradients.GRAD_PREFIX + p.name();
                assertArrayEquals(ref.info(name).shape(), p.shape(), name);
                double error = relativeL2(got.tensors().data(name), float64(ref, name));
                assertTrue(error <= GRAD_REL_L2, name + ": relative L2 error " + error);
            }
            assertEquals(
                    model.parameters().size() + 4,
                    ref.names().size(),
                    "batch, loss, logits and one gradient per parameter");
        }
    }

    /** The properties the fixture exists to cover, so that a regenerated one cannot silently lose them. */
    private static void requireNonTrivialFixture(LlamaModel model) {
        LlamaConfig c = model.config();
        assertTrue(c.numKvHeads() < c.numHeads(), "grouped-query attention");
        assertTrue(!c.tieEmbeddings(), "untied lm_head");
        assertNotEquals(10000f, c.ropeTheta(), "non-default rope_theta");
        assertNotEquals(1e-6f, c.rmsNormEps(), "non-default rms_norm_eps");
        for (Parameter p : model.parameters()) {
            if (p.shape().length != 1) continue;
            float[] w = model.backend().toHostFloats(p.value());
            float min = w[0], max = w[0];
            for (float x : w) {
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            assertTrue(min < max, p.name() + " is a constant, not random");
        }
        assertTrue(
                model.parameters().stream().anyMatch(p -> p.name().equals(TensorNames.LM_HEAD)),
                "lm_head.weight loaded");
    }
}
