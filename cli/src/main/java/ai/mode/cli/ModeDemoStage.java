package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.CheckpointStore;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.DomainRouter;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeExperiment;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;

/**
 * The MoDE part of {@code mode demo}: after the base model is pretrained, the paper's experiment in miniature with the
 * demo defaults (ModeExperimentCommand's), its table printed and saved under runs/demo/mode. Registered in
 * {@code META-INF/services/ai.mode.cli.DemoStage}.
 */
public final class ModeDemoStage implements DemoStage {
    /**
     * The peak learning rate of each method, chosen on the validation split by the tuning study (docs/mode.md, "Tuning
     * study": 3e-4, 1e-3, 3e-3, 1e-2 at the demo's budget, on a smaller base model; MoDE with α_bb = 0.5 at init was
     * measured at 1e-3 and 3e-3).
     */
    static final Map<ModeExperiment.Method, Double> LEARNING_RATES = Map.of(
            ModeExperiment.Method.FULL_FT, 3e-3,
            ModeExperiment.Method.LORA, 1e-2,
            ModeExperiment.Method.EXPANSION, 3e-3,
            ModeExperiment.Method.MODE_1X, 3e-3,
            ModeExperiment.Method.MODE, 3e-3,
            ModeExperiment.Method.MODE_FROZEN, 3e-3);

    /**
     * Demo settings: B = 2 blocks, the MoDE defaults (experts copied from their whole backbone slice, k = L/B, the
     * mixture merge), batch 8 x 128 tokens, each method at its {@link #LEARNING_RATES} rate.
     */
    static ModeExperiment.Settings settings(java.nio.file.Path out, long seed, int backboneLayers) {
        return new ModeExperiment.Settings(
                out,
                ModeExperimentCommand.DEFAULT_STAGE1,
                ModeExperimentCommand.DEFAULT_STAGE2,
                new ModeTraining.Hyper(8, 128, 1e-3, 0.05, 16, 4, seed),
                2,
                ModeConfig.defaultLayersPerExpert(backboneLayers, 2, ModeConfig.DEFAULT_EXPERT_INIT),
                ModeConfig.DEFAULT_EXPERT_INIT,
                ModeConfig.DEFAULT_GATE_INIT_BACKBONE,
                Composer.GateConstruction.FRESH,
                Routing.DENSE,
                ModeConfig.DEFAULT_MERGE,
                ModeConfig.DEFAULT_GATE_INPUT,
                LoraModel.Config.defaults(),
                64,
                EnumSet.allOf(ModeExperiment.Method.class),
                DomainRouter.DEFAULT_TEMPERATURE,
                LEARNING_RATES);
    }

    @Override
    public String name() {
        return "mode";
    }

    @Override
    public int order() {
        return 10;
    }

    @Override
    public void run(Context ctx) throws Exception {
        CommonOptions common = new CommonOptions();
        common.backend = ctx.backend();
        common.threads = ctx.threads();
        common.seed = ctx.seed();
        common.quiet = ctx.quiet();
        List<String> targets = List.of("code", "math");
        Checkpoint base = CheckpointStore.resolve(ctx.baseCheckpoint());
        ModeExperiment.Report r = ModeExperimentCommand.run(
                base,
                targets,
                ModeExperimentCommand.defaultEval(targets),
                DomainRouter.DEFAULT_BACKBONE_DOMAIN,
                settings(ctx.runDir().resolve("mode"), ctx.seed(), base.config().numLayers()),
                common,
                "mode demo",
                true,
                ctx.out(),
                ctx.err());
        if (r != null) r.stageSeconds().forEach((k, v) -> ctx.stageSeconds().put("mode " + k, v));
    }
}
