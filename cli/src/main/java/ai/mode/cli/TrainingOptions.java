package ai.mode.cli;

import ai.mode.model.LlamaConfig;
import ai.mode.model.train.Pretraining;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * Training-loop options shared by commands that train (steps, batch, sequence, accumulation, LR, intervals). A picocli
 * mixin; defaults are the embedded base model's.
 */
public final class TrainingOptions {
    @Option(names = "--steps", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    public int steps;

    @Option(
            names = "--batch",
            defaultValue = "16",
            description = "Sequences per micro-batch (default: ${DEFAULT-VALUE}).")
    public int batch;

    @Option(names = "--seq", defaultValue = "128", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    public int seq;

    @Option(
            names = "--accum",
            defaultValue = "1",
            description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).")
    public int accum;

    @Option(names = "--lr", defaultValue = "2e-3", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    public double lr;

    @Option(names = "--warmup", defaultValue = "-1", description = "Warm-up steps (default: 5%% of --steps).")
    public int warmup;

    @Option(
            names = "--eval-every",
            defaultValue = "-1",
            description = "Validate every N steps (0 = only at the end; default: 10 times per run).")
    public int evalEvery;

    @Option(
            names = "--eval-windows",
            defaultValue = "64",
            description = "Validation sequences per evaluation (0 = the whole split; default: ${DEFAULT-VALUE}).")
    public int evalWindows;

    @Option(
            names = "--checkpoint-every",
            defaultValue = "-1",
            description = "Checkpoint every N steps (default: 5 times per run).")
    public int checkpointEvery;

    @Option(
            names = "--keep",
            defaultValue = "2",
            description = "Checkpoints to keep (0 = all; default: ${DEFAULT-VALUE}).")
    public int keep;

    static void atLeast(String option, int value, int min, String hint) {
        if (value < min)
            throw new IllegalArgumentException(option + " must be >= " + min + " (got " + value + "); " + hint);
    }

    /** Options whose --steps default is {@code steps}. */
    public static TrainingOptions withSteps(int steps) {
        TrainingOptions t = new TrainingOptions();
        t.steps = steps;
        return t;
    }

    /**
     * The settings, after checking every option by its name: -1 is the default of {@code --warmup},
     * {@code --eval-every} and {@code --checkpoint-every}; other negative values, a zero checkpoint interval and
     * non-positive sizes are one-line errors instead of being ignored.
     */
    public Pretraining.Settings settings(Path out, LlamaConfig cfg, long seed, ResumeOptions resume, boolean force) {
        atLeast("--batch", batch, 1, "sequences per micro-batch");
        atLeast("--seq", seq, 1, "tokens per sequence");
        atLeast("--accum", accum, 1, "micro-batches per optimizer step");
        atLeast("--eval-windows", evalWindows, 0, "0 evaluates the whole validation split");
        atLeast("--keep", keep, 0, "0 keeps every checkpoint");
        if (warmup != -1) atLeast("--warmup", warmup, 0, "leave it out for 5% of --steps");
        if (evalEvery != -1) atLeast("--eval-every", evalEvery, 0, "0 validates only at the end");
        if (checkpointEvery != -1)
            atLeast("--checkpoint-every", checkpointEvery, 1, "a checkpoint is written at the end in any case");
        int warm = warmup >= 0 ? warmup : Math.max(1, steps / 20);
        int every = evalEvery >= 0 ? evalEvery : Math.max(1, steps / 10);
        int ckpt = checkpointEvery >= 0 ? checkpointEvery : Math.max(1, steps / 5);
        return new Pretraining.Settings(
                out,
                cfg,
                steps,
                batch,
                seq,
                accum,
                lr,
                warm,
                every,
                evalWindows,
                ckpt,
                keep,
                seed,
                resume.resume,
                resume.allowChanged(),
                force);
    }
}
