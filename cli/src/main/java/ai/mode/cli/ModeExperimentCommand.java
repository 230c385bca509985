// `mode experiment`: the paper's Table 1 in miniature over an existing base model — stage-1 experts, their
// composition, MoDE 1x and the baselines with equal step budgets — printed and saved as Markdown, JSON and
// PNG plots. `mode demo` runs the same after pretraining (ModeDemoStage).
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.mode.BackboneFingerprint;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainRouter;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExperimentReport;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeExperiment;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "experiment",
        mixinStandardHelpOptions = true,
        description = {
            "The MoDE paper's experiment in miniature over a base model: stage-1 experts per target domain, their",
            "composition (gate only / gate + experts), MoDE 1x, full fine-tuning, LoRA, serial block expansion and the base",
            "model, all with equal total steps; prints the table and writes OUT/results.md, results.json and PNG plots."
        })
public final class ModeExperimentCommand implements Callable<Integer> {
    /** Demo defaults: steps per stage-1 expert and of stage 2 (every single-stage method gets 2·S1 + S2). */
    public static final int DEFAULT_STAGE1 = 80, DEFAULT_STAGE2 = 80;

    @Option(
            names = "--checkpoint",
            required = true,
            description = "Base model: checkpoint directory or run folder (e.g. runs/demo/base).")
    Path checkpoint;

    @Option(
            names = "--out",
            defaultValue = "runs/mode-experiment",
            description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(
            names = "--targets",
            defaultValue = "code,math",
            split = ",",
            description = "Target domains, one expert each (default: ${DEFAULT-VALUE}).")
    List<String> targets;

    @Option(
            names = "--eval",
            split = ",",
            description =
                    "Evaluated domains, in table order (default: the targets reversed, then english-retention: Math, Code, English).")
    List<String> eval;

    @Option(
            names = "--stage1-steps",
            defaultValue = "" + DEFAULT_STAGE1,
            description = "Steps per stage-1 expert (default: ${DEFAULT-VALUE}).")
    int stage1;

    @Option(
            names = "--stage2-steps",
            defaultValue = "" + DEFAULT_STAGE2,
            description = "Steps of stage 2 (default: ${DEFAULT-VALUE}).")
    int stage2;

    @Option(
            names = "--methods",
            defaultValue = "all",
            description =
                    "all, or some of base,full-ft,lora,expansion,mode-1x,mode-frozen,mode (default: ${DEFAULT-VALUE}).")
    String methods;

    @Option(
            names = "--gate-construction",
            defaultValue = "fresh",
            description = "Composed gate: fresh, stacked or domain-embeddings (default: ${DEFAULT-VALUE}).")
    String gateConstruction;

    @Option(
            names = "--router-temperature",
            defaultValue = "" + DomainRouter.DEFAULT_TEMPERATURE,
            description =
                    "τ of the domain-embedding router compared with the trained gate (default: ${DEFAULT-VALUE}).")
    double routerTemperature;

    @Option(
            names = "--backbone-domain",
            defaultValue = DomainRouter.DEFAULT_BACKBONE_DOMAIN,
            description =
                    "The backbone's general corpus: the backbone row of the domain-embedding router (default: ${DEFAULT-VALUE}).")
    String backboneDomain;

    @Option(names = "--lora-rank", defaultValue = "16", description = "LoRA rank (default: ${DEFAULT-VALUE}).")
    int loraRank;

    @Option(names = "--lora-alpha", defaultValue = "16", description = "LoRA alpha (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(
            names = "--lora-targets",
            defaultValue = "q,k,v,o",
            description = "LoRA projections (default: ${DEFAULT-VALUE}).")
    String loraTargets;

    @Option(
            names = "--sweep",
            description =
                    "Run the grid of this JSON file (methods x learning rates x budget scales x options; docs/mode.md, \"Sweeps\") under OUT, one folder per point, reusing finished points; the learning rate of each method is chosen on the validation split.")
    Path sweep;

    @Option(
            names = "--reuse",
            description =
                    "If OUT holds a finished run with the same settings and base model, print its table instead of rerunning.")
    boolean reuse;

    @Mixin
    ModeCliOptions.Arch arch;

    @Mixin
    ModeCliOptions.Run run;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        List<String> evalDomains = eval != null && !eval.isEmpty() ? eval : defaultEval(targets);
        Checkpoint c = SavedModels.resolve(checkpoint);
        // the config's domain names are not used below (the experiment names its experts after the data)
        ModeConfig mc =
                arch.config(targets.stream().map(ExperimentSweep::domainName).toList(), c.config());
        ModeExperiment.Settings s = new ModeExperiment.Settings(
                out,
                stage1,
                stage2,
                run.hyper(common.seed),
                mc.numBlocks(),
                mc.layersPerExpert(),
                mc.expertInit(),
                mc.gateInitBackbone(),
                Composer.GateConstruction.parse(gateConstruction),
                mc.routing(),
                mc.merge(),
                mc.gateInput(),
                new LoraModel.Config(loraRank, loraAlpha, LoraModel.Config.parseTargets(loraTargets)),
                run.evalWindows,
                ModeExperiment.Method.parse(methods),
                routerTemperature,
                Map.of());
        if (sweep != null) return sweep(c, evalDomains, s, mc);
        OutputGuard.folder(
                out,
                "experiment",
                common.force,
                ModeCliSupport.existing(c.dir(), targets, evalDomains, backboneDomain));
        run(
                c,
                targets,
                evalDomains,
                backboneDomain,
                s,
                common,
                "mode experiment --checkpoint " + checkpoint,
                reuse,
                System.out,
                System.err);
        return 0;
    }

    private int sweep(Checkpoint c, List<String> evalDomains, ModeExperiment.Settings s, ModeConfig mc)
            throws IOException {
        if (!Files.isRegularFile(sweep))
            throw new IllegalArgumentException(
                    "--sweep " + sweep + " is not a file; give a JSON grid (docs/mode.md, \"Sweeps\")");
        ExperimentSweep.Base base = new ExperimentSweep.Base(
                out,
                stage1,
                stage2,
                s.hyper(),
                mc,
                s.gates(),
                s.lora(),
                s.evalWindows(),
                arch.expertLayersGiven() ? 0 : c.config().numLayers());
        List<ExperimentSweep.Point> points = ExperimentSweep.parse(sweep, base);
        OutputGuard.folder(
                out, "experiment --sweep", common.force, ModeCliSupport.existing(c.dir(), sweep, targets, evalDomains));
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        List<DomainTokens> targetData = ExperimentSweep.named(ModeCliSupport.domains(targets, tok));
        List<DomainTokens> evalData = ExperimentSweep.named(ModeCliSupport.domains(evalDomains, tok));
        String hash;
        try (Backend be = common.openBackend();
                LlamaModel model = SavedModels.load(be, c)) {
            hash = BackboneFingerprint.of(model.config(), model.parameters()).weightsHash();
        }
        System.out.printf("sweep %s: %d points under %s%n", sweep, points.size(), out);
        ExperimentSweep.run(
                base,
                points,
                c,
                targetData,
                evalData,
                hash,
                common,
                "mode experiment --checkpoint " + checkpoint + " --sweep " + sweep,
                System.out,
                System.err);
        System.out.println(Files.readString(out.resolve(ExperimentSweep.MARKDOWN)));
        return 0;
    }

    /** Whether the run folder holds results.json and results.md of an identical finished run over this base model. */
    private static boolean finished(
            Checkpoint c,
            List<String> targets,
            List<String> evalDomains,
            ModeExperiment.Settings s,
            CommonOptions common)
            throws IOException {
        Path json = s.out().resolve(ExperimentReport.JSON), md = s.out().resolve(ExperimentReport.MARKDOWN);
        if (!Files.isRegularFile(json) || !Files.isRegularFile(md)) return false;
        JsonObject old;
        try {
            old = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        } catch (RuntimeException malformed) {
            return false;
        }
        if (!ExperimentReport.settingsJson(s, targets, evalDomains).equals(old.get("settings"))) return false;
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c)) {
            String hash =
                    BackboneFingerprint.of(base.config(), base.parameters()).weightsHash();
            return old.has("backbone_weights_hash")
                    && hash.equals(old.get("backbone_weights_hash").getAsString());
        }
    }

    /** Math, Code, English for the default targets code, math: the targets reversed, then the retention books. */
    static List<String> defaultEval(List<String> targets) {
        List<String> r = new java.util.ArrayList<>(targets.reversed());
        if (!r.contains(ModeCliSupport.RETENTION)) r.add(ModeCliSupport.RETENTION);
        return r;
    }

    /**
     * Runs the experiment, prints the table and writes the report; returns it, or null when {@code reuse} found a
     * finished run with the same settings over the same base model (its table is printed again).
     */
    static ModeExperiment.Report run(
            Checkpoint c,
            List<String> targets,
            List<String> evalDomains,
            String backboneDomain,
            ModeExperiment.Settings s,
            CommonOptions common,
            String command,
            boolean reuse,
            PrintStream out,
            PrintStream err)
            throws IOException {
        if (reuse && finished(c, targets, evalDomains, s, common)) {
            out.println("reusing the finished MoDE experiment in " + s.out()
                    + " (same settings and base model; delete the folder to rerun):");
            out.println();
            out.println(Files.readString(s.out().resolve(ExperimentReport.MARKDOWN)));
            return null;
        }
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        long t0 = System.nanoTime();
        List<DomainTokens> targetData = ModeCliSupport.domains(targets, tok);
        List<DomainTokens> evalData = ModeCliSupport.domains(evalDomains, tok);
        DomainTokens general = DomainTokens.load(backboneDomain, tok);
        double dataSeconds = (System.nanoTime() - t0) / 1e9;
        return runLoaded(c, targetData, evalData, general, s, common, command, dataSeconds, out, err);
    }

    /**
     * Runs the experiment on loaded data, prints the table and writes the report; {@code general} is the backbone's
     * general corpus for the domain-embedding router (null: no router comparison).
     */
    static ModeExperiment.Report runLoaded(
            Checkpoint c,
            List<DomainTokens> targetData,
            List<DomainTokens> evalData,
            DomainTokens general,
            ModeExperiment.Settings s,
            CommonOptions common,
            String command,
            double dataSeconds,
            PrintStream out,
            PrintStream err)
            throws IOException {
        List<String> targets = targetData.stream().map(DomainTokens::name).toList();
        ModeExperiment.Report r;
        String device;
        try (Backend be = common.openBackend()) {
            device = be.name() + " backend, " + Runtime.getRuntime().availableProcessors() + " cores";
            Supplier<LlamaModel> load = () -> {
                try {
                    return SavedModels.load(be, c);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            };
            out.printf(
                    "MoDE experiment over %s: targets %s, %d + %d steps per stage (every method %d steps), batch %d x %d tokens%n",
                    c.dir(),
                    targets,
                    s.stage1Steps(),
                    s.stage2Steps(),
                    s.totalSteps(targets.size()),
                    s.hyper().batch(),
                    s.hyper().seqLen());
            r = ModeExperiment.run(
                    load, targetData, evalData, general, s, ModeCliSupport.progress(common.quiet, out, err));
        }
        r.stageSeconds().put("data", dataSeconds);
        double total = 0;
        for (double v : r.stageSeconds().values()) total += v;
        String provenance = String.format(
                Locale.ROOT,
                "Obtained with `%s` on %s (%s %s, Java %s), %s; base model %s; MoDE stages took %.1f s in all.",
                command,
                device,
                System.getProperty("os.name"),
                System.getProperty("os.arch"),
                System.getProperty("java.version"),
                ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
                c.dir(),
                total);
        List<Path> files = ExperimentReport.write(r, provenance);
        out.println();
        out.println(ExperimentReport.accuracyTable(r));
        out.println("test loss:");
        out.println(ExperimentReport.lossTable(r));
        String optOut = ExperimentReport.optOutTable(r);
        if (!optOut.isEmpty()) {
            out.println("domain opt-out: accuracy (%) with each expert removed at inference:");
            out.println(optOut);
        }
        String routers = ExperimentReport.routerTable(r);
        if (!routers.isEmpty()) {
            out.println("routers without joint training vs the trained gate (accuracy %, own-expert share):");
            out.println(routers);
        }
        String gates = ExperimentReport.gateTable(r);
        if (!gates.isEmpty()) out.println("mean gate weights per test domain (backbone first):" + gates);
        out.println("written: " + files);
        return r;
    }
}
