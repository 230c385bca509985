package ai.mode.model.mode;

import ai.mode.model.data.DataLoader;
import ai.mode.model.data.EvalBatches;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.model.train.LoaderStream;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.MetricsLog;
import ai.mode.model.train.TokenStream;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.LossStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

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

    /** Router statistics lines per MoDE run (see {@link RouterProbe}), besides the last step's. */
    public static final int ROUTER_POINTS = 20;

    /**
     * The router probe windows of each domain: one batch of evenly spread windows of its validation split (none for
     * a domain whose split is shorter than a window).
     */
    public static Map<String, List<int[]>> probeWindows(List<DomainTokens> domains, Hyper h) {
        Map<String, List<int[]>> out = new LinkedHashMap<>();
        for (DomainTokens d : domains) {
            if (d.validation().length > h.seqLen())
                out.put(
                        d.name(),
                        LoaderStream.windows(new EvalBatches(d.validation(), h.batch(), h.seqLen(), h.batch())));
        }
        return out;
    }

    /**
     * Trains the model's trainable parameters for {@code steps} steps on {@code stream}; writes
     * {@code dir/metrics.jsonl} (training loss per step, validation loss at a few points) and, for a MoDE model with
     * probe windows, router statistics at {@link #ROUTER_POINTS} steps and their PNGs ({@link RouterProbe}).
     *
     * @param probe per domain, the windows the router statistics are measured on ({@link #probeWindows}); empty for
     *              none
     */
    public static Run train(
            String id,
            CausalLm model,
            TokenStream stream,
            List<int[]> validation,
            Map<String, List<int[]>> probe,
            int steps,
            Hyper h,
            Path dir,
            List<Trainer.Listener> listeners) {
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
                0,
                h.seed());
        try {
            Files.createDirectories(dir);
            Path metrics = dir.resolve("metrics.jsonl");
            try (MetricsLog log = new MetricsLog(metrics)) {
                List<Trainer.Listener> all = new ArrayList<>();
                all.add(log);
                if (model instanceof ModeModel m && !probe.isEmpty())
                    all.add(new RouterProbe(m, probe, h.batch(), Math.max(1, steps / ROUTER_POINTS), log));
                all.addAll(listeners);
                Trainer t = new Trainer(model, stream, validation.isEmpty() ? null : () -> validation, opt, null, all);
                Trainer.Result r = t.run();
                return new Run(
                        id,
                        r.steps(),
                        r.seconds(),
                        r.lastLoss(),
                        r.lastValidation(),
                        r.tokensPerSecond(opt.tokensPerStep(), r.steps()),
                        metrics);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "could not write the metrics of run " + id + " under " + dir + ": " + e.getMessage(), e);
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

    /** Elements of the currently trainable parameters. */
    public static long trainableCount(CausalLm model) {
        long n = 0;
        for (Parameter p : model.trainableParameters()) n += p.numel();
        return n;
    }
}
