package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.AtomicFiles;
import ai.mode.model.mode.ExpertStack;
import ai.mode.model.mode.ModeBlock;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.RouterMonitor;
import ai.mode.model.mode.Routing;
import ai.mode.model.mode.StackedLayerWeights;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.ParameterSelection;
import ai.mode.model.train.RandomWindowStream;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * MoDE benchmarks: one MoDE block forward + backward, the experts of a block run as one batched stack versus one stack
 * per expert (the claim that batching the experts' same-shape GEMMs pays), and training tokens/s of a MoDE model
 * (experts and gates trained, backbone frozen) with our trainer. A MoDE model over a random backbone, and timed passes
 * over one of its blocks.
 */
public final class ModeBench implements AutoCloseable {
    private final Backend be;
    private final LlamaConfig cfg;
    private final LlamaModel backbone;
    private final ModeModel model;
    private final int experts;
    private final int layersPerExpert;
    private final BufferPool pool;
    private final List<ExpertStack> stacks = new ArrayList<>();
    private final List<Tensor> owned = new ArrayList<>();

    /**
     * @param experts         N
     * @param layersPerExpert k
     * @param blocks          B (must divide the backbone's layers)
     * @param routing         dense or top-k
     */
    public ModeBench(
            Backend be, LlamaConfig cfg, int experts, int layersPerExpert, int blocks, Routing routing, long seed) {
        this.be = be;
        this.cfg = cfg;
        this.experts = experts;
        this.layersPerExpert = layersPerExpert;
        List<String> domains =
                IntStream.range(0, experts).mapToObj(i -> "d" + i).toList();
        ModeConfig mc =
                ModeConfig.residualRandom(blocks, layersPerExpert, domains).withRouting(routing);
        this.backbone = LlamaModel.create(be, cfg).initialize(seed);
        this.model = ModeModel.create(backbone, mc, seed);
        ParameterSelection.prefixes("mode.").apply(model.parameters());
        this.pool = new BufferPool(be);
    }

    public ModeModel model() {
        return model;
    }

    /** {@code N experts x k layers}. */
    public String describe() {
        return experts + " experts x " + layersPerExpert + " layers";
    }

    private Tensor random(Random r, int... shape) {
        float[] x = new float[Math.toIntExact(ai.mode.runtime.Shapes.numel(shape))];
        for (int i = 0; i < x.length; i++) x[i] = (r.nextFloat() * 2 - 1) * 0.5f;
        return be.fromHost(x, shape);
    }

    /** Forward + backward of block 0 on x [batch, seq, D] (inputs live until {@link #close()}). */
    public Runnable blockStep(int batch, int seq) {
        ModeBlock block = model.modeBlocks().getFirst();
        Random r = new Random(1);
        Tensor x = own(random(r, batch, seq, cfg.hiddenSize())), dy = own(random(r, batch, seq, cfg.hiddenSize()));
        return () -> {
            block.forward(x);
            block.backward(dy);
            be.synchronize();
        };
    }

    /**
     * The experts of block 0, forward + backward with input gradients: as one batched stack
     * ({@code batched} true) or as one stack per expert with the input gradients summed.
     */
    public Runnable expertsStep(int batch, int seq, boolean batched) {
        List<StackedLayerWeights> depths = model.modeBlocks().getFirst().expertWeights();
        int m = batch * seq, d = cfg.hiddenSize();
        Random r = new Random(2);
        Tensor x = own(random(r, batch, seq, d)),
                dy = own(random(r, experts, m, d)),
                dxSum = own(be.zeros(batch, seq, d));
        if (batched) {
            ExpertStack stack = stack(depths);
            return () -> {
                stack.forward(x);
                stack.backward(dy, true);
                be.synchronize();
            };
        }
        List<ExpertStack> singles = new ArrayList<>();
        for (int j = 0; j < experts; j++) {
            int e = j;
            singles.add(stack(depths.stream().map(w -> w.range(e, 1)).toList()));
        }
        Tensor dy2 = be.view(dy, experts * m, d);
        return () -> {
            for (int j = 0; j < experts; j++) {
                ExpertStack s = singles.get(j);
                s.forward(x);
                Tensor dx = s.backward(be.view(be.slice(dy2, j * m, m), 1, m, d), true);
                if (j == 0) be.copy(dx, dxSum);
                else be.add(dxSum, dx, dxSum);
            }
            be.synchronize();
        };
    }

    private ExpertStack stack(List<StackedLayerWeights> depths) {
        ExpertStack s = new ExpertStack(be, cfg, depths, pool);
        stacks.add(s);
        return s;
    }

    private Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    /**
     * Training steps of the MoDE model (experts + gates trainable, backbone frozen) with our trainer, writing
     * {@code metrics.jsonl} with router statistics at every step as a training run does ({@link RouterMonitor}), into
     * a temporary folder deleted afterwards.
     */
    public TrainBench.Result train(int batch, int seq, int warmup, int measured, long seed) {
        int[] corpus = new int[Math.max(1 << 16, 4 * batch * (seq + 1))];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < corpus.length; i++) corpus[i] = rng.nextInt(cfg.vocabSize());
        Trainer.Options opts = new Trainer.Options(
                warmup + measured, batch, seq, 1, LrSchedule.constant(3e-4), AdamW.Config.defaults(), 0, 0, seed);
        List<Trainer.StepMetrics> steps = new ArrayList<>();
        Path dir = null;
        try {
            dir = Files.createTempDirectory("mode-bench-train");
            try (MetricsLog log = new MetricsLog(dir.resolve("metrics.jsonl"))) {
                Trainer trainer = new Trainer(
                        model,
                        new RandomWindowStream(corpus, seed),
                        null,
                        opts,
                        null,
                        List.of(
                                log,
                                new RouterMonitor(
                                        model, List.of(), model.modeConfig().domains(), log),
                                new Trainer.Listener() {
                                    @Override
                                    public void onStep(Trainer.StepMetrics s) {
                                        steps.add(s);
                                    }
                                }));
                trainer.run();
                trainer.optimizer().close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("MoDE training benchmark: " + e.getMessage(), e);
        } finally {
            if (dir != null) deleteTree(dir);
        }
        return TrainBench.Result.of(steps, warmup, opts.tokensPerStep());
    }

    private static void deleteTree(Path dir) {
        try {
            AtomicFiles.deleteRecursively(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("could not delete " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The quick suite's MoDE rows. */
    public static List<BenchReport.Row> rows(
            Backend be,
            LlamaConfig cfg,
            int batch,
            int seq,
            Measure.Budget budget,
            int warmupSteps,
            int measuredSteps) {
        List<BenchReport.Row> rows = new ArrayList<>();
        int blocks = cfg.numLayers() % 2 == 0 ? 2 : 1;
        long tokens = (long) batch * seq;
        String shape = batch + "x" + seq;
        try (ModeBench dense = new ModeBench(be, cfg, 4, 2, blocks, Routing.DENSE, 42)) {
            Measure.Timing t = Measure.time(dense.blockStep(batch, seq), budget);
            rows.add(BenchReport.Row.of(
                    "mode",
                    "block fwd+bwd, dense (" + dense.describe() + ")",
                    shape,
                    t.median(),
                    tokens / t.median(),
                    "tokens/s",
                    Double.NaN));
            Measure.Timing[] bo = {
                Measure.time(dense.expertsStep(batch, seq, true), budget),
                Measure.time(dense.expertsStep(batch, seq, false), budget)
            };
            rows.add(BenchReport.Row.of(
                            "mode",
                            "experts fwd+bwd batched (" + dense.describe() + ")",
                            shape,
                            bo[0].median(),
                            tokens / bo[0].median(),
                            "tokens/s",
                            Double.NaN)
                    .withPeer("experts one by one", tokens / bo[1].median()));
        }
        try (ModeBench top1 = new ModeBench(be, cfg, 4, 2, blocks, new Routing(Routing.Level.TOKEN, 1), 42)) {
            TrainBench.Result r = top1.train(batch, seq, warmupSteps, measuredSteps, 42);
            rows.add(BenchReport.Row.of(
                            "mode",
                            "MoDE training, top-1 (" + top1.describe() + ", " + blocks + " blocks)",
                            shape,
                            r.medianSeconds(),
                            r.tokensPerSecond(),
                            "tokens/s",
                            Double.NaN)
                    .withNote(String.format(
                            Locale.ROOT,
                            "experts + gates trained, backbone frozen; loss %.3f -> %.3f",
                            r.firstLoss(),
                            r.lastLoss())));
        }
        return rows;
    }

    @Override
    public void close() {
        for (ExpertStack s : stacks) s.releaseBuffers();
        pool.release();
        for (Tensor t : owned) t.close();
        model.close();
        backbone.close();
    }
}
