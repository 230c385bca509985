package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.HfModeExport;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.SavedModels;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.HfPython;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mode export-hf} against its outside reference: random composed MoDE models are exported through the CLI, Hugging
 * Face transformers loads each folder with {@code AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)}
 * (tests/src/test/resources/hf-mode-export/run_exported.py) and its logits must equal ours within 1e-4. The cases
 * cover a tied and an untied backbone with grouped key/value heads, B = 2 blocks, dense, top-k and sequence routing,
 * and backbones with rope_scaling llama3 and linear (written back into config.json for transformers to apply).
 * Random gates (not the near-uniform initial ones) route tokens differently, so a wrong weight renormalisation,
 * packed-position rule or sequence gate input moves the logits by 3.8 to 5.7 (measured by mutating
 * modeling_mode.py), against at most 7.6e-6 when correct.
 *
 * <p>Needs a Python with torch and transformers: {@code MODE_HF_PYTHON}, else the virtual environment {@link HfPython}
 * builds once from the configured package index; the test is skipped with the reason where there is none. Also
 * checked without Python: bad input (not a MoDE model, another command's folder without {@code --force}, an output
 * folder that is or holds an input) fails in one line and leaves nothing behind; export-hf rewrites its own folder.
 */
class HfModeExportTest {
    static final double LOGITS_ABS = 1e-4;
    private static final int BATCH = 2, SEQ = 7;

    /** A backbone configuration: 4 layers, 4 heads on 2 key/value heads. */
    private static LlamaConfig config(boolean tied, RopeScaling rope) {
        return new LlamaConfig(40, 16, 4, 4, 2, 24, 32, 5000f, 1e-5f, tied, rope);
    }

    /** One export: the backbone's tie flag, the experts' count and layers per expert, the routing exported. */
    /**
     * A model case; {@code merge} and {@code gateInput} as in ModeConfig (the residual merge is dense only), {@code rope}
     * the backbone's rope_scaling.
     */
    private record Case(
            String name,
            boolean tied,
            int experts,
            int layersPerExpert,
            String routing,
            ModeConfig.Merge merge,
            ModeConfig.GateInput gateInput,
            RopeScaling rope) {
        Case(
                String name,
                boolean tied,
                int experts,
                int layersPerExpert,
                String routing,
                ModeConfig.Merge merge,
                ModeConfig.GateInput gateInput) {
            this(name, tied, experts, layersPerExpert, routing, merge, gateInput, RopeScaling.NONE);
        }
    }

    private static final List<Case> CASES = List.of(
            new Case("tied-dense", true, 2, 1, "dense", ModeConfig.Merge.RESIDUAL, ModeConfig.GateInput.RMSNORM),
            new Case("tied-dense-paper", true, 2, 1, "dense", ModeConfig.Merge.MIXTURE, ModeConfig.GateInput.RAW),
            new Case("tied-top2", true, 2, 1, "top2", ModeConfig.Merge.MIXTURE, ModeConfig.GateInput.RMSNORM),
            new Case("tied-top1", true, 2, 1, "top1", ModeConfig.Merge.MIXTURE, ModeConfig.GateInput.RAW),
            new Case("untied-dense-k2", false, 3, 2, "dense", ModeConfig.Merge.RESIDUAL, ModeConfig.GateInput.RAW),
            new Case(
                    "untied-sequence-top2",
                    false,
                    3,
                    2,
                    "sequence-top2",
                    ModeConfig.Merge.MIXTURE,
                    ModeConfig.GateInput.RMSNORM),
            new Case(
                    "untied-sequence-dense",
                    false,
                    3,
                    2,
                    "sequence-dense",
                    ModeConfig.Merge.RESIDUAL,
                    ModeConfig.GateInput.RMSNORM),
            // rope_scaling written back into config.json: transformers must rotate as we do (original context 4 < 7)
            new Case(
                    "untied-llama3-dense",
                    false,
                    2,
                    1,
                    "dense",
                    ModeConfig.Merge.RESIDUAL,
                    ModeConfig.GateInput.RMSNORM,
                    new RopeScaling.Llama3(8, 1, 4, 4)),
            new Case(
                    "tied-linear-top2",
                    true,
                    2,
                    1,
                    "top2",
                    ModeConfig.Merge.MIXTURE,
                    ModeConfig.GateInput.RAW,
                    new RopeScaling.Linear(4)));

    private static void randomize(Backend be, List<Parameter> params, Random rnd) {
        for (Parameter p : params) {
            float[] v = new float[(int) p.numel()];
            boolean gain = p.shape().length == 1 && !p.name().endsWith("gate.bias");
            for (int i = 0; i < v.length; i++)
                v[i] = (float) (gain ? 1 + 0.2 * rnd.nextGaussian() : 0.3 * rnd.nextGaussian());
            be.copyFromHost(v, p.value());
        }
    }

    /** Writes a random backbone checkpoint and a random expert file for it into {@code dir}. */
    private static void writeModel(Backend be, Case c, Path dir) throws IOException {
        Random rnd = new Random(c.name().hashCode());
        try (LlamaModel base = LlamaModel.create(be, config(c.tied(), c.rope()))) {
            randomize(be, base.parameters(), rnd);
            Checkpoint.builder()
                    .config(base.config())
                    .model(Weights.export(base.parameters()))
                    .writeTo(dir.resolve("backbone"));
            List<String> domains = new ArrayList<>();
            for (int j = 0; j < c.experts(); j++) domains.add("d" + j);
            ModeConfig mc = ModeConfig.residualRandom(2, c.layersPerExpert(), domains)
                    .withRouting(Routing.parse(c.routing()))
                    .withMerge(c.merge())
                    .withGateInput(c.gateInput());
            try (ModeModel m = ModeModel.create(base, mc, 7)) {
                randomize(be, m.addedParameters(), rnd);
                ExpertFile.write(dir.resolve(ExpertFile.FILE_NAME), m);
            }
        }
    }

    /** Our logits [B*T, V] of the model the CLI exported: backbone checkpoint + expert file, the case's routing. */
    private static float[] ourLogits(Backend be, Case c, Path dir, int[] ids) throws IOException {
        try (LlamaModel base = SavedModels.load(be, SavedModels.resolve(dir.resolve("backbone")));
                ModeModel m = Composer.load(
                        base, ExpertFile.read(dir.resolve(ExpertFile.FILE_NAME)), Routing.parse(c.routing()));
                Tensor in = be.fromHost(ids, BATCH, SEQ);
                Tensor out = be.zeros(BATCH * SEQ, base.config().vocabSize())) {
            m.logits(in, out);
            return be.toHostFloats(out);
        }
    }

    private static String[] export(Path dir, String routing, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "export-hf",
                "--checkpoint",
                dir.resolve("backbone").toString(),
                "--experts",
                dir.resolve(ExpertFile.FILE_NAME).toString(),
                "--routing",
                routing,
                "--out",
                out.toString()));
        args.addAll(List.of(more));
        return CliEndToEndTest.run(args.toArray(String[]::new));
    }

    @Test
    void transformersLoadsTheExportAndItsLogitsMatchOurs(@TempDir Path tmp) throws Exception {
        Path python = HfPython.require();
        int[] ids = new int[BATCH * SEQ];
        Random r = new Random(11);
        for (int i = 0; i < ids.length; i++)
            ids[i] = r.nextInt(config(true, RopeScaling.NONE).vocabSize());
        List<String> command = new ArrayList<>(List.of(
                python.toString(),
                script().toString(),
                writeIds(tmp.resolve("ids.i32"), ids).toString(),
                Integer.toString(BATCH),
                Integer.toString(SEQ)));
        List<float[]> ours = new ArrayList<>();
        try (Backend be = Backends.create("cpu", 2)) {
            for (Case c : CASES) {
                Path dir = tmp.resolve(c.name());
                writeModel(be, c, dir);
                String[] res = export(dir, c.routing(), dir.resolve("hf"));
                assertEquals("0", res[0], c.name() + ": " + res[2]);
                for (String f :
                        List.of("config.json", "model.safetensors", "configuration_mode.py", "modeling_mode.py"))
                    assertTrue(Files.isRegularFile(dir.resolve("hf").resolve(f)), c.name() + ": " + f);
                ours.add(ourLogits(be, c, dir, ids));
                command.add(dir.resolve("hf").toString());
            }
        }
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().put("HF_HOME", tmp.resolve("hf-home").toString());
        pb.environment().put("HF_HUB_OFFLINE", "1");
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "python did not finish");
        assertEquals(0, p.exitValue(), log);
        for (int i = 0; i < CASES.size(); i++) {
            Case c = CASES.get(i);
            assertTrue(
                    log.contains(c.name() + "/hf ModeForCausalLM"),
                    c.name() + " not loaded as ModeForCausalLM: " + log);
            float[] theirs = readFloats(tmp.resolve(c.name()).resolve("hf.logits"));
            float[] mine = ours.get(i);
            assertEquals(mine.length, theirs.length, c.name() + ": logits count");
            double worst = 0;
            for (int k = 0; k < mine.length; k++) worst = Math.max(worst, Math.abs(mine[k] - theirs[k]));
            assertTrue(worst <= LOGITS_ABS, c.name() + ": logits differ from transformers' by up to " + worst);
        }
    }

    @Test
    void refusesBadInputInOneLineAndWritesNothing(@TempDir Path tmp) throws Exception {
        Case c = CASES.get(0);
        try (Backend be = Backends.create("cpu", 2)) {
            writeModel(be, c, tmp);
        }
        Path backboneWeights = tmp.resolve("backbone").resolve(Checkpoint.MODEL);
        String[] notMode = CliEndToEndTest.run(
                "export-hf",
                "--checkpoint",
                tmp.resolve("backbone").toString(),
                "--experts",
                backboneWeights.toString(),
                "--out",
                tmp.resolve("x").toString());
        assertEquals("1", notMode[0]);
        assertTrue(notMode[2].contains("is not a MoDE expert file"), notMode[2]);
        assertEquals(1, notMode[2].strip().lines().count(), notMode[2]);
        assertFalse(Files.exists(tmp.resolve("x")));
        Checkpoint backbone = Checkpoint.open(tmp.resolve("backbone"));
        IllegalArgumentException plain = assertThrows(
                IllegalArgumentException.class,
                () -> HfModeExport.write(
                        tmp.resolve("y"),
                        backbone.hfConfig(),
                        backbone.readModel(),
                        new HfModeExport.Settings(2, 1, List.of("d0", "d1"), "dense"),
                        null,
                        null));
        assertTrue(plain.getMessage().contains("tensor mode.blocks.0.experts.0.layers.0."), plain.getMessage());
        assertFalse(Files.exists(tmp.resolve("y")));

        Path out = tmp.resolve("out");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        String[] foreign = export(tmp, "dense", out);
        assertEquals("1", foreign[0]);
        assertTrue(foreign[2].contains("already holds files that `mode export-hf` did not write"), foreign[2]);
        assertEquals(1, foreign[2].strip().lines().count(), foreign[2]);
        assertEquals("mine", Files.readString(out.resolve("keep.txt")));

        String[] forced = export(tmp, "dense", out, "--force");
        assertEquals("0", forced[0], forced[2]);
        assertFalse(Files.exists(out.resolve("keep.txt")), "the folder is replaced whole");
        assertTrue(Files.isRegularFile(out.resolve("modeling_mode.py")));
        String[] again = export(tmp, "sequence-dense", out);
        assertEquals("0", again[0], "export-hf may rewrite its own folder without --force: " + again[2]);
        assertTrue(Files.readString(out.resolve("config.json")).contains("\"mode_routing\": \"sequence-dense\""));
        // the first case's merge is the residual one, which has no top-k form: refused in one line, nothing written
        String[] sparse = export(tmp, "top1", tmp.resolve("z"));
        assertEquals("1", sparse[0]);
        assertTrue(sparse[2].contains("the residual merge") && sparse[2].contains("--merge mixture"), sparse[2]);
        assertEquals(1, sparse[2].strip().lines().count(), sparse[2]);
        assertFalse(Files.exists(tmp.resolve("z")));

        for (Path bad : List.of(tmp, tmp.resolve("backbone").resolve("hf"))) {
            String[] res = export(tmp, "dense", bad, "--force");
            assertEquals("1", res[0], bad + ": " + res[1]);
            assertTrue(res[2].contains("an input of this command"), res[2]);
            assertEquals(1, res[2].strip().lines().count(), res[2]);
        }
        assertTrue(Files.isRegularFile(tmp.resolve(ExpertFile.FILE_NAME)), "inputs untouched");
        assertFalse(Files.exists(tmp.resolve("backbone").resolve("hf")));
        try (var s = Files.list(tmp)) {
            assertTrue(s.noneMatch(f -> f.getFileName().toString().startsWith(".tmp-")), "temporary folder left");
        }
    }

    private static Path script() throws URISyntaxException {
        return Path.of(Objects.requireNonNull(
                        HfModeExportTest.class.getResource("/hf-mode-export/run_exported.py"),
                        "hf-mode-export/run_exported.py not on the test classpath")
                .toURI());
    }

    private static Path writeIds(Path file, int[] ids) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(ids.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : ids) b.putInt(v);
        return Files.write(file, b.array());
    }

    private static float[] readFloats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }
}
