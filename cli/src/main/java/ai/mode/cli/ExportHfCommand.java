package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.HfModeExport;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.SavedModels;
import ai.mode.model.train.Weights;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import java.nio.file.Path;
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
        name = "export-hf",
        mixinStandardHelpOptions = true,
        description = {
            "Write a MoDE model (backbone + expert file) as a Hugging Face folder loadable with",
            "AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True)."
        })
public final class ExportHfCommand implements Callable<Integer> {
    @Mixin
    ModeCliOptions.Saved saved;

    @Option(names = "--out", required = true, description = "Output folder (must not exist unless --force).")
    Path out;

    @Option(names = "--force", description = "Replace an existing output folder.")
    boolean force;

    @Override
    public Integer call() throws Exception {
        ExpertFile f = saved.expertFile();
        Routing r = saved.routing(f);
        Checkpoint c = SavedModels.resolve(saved.checkpoint);
        byte[] tokenizer = c.has(Checkpoint.TOKENIZER) ? c.readTokenizer().orElseThrow() : null;
        try (Backend be = Backends.create("cpu", 0);
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = Composer.load(base, f, r)) {
            HfModeExport.Settings settings = new HfModeExport.Settings(
                    f.config().numBlocks(),
                    f.config().layersPerExpert(),
                    f.config().domains(),
                    r.toString());
            Path dir =
                    HfModeExport.write(out, c.hfConfig(), Weights.export(m.parameters()), settings, tokenizer, force);
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
}
