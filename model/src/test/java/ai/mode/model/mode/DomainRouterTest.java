// The router built from each domain's data alone (DomainRouter): its gates are the float64 Gaussian posterior of the
// domain means computed here independently, they route each domain's tokens mostly to its own expert with zero
// training, a large temperature gives back the fresh gate, and a domain without data is a one-line error.
package ai.mode.model.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class DomainRouterTest {
    private static final LlamaConfig CFG = ModeTestSupport.TINY;
    private static final int SEQ = 8, BATCH = 4, WINDOWS = 16;
    private static Backend be;

    // two expert domains on disjoint halves of the vocabulary, and a general one over all of it
    private static final DomainTokens LOW = domain("low", 0, 6, 1),
            HIGH = domain("high", 7, 13, 2),
            GENERAL = domain("general", 0, 13, 3);

    /** Splits of 600 / 200 / 200 tokens drawn uniformly from [lo, hi). */
    private static DomainTokens domain(String name, int lo, int hi, long seed) {
        Random r = new Random(seed);
        int[][] splits = new int[3][];
        for (int s = 0; s < 3; s++) {
            splits[s] = new int[s == 0 ? 600 : 200];
            for (int i = 0; i < splits[s].length; i++) splits[s][i] = lo + r.nextInt(hi - lo);
        }
        return new DomainTokens(name, splits[0], splits[1], splits[2]);
    }

    @BeforeAll
    static void open() {
        be = Backends.create("cpu", 2);
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static DomainRouter.Settings settings(double temperature) {
        return new DomainRouter.Settings(GENERAL, List.of(LOW, HIGH), SEQ, BATCH, WINDOWS, temperature);
    }

    /** The tokens the router reads: the first T of each of its windows of {@code d}'s train split. */
    private static int[] routerTokens(DomainTokens d) {
        long available = (d.train().length - 1L) / SEQ;
        int n = (int) Math.min(available, WINDOWS);
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long start = (available == n ? i : (long) ((double) i * available / n)) * SEQ;
            for (int t = 0; t < SEQ; t++) out.add(d.train()[(int) start + t]);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The backbone's block inputs of {@code tokens} (consecutive windows of T): block 0's is the token's embedding
     * row, read from the table; block 1's is the output of backbone layers 0 and 1 (L = 4, B = 2).
     */
    private static double[][] hidden(LlamaModel base, int[] tokens, int block) {
        int d = CFG.hiddenSize(), b = tokens.length / SEQ;
        float[] h;
        if (block == 0) {
            float[] table = be.toHostFloats(base.embedding().table().value());
            h = new float[tokens.length * d];
            for (int i = 0; i < tokens.length; i++) System.arraycopy(table, tokens[i] * d, h, i * d, d);
        } else {
            try (Tensor ids = be.fromHost(tokens, b, SEQ)) {
                Tensor x = base.embedding().forward(ids);
                for (int l = 0; l < 2; l++) x = base.layers().get(l).forward(x);
                h = be.toHostFloats(x);
            }
            base.releaseBuffers();
        }
        double[][] out = new double[tokens.length][d];
        for (int i = 0; i < tokens.length; i++) for (int c = 0; c < d; c++) out[i][c] = h[i * d + c];
        return out;
    }

    /** The inputs (first T tokens) of the consecutive test windows of {@code d}, as evaluation reads them. */
    private static int[] testInputs(DomainTokens d) {
        int windows = (d.test().length - 1) / SEQ;
        int[] inputs = new int[windows * SEQ];
        for (int i = 0; i < windows; i++) System.arraycopy(d.test(), i * SEQ, inputs, i * SEQ, SEQ);
        return inputs;
    }

    private static double[] mean(double[][] h) {
        double[] m = new double[h[0].length];
        for (double[] row : h) for (int c = 0; c < m.length; c++) m[c] += row[c] / h.length;
        return m;
    }

    /**
     * The float64 reference of one block, from the domains' hidden states: the Gaussian posterior over (general,
     * low, high) with the pooled variance, temperature 1 and prior 0.9 on the backbone, in the plain uncentred form.
     */
    private static final class Reference {
        final double[][] mu = new double[3][];
        final double variance;

        Reference(LlamaModel base, int block) {
            List<DomainTokens> all = List.of(GENERAL, LOW, HIGH);
            double dev = 0;
            long n = 0;
            for (int j = 0; j < 3; j++) {
                double[][] h = hidden(base, routerTokens(all.get(j)), block);
                mu[j] = mean(h);
                for (double[] row : h)
                    for (int c = 0; c < row.length; c++) dev += (row[c] - mu[j][c]) * (row[c] - mu[j][c]);
                n += h.length;
            }
            variance = dev / (n * CFG.hiddenSize());
        }

        double[] posterior(double[] x) {
            double[] prior = {0.9, 0.05, 0.05}, p = new double[3];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < 3; j++) {
                double dot = 0, norm = 0;
                for (int c = 0; c < x.length; c++) {
                    dot += mu[j][c] * x[c];
                    norm += mu[j][c] * mu[j][c];
                }
                p[j] = (dot - norm / 2) / variance + Math.log(prior[j]);
                max = Math.max(max, p[j]);
            }
            double z = 0;
            for (int j = 0; j < 3; j++) z += Math.exp(p[j] - max);
            for (int j = 0; j < 3; j++) p[j] = Math.exp(p[j] - max) / z;
            return p;
        }
    }

    private static double[] softmax(float[] w, float[] b, double[] x) {
        int d = x.length, e = b.length;
        double[] p = new double[e];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < e; j++) {
            p[j] = b[j];
            for (int c = 0; c < d; c++) p[j] += w[j * d + c] * x[c];
            max = Math.max(max, p[j]);
        }
        double z = 0;
        for (int j = 0; j < e; j++) z += Math.exp(p[j] - max);
        for (int j = 0; j < e; j++) p[j] = Math.exp(p[j] - max) / z;
        return p;
    }

    @Test
    void everyBlockGateIsTheFloat64GaussianPosteriorOfTheDomainMeans() {
        try (LlamaModel base = ModeTestSupport.backbone(be, 4)) {
            NamedTensors gates = DomainRouter.build(base, 2, settings(1.0), 0.9);
            for (int block = 0; block < 2; block++) {
                Reference ref = new Reference(base, block);
                float[] w = gates.data(TensorNames.gateWeight(block)), b = gates.data(TensorNames.gateBias(block));
                for (DomainTokens d : List.of(LOW, HIGH)) {
                    for (double[] x : hidden(base, testInputs(d), block)) {
                        double[] want = ref.posterior(x), got = softmax(w, b, x);
                        for (int j = 0; j < 3; j++)
                            assertEquals(want[j], got[j], 1e-5, "block " + block + " " + Arrays.toString(x));
                    }
                }
            }
        }
    }

    /**
     * A backbone whose layers change the residual stream gently (matrices of std 0.05), so that, as in a trained
     * model, a token's hidden state still says which part of the vocabulary it came from two layers up; with the
     * std 0.3 of {@link ModeTestSupport#backbone} the two domains' block-1 states are nearly indistinguishable and
     * no router could separate them.
     */
    private static LlamaModel gentleBackbone() {
        LlamaModel m = LlamaModel.create(be, CFG);
        Random rnd = new Random(4);
        for (Parameter p : m.parameters())
            ModeTestSupport.randomize(be, p, rnd, p.name().contains("embed") ? 0.3 : 0.05);
        return m;
    }

    /**
     * A composed model whose experts copy the backbone slice (k = L/B, copy init), so every branch computes the
     * backbone's slice and every block reads the backbone's hidden state, as the router assumes: with zero
     * training, its mean gate weights on each domain are the reference posterior's, and the reference (hence the
     * gate) gives each domain's own expert most of the experts' weight.
     */
    @Test
    void theComposedModelRoutesEachDomainMostlyToItsOwnExpertWithoutTraining() {
        ModeConfig cfg = new ModeConfig(2, 2, List.of("low", "high"), ModeConfig.ExpertInit.COPY, 0.9, Routing.DENSE);
        try (LlamaModel base = gentleBackbone();
                ModeModel m = ModeModel.create(base, cfg, 5)) {
            NamedTensors gates = DomainRouter.build(base, 2, settings(1.0), 0.9);
            m.loadGates(gates, "router");
            ModeTraining.Evaluation e = ModeTraining.evaluate(m, List.of(LOW, HIGH), SEQ, BATCH, 100);
            for (int block = 0; block < 2; block++) {
                Reference ref = new Reference(base, block);
                for (int own = 0; own < 2; own++) {
                    DomainTokens d = own == 0 ? LOW : HIGH;
                    double[][] xs = hidden(base, testInputs(d), block);
                    double[] want = new double[3];
                    double ownShare = 0;
                    for (double[] x : xs) {
                        double[] p = ref.posterior(x);
                        for (int j = 0; j < 3; j++) want[j] += p[j] / xs.length;
                        ownShare += p[1 + own] / (p[1] + p[2]) / xs.length;
                    }
                    double[] got = e.gateWeights().get(d.name())[block];
                    for (int j = 0; j < 3; j++)
                        assertEquals(want[j], got[j], 1e-5, d.name() + " block " + block + " branch " + j);
                    assertTrue(
                            ownShare > 0.5,
                            d.name() + " block " + block + ": own expert's share of the expert weight " + ownShare);
                    assertTrue(got[1 + own] > got[2 - own], d.name() + " block " + block + Arrays.toString(got));
                }
            }
        }
    }

    @Test
    void aLargeTemperatureGivesTheFreshGate() {
        try (LlamaModel base = ModeTestSupport.backbone(be, 4)) {
            NamedTensors gates = DomainRouter.build(base, 2, settings(1e9), 0.9);
            for (double[] x : hidden(base, testInputs(LOW), 1)) {
                double[] p = softmax(gates.data(TensorNames.gateWeight(1)), gates.data(TensorNames.gateBias(1)), x);
                assertEquals(0.9, p[0], 1e-4);
                assertEquals(0.05, p[1], 1e-4);
            }
        }
    }

    @Test
    void aDomainWithoutDataIsAOneLineError() {
        DomainTokens empty = new DomainTokens("empty", new int[3], new int[0], new int[0]);
        try (LlamaModel base = ModeTestSupport.backbone(be, 4)) {
            String msg = assertThrows(
                            IllegalArgumentException.class,
                            () -> DomainRouter.build(
                                    base,
                                    2,
                                    new DomainRouter.Settings(GENERAL, List.of(LOW, empty), SEQ, BATCH, WINDOWS, 1.0),
                                    0.9))
                    .getMessage();
            assertEquals(
                    "the router has no data for domain 'empty': its train split has 3 tokens, fewer than one window"
                            + " of 9; give that domain more text or use a smaller --seq",
                    msg);
            assertThrows(
                    IllegalArgumentException.class,
                    () -> new DomainRouter.Settings(GENERAL, List.of(LOW), SEQ, BATCH, WINDOWS, Double.NaN));
        }
    }
}
