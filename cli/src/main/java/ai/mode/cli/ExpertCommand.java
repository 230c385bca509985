// `mode expert --domain code`: MoDE stage 1. One new expert (k layers per block) and the gates train on one
// domain over the frozen backbone; writes the expert file that `mode compose` combines with others.
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.LossPlot;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "expert",
        mixinStandardHelpOptions = true,
        description = {
            "MoDE stage 1: train one domain expert (and the gates) over a frozen backbone.",
            "Writes OUT/experts.safetensors (default OUT: runs/expert-DOMAIN), metrics.jsonl, loss.png and",
            "OUT/checkpoints/step-N/ (--resume continues from the latest), then reports test accuracy and loss per domain."
        })
public final class ExpertCommand implements Callable<Integer> {
    @Option(
            names = "--checkpoint",
            required = true,
            description = "Backbone: checkpoint directory or run folder (e.g. runs/demo/base).")
    Path checkpoint;

    @Option(
            names = "--domain",
            required = true,
            description = "Training corpus of the expert: code, math, legal, or a user corpus path.")
    String domain;

    @Option(
            names = "--name",
            description = "Expert (domain) name stored in the file (default: the corpus name; required for a path).")
    String name;

    @Option(names = "--out", description = "Output folder (default: runs/expert-NAME).")
    Path out;

    @Option(names = "--steps", defaultValue = "200", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--eval",
            split = ",",
            description = "Domains to evaluate (default: the training domain and english-retention).")
    List<String> eval;

    @Mixin
    ModeCliOptions.Arch arch;

    @Mixin
    ModeCliOptions.Run run;

    @Mixin
    ModeCliOptions.Checkpoints checkpoints;

    @Mixin
    ResumeOptions resume;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        String expertName = name != null ? name : domain;
        if (name == null && domain.contains("/"))
            throw new IllegalArgumentException("--domain is a path; give the expert a --name");
        Path dir = out != null ? out : Path.of("runs", "expert-" + expertName);
        Checkpoint c = SavedModels.resolve(checkpoint);
        ModeTraining.Checkpoints ck = checkpoints.of(steps, resume, common.force);
        OutputGuard.folder(dir, "expert", common.force, ModeCliSupport.existing(c.dir(), domain));
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        DomainTokens data = DomainTokens.load(domain, tok);
        List<DomainTokens> evalData = ModeCliSupport.domains(ModeCliSupport.evalDomains(eval, List.of(domain)), tok);
        ModeTraining.Hyper h = run.hyper(common.seed);
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = ModeModel.create(base, arch.config(List.of(expertName), base.config()), common.seed)) {
            m.selectTrainable(true);
            long trainable = ModeTraining.trainableCount(m);
            System.out.printf(
                    "stage 1: %s expert over %s (%s), %d steps of %d x %d tokens%n",
                    expertName, c.dir(), m.modeConfig().toJson(), steps, h.batch(), h.seqLen());
            ModeTraining.train(
                    "expert-" + expertName,
                    m,
                    List.of(data),
                    h.seed(),
                    ModeTraining.validationWindows(List.of(data), h),
                    steps,
                    h,
                    dir,
                    List.of(new ConsoleReporter("expert-" + expertName, common.quiet, System.err)),
                    ck,
                    ModeTraining.modeSettings(m));
            Path file = dir.resolve(ExpertFile.FILE_NAME);
            ExpertFile.write(file, m);
            LossPlot.write(
                    dir.resolve("metrics.jsonl"),
                    dir.resolve("loss.png"),
                    "MoDE stage 1: " + expertName + " expert",
                    Map.of());
            ModeTraining.Evaluation e = ModeTraining.evaluate(m, evalData, h.seqLen(), h.batch(), run.evalWindows);
            ModeCliSupport.printEvaluation(System.out, e, ModeTraining.count(m, base.parameters(), trainable));
            System.out.println("expert file: " + file);
        }
        return 0;
    }
}
