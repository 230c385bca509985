// `mode compose --experts code,math`: MoDE stage 2. Experts from separate stage-1 runs under a new (N+1)-way
// gate per block, trained on an equal mix of the experts' domains (gate only with --freeze-experts); or, with
// `--from COMPOSED --add NEW`, a later stage-1 expert added to a composed model, training only the new gate rows.
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainRouter;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.LossPlot;
import ai.mode.model.train.RunSettings;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "compose",
        mixinStandardHelpOptions = true,
        description = {
            "MoDE stage 2: compose stage-1 experts under a new gate and train on an equal mix of their domains;",
            "or add stage-1 experts to a composed model (--from COMPOSED --add NEW), training only the new gate rows.",
            "Writes OUT/experts.safetensors (all experts + the gates), metrics.jsonl, loss.png and OUT/checkpoints/step-N/",
            "(--resume continues from the latest), then reports test accuracy, loss and mean gate weights per domain."
        })
public final class ComposeCommand implements Callable<Integer> {
    @Option(
            names = "--checkpoint",
            required = true,
            description = "Backbone the experts were trained on (checkpoint directory or run folder).")
    Path checkpoint;

    @Option(
            names = "--experts",
            split = ",",
            description = "Stage-1 expert files, run folders, or domain names (meaning RUNS/expert-NAME) to compose.")
    List<String> experts;

    @Option(
            names = "--from",
            description = "A composed model (expert file, run folder or name) to add experts to, with --add.")
    String from;

    @Option(
            names = "--add",
            split = ",",
            description =
                    "Stage-1 experts to add to --from: their experts join unchanged, the old experts stay bitwise as they were.")
    List<String> add;

    @Option(
            names = "--train-gate",
            defaultValue = "new-rows",
            description =
                    "With --add: new-rows (only the added experts' gate rows train) or all (the whole gate) (default: ${DEFAULT-VALUE}).")
    String trainGate;

    @Option(
            names = "--runs",
            defaultValue = "runs",
            description = "Where bare expert names are looked up (default: ${DEFAULT-VALUE}).")
    Path runs;

    @Option(
            names = "--domains",
            split = ",",
            description =
                    "Corpora of the experts, in expert order: the stage-2 mix, and each expert's data for the domain-embeddings router (default: the experts' names).")
    List<String> domains;

    @Option(
            names = "--freeze-experts",
            description = "Train only the gates (the experts stay as stage 1 left them; always so with --add).")
    boolean freezeExperts;

    @Option(
            names = "--gate-construction",
            description = {
                "fresh (new gate, α_bb = --gate-init), stacked (rows of the stage-1 gates; backbone row averaged) or",
                "domain-embeddings (built from each domain's data, no training needed: use with --steps 0).",
                "Default: fresh; with --add, stacked (the composed gate kept, new rows from the stage-1 gates)."
            })
    String gateConstruction;

    @Option(
            names = "--gate-init",
            defaultValue = "" + ModeConfig.DEFAULT_GATE_INIT_BACKBONE,
            description =
                    "Backbone gate weight of a fresh gate, and the backbone prior of the domain-embeddings router (default: ${DEFAULT-VALUE}).")
    double gateInit;

    @Option(
            names = "--backbone-domain",
            defaultValue = DomainRouter.DEFAULT_BACKBONE_DOMAIN,
            description =
                    "domain-embeddings: the backbone's general corpus, whose mean gives the backbone row (default: ${DEFAULT-VALUE}).")
    String backboneDomain;

    @Option(
            names = "--router-temperature",
            defaultValue = "" + DomainRouter.DEFAULT_TEMPERATURE,
            description =
                    "domain-embeddings: τ; larger flattens the gate toward the fresh one (default: ${DEFAULT-VALUE}).")
    double routerTemperature;

    @Option(
            names = "--router-windows",
            defaultValue = "" + DomainRouter.DEFAULT_WINDOWS,
            description = "domain-embeddings: windows of each domain's train split read (default: ${DEFAULT-VALUE}).")
    int routerWindows;

    @Option(
            names = "--routing",
            description =
                    "dense, topK, sequence-dense or sequence-topK (default: dense; with --add, the composed model's).")
    String routing;

    @Option(
            names = "--out",
            description =
                    "Output folder (default: runs/mode-Nx for N experts in all, with -frozen when --freeze-experts).")
    Path out;

    @Option(
            names = "--steps",
            defaultValue = "100",
            description = "Optimizer steps; 0 composes without training (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--eval",
            split = ",",
            description = "Domains to evaluate (default: the mix domains and english-retention).")
    List<String> eval;

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
        boolean adding = from != null || add != null;
        if (experts != null && adding)
            throw new IllegalArgumentException(
                    "give either --experts (compose stage-1 experts) or --from and --add (add experts to a composed"
                            + " model), not both");
        if (adding ? from == null || add == null : experts == null)
            throw new IllegalArgumentException("give --experts to compose stage-1 experts, or --from COMPOSED --add"
                    + " NEW to add stage-1 experts to a composed model");
        if (steps < 0)
            throw new IllegalArgumentException("--steps must be >= 0 (got " + steps + "); 0 composes without training");
        boolean wholeGate = switch (trainGate.toLowerCase(Locale.ROOT)) {
            case "new-rows" -> false;
            case "all" -> true;
            default ->
                throw new IllegalArgumentException("unknown --train-gate '" + trainGate + "'; use new-rows or all");
        };
        List<Path> inputs = new ArrayList<>();
        ExpertFile composed = null;
        if (adding) {
            inputs.add(ModeCliSupport.expertFile(from, runs));
            composed = ExpertFile.read(inputs.getLast());
        }
        List<ExpertFile> files = new ArrayList<>();
        List<String> expertDomains =
                new ArrayList<>(composed != null ? composed.config().domains() : List.of());
        for (String e : adding ? add : experts) {
            inputs.add(ModeCliSupport.expertFile(e, runs));
            ExpertFile f = ExpertFile.read(inputs.getLast());
            files.add(f);
            expertDomains.addAll(f.config().domains());
        }
        Composer.GateConstruction gates = Composer.GateConstruction.parse(
                gateConstruction != null ? gateConstruction : adding ? "stacked" : "fresh");
        List<String> mix = domains != null && !domains.isEmpty() ? domains : expertDomains;
        boolean frozen = freezeExperts || adding;
        Path dir = out != null
                ? out
                : Path.of("runs", "mode-" + expertDomains.size() + "x" + (frozen && !adding ? "-frozen" : ""));
        Checkpoint c = SavedModels.resolve(checkpoint);
        ModeTraining.Checkpoints ck = checkpoints.of(steps, resume, common.force);
        OutputGuard.folder(dir, "compose", common.force, ModeCliSupport.existing(c.dir(), inputs, mix));
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        List<DomainTokens> mixData = ModeCliSupport.domains(mix, tok);
        List<DomainTokens> evalData = ModeCliSupport.domains(ModeCliSupport.evalDomains(eval, mix), tok);
        ModeTraining.Hyper h = run.hyper(common.seed);
        DomainRouter.Settings router = gates == Composer.GateConstruction.DOMAIN_EMBEDDINGS
                ? new DomainRouter.Settings(
                        DomainTokens.load(backboneDomain, tok),
                        mixData,
                        h.seqLen(),
                        h.batch(),
                        routerWindows,
                        routerTemperature)
                : null;
        Routing r = routing != null ? Routing.parse(routing) : adding ? null : Routing.DENSE;
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = adding
                        ? Composer.addExperts(base, composed, files, r, gates, router)
                        : Composer.compose(base, files, r, gateInit, gates, router)) {
            if (steps == 0) for (Parameter p : m.parameters()) p.setTrainable(false);
            else if (adding && !wholeGate) m.selectGateRows(composed.numExperts());
            else m.selectTrainable(!frozen);
            long trainable = ModeTraining.trainableCount(m);
            String what = steps == 0
                    ? "no training"
                    : adding
                            ? (wholeGate ? "the whole gate" : "the new gate rows only") + " (experts frozen)"
                            : frozen ? "gate only" : "gate + experts";
            if (adding)
                System.out.printf(
                        "adding %s to %s (experts %s): %s gate, %s, %d steps on the equal mix of %s%n",
                        expertDomains.subList(composed.numExperts(), expertDomains.size()),
                        composed.source(),
                        composed.config().domains(),
                        gates.cliName(),
                        what,
                        steps,
                        mix);
            else
                System.out.printf(
                        "stage 2: experts %s, %s gate, %s, %d steps on the equal mix of %s%n",
                        expertDomains, gates.cliName(), what, steps, mix);
            if (steps > 0) {
                ModeTraining.train(
                        dir.getFileName().toString(),
                        m,
                        mixData,
                        h.seed(),
                        ModeTraining.validationWindows(mixData, h),
                        steps,
                        h,
                        dir,
                        List.of(new ConsoleReporter("compose", common.quiet, System.err)),
                        ck,
                        ModeTraining.modeSettings(m)
                                .add("--experts", ModeTraining.expertFilesSetting(files), RunSettings.OnChange.FIXED)
                                .add(
                                        "--from",
                                        adding ? ModeTraining.expertFilesSetting(List.of(composed)) : "",
                                        RunSettings.OnChange.FIXED)
                                .add("--freeze-experts", frozen, RunSettings.OnChange.FIXED)
                                .add("--train-gate", adding && wholeGate, RunSettings.OnChange.FIXED)
                                .add("--gate-construction", gates.cliName(), RunSettings.OnChange.FIXED));
                LossPlot.write(
                        dir.resolve("metrics.jsonl"),
                        dir.resolve("loss.png"),
                        "MoDE stage 2: " + expertDomains,
                        Map.of());
            }
            Path file = dir.resolve(ExpertFile.FILE_NAME);
            ExpertFile.write(file, m);
            ModeTraining.Evaluation e = ModeTraining.evaluate(m, evalData, h.seqLen(), h.batch(), run.evalWindows);
            ModeCliSupport.printEvaluation(System.out, e, ModeTraining.count(m, base.parameters(), trainable));
            System.out.println("composed expert file: " + file);
        }
        return 0;
    }
}
