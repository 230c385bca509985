package ai.mode.model.mode;

import ai.mode.model.data.DataLoader;
import ai.mode.model.data.EvalBatches;
import ai.mode.model.io.CheckpointFormatException;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.StoreLock;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.model.train.LoaderStream;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.ModelCheckpointing;
import ai.mode.model.train.RunFolder;
import ai.mode.model.train.RunSettings;
import ai.mode.model.train.SavedModels;
import ai.mode.model.train.TokenStream;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.LossStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * The pieces every MoDE-side training run shares (stage 1, stage 2, each baseline): the same trainer, data loader,
 * schedule and optimizer, metrics file and evaluation, so methods differ only in what trains. Static helpers: train one
 * run, evaluate per domain, count parameters.
 */
public final class ModeTraining {
    private ModeTraining() {}

    /**
     * Hyper-parameters shared by all methods.
     *
     * @param batch      sequences per step
     * @param seqLen     tokens per sequence
     * @param lr         peak learning rate (warm-up then cosine to lr/10)
     * @param warmupFrac fraction of a run's steps used for linear warm-up
     * @param valWindows validation windows per domain for the loss curves (0 = no validation)
     * @param valPoints  validations per run (besides the last step)
     * @param seed       data order and initialisation
     */
    public record Hyper(int batch, int seqLen, double lr, double warmupFrac, int valWindows, int valPoints, long seed) {
        public Hyper {
            if (batch < 1 || seqLen < 1) throw new IllegalArgumentException("--batch and --seq must be >= 1");
            if (!(lr > 0) || Double.isInfinite(lr))
                throw new IllegalArgumentException("--lr must be a positive number (got " + lr + ")");
            if (!(warmupFrac >= 0 && warmupFrac < 1))
                throw new IllegalArgumentException("warm-up fraction must be in [0, 1) (got " + warmupFrac + ")");
        }
    }

    /** What one training run did. */
    public record Run(
            String id,
            int steps,
            double seconds,
            double lastLoss,
            LossStats validation,
            double tokensPerSecond,
            Path metrics) {}

    /** An equal mix (rows dealt evenly) of the domains' train splits, as a resumable stream. */
    public static TokenStream mix(List<DomainTokens> domains, Hyper h, long seed) {
        List<DataLoader.Source> src = new ArrayList<>();
        for (DomainTokens d : domains) src.add(new DataLoader.Source(d.name(), d.requireTrain()));
        return new LoaderStream(new DataLoader(src, h.batch(), h.seqLen(), seed));
    }

    /** Validation windows: the first {@code perDomain} evenly spread windows of each domain's validation split. */
    public static List<int[]> validationWindows(List<DomainTokens> domains, Hyper h) {
        List<int[]> out = new ArrayList<>();
        if (h.valWindows() <= 0) return out;
        for (DomainTokens d : domains) {
            if (d.validation().length > h.seqLen())
                out.addAll(
                        LoaderStream.windows(new EvalBatches(d.validation(), h.batch(), h.seqLen(), h.valWindows())));
        }
        return out;
    }

    /**
     * Checkpoints of a stage run: {@code OUT/checkpoints/step-N/} with the trainable parameters, the optimizer
     * state, the data position and the run's settings ({@link ModelCheckpointing#trainableOnly}), so that
     * {@code --resume} continues the run bit for bit. {@link #NONE} trains without them (the experiment's runs).
     *
     * @param every        a checkpoint every this many steps (and at the end); 0 for none at all
     * @param keep         checkpoints kept (0 = all)
     * @param resume       continue the run in the folder from its latest checkpoint
     * @param allowChanged settings whose refused change the user accepts on resume ({@code --allow-changed})
     * @param force        start again in a folder where an earlier run left metrics but no checkpoint
     */
    public record Checkpoints(int every, int keep, boolean resume, Set<String> allowChanged, boolean force) {
        /** No checkpoints, no resume. */
        public static final Checkpoints NONE = new Checkpoints(0, 0, false, Set.of(), false);

        public Checkpoints {
            if (every < 0) throw new IllegalArgumentException("--checkpoint-every must be >= 1 (got " + every + ")");
            if (keep < 0) throw new IllegalArgumentException("--keep must be >= 0 (got " + keep + ")");
            allowChanged = Set.copyOf(allowChanged);
        }

        boolean on() {
            return every > 0;
        }
    }

    /**
     * Trains the model's trainable parameters for {@code steps} steps on the equal mix of {@code data} (seeded with
     * {@code dataSeed}); writes {@code dir/metrics.jsonl} (training loss per step, validation loss at a few points)
     * and, for a MoDE model, router statistics per domain of the batch rows at every step and their PNGs
     * ({@link RouterMonitor}). With checkpoints on, the run holds {@code dir/checkpoints}' {@link StoreLock}, refuses a
     * folder that holds another run unless resumed ({@link RunFolder}), and records and compares its settings on
     * resume: the shared ones of {@link #settings} and the caller's {@code model} settings (what trains, and over
     * what).
     */
    public static Run train(
            String id,
            CausalLm model,
            List<DomainTokens> data,
            long dataSeed,
            List<int[]> validation,
            int steps,
            Hyper h,
            Path dir,
            List<Trainer.Listener> listeners,
            Checkpoints checkpoints,
            RunSettings modelSettings) {
        try {
            Files.createDirectories(dir);
            Path metrics = dir.resolve("metrics.jsonl");
            if (!checkpoints.on())
                return train(
                        id, model, data, dataSeed, validation, steps, h, metrics, listeners, checkpoints, null, null);
            Path store = dir.resolve(SavedModels.CHECKPOINTS);
            try (StoreLock lock = StoreLock.acquire(store)) {
                ModelCheckpointing ck = ModelCheckpointing.trainableOnly(store, checkpoints.keep());
                RunFolder.requireNewOrResumed(dir, ck.store(), metrics, checkpoints.resume(), checkpoints.force());
                RunSettings settings = settings(data, steps, h).addAll(modelSettings);
                return train(
                        id, model, data, dataSeed, validation, steps, h, metrics, listeners, checkpoints, ck, settings);
            }
        } catch (CheckpointFormatException e) { // a damaged checkpoint on resume: its own one line names it
            throw new UncheckedIOException(e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "could not write the run " + id + " under " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * The settings every stage run records and compares on resume (docs/checkpoints.md): {@code --steps} (warned:
     * more steps continue training), {@code --batch}, {@code --seq} and the data (fixed), {@code --lr} and
     * {@code --warmup-frac} (refused unless allowed), {@code --val-windows} (warned).
     */
    static RunSettings settings(List<DomainTokens> data, int steps, Hyper h) {
        Map<String, int[]> sources = new LinkedHashMap<>();
        for (DomainTokens d : data) sources.put(d.name(), d.requireTrain());
        return new RunSettings()
                .add("--steps", steps, RunSettings.OnChange.WARN)
                .add("--batch", h.batch(), RunSettings.OnChange.FIXED)
                .add("--seq", h.seqLen(), RunSettings.OnChange.FIXED)
                .add("--lr", h.lr(), RunSettings.OnChange.REFUSE)
                .add("--warmup-frac", h.warmupFrac(), RunSettings.OnChange.REFUSE)
                .add("--val-windows", h.valWindows(), RunSettings.OnChange.WARN)
                .add("data", RunSettings.dataFingerprint(sources), RunSettings.OnChange.FIXED);
    }

    /**
     * The settings of a MoDE model a stage run trains (fixed: they define what trains): blocks, layers per expert,
     * expert and gate initialisation, routing, merge, gate input, and the backbone's identity (a checkpoint written
     * before merge and gate input were recorded is not checked for them).
     */
    public static RunSettings modeSettings(ModeModel m) {
        ModeConfig c = m.modeConfig();
        return new RunSettings()
                .add("--blocks", c.numBlocks(), RunSettings.OnChange.FIXED)
                .add("--expert-layers", c.layersPerExpert(), RunSettings.OnChange.FIXED)
                .add("--expert-init", c.expertInit().cliName(), RunSettings.OnChange.FIXED)
                .add("--gate-init", c.gateInitBackbone(), RunSettings.OnChange.FIXED)
                .add("--routing", c.routing(), RunSettings.OnChange.FIXED)
                .add("--merge", c.merge().cliName(), RunSettings.OnChange.FIXED)
                .add("--gate-input", c.gateInput().cliName(), RunSettings.OnChange.FIXED)
                .add("backbone", backboneSetting(m.fingerprint()), RunSettings.OnChange.FIXED);
    }

    /**
     * The expert files a composition starts from, as a setting value: per file its domains and the CRC32C of its
     * tensors' bits, so that a file rewritten since (another stage-1 run) is noticed.
     */
    public static String expertFilesSetting(List<ExpertFile> files) {
        List<String> parts = new ArrayList<>();
        for (ExpertFile f : files) {
            CRC32C crc = new CRC32C();
            for (NamedTensors.Entry e : f.tensors()) {
                crc.update(e.name().getBytes(StandardCharsets.UTF_8));
                ByteBuffer b = ByteBuffer.allocate(e.data().length * 4).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(e.data());
                crc.update(b);
            }
            parts.add(String.join("+", f.config().domains()) + " crc32c "
                    + HexFormat.of().toHexDigits((int) crc.getValue()));
        }
        return String.join(", ", parts);
    }

    /** The backbone's identity as a setting value: its config and weights hashes, shortened. */
    static String backboneSetting(BackboneFingerprint f) {
        return "config " + BackboneFingerprint.shortHash(f.configHash()) + ", weights "
                + BackboneFingerprint.shortHash(f.weightsHash());
    }

    /** Trains with the given checkpoints ({@code ck} and {@code settings} null for none). */
    private static Run train(
            String id,
            CausalLm model,
            List<DomainTokens> data,
            long dataSeed,
            List<int[]> validation,
            int steps,
            Hyper h,
            Path metrics,
            List<Trainer.Listener> listeners,
            Checkpoints checkpoints,
            ModelCheckpointing ck,
            RunSettings settings)
            throws IOException {
        int warm = (int) Math.round(steps * h.warmupFrac());
        int evalEvery = validation.isEmpty() || h.valPoints() <= 0 ? 0 : Math.max(1, steps / h.valPoints());
        Trainer.Options opt = new Trainer.Options(
                steps,
                h.batch(),
                h.seqLen(),
                1,
                new LrSchedule(h.lr(), warm, steps, 0.1),
                AdamW.Config.defaults(),
                evalEvery,
                checkpoints.every(),
                h.seed());
        try (MetricsLog log = new MetricsLog(metrics)) {
            List<Trainer.Listener> all = new ArrayList<>();
            all.add(log);
            if (model instanceof ModeModel m)
                all.add(new RouterMonitor(
                        m,
                        data.stream().map(DomainTokens::name).toList(),
                        m.modeConfig().domains(),
                        log));
            all.addAll(listeners);
            Trainer t = new Trainer(
                    model, mix(data, h, dataSeed), validation.isEmpty() ? null : () -> validation, opt, ck, all);
            if (ck != null) {
                t.settings(settings, checkpoints.allowChanged());
                if (checkpoints.resume()) t.resume();
            }
            int start = t.step();
            Trainer.Result r = t.run();
            return new Run(
                    id,
                    r.steps(),
                    r.seconds(),
                    r.lastLoss(),
                    r.lastValidation(),
                    r.tokensPerSecond(opt.tokensPerStep(), r.steps() - start),
                    metrics);
        }
    }

    /**
     * Evaluation of one model on each domain's test split.
     *
     * @param scores      loss and next-token accuracy per domain
     * @param gateWeights for MoDE models: mean gate weights [block][branch] per domain; empty otherwise
     * @param router      for MoDE models: router statistics per domain, one per block; empty otherwise
     */
    public record Evaluation(
            Map<String, LossStats> scores,
            Map<String, double[][]> gateWeights,
            Map<String, List<RouterStatistics.Summary>> router) {}

    /** Next-token loss/accuracy on up to {@code windows} windows of each domain's test split (and gate statistics for MoDE). */
    public static Evaluation evaluate(CausalLm model, List<DomainTokens> domains, int seqLen, int batch, int windows) {
        Map<String, LossStats> scores = new LinkedHashMap<>();
        Map<String, double[][]> gates = new LinkedHashMap<>();
        Map<String, List<RouterStatistics.Summary>> router = new LinkedHashMap<>();
        for (DomainTokens d : domains) {
            List<int[]> w = LoaderStream.windows(new EvalBatches(d.test(), batch, seqLen, windows));
            if (model instanceof ModeModel m) m.collectGateStatistics(true);
            scores.put(d.name(), Evaluator.evaluate(model, w, batch));
            if (model instanceof ModeModel m) {
                gates.put(d.name(), m.gateStatistics());
                router.put(d.name(), m.routerStatistics());
                m.collectGateStatistics(false);
            }
        }
        return new Evaluation(scores, gates, router);
    }

    /**
     * Next-token loss/accuracy on up to {@code windows} windows of each domain's validation split (domains without one
     * are left out): what hyper-parameters are chosen by, so that the test split is never looked at for choosing.
     */
    public static Map<String, LossStats> validationScores(
            CausalLm model, List<DomainTokens> domains, int seqLen, int batch, int windows) {
        Map<String, LossStats> scores = new LinkedHashMap<>();
        for (DomainTokens d : domains) {
            if (d.validation().length <= seqLen) continue;
            List<int[]> w = LoaderStream.windows(new EvalBatches(d.validation(), batch, seqLen, windows));
            scores.put(d.name(), Evaluator.evaluate(model, w, batch));
        }
        return scores;
    }

    /**
     * Domain opt-out: the evaluation of {@code model} with each of its experts removed in turn (gates renormalised
     * over the others, see {@link ModeModel#useExperts}), keyed by the removed expert; the model is left with every
     * expert. Empty for a model with one expert (removing it leaves no expert set).
     */
    public static Map<String, Evaluation> withoutEachExpert(
            ModeModel model, List<DomainTokens> domains, int seqLen, int batch, int windows) {
        Map<String, Evaluation> out = new LinkedHashMap<>();
        List<String> experts = model.modeConfig().domains();
        if (experts.size() < 2) return out;
        try {
            for (String removed : experts) {
                model.useExperts(model.expertsWithout(List.of(removed)));
                out.put(removed, evaluate(model, domains, seqLen, batch, windows));
            }
        } finally {
            model.useExperts(experts);
        }
        return out;
    }

    /**
     * @param total     every parameter of the model (shared ones once)
     * @param trainable parameters updated by the method
     * @param added     parameters not in the backbone
     */
    public record ParamCounts(long total, long trainable, long added) {}

    /** Counts {@code model}'s parameters; {@code backbone} are the base model's parameters (identity matters, not names). */
    public static ParamCounts count(CausalLm model, List<Parameter> backbone, long trainable) {
        Set<Parameter> base = Collections.newSetFromMap(new IdentityHashMap<>());
        base.addAll(backbone);
        long total = 0, added = 0;
        for (Parameter p : model.parameters()) {
            total += p.numel();
            if (!base.contains(p)) added += p.numel();
        }
        return new ParamCounts(total, trainable, added);
    }

    /** Elements of the currently trainable parameters (only the trained rows of a row-restricted one). */
    public static long trainableCount(CausalLm model) {
        long n = 0;
        for (Parameter p : model.trainableParameters())
            n += p.trained(p.value()).numel();
        return n;
    }
}
