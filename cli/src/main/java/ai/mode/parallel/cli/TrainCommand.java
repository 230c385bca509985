// `mode train --devices cuda:0-7 --placement mpmd`: MoDE training (new experts for the given domains plus the
// gates, over a frozen backbone) on several devices, in one process or several (torchrun variables). The leader
// (world rank 0) writes the metrics, the expert file and the placement, and reports test scores.
package ai.mode.parallel.cli;

import ai.mode.cli.ModeCliOptions;
import ai.mode.model.LlamaConfig;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.io.StoreLock;
import ai.mode.model.mode.DomainTokens;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.RouterMonitor;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MemoryEstimate;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.RunFolder;
import ai.mode.model.train.SavedModels;
import ai.mode.model.train.Trainer;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.sched.ModelSnapshot;
import ai.mode.parallel.sched.ParallelLaunch;
import ai.mode.parallel.sched.ParallelModeModel;
import ai.mode.parallel.sched.ParallelTrainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "train",
        mixinStandardHelpOptions = true,
        description = {
            "Train a MoDE model (one new expert per --domains entry, and the gates, over a frozen backbone) on several devices.",
            "Placements: single, data (every device holds everything and a share of the batch), mpmd (backbone on one group,",
            "experts spread over the others, each group data parallel), or a custom spec such as 'cuda:0-3=backbone;cuda:4-7=experts'.",
            "Several processes (nodes): set MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (and LOCAL_RANK) as torchrun does;",
            "and one job secret for all: export MODE_JOB_SECRET=$(openssl rand -hex 32) (or MODE_JOB_SECRET_FILE, chmod 600);",
            "each process passes its own --devices; world ranks then number the devices of all processes in RANK order.",
            "Writes OUT/metrics.jsonl (with router statistics at every step, drawn as OUT/router-*.png),",
            "OUT/experts.safetensors and OUT/placement.txt (on RANK 0)."
        })
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "Backbone: checkpoint directory or run folder.")
    Path checkpoint;

    @Option(
            names = "--domains",
            required = true,
            split = ",",
            description = "Training corpora, one new expert each (e.g. code,math); the batches mix them equally.")
    List<String> domains;

    @Option(names = "--out", description = "Output folder (default: runs/train-DOMAINS).")
    Path out;

    @Option(
            names = "--force",
            description = "Write into an output folder another command wrote (never over this command's inputs).")
    boolean force;

    @Option(names = "--steps", defaultValue = "50", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--devices",
            defaultValue = "cpu:0",
            description = "This process's devices: cpu:0-3, emu:0-1, cuda:0-7 (default: ${DEFAULT-VALUE}).")
    String devices;

    @Option(
            names = "--placement",
            defaultValue = "auto",
            description =
                    "single, data, mpmd, a custom spec, or auto (single on one device, else data) (default: ${DEFAULT-VALUE}).")
    String placement;

    @Option(
            names = "--groups",
            defaultValue = "2",
            description = "mpmd: device groups, the backbone's and N-1 for the experts (default: ${DEFAULT-VALUE}).")
    int groups;

    @Option(
            names = "--backbone-devices",
            defaultValue = "0",
            description = "mpmd: devices of the backbone group (0 = half; default: ${DEFAULT-VALUE}).")
    int backboneDevices;

    @Option(
            names = "--comm",
            defaultValue = "auto",
            description =
                    "auto (NCCL on cuda devices when available, else hub), hub or nccl (default: ${DEFAULT-VALUE}).")
    String comm;

    @Option(
            names = "--comm-timeout",
            defaultValue = "300",
            description =
                    "Seconds any rank waits for a peer before the run fails naming it (default: ${DEFAULT-VALUE}).")
    double commTimeout;

    @Option(
            names = "--rendezvous-timeout",
            defaultValue = "300",
            description = "Seconds to wait for every process to join (default: ${DEFAULT-VALUE}).")
    double rendezvousTimeout;

    @Option(
            names = "--threads",
            defaultValue = "0",
            description = "Threads per cpu device (0 = the cores split over them; default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(
            names = "--seed",
            defaultValue = "1234",
            description = "Seed of expert initialisation and data order (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--eval", split = ",", description = "Domains scored at the end (default: the training domains).")
    List<String> eval;

    @Option(
            names = {"-q", "--quiet"},
            description = "No progress lines.")
    boolean quiet;

    @Mixin
    ModeCliOptions.Arch arch;

    @Mixin
    ModeCliOptions.Run run;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1 (got " + steps + ")");
        if (commTimeout <= 0 || rendezvousTimeout <= 0)
            throw new IllegalArgumentException("timeouts must be > 0 seconds");
        Optional<LaunchEnv> env = LaunchEnv.from(System.getenv());
        Path dir = out != null
                ? out
                : Path.of("runs", "train-" + String.join("-", domains).replaceAll("[^A-Za-z0-9_.+-]", "_"));
        Checkpoint c = SavedModels.resolve(checkpoint);
        boolean writer = env.isEmpty() || env.get().rank() == 0; // rank 0 writes the outputs
        if (writer) {
            List<Path> inputs = new ArrayList<>(List.of(c.dir()));
            for (String d : domains) if (Files.exists(Path.of(d))) inputs.add(Path.of(d));
            OutputGuard.folder(dir, "train", force, inputs);
        }
        // one writer per run folder, as for pretrain: rank 0 holds the lock until its outputs are written
        try (StoreLock lock = writer ? StoreLock.acquire(dir, "run folder") : null) {
            return train(c, env, dir, writer);
        }
    }

    private int train(Checkpoint c, Optional<LaunchEnv> env, Path dir, boolean writer) throws Exception {
        if (writer) RunFolder.requireNoMetrics(dir, dir.resolve("metrics.jsonl"), force);
        Path tokFile = c.dir().resolve(Checkpoint.TOKENIZER);
        if (!Files.isRegularFile(tokFile))
            throw new IllegalArgumentException(
                    "checkpoint " + c.dir() + " has no tokenizer.json; MoDE training needs the backbone's tokenizer");
        BpeTokenizer tok = BpeTokenizer.load(tokFile);
        List<DomainTokens> data = new ArrayList<>();
        for (String d : domains) data.add(DomainTokens.load(d, tok));
        ModeTraining.Hyper h = run.hyper(seed);
        ModeConfig mc = arch.config(
                domains.stream().map(d -> Path.of(d).getFileName().toString()).toList(), c.config());
        String spec = placement.equals("auto")
                ? (DeviceSpec.parse(devices).size() == 1 && env.isEmpty() ? "single" : "data")
                : placement;
        ParallelLaunch.Options lo = new ParallelLaunch.Options(
                DeviceSpec.parse(devices),
                spec,
                groups,
                backboneDevices,
                ParallelLaunch.Comm.parse(comm),
                threads,
                Duration.ofMillis((long) (commTimeout * 1000)),
                Duration.ofMillis((long) (rendezvousTimeout * 1000)));
        PrintStream o = System.out;
        // the same floor as pretrain's, before anything is allocated: this process holds the backbone, the experts,
        // their gradients and moments, and the activations of its batch
        LlamaConfig bc = c.config();
        long added = mc.addedParameterCount(bc);
        MemoryEstimate.training(
                        bc,
                        bc.numLayers() + (double) mc.numBlocks() * mc.numExperts() * mc.layersPerExpert(),
                        bc.parameterCount() + added,
                        added,
                        h.batch(),
                        h.seqLen())
                .require("MoDE training");
        try (Backend host = Backends.create("cpu", threads);
                LlamaModel base = SavedModels.load(host, c);
                ModeModel m = ModeModel.create(base, mc, seed)) {
            if (h.seqLen() > base.config().maxSeqLen())
                throw new IllegalArgumentException(
                        "--seq " + h.seqLen() + " exceeds the model's max_position_embeddings "
                                + base.config().maxSeqLen());
            m.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(m);
            try (ParallelLaunch launch = ParallelLaunch.start(lo, env, mc.numBlocks(), mc.numExperts());
                    ParallelModeModel pm = launch.model(snap, AdamW.Config.defaults())) {
                boolean leader = launch.leader();
                if (leader) {
                    o.printf(
                            Locale.ROOT,
                            "MoDE training of %s over %s: %d steps of %d x %d tokens on %d device(s), communicator %s%n",
                            String.join(",", domains),
                            c.dir(),
                            steps,
                            h.batch(),
                            h.seqLen(),
                            launch.placement().worldSize(),
                            launch.communicator());
                    o.print(launch.placement().describe());
                }
                int warm = (int) Math.round(steps * h.warmupFrac());
                List<int[]> val = ModeTraining.validationWindows(data, h);
                int evalEvery = val.isEmpty() || h.valPoints() <= 0 ? 0 : Math.max(1, steps / h.valPoints());
                Trainer.Options opt = new Trainer.Options(
                        steps,
                        h.batch(),
                        h.seqLen(),
                        1,
                        new LrSchedule(h.lr(), warm, steps, 0.1),
                        AdamW.Config.defaults(),
                        evalEvery,
                        0,
                        seed);
                List<Trainer.Listener> listeners = new ArrayList<>();
                MetricsLog log = leader ? new MetricsLog(dir.resolve("metrics.jsonl")) : null;
                if (log != null) listeners.add(log);
                // every process takes part in the router statistics' collective; the leader writes them
                listeners.add(new RouterMonitor(
                        pm, data.stream().map(DomainTokens::name).toList(), mc.domains(), log));
                if (leader && !quiet) listeners.add(progress(System.err, steps));
                Trainer.Result r;
                try {
                    r = new ParallelTrainer(
                                    pm,
                                    ModeTraining.mix(data, h, seed),
                                    val.isEmpty() ? null : () -> val,
                                    opt,
                                    listeners)
                            .run();
                } finally {
                    if (log != null) log.close();
                }
                NamedTensors values = pm.gather(false);
                if (leader) {
                    for (Parameter p : m.addedParameters()) host.copyFromHost(values.data(p.name()), p.value());
                    Files.createDirectories(dir);
                    Path file = dir.resolve(ExpertFile.FILE_NAME);
                    ExpertFile.write(file, m);
                    Files.writeString(
                            dir.resolve("placement.txt"),
                            "devices: " + launch.placement().worldSize() + ", communicator " + launch.communicator()
                                    + "\n" + launch.placement().describe());
                    o.printf(
                            Locale.ROOT,
                            "trained %d steps in %.1f s (%.0f tokens/s); last loss %.4f%s%n",
                            r.steps(),
                            r.seconds(),
                            r.tokensPerSecond(opt.tokensPerStep(), r.steps()),
                            r.lastLoss(),
                            r.lastValidation() == null
                                    ? ""
                                    : String.format(
                                            Locale.ROOT,
                                            ", validation loss %.4f",
                                            r.lastValidation().meanLoss()));
                    if (run.evalWindows > 0) {
                        List<DomainTokens> ev = new ArrayList<>();
                        for (String d : eval == null || eval.isEmpty() ? domains : eval) {
                            int known = domains.indexOf(d);
                            ev.add(known >= 0 ? data.get(known) : DomainTokens.load(d, tok));
                        }
                        ModeTraining.Evaluation e =
                                ModeTraining.evaluate(m, ev, h.seqLen(), h.batch(), run.evalWindows);
                        for (Map.Entry<String, LossStats> s : e.scores().entrySet()) {
                            o.printf(
                                    Locale.ROOT,
                                    "test %-20s loss %.4f  accuracy %.2f%%%n",
                                    s.getKey(),
                                    s.getValue().meanLoss(),
                                    100 * s.getValue().accuracy());
                        }
                    }
                    o.println("expert file: " + file);
                }
            }
        }
        return 0;
    }

    /** A line every tenth of the run (and the last step). */
    private static Trainer.Listener progress(PrintStream err, int steps) {
        int every = Math.max(1, steps / 10);
        return new Trainer.Listener() {
            @Override
            public void onStep(Trainer.StepMetrics m) {
                if (m.step() % every == 0 || m.step() == steps) {
                    err.printf(
                            Locale.ROOT,
                            "step %d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f tokens/s%n",
                            m.step(),
                            steps,
                            m.loss(),
                            m.lr(),
                            m.gradNorm(),
                            m.tokensPerSecond());
                }
            }

            @Override
            public void onValidation(int step, LossStats s) {
                err.printf(Locale.ROOT, "step %d  validation loss %.4f%n", step, s.meanLoss());
            }
        };
    }
}
