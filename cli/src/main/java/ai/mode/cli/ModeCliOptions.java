package ai.mode.cli;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * Picocli mixins with the options of the MoDE commands (expert, compose, baseline, experiment, eval-mode, export-hf):
 * the MoDE architecture choices, the training/evaluation settings every method shares, and a saved model's files.
 */
public final class ModeCliOptions {
    private ModeCliOptions() {}

    /** MoDE architecture: blocks, layers per expert, initialisation, routing. */
    public static final class Arch {
        /** {@code --expert-layers} value for the default k: L/B with copied experts, 1 with random ones. */
        public static final String SLICE = "slice";

        @Option(
                names = "--blocks",
                defaultValue = "2",
                description =
                        "B: MoDE blocks over the backbone; must divide its layer count (default: ${DEFAULT-VALUE}).")
        public int blocks;

        @Option(
                names = "--expert-layers",
                defaultValue = SLICE,
                description =
                        "k: decoder layers per expert per block, or slice: L/B (each expert as deep as its backbone slice) with --expert-init copy, 1 with --expert-init random (default: ${DEFAULT-VALUE}).")
        public String expertLayers;

        @Option(
                names = "--expert-init",
                defaultValue = "copy",
                description =
                        "Expert initialisation: copy (the backbone slice's last k layers; with the default k = L/B and --merge mixture the model starts at the base, as BTX and FlexOlmo do) or random (the paper's 'uninitialised' experts: zero output projections, each layer starts as the identity) (default: ${DEFAULT-VALUE}).")
        public String expertInit;

        @Option(
                names = "--gate-init",
                defaultValue = "" + ModeConfig.DEFAULT_GATE_INIT_BACKBONE,
                description = "Backbone gate weight at initialisation, in (0, 1) (default: ${DEFAULT-VALUE}).")
        public double gateInit;

        @Option(
                names = "--routing",
                defaultValue = "dense",
                description =
                        "dense (every branch, soft weights), topK (e.g. top1: only the K most probable branches run), or sequence-dense / sequence-topK (gate on the sequence mean) (default: ${DEFAULT-VALUE}).")
        public String routing;

        @Option(
                names = "--merge",
                description =
                        "How a block combines its branches: mixture (the paper's α_bb·f_bb(x) + Σ α_j·f_e(x); needed for top-k routing) or residual (backbone + gated expert updates, dense routing only; with random, 'uninitialised' experts it starts exactly at the base model) (default: mixture).")
        public String merge;

        @Option(
                names = "--gate-input",
                description =
                        "What the gate reads: rmsnorm (the block input normalised) or raw (the paper's) (default: rmsnorm).")
        public String gateInput;

        public Routing routing() {
            return Routing.parse(routing);
        }

        /** {@code --merge}, or the default ({@link ModeConfig#DEFAULT_MERGE}, mixture; top-k routing needs it). */
        public ModeConfig.Merge merge() {
            return merge != null ? ModeConfig.Merge.parse(merge) : ModeConfig.DEFAULT_MERGE;
        }

        /** Whether {@code --expert-layers} gave a number (not {@value #SLICE}). */
        public boolean expertLayersGiven() {
            return !SLICE.equalsIgnoreCase(expertLayers.strip());
        }

        /**
         * k: {@code --expert-layers}, or for {@value #SLICE} the slice depth L/B with copied experts and 1 with random
         * ones ({@link ModeConfig#defaultLayersPerExpert}).
         */
        public int expertLayers(LlamaConfig backbone) {
            if (!expertLayersGiven())
                return ModeConfig.defaultLayersPerExpert(
                        backbone.numLayers(), blocks, ModeConfig.ExpertInit.parse(expertInit));
            try {
                return Integer.parseInt(expertLayers.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--expert-layers '" + expertLayers
                        + "' is not a number; give k >= 1, or slice (L/B for copied experts, 1 for random ones)");
            }
        }

        /** The MoDE config these options give over {@code backbone} (which sets k for {@value #SLICE}). */
        public ModeConfig config(List<String> domains, LlamaConfig backbone) {
            return new ModeConfig(
                    blocks,
                    expertLayers(backbone),
                    domains,
                    ModeConfig.ExpertInit.parse(expertInit),
                    gateInit,
                    routing(),
                    merge(),
                    gateInput == null ? ModeConfig.DEFAULT_GATE_INPUT : ModeConfig.GateInput.parse(gateInput));
        }
    }

    /** Training and evaluation settings shared by all methods. */
    public static final class Run {
        @Option(names = "--batch", defaultValue = "8", description = "Sequences per step (default: ${DEFAULT-VALUE}).")
        public int batch;

        @Option(names = "--seq", defaultValue = "128", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
        public int seq;

        @Option(
                names = "--lr",
                defaultValue = "1e-3",
                description =
                        "Peak learning rate, warm-up then cosine to a tenth (default: ${DEFAULT-VALUE}, the paper's).")
        public double lr;

        @Option(
                names = "--warmup-frac",
                defaultValue = "0.05",
                description = "Fraction of each run's steps for warm-up (default: ${DEFAULT-VALUE}).")
        public double warmupFrac;

        @Option(
                names = "--val-windows",
                defaultValue = "16",
                description =
                        "Validation windows per domain for the loss curves (0 = none; default: ${DEFAULT-VALUE}).")
        public int valWindows;

        @Option(
                names = "--eval-windows",
                defaultValue = "64",
                description = "Test windows per domain for the final evaluation (default: ${DEFAULT-VALUE}).")
        public int evalWindows;

        public ModeTraining.Hyper hyper(long seed) {
            return new ModeTraining.Hyper(batch, seq, lr, warmupFrac, valWindows, 4, seed);
        }
    }

    /** Checkpoints of a stage run (expert, compose, baseline): how often and how many are kept. */
    public static final class Checkpoints {
        @Option(
                names = "--checkpoint-every",
                defaultValue = "-1",
                description = "Checkpoint every N steps into OUT/checkpoints (default: 5 times per run).")
        public int checkpointEvery;

        @Option(
                names = "--keep",
                defaultValue = "2",
                description = "Checkpoints to keep (0 = all; default: ${DEFAULT-VALUE}).")
        public int keep;

        /** The stage's checkpoint settings for a run of {@code steps} steps, every option checked by name. */
        public ModeTraining.Checkpoints of(int steps, ResumeOptions resume, boolean force) {
            if (checkpointEvery != -1)
                TrainingOptions.atLeast(
                        "--checkpoint-every", checkpointEvery, 1, "a checkpoint is written at the end in any case");
            TrainingOptions.atLeast("--keep", keep, 0, "0 keeps every checkpoint");
            int every = checkpointEvery > 0 ? checkpointEvery : Math.max(1, steps / 5);
            return new ModeTraining.Checkpoints(every, keep, resume.resume, resume.allowChanged(), force);
        }
    }

    /** Domain opt-out at inference (eval-mode, generate): which of a MoDE model's experts its gates route to. */
    public static final class ExpertChoice {
        @Option(
                names = "--keep",
                split = ",",
                description = "Domain opt-out: route only to these experts (and the backbone), e.g. --keep code.")
        List<String> keep;

        @Option(
                names = "--without",
                split = ",",
                description = "Domain opt-out: route to every expert except these, e.g. --without math.")
        List<String> without;

        /** Whether --keep or --without was given; refuses both at once. */
        boolean given() {
            if (keep != null && without != null)
                throw new IllegalArgumentException("--keep and --without both given; use one of them");
            return keep != null || without != null;
        }

        /** The experts the options leave of {@code m}'s; for use when {@link #given()}. */
        List<String> chosen(ModeModel m) {
            return keep != null ? keep.stream().filter(s -> !s.isBlank()).toList() : m.expertsWithout(without);
        }
    }

    /** A saved MoDE model: the backbone checkpoint and an expert file (eval-mode, export-hf). */
    public static final class Saved {
        @Option(names = "--checkpoint", required = true, description = "Backbone checkpoint directory or run folder.")
        public Path checkpoint;

        @Option(
                names = "--experts",
                required = true,
                description = "Expert file, a run folder holding one, or a domain name (RUNS/expert-NAME).")
        public String experts;

        @Option(
                names = "--runs",
                defaultValue = "runs",
                description = "Where bare expert names are looked up (default: ${DEFAULT-VALUE}).")
        public Path runs;

        @Option(names = "--routing", description = "Routing to run with (default: the one stored in the expert file).")
        public String routing;

        /** The expert file, read and validated. */
        public ExpertFile expertFile() throws IOException {
            return ExpertFile.read(ModeCliSupport.expertFile(experts, runs));
        }

        /** {@code --routing}, or the file's. */
        public Routing routing(ExpertFile f) {
            return routing == null ? f.config().routing() : Routing.parse(routing);
        }
    }
}
