package ai.mode.model.mode;

import ai.mode.model.data.EvalBatches;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.Evaluator;
import ai.mode.model.train.LoaderStream;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A MoDE router built without joint training (FlexOlmo's idea of routing by domain embeddings): every block's gate
 * comes from statistics of each domain's data alone, so a data owner can compute its expert's gate row without seeing
 * anyone else's data, and a composed model is usable with zero stage-2 steps.
 *
 * <p>The statistic is the <b>block input of the frozen backbone</b> (the hidden state before backbone layer
 * {@code i·L/B}, i.e. what block i reads when every earlier block routes to the backbone): per block and domain, the
 * mean {@code μ_j [D]} over the domain's tokens and the pooled within-domain variance {@code σ² = Σ_j Σ_t |h_t - μ_j|²
 * / (D · Σ_j n_j)}. The gate is the posterior of "which domain's distribution did this hidden state come from" under
 * isotropic Gaussians of that shared variance (linear discriminant analysis), sharpened or flattened by a temperature
 * τ, with a prior that gives the backbone β (the {@code --gate-init} weight) and the experts (1-β)/N each:
 *
 * <pre>
 * logit_j(x) = (μ_j·x - |μ_j|²/2) / (τ·σ²) + log π_j,   π_0 = β (backbone), π_j = (1-β)/N (experts)
 * </pre>
 *
 * Row 0, the backbone's, uses the mean of a general corpus (the backbone's own pretraining domain, {@code english}
 * for the demo's base model). Stored centred: the mean m̄ of the N+1 domain means is subtracted from every row (a
 * shift common to all logits, so the softmax is unchanged) to keep float32 logits small. As τ grows the gate tends to
 * the fresh gate (β on the backbone, the rest shared equally); τ = 1 is the Gaussian posterior itself.
 */
public final class DomainRouter {
    /** Defaults: the backbone's general corpus, τ, and the windows of each domain's train split read. */
    public static final String DEFAULT_BACKBONE_DOMAIN = "english";

    public static final double DEFAULT_TEMPERATURE = 1.0;
    public static final int DEFAULT_WINDOWS = 32;

    private DomainRouter() {}

    /**
     * What the router reads.
     *
     * @param backboneDomain the backbone's general corpus (its train split gives row 0)
     * @param experts        each expert's corpus, in expert order (their train splits)
     * @param seqLen         tokens per window
     * @param batch          windows per forward pass
     * @param windows        at most this many windows per domain, evenly spread over its train split
     * @param temperature    τ > 0
     */
    public record Settings(
            DomainTokens backboneDomain,
            List<DomainTokens> experts,
            int seqLen,
            int batch,
            int windows,
            double temperature) {
        public Settings {
            experts = List.copyOf(experts);
            if (!(temperature > 0) || Double.isInfinite(temperature))
                throw new IllegalArgumentException(
                        "router temperature must be a positive number (got " + temperature + ")");
            if (seqLen < 1 || batch < 1 || windows < 1)
                throw new IllegalArgumentException("router windows, --seq and --batch must be >= 1 (got " + windows
                        + ", " + seqLen + ", " + batch + ")");
        }
    }

    /**
     * One domain's backbone block inputs.
     *
     * @param sum        per block, Σ_t h_t [D] (float64)
     * @param sumSquares per block, Σ_t |h_t|²
     * @param tokens     tokens read
     */
    public record Moments(String domain, double[][] sum, double[] sumSquares, long tokens) {
        /** μ [D] of block {@code block}. */
        public double[] mean(int block) {
            double[] m = sum[block].clone();
            for (int c = 0; c < m.length; c++) m[c] /= tokens;
            return m;
        }

        /** Σ_t |h_t - μ|² at block {@code block}. */
        double deviation(int block) {
            double mm = 0;
            for (double s : sum[block]) mm += s * s;
            return Math.max(0, sumSquares[block] - mm / tokens);
        }
    }

    /** The gate tensors of every block ({@code mode.blocks.{i}.gate.*}, N+1 rows) for a model of B blocks. */
    public static NamedTensors build(LlamaModel backbone, int numBlocks, Settings s, double backbonePrior) {
        Moments bb = measure(backbone, numBlocks, s.backboneDomain(), s);
        List<Moments> experts = new ArrayList<>();
        for (DomainTokens d : s.experts()) experts.add(measure(backbone, numBlocks, d, s));
        return gates(bb, experts, s.temperature(), backbonePrior);
    }

    /** The backbone block inputs of up to {@code s.windows()} windows of {@code domain}'s train split. */
    public static Moments measure(LlamaModel backbone, int numBlocks, DomainTokens domain, Settings s) {
        int layers = backbone.config().numLayers(), d = backbone.config().hiddenSize(), t = s.seqLen();
        if (numBlocks < 1 || layers % numBlocks != 0)
            throw new IllegalArgumentException(
                    "number of blocks B=" + numBlocks + " must divide the backbone's " + layers + " layers");
        if (domain.train().length < t + 1)
            throw new IllegalArgumentException("the router has no data for domain '" + domain.name()
                    + "': its train split has " + domain.train().length + " tokens, fewer than one window of "
                    + (t + 1) + "; give that domain more text or use a smaller --seq");
        if (t > backbone.config().maxSeqLen())
            throw new IllegalArgumentException("--seq " + t + " exceeds the backbone's max_position_embeddings "
                    + backbone.config().maxSeqLen() + "; use a shorter --seq");
        int slice = layers / numBlocks;
        double[][] sum = new double[numBlocks][d];
        double[] squares = new double[numBlocks];
        long tokens = 0;
        Backend be = backbone.backend();
        List<int[]> windows = LoaderStream.windows(new EvalBatches(domain.train(), s.batch(), t, s.windows()));
        try {
            for (int start = 0; start < windows.size(); start += s.batch()) {
                int b = Math.min(s.batch(), windows.size() - start);
                int[] flat = new int[b * (t + 1)];
                for (int i = 0; i < b; i++) System.arraycopy(windows.get(start + i), 0, flat, i * (t + 1), t + 1);
                try (Tensor ids = be.fromHost(Evaluator.inputs(flat, b, t), b, t)) {
                    Tensor h = backbone.embedding().forward(ids); // [b, T, D]
                    for (int l = 0; l < layers; l++) {
                        if (l % slice == 0) accumulate(be.toHostFloats(h), d, sum[l / slice], squares, l / slice);
                        h = backbone.layers().get(l).forward(h);
                    }
                }
                tokens += (long) b * t;
            }
        } finally {
            backbone.releaseBuffers();
        }
        return new Moments(domain.name(), sum, squares, tokens);
    }

    private static void accumulate(float[] h, int d, double[] sum, double[] squares, int block) {
        for (int r = 0; r < h.length / d; r++) {
            for (int c = 0; c < d; c++) {
                double v = h[r * d + c];
                sum[c] += v;
                squares[block] += v * v;
            }
        }
    }

    /**
     * The gate tensors from measured moments (see the class comment): row 0 from {@code backboneDomain}, row j+1
     * from {@code experts.get(j)}.
     *
     * @param backbonePrior β in (0, 1): the backbone's prior weight
     */
    public static NamedTensors gates(
            Moments backboneDomain, List<Moments> experts, double temperature, double backbonePrior) {
        if (experts.isEmpty()) throw new IllegalArgumentException("the router needs at least one expert domain");
        if (!(backbonePrior > 0 && backbonePrior < 1))
            throw new IllegalArgumentException("backbone prior must be in (0, 1) (got " + backbonePrior + ")");
        List<Moments> all = new ArrayList<>(List.of(backboneDomain));
        all.addAll(experts);
        int blocks = backboneDomain.sum().length, d = backboneDomain.sum()[0].length, e = all.size();
        double[] logPrior = new double[e];
        logPrior[0] = Math.log(backbonePrior);
        for (int j = 1; j < e; j++) logPrior[j] = Math.log((1 - backbonePrior) / experts.size());
        NamedTensors out = new NamedTensors();
        for (int i = 0; i < blocks; i++) {
            double dev = 0;
            long n = 0;
            double[][] mu = new double[e][];
            double[] centre = new double[d];
            for (int j = 0; j < e; j++) {
                dev += all.get(j).deviation(i);
                n += all.get(j).tokens();
                mu[j] = all.get(j).mean(i);
                for (int c = 0; c < d; c++) centre[c] += mu[j][c] / e;
            }
            double variance = dev / ((double) d * n);
            if (!(variance > 0) || !Double.isFinite(variance))
                throw new IllegalArgumentException("block " + i + ": the domains' hidden states have variance "
                        + variance + ", so no router can be built from them; check the corpora are not empty or"
                        + " constant");
            double scale = 1 / (temperature * variance);
            float[] w = new float[e * d], b = new float[e];
            for (int j = 0; j < e; j++) {
                double bias = 0;
                for (int c = 0; c < d; c++) {
                    double diff = mu[j][c] - centre[c];
                    w[j * d + c] = (float) (diff * scale);
                    bias -= diff * (mu[j][c] + centre[c]);
                }
                b[j] = (float) (bias * scale / 2 + logPrior[j]);
            }
            out.put(TensorNames.gateWeight(i), new int[] {e, d}, w);
            out.put(TensorNames.gateBias(i), new int[] {e}, b);
        }
        return out;
    }
}
