package ai.mode.model.mode;

import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.RunSettings;
import ai.mode.model.train.Trainer;
import ai.mode.model.train.Weights;
import ai.mode.runtime.LossStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The paper's experiment (Table 1) in miniature: over one frozen base model, stage-1 experts per target domain, their
 * composition (gate only / gate + experts), a single expert on the mix, and the baselines (full fine-tuning, LoRA,
 * serial block expansion, the base model), all with the same trainer, data and step budget, evaluated on each domain's
 * held-out test split.
 *
 * <p>Runs the selected {@link Method}s and returns their results. Step budgets: each stage-1 expert trains
 * {@code stage1Steps} on its own domain and the composed model {@code stage2Steps} on the equal mix, so a
 * two-stage MoDE model costs {@code N·stage1Steps + stage2Steps} steps; every single-stage method (full
 * fine-tuning, LoRA, block expansion, MoDE 1×) gets that same total on the equal mix ({@link Settings#totalSteps()}).
 *
 * <p>Beyond the paper, at the cost of evaluations only: each composed model is evaluated with each expert removed
 * (domain opt-out), and the stage-1 experts are evaluated under gates with no stage-2 step (fresh, stacked stage-1
 * gates, the domain-embedding router of {@link DomainRouter}) to compare with the trained gate.
 */
public final class ModeExperiment {
    private static final System.Logger LOG = System.getLogger(ModeExperiment.class.getName());

    /** The methods of the table. */
    public enum Method {
        BASE("base"),
        FULL_FT("full-ft"),
        LORA("lora"),
        EXPANSION("expansion"),
        MODE_1X("mode-1x"),
        MODE_FROZEN("mode-frozen"),
        MODE("mode");

        private final String id;

        Method(String id) {
            this.id = id;
        }

        public String id() {
            return id;
        }

        /** Parses a comma-separated list of ids, or {@code all}. */
        public static Set<Method> parse(String spec) {
            if (spec.strip().equalsIgnoreCase("all")) return EnumSet.allOf(Method.class);
            Set<Method> out = EnumSet.noneOf(Method.class);
            for (String s : spec.split(",")) {
                String t = s.strip().toLowerCase(Locale.ROOT);
                Method m = null;
                for (Method c : values()) if (c.id.equals(t)) m = c;
                if (m == null) {
                    List<String> ids = new ArrayList<>();
                    for (Method c : values()) ids.add(c.id);
                    throw new IllegalArgumentException(
                            "unknown method '" + s + "'; use all or some of " + String.join(",", ids));
                }
                out.add(m);
            }
            return out;
        }
    }

    /**
     * @param out          run folder (one sub-folder per run)
     * @param stage1Steps  steps per stage-1 expert, on its domain
     * @param stage2Steps  steps of stage 2 (composed model), on the equal mix
     * @param hyper        batch, sequence, learning rate, seed (shared by all methods)
     * @param blocks       B
     * @param expertLayers k
     * @param expertInit   expert initialisation
     * @param gateInit     α_bb at initialisation
     * @param gates        composed-gate construction
     * @param routing      routing of every MoDE model
     * @param merge        how every MoDE block combines its branches
     * @param gateInput    what every MoDE gate reads
     * @param lora         LoRA baseline settings
     * @param evalWindows  test windows per domain
     * @param methods      which methods to run
     * @param routerTemperature τ of the domain-embedding router ({@link DomainRouter})
     * @param learningRates peak learning rate per method where it is not {@code hyper.lr()} (two-stage MoDE: stage 1
     *                     trains at {@link Method#MODE}'s rate, each stage 2 at its own)
     */
    public record Settings(
            Path out,
            int stage1Steps,
            int stage2Steps,
            ModeTraining.Hyper hyper,
            int blocks,
            int expertLayers,
            ModeConfig.ExpertInit expertInit,
            double gateInit,
            Composer.GateConstruction gates,
            Routing routing,
            ModeConfig.Merge merge,
            ModeConfig.GateInput gateInput,
            LoraModel.Config lora,
            int evalWindows,
            Set<Method> methods,
            double routerTemperature,
            Map<Method, Double> learningRates) {
        public Settings {
            if (stage1Steps < 1 || stage2Steps < 1)
                throw new IllegalArgumentException(
                        "stage steps must be >= 1 (got " + stage1Steps + ", " + stage2Steps + ")");
            if (evalWindows < 1)
                throw new IllegalArgumentException("--eval-windows must be >= 1 (got " + evalWindows + ")");
            if (!(routerTemperature > 0) || Double.isInfinite(routerTemperature))
                throw new IllegalArgumentException(
                        "--router-temperature must be a positive number (got " + routerTemperature + ")");
            methods = Set.copyOf(methods);
            learningRates = Map.copyOf(learningRates);
            for (Map.Entry<Method, Double> e : learningRates.entrySet()) {
                if (!(e.getValue() > 0) || e.getValue().isInfinite())
                    throw new IllegalArgumentException("learning rate of "
                            + e.getKey().id() + " must be a positive number (got " + e.getValue() + ")");
            }
        }

        /** Every method at {@code hyper.lr()}, the domain-embedding router at its default temperature. */
        public Settings(
                Path out,
                int stage1Steps,
                int stage2Steps,
                ModeTraining.Hyper hyper,
                int blocks,
                int expertLayers,
                ModeConfig.ExpertInit expertInit,
                double gateInit,
                Composer.GateConstruction gates,
                Routing routing,
                ModeConfig.Merge merge,
                ModeConfig.GateInput gateInput,
                LoraModel.Config lora,
                int evalWindows,
                Set<Method> methods) {
            this(
                    out,
                    stage1Steps,
                    stage2Steps,
                    hyper,
                    blocks,
                    expertLayers,
                    expertInit,
                    gateInit,
                    gates,
                    routing,
                    merge,
                    gateInput,
                    lora,
                    evalWindows,
                    methods,
                    DomainRouter.DEFAULT_TEMPERATURE,
                    Map.of());
        }

        /** The peak learning rate of a method. */
        public double lr(Method m) {
            return learningRates.getOrDefault(m, hyper.lr());
        }

        /** {@link #hyper()} with {@code m}'s learning rate. */
        public ModeTraining.Hyper hyper(Method m) {
            ModeTraining.Hyper h = hyper;
            return new ModeTraining.Hyper(
                    h.batch(), h.seqLen(), lr(m), h.warmupFrac(), h.valWindows(), h.valPoints(), h.seed());
        }

        /** Total steps of every method: N·stage1 + stage2 (N = number of target domains). */
        public int totalSteps(int targets) {
            return targets * stage1Steps + stage2Steps;
        }
    }

    /** Progress callbacks (the CLI prints them). */
    public interface Progress {
        default void stageStarted(String id, String description) {}

        default void stageFinished(String id, double seconds, String summary) {}

        /** Listeners for a training run (e.g. a progress bar). */
        default List<Trainer.Listener> listeners(String runId, int steps) {
            return List.of();
        }
    }

    /**
     * What the experiment produced.
     *
     * @param targets      target domains (training)
     * @param evalDomains  evaluated domains, in table order
     * @param results      one per method, in table order
     * @param stageSeconds wall time per stage
     * @param optOut       for each composed MoDE method (by id, table order): its evaluation with each expert
     *                     removed, keyed by the removed expert (domain opt-out)
     * @param routers      the stage-1 experts composed under gates that had no stage-2 step (fresh, stacked
     *                     stage-1 gates, domain-embedding router), to compare with the trained gate
     */
    public record Report(
            Settings settings,
            List<String> targets,
            List<String> evalDomains,
            List<MethodResult> results,
            Map<String, Double> stageSeconds,
            BackboneFingerprint backbone,
            Map<String, Map<String, ModeTraining.Evaluation>> optOut,
            List<RouterResult> routers) {}

    /**
     * The composed stage-1 experts (frozen) under a gate built without stage-2 training.
     *
     * @param id    {@code router-fresh}, {@code router-stacked} or {@code router-domain}
     * @param label the table's row
     */
    public record RouterResult(String id, String label, ModeTraining.Evaluation eval) {}

    private final Settings s;
    private final Progress progress;
    private final Map<String, Double> seconds = new LinkedHashMap<>();
    private final Map<String, Map<String, ModeTraining.Evaluation>> optOut = new LinkedHashMap<>();
    private ModeTraining.Checkpoints checkpoints = ModeTraining.Checkpoints.NONE; // mode baseline's
    private final List<RouterResult> routers = new ArrayList<>();
    private final DomainTokens general; // the backbone's general corpus for the domain-embedding router; null = none

    private ModeExperiment(Settings s, Progress progress, DomainTokens general) {
        this.s = s;
        this.progress = progress;
        this.general = general;
    }

    /**
     * Runs the experiment.
     *
     * @param loadBackbone loads a fresh copy of the base model (full fine-tuning changes its copy)
     * @param targets      the target domains, in stage-1 order (e.g. code, math)
     * @param evalDomains  domains evaluated, in table order (e.g. math, code, english-retention)
     */
    public static Report run(
            Supplier<LlamaModel> loadBackbone,
            List<DomainTokens> targets,
            List<DomainTokens> evalDomains,
            Settings settings,
            Progress progress)
            throws IOException {
        return run(loadBackbone, targets, evalDomains, null, settings, progress);
    }

    /**
     * Runs the experiment; with {@code general} (the backbone's general corpus, e.g. {@code english}) the router
     * comparison also has the domain-embedding router ({@link DomainRouter}), and
     * {@link Composer.GateConstruction#DOMAIN_EMBEDDINGS} can start the composed gate.
     */
    public static Report run(
            Supplier<LlamaModel> loadBackbone,
            List<DomainTokens> targets,
            List<DomainTokens> evalDomains,
            DomainTokens general,
            Settings settings,
            Progress progress)
            throws IOException {
        if (targets.isEmpty()) throw new IllegalArgumentException("the experiment needs at least one target domain");
        if (general == null && settings.gates() == Composer.GateConstruction.DOMAIN_EMBEDDINGS)
            throw new IllegalArgumentException("the domain-embeddings gate construction needs the backbone's general"
                    + " corpus for its backbone row; give it (e.g. english) or use --gate-construction fresh");
        return new ModeExperiment(settings, progress, general).go(loadBackbone, targets, evalDomains);
    }

    private Report go(Supplier<LlamaModel> loadBackbone, List<DomainTokens> targets, List<DomainTokens> evalDomains)
            throws IOException {
        Files.createDirectories(s.out());
        int n = targets.size(), total = s.totalSteps(n);
        List<String> names = targets.stream().map(DomainTokens::name).toList();
        List<int[]> val = ModeTraining.validationWindows(targets, s.hyper());
        String mixWords = "equal mix of " + String.join(" + ", names);
        List<MethodResult> results = new ArrayList<>();
        BackboneFingerprint before;
        try (LlamaModel backbone = loadBackbone.get()) {
            before = BackboneFingerprint.of(backbone.config(), backbone.parameters());
            List<Parameter> base = backbone.parameters();
            for (Method m : List.of(Method.BASE, Method.FULL_FT, Method.LORA, Method.EXPANSION, Method.MODE_1X)) {
                if (s.methods().contains(m))
                    results.add(singleStage(m, total, loadBackbone, backbone, targets, val, evalDomains));
            }
            boolean twoStage = s.methods().contains(Method.MODE) || s.methods().contains(Method.MODE_FROZEN);
            if (twoStage) {
                List<ExpertFile> files = new ArrayList<>();
                List<ModeTraining.Run> stage1 = new ArrayList<>();
                for (DomainTokens d : targets) {
                    String id = "expert-" + d.name();
                    results.add(timed(
                            id,
                            "stage 1: " + d.name() + " expert, " + s.stage1Steps() + " steps on " + d.name(),
                            () -> {
                                try (ModeModel m = ModeModel.create(
                                        backbone,
                                        config(List.of(d.name())),
                                        s.hyper().seed())) {
                                    m.selectTrainable(true);
                                    long tr = ModeTraining.trainableCount(m);
                                    ModeTraining.Run r = train(
                                            Method.MODE,
                                            id,
                                            m,
                                            List.of(d),
                                            s.hyper().seed(),
                                            ModeTraining.validationWindows(List.of(d), s.hyper()),
                                            s.stage1Steps(),
                                            () -> ModeTraining.modeSettings(m));
                                    Path file = s.out().resolve(id).resolve(ExpertFile.FILE_NAME);
                                    ExpertFile.write(file, m);
                                    files.add(ExpertFile.read(file));
                                    stage1.add(r);
                                    return evaluated(
                                            id,
                                            "MoDE " + d.name() + " expert alone (stage 1)",
                                            s.stage1Steps() + " steps on " + d.name() + " (expert + gate)",
                                            s.stage1Steps(),
                                            m,
                                            ModeTraining.count(m, base, tr),
                                            List.of(r),
                                            evalDomains);
                                }
                            }));
                }
                compareRouters(backbone, files, targets, evalDomains);
                String stage1Words = String.join(
                        ", ",
                        names.stream()
                                .map(x -> x + " expert " + s.stage1Steps() + " steps on " + x)
                                .toList());
                for (boolean trainExperts : new boolean[] {false, true}) {
                    Method which = trainExperts ? Method.MODE : Method.MODE_FROZEN;
                    if (!s.methods().contains(which)) continue;
                    String id = "mode-" + n + "x" + (trainExperts ? "" : "-frozen");
                    String label = "MoDE " + n + "× experts ("
                            + (trainExperts ? "gate + experts" : "frozen experts, gate only") + ")";
                    results.add(timed(
                            id, "stage 2: " + label + ", " + s.stage2Steps() + " steps on the " + mixWords, () -> {
                                try (ModeModel m = Composer.compose(
                                        backbone,
                                        files,
                                        s.routing(),
                                        s.gateInit(),
                                        s.gates(),
                                        routerSettings(targets))) {
                                    m.selectTrainable(trainExperts);
                                    long tr = ModeTraining.trainableCount(m);
                                    ModeTraining.Run r = train(
                                            which,
                                            id,
                                            m,
                                            targets,
                                            s.hyper().seed() + 1,
                                            val,
                                            s.stage2Steps(),
                                            () -> ModeTraining.modeSettings(m));
                                    ExpertFile.write(s.out().resolve(id).resolve(ExpertFile.FILE_NAME), m);
                                    List<ModeTraining.Run> runs = new ArrayList<>(stage1);
                                    runs.add(r);
                                    Map<String, ModeTraining.Evaluation> without = ModeTraining.withoutEachExpert(
                                            m,
                                            evalDomains,
                                            s.hyper().seqLen(),
                                            s.hyper().batch(),
                                            s.evalWindows());
                                    if (!without.isEmpty()) optOut.put(id, without);
                                    return evaluated(
                                            id,
                                            label,
                                            stage1Words + "; then " + s.stage2Steps() + " steps on the " + mixWords
                                                    + (trainExperts ? " (gate + experts)" : " (gate only)"),
                                            total,
                                            m,
                                            ModeTraining.count(m, base, tr),
                                            runs,
                                            evalDomains);
                                }
                            }));
                }
            }
            BackboneFingerprint after = BackboneFingerprint.of(backbone.config(), backbone.parameters());
            if (!after.equals(before))
                throw new IllegalStateException("the shared backbone changed during the experiment; this is a bug");
        }
        List<String> evalNames = evalDomains.stream().map(DomainTokens::name).toList();
        Map<String, Map<String, ModeTraining.Evaluation>> optOutInOrder = new LinkedHashMap<>();
        for (MethodResult m : order(results))
            if (optOut.containsKey(m.id())) optOutInOrder.put(m.id(), optOut.get(m.id()));
        return new Report(
                s,
                names,
                evalNames,
                order(results),
                new LinkedHashMap<>(seconds),
                before,
                optOutInOrder,
                List.copyOf(routers));
    }

    /** The domain-embedding router's data: the general corpus and each target's train split; null without one. */
    private DomainRouter.Settings routerSettings(List<DomainTokens> targets) {
        if (general == null) return null;
        return new DomainRouter.Settings(
                general,
                targets,
                s.hyper().seqLen(),
                s.hyper().batch(),
                DomainRouter.DEFAULT_WINDOWS,
                s.routerTemperature());
    }

    /**
     * The stage-1 experts composed under gates that had no stage-2 step, evaluated (no training): a fresh gate, the
     * stacked stage-1 gates and, with a general corpus, the domain-embedding router. Their table sits beside the
     * trained gate (MoDE N× frozen experts) in the report.
     */
    private void compareRouters(
            LlamaModel backbone, List<ExpertFile> files, List<DomainTokens> targets, List<DomainTokens> evalDomains) {
        List<Composer.GateConstruction> kinds =
                new ArrayList<>(List.of(Composer.GateConstruction.FRESH, Composer.GateConstruction.STACKED));
        if (general != null) kinds.add(Composer.GateConstruction.DOMAIN_EMBEDDINGS);
        for (Composer.GateConstruction g : kinds) {
            String id = switch (g) {
                case FRESH -> "router-fresh";
                case STACKED -> "router-stacked";
                case DOMAIN_EMBEDDINGS -> "router-domain";
            };
            String label = switch (g) {
                case FRESH -> "fresh gate (α_bb " + s.gateInit() + ")";
                case STACKED -> "stacked stage-1 gates";
                case DOMAIN_EMBEDDINGS ->
                    String.format(
                            Locale.ROOT,
                            "domain-embedding router (τ %s, backbone row from %s)",
                            s.routerTemperature(),
                            general.name());
            };
            progress.stageStarted(id, label + " over the stage-1 experts, no stage-2 step");
            long t0 = System.nanoTime();
            ModeTraining.Evaluation e;
            try (ModeModel m =
                    Composer.compose(backbone, files, s.routing(), s.gateInit(), g, routerSettings(targets))) {
                e = ModeTraining.evaluate(
                        m, evalDomains, s.hyper().seqLen(), s.hyper().batch(), s.evalWindows());
                m.releaseBuffers();
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            seconds.put(id, secs);
            routers.add(new RouterResult(id, label, e));
            progress.stageFinished(id, secs, summary(e));
        }
    }

    /**
     * Trains and evaluates one single-stage method ({@link Method#BASE}, {@link Method#FULL_FT}, {@link Method#LORA},
     * {@link Method#EXPANSION} or {@link Method#MODE_1X}) for {@code steps} steps on the equal mix of {@code targets}:
     * what {@code mode baseline} runs, with its checkpoints in {@code out/<method>/checkpoints}.
     */
    public static MethodResult runSingle(
            Method method,
            int steps,
            Supplier<LlamaModel> loadBackbone,
            List<DomainTokens> targets,
            List<DomainTokens> evalDomains,
            Settings settings,
            Progress progress,
            ModeTraining.Checkpoints checkpoints)
            throws IOException {
        if (method == Method.MODE || method == Method.MODE_FROZEN) {
            throw new IllegalArgumentException(
                    "two-stage MoDE runs through 'mode expert' and 'mode compose', not as a single-stage method");
        }
        Files.createDirectories(settings.out());
        ModeExperiment e = new ModeExperiment(settings, progress, null);
        e.checkpoints = checkpoints;
        try (LlamaModel backbone = loadBackbone.get()) {
            return e.singleStage(
                    method,
                    steps,
                    loadBackbone,
                    backbone,
                    targets,
                    ModeTraining.validationWindows(targets, settings.hyper()),
                    evalDomains);
        }
    }

    private MethodResult singleStage(
            Method method,
            int total,
            Supplier<LlamaModel> loadBackbone,
            LlamaModel backbone,
            List<DomainTokens> targets,
            List<int[]> val,
            List<DomainTokens> evalDomains)
            throws IOException {
        List<Parameter> base = backbone.parameters();
        Supplier<BackboneFingerprint> fingerprint = () -> BackboneFingerprint.of(backbone.config(), base);
        String mixWords = "equal mix of "
                + String.join(" + ", targets.stream().map(DomainTokens::name).toList());
        int n = targets.size();
        return switch (method) {
            case BASE ->
                timed(
                        "base",
                        "evaluate the base model",
                        () -> evaluated(
                                "base",
                                "base model (no adaptation)",
                                "nothing (pretrained on general English only)",
                                0,
                                backbone,
                                ModeTraining.count(backbone, base, 0),
                                List.of(),
                                evalDomains));
            case FULL_FT ->
                timed("full-ft", "full fine-tuning, " + total + " steps on the " + mixWords, () -> {
                    try (LlamaModel ft = loadBackbone.get()) {
                        for (Parameter p : ft.parameters()) p.setTrainable(true);
                        long tr = ModeTraining.trainableCount(ft);
                        ModeTraining.Run r = train(
                                Method.FULL_FT,
                                "full-ft",
                                ft,
                                targets,
                                s.hyper().seed(),
                                val,
                                total,
                                () -> methodSettings(Method.FULL_FT, fingerprint));
                        SafeTensors.write(
                                s.out().resolve("full-ft").resolve("model.safetensors"),
                                Weights.export(ft.parameters()),
                                Map.of(),
                                SafeDType.F32);
                        return evaluated(
                                "full-ft",
                                "full fine-tuning",
                                total + " steps on the " + mixWords,
                                total,
                                ft,
                                ModeTraining.count(ft, ft.parameters(), tr),
                                List.of(r),
                                evalDomains);
                    }
                });
            case LORA -> {
                LoraModel.Config lc = s.lora();
                String label = "LoRA r=" + lc.rank() + " (" + targetsLabel(lc) + ")";
                yield timed("lora", label + ", " + total + " steps on the " + mixWords, () -> {
                    try (LoraModel m = LoraModel.create(backbone, lc, s.hyper().seed())) {
                        m.selectTrainable();
                        long tr = ModeTraining.trainableCount(m);
                        ModeTraining.Run r = train(
                                Method.LORA,
                                "lora",
                                m,
                                targets,
                                s.hyper().seed(),
                                val,
                                total,
                                () -> methodSettings(Method.LORA, fingerprint));
                        SafeTensors.write(
                                s.out().resolve("lora").resolve("adapters.safetensors"),
                                Weights.export(m.adapterParameters()),
                                Map.of(),
                                SafeDType.F32);
                        return evaluated(
                                "lora",
                                label,
                                total + " steps on the " + mixWords + " (adapters only)",
                                total,
                                m,
                                ModeTraining.count(m, base, tr),
                                List.of(r),
                                evalDomains);
                    }
                });
            }
            case EXPANSION -> {
                int per = n * s.expertLayers();
                String label = "serial block expansion (+" + per * s.blocks() + " layers)";
                yield timed("expansion", label + ", " + total + " steps on the " + mixWords, () -> {
                    try (ExpandedModel m = ExpandedModel.create(backbone, s.blocks(), per)) {
                        m.selectTrainable();
                        long tr = ModeTraining.trainableCount(m);
                        ModeTraining.Run r = train(
                                Method.EXPANSION,
                                "expansion",
                                m,
                                targets,
                                s.hyper().seed(),
                                val,
                                total,
                                () -> methodSettings(Method.EXPANSION, fingerprint));
                        SafeTensors.write(
                                s.out().resolve("expansion").resolve("added-layers.safetensors"),
                                Weights.export(m.addedParameters()),
                                Map.of(),
                                SafeDType.F32);
                        return evaluated(
                                "expansion",
                                label,
                                total + " steps on the " + mixWords + " (new layers only)",
                                total,
                                m,
                                ModeTraining.count(m, base, tr),
                                List.of(r),
                                evalDomains);
                    }
                });
            }
            case MODE_1X ->
                timed("mode-1x", "MoDE with one expert, " + total + " steps on the " + mixWords, () -> {
                    try (ModeModel m = ModeModel.create(
                            backbone, config(List.of("mixed")), s.hyper().seed())) {
                        m.selectTrainable(true);
                        long tr = ModeTraining.trainableCount(m);
                        ModeTraining.Run r = train(
                                Method.MODE_1X,
                                "mode-1x",
                                m,
                                targets,
                                s.hyper().seed(),
                                val,
                                total,
                                () -> methodSettings(Method.MODE_1X, fingerprint)
                                        .addAll(ModeTraining.modeSettings(m)));
                        ExpertFile.write(s.out().resolve("mode-1x").resolve(ExpertFile.FILE_NAME), m);
                        return evaluated(
                                "mode-1x",
                                "MoDE 1× expert (trained on the mix)",
                                total + " steps on the " + mixWords + " (expert + gate)",
                                total,
                                m,
                                ModeTraining.count(m, base, tr),
                                List.of(r),
                                evalDomains);
                    }
                });
            case MODE, MODE_FROZEN -> throw new IllegalArgumentException(method + " is two-stage");
        };
    }

    private ModeConfig config(List<String> domains) {
        return new ModeConfig(
                s.blocks(),
                s.expertLayers(),
                domains,
                s.expertInit(),
                s.gateInit(),
                s.routing(),
                s.merge(),
                s.gateInput());
    }

    private static String targetsLabel(LoraModel.Config lc) {
        if (lc.targets().equals(LoraModel.Config.ATTENTION)) return "attention";
        return String.join(
                ",",
                lc.targets().stream()
                        .map(t -> t.suffix()
                                .replace(".weight", "")
                                .replaceAll(".*\\.", "")
                                .replace("_proj", ""))
                        .sorted()
                        .toList());
    }

    /**
     * One run of the experiment (or of {@code mode baseline}) on the equal mix of {@code data}; {@code settings}
     * (what trains, over what) is asked for only when the run keeps checkpoints.
     */
    private ModeTraining.Run train(
            Method method,
            String id,
            CausalLm model,
            List<DomainTokens> data,
            long dataSeed,
            List<int[]> val,
            int steps,
            Supplier<RunSettings> settings) {
        return ModeTraining.train(
                id,
                model,
                data,
                dataSeed,
                val,
                steps,
                s.hyper(method),
                s.out().resolve(id),
                progress.listeners(id, steps),
                checkpoints,
                checkpoints.every() > 0 ? settings.get() : new RunSettings());
    }

    /**
     * The settings of a single-stage method's run that fix what trains: the method, its own options and the
     * backbone's identity (computed once per backbone, before any run changes a copy of it).
     */
    private RunSettings methodSettings(Method method, Supplier<BackboneFingerprint> backbone) {
        RunSettings r = new RunSettings().add("--method", method.id(), RunSettings.OnChange.FIXED);
        switch (method) {
            case LORA ->
                r.add("--lora-rank", s.lora().rank(), RunSettings.OnChange.FIXED)
                        .add("--lora-alpha", s.lora().alpha(), RunSettings.OnChange.FIXED)
                        .add("--lora-targets", targetsLabel(s.lora()), RunSettings.OnChange.FIXED);
            case EXPANSION ->
                r.add("--blocks", s.blocks(), RunSettings.OnChange.FIXED)
                        .add("--expert-layers", s.expertLayers(), RunSettings.OnChange.FIXED);
            default -> {}
        }
        return r.add("backbone", ModeTraining.backboneSetting(backbone.get()), RunSettings.OnChange.FIXED);
    }

    private MethodResult evaluated(
            String id,
            String label,
            String trainedOn,
            int steps,
            CausalLm model,
            ModeTraining.ParamCounts counts,
            List<ModeTraining.Run> runs,
            List<DomainTokens> evalDomains) {
        ModeTraining.Evaluation e = ModeTraining.evaluate(
                model, evalDomains, s.hyper().seqLen(), s.hyper().batch(), s.evalWindows());
        Map<String, LossStats> val = ModeTraining.validationScores(
                model, evalDomains, s.hyper().seqLen(), s.hyper().batch(), s.evalWindows());
        model.releaseBuffers();
        return new MethodResult(id, label, trainedOn, steps, counts, e, val, runs, 0);
    }

    @FunctionalInterface
    private interface Stage {
        MethodResult run() throws IOException;
    }

    private MethodResult timed(String id, String description, Stage stage) throws IOException {
        progress.stageStarted(id, description);
        LOG.log(System.Logger.Level.INFO, "MoDE experiment stage {0}: {1}", id, description);
        long t0 = System.nanoTime();
        MethodResult r = stage.run();
        double secs = (System.nanoTime() - t0) / 1e9;
        seconds.put(id, secs);
        MethodResult done = new MethodResult(
                r.id(), r.label(), r.trainedOn(), r.steps(), r.params(), r.eval(), r.validation(), r.runs(), secs);
        progress.stageFinished(id, secs, summary(done));
        return done;
    }

    private static String summary(MethodResult r) {
        return summary(r.eval());
    }

    private static String summary(ModeTraining.Evaluation e) {
        StringBuilder b = new StringBuilder();
        e.scores()
                .forEach((d, st) -> b.append(String.format(
                        Locale.ROOT, "%s acc %.2f%% loss %.3f  ", d, 100 * st.accuracy(), st.meanLoss())));
        return b.toString().strip();
    }

    /** Table order: base, full FT, LoRA, expansion, MoDE 1×, stage-1 experts, MoDE N× frozen, MoDE N×. */
    private static List<MethodResult> order(List<MethodResult> rs) {
        List<MethodResult> out = new ArrayList<>();
        for (String id : List.of("base", "full-ft", "lora", "expansion", "mode-1x"))
            rs.stream().filter(r -> r.id().equals(id)).forEach(out::add);
        rs.stream().filter(r -> r.id().startsWith("expert-")).forEach(out::add);
        rs.stream().filter(r -> r.id().endsWith("-frozen")).forEach(out::add);
        rs.stream().filter(r -> !out.contains(r)).forEach(out::add);
        return out;
    }
}
