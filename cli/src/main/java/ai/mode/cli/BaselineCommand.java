// `mode baseline --method lora`: the comparison methods of the MoDE experiment, trained with the same
// trainer, data mix and step budget: full fine-tuning, LoRA, serial block expansion, MoDE with one expert,
// or the base model evaluated as is.
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.mode.MethodResult;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeExperiment;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "baseline",
        mixinStandardHelpOptions = true,
        description = {
            "Train and evaluate one baseline on the equal mix of the target domains: full-ft, lora, expansion",
            "(LLaMA-Pro style: N*k new layers after each of the B backbone slices), mode-1x (one MoDE expert on the mix),",
            "or base (no training). Writes OUT/METHOD/ (metrics.jsonl, trained weights, checkpoints/step-N/ that --resume",
            "continues from)."
        })
public final class BaselineCommand implements Callable<Integer> {
    @Option(names = "--method", required = true, description = "full-ft, lora, expansion, mode-1x or base.")
    String method;

    @Option(names = "--checkpoint", required = true, description = "Backbone checkpoint directory or run folder.")
    Path checkpoint;

    @Option(
            names = "--domains",
            defaultValue = "code,math",
            split = ",",
            description = "Target corpora of the equal mix (default: ${DEFAULT-VALUE}).")
    List<String> domains;

    @Option(
            names = "--steps",
            defaultValue = "500",
            description =
                    "Optimizer steps; match N*stage1 + stage2 of the MoDE run you compare with (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--out",
            defaultValue = "runs/baselines",
            description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(
            names = "--eval",
            split = ",",
            description = "Domains to evaluate (default: the target domains and english-retention).")
    List<String> eval;

    @Option(names = "--lora-rank", defaultValue = "16", description = "LoRA rank r (default: ${DEFAULT-VALUE}).")
    int loraRank;

    @Option(
            names = "--lora-alpha",
            defaultValue = "16",
            description = "LoRA alpha; the update is scaled by alpha/r (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(
            names = "--lora-targets",
            defaultValue = "q,k,v,o",
            description = "Adapted projections: q,k,v,o,gate,up,down, attention or all (default: ${DEFAULT-VALUE}).")
    String loraTargets;

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
        Set<ModeExperiment.Method> m = ModeExperiment.Method.parse(method);
        if (m.size() != 1) throw new IllegalArgumentException("--method takes one method, got " + method);
        ModeTraining.Checkpoints ck = checkpoints.of(steps, resume, common.force);
        Checkpoint c = SavedModels.resolve(checkpoint);
        OutputGuard.folder(out, "baseline", common.force, ModeCliSupport.existing(c.dir(), domains));
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        List<DomainTokens> targets = ModeCliSupport.domains(domains, tok);
        List<DomainTokens> evalData = ModeCliSupport.domains(ModeCliSupport.evalDomains(eval, domains), tok);
        ModeConfig mc = arch.config(
                domains.stream().map(d -> Path.of(d).getFileName().toString()).toList(), c.config());
        ModeExperiment.Settings s = new ModeExperiment.Settings(
                out,
                1,
                1,
                run.hyper(common.seed),
                mc.numBlocks(),
                mc.layersPerExpert(),
                mc.expertInit(),
                mc.gateInitBackbone(),
                Composer.GateConstruction.FRESH,
                mc.routing(),
                mc.merge(),
                mc.gateInput(),
                new LoraModel.Config(loraRank, loraAlpha, LoraModel.Config.parseTargets(loraTargets)),
                run.evalWindows,
                m);
        try (Backend be = common.openBackend()) {
            Supplier<LlamaModel> load = () -> {
                try {
                    return SavedModels.load(be, c);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            };
            MethodResult r = ModeExperiment.runSingle(
                    m.iterator().next(),
                    steps,
                    load,
                    targets,
                    evalData,
                    s,
                    ModeCliSupport.progress(common.quiet, System.out, System.err),
                    ck);
            System.out.println(r.label() + ": " + r.trainedOn());
            ModeCliSupport.printEvaluation(System.out, r.eval(), r.params());
        }
        return 0;
    }
}
