package ai.mode.cli;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * Extension point of {@code mode demo}: later stages (MoDE experts, baselines, the paper's table) plug in here and run
 * after the base model is pretrained and evaluated.
 *
 * <p>A stage of the demo, found with {@link java.util.ServiceLoader} (register in
 * {@code META-INF/services/ai.mode.cli.DemoStage}); stages run in {@link #order()} after pretraining.
 */
public interface DemoStage {

    /** What the demo hands each stage. */
    record Context(
            Path runDir,
            Path baseCheckpoint,
            Path tokenizer,
            String backend,
            int threads,
            long seed,
            boolean quiet,
            PrintStream out,
            PrintStream err,
            Map<String, Double> stageSeconds) {}

    /** Short name, shown in the timing table. */
    String name();

    /** Sort key among stages (lower runs first). */
    default int order() {
        return 100;
    }

    /** Runs the stage; record durations of sub-stages in {@code ctx.stageSeconds()} if useful. */
    void run(Context ctx) throws Exception;
}
