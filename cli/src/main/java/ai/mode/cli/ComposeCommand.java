// `mode compose --experts code,math`: MoDE stage 2. Experts from separate stage-1 runs under a new (N+1)-way
// gate per block, trained on an equal mix of the experts' domains (gate only with --freeze-experts).
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.LossPlot;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "compose",
        mixinStandardHelpOptions = true,
        description = {
            "MoDE stage 2: compose stage-1 experts under a new gate and train on an equal mix of their domains.",
            "Writes OUT/experts.safetensors (all experts + the new gates), metrics.jsonl and loss.png, then reports",
            "test accuracy, loss and mean gate weights per domain."
        })
public final class ComposeCommand implements Callable<Integer> {
    @Option(
            names = "--checkpoint",
            required = true,
            description = "Backbone the experts were trained on (checkpoint directory or run folder).")
    Path checkpoint;

    @Option(
            names = "--experts",
            required = true,
            split = ",",
            description = "Expert files, run folders, or domain names (meaning RUNS/expert-NAME).")
    List<String> experts;

    @Option(
            names = "--runs",
            defaultValue = "runs",
            description = "Where bare expert names are looked up (default: ${DEFAULT-VALUE}).")
    Path runs;

    @Option(
            names = "--domains",
            split = ",",
            description = "Corpora of the stage-2 mix (default: the experts' domains).")
    List<String> domains;

    @Option(names = "--freeze-experts", description = "Train only the gates (the experts stay as stage 1 left them).")
    boolean freezeExperts;

    @Option(
            names = "--gate-construction",
            defaultValue = "fresh",
            description =
                    "fresh (new gate, α_bb = --gate-init) or stacked (rows of the stage-1 gates; backbone row averaged) (default: ${DEFAULT-VALUE}).")
    String gateConstruction;

    @Option(
            names = "--gate-init",
            defaultValue = "" + ModeConfig.DEFAULT_GATE_INIT_BACKBONE,
            description = "Backbone gate weight of a fresh gate (default: ${DEFAULT-VALUE}).")
    double gateInit;

    @Option(
            names = "--routing",
            defaultValue = "dense",
            description = "dense, topK, sequence-dense or sequence-topK (default: ${DEFAULT-VALUE}).")
    String routing;

    @Option(names = "--out", description = "Output folder (default: runs/mode-Nx, with -frozen when --freeze-experts).")
    Path out;

    @Option(names = "--steps", defaultValue = "100", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--eval",
            split = ",",
            description = "Domains to evaluate (default: the mix domains and english-retention).")
    List<String> eval;

    @Mixin
    ModeCliOptions.Run run;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        List<ExpertFile> files = new ArrayList<>();
        List<String> expertDomains = new ArrayList<>();
        List<Path> inputs = new ArrayList<>();
        for (String e : experts) {
            inputs.add(ModeCliSupport.expertFile(e, runs));
            ExpertFile f = ExpertFile.read(inputs.getLast());
            files.add(f);
            expertDomains.addAll(f.config().domains());
        }
        List<String> mix = domains != null && !domains.isEmpty() ? domains : expertDomains;
        Path dir = out != null
                ? out
                : Path.of("runs", "mode-" + expertDomains.size() + "x" + (freezeExperts ? "-frozen" : ""));
        Checkpoint c = SavedModels.resolve(checkpoint);
        OutputGuard.folder(dir, "compose", common.force, ModeCliSupport.existing(c.dir(), inputs, mix));
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        List<DomainTokens> mixData = ModeCliSupport.domains(mix, tok);
        List<DomainTokens> evalData = ModeCliSupport.domains(ModeCliSupport.evalDomains(eval, mix), tok);
        ModeTraining.Hyper h = run.hyper(common.seed);
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = Composer.compose(
                        base,
                        files,
                        Routing.parse(routing),
                        gateInit,
                        Composer.GateConstruction.parse(gateConstruction))) {
            m.selectTrainable(!freezeExperts);
            long trainable = ModeTraining.trainableCount(m);
            System.out.printf(
                    "stage 2: experts %s, %s gate, %s, %d steps on the equal mix of %s%n",
                    expertDomains, gateConstruction, freezeExperts ? "gate only" : "gate + experts", steps, mix);
            ModeTraining.train(
                    dir.getFileName().toString(),
                    m,
                    ModeTraining.mix(mixData, h, h.seed()),
                    ModeTraining.validationWindows(mixData, h),
                    ModeTraining.probeWindows(mixData, h),
                    steps,
                    h,
                    dir,
                    List.of(new ConsoleReporter("compose", common.quiet, System.err)));
            Path file = dir.resolve(ExpertFile.FILE_NAME);
            ExpertFile.write(file, m);
            LossPlot.write(
                    dir.resolve("metrics.jsonl"), dir.resolve("loss.png"), "MoDE stage 2: " + expertDomains, Map.of());
            ModeTraining.Evaluation e = ModeTraining.evaluate(m, evalData, h.seqLen(), h.batch(), run.evalWindows);
            ModeCliSupport.printEvaluation(System.out, e, ModeTraining.count(m, base.parameters(), trainable));
            System.out.println("composed expert file: " + file);
        }
        return 0;
    }
}
