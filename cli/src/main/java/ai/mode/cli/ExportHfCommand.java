package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.HfModeExport;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.SavedModels;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code mode export-hf}: writes a composed MoDE model (backbone + expert file) as a Hugging Face model folder that
 * transformers loads with {@code trust_remote_code=True} (see {@link HfModeExport}). The expert file is checked against
 * the backbone exactly as {@code eval-mode} checks it, so only a model that runs here is exported.
 */
@Command(
        name = ExportHfCommand.NAME,
        mixinStandardHelpOptions = true,
        description = {
            "Write a MoDE model (backbone + expert file) as a Hugging Face folder loadable with",
            "AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)."
        })
public final class ExportHfCommand implements Callable<Integer> {
    static final String NAME = "export-hf";

    @Mixin
    ModeCliOptions.Saved saved;

    @Option(
            names = "--out",
            required = true,
            description = "Output folder, replaced whole (another command's folder only with --force).")
    Path out;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        ExpertFile f = saved.expertFile();
        Routing r = saved.routing(f);
        Checkpoint c = SavedModels.resolve(saved.checkpoint);
        List<Path> inputs = List.of(c.dir(), f.source());
        OutputGuard.checkFolder(out, NAME, common.force, inputs);
        refuseInputsInside(out, inputs);
        byte[] tokenizer = c.has(Checkpoint.TOKENIZER) ? c.readTokenizer().orElseThrow() : null;
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = Composer.load(base, f, r)) {
            HfModeExport.Settings settings = new HfModeExport.Settings(
                    f.config().numBlocks(),
                    f.config().layersPerExpert(),
                    f.config().domains(),
                    r.toString(),
                    f.config().merge().cliName(),
                    f.config().gateInput().cliName());
            Path dir = HfModeExport.write(out, c.hfConfig(), Weights.export(m.parameters()), settings, tokenizer, NAME);
            System.out.printf(
                    "wrote %s: backbone %s, experts %s, %d blocks, routing %s%s%n",
                    dir,
                    c.dir(),
                    f.config().domains(),
                    f.config().numBlocks(),
                    r,
                    tokenizer == null ? "" : ", tokenizer.json");
        }
        return 0;
    }

    /** The export replaces the whole --out folder, so it must not hold an input (e.g. the run folder of the experts). */
    private static void refuseInputsInside(Path out, List<Path> inputs) throws IOException {
        if (!Files.isDirectory(out)) return;
        Path o = out.toRealPath();
        for (Path in : inputs) {
            if (in.toRealPath().startsWith(o))
                throw new IllegalArgumentException("--out " + out + " holds " + in + ", an input of this command, and"
                        + " the export replaces the whole folder; write the export elsewhere (--force does not allow"
                        + " this)");
        }
    }
}
