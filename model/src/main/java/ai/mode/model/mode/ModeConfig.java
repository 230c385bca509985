package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The shape and the open choices of a MoDE model (docs/design.md): blocks, experts, expert and gate initialisation,
 * routing. Validated against the backbone with one-line errors naming the fix. A MoDE model over a frozen Llama
 * backbone of L layers.
 *
 * @param numBlocks        B: the backbone is cut into B contiguous slices of L/B layers (B must divide L)
 * @param layersPerExpert  k: decoder layers per expert per block (same width and layer type as the backbone); the
 *                         default is the slice depth L/B for copied experts, 1 for random ones
 *                         ({@link #defaultLayersPerExpert})
 * @param domains          one name per expert, in expert order (N = domains.size() >= 1)
 * @param expertInit       how new experts start (default {@link #DEFAULT_EXPERT_INIT}: copies of the backbone slice;
 *                         {@link ExpertInit#RANDOM_ZERO_OUT} is the paper's "uninitialised" experts)
 * @param gateInitBackbone α_bb at initialisation: the gate bias is set so that softmax gives the backbone this
 *                         weight and the experts equal shares of the rest, with zero gate weights (default 0.5)
 * @param routing          dense soft routing (default), or top-k sparse, per token or per sequence
 * @param merge            how a block combines its branches ({@link Merge}; default {@link #DEFAULT_MERGE})
 * @param gateInput        what the gate reads ({@link GateInput}; default {@link #DEFAULT_GATE_INPUT})
 */
public record ModeConfig(
        int numBlocks,
        int layersPerExpert,
        List<String> domains,
        ExpertInit expertInit,
        double gateInitBackbone,
        Routing routing,
        Merge merge,
        GateInput gateInput) {

    /**
     * Default α_bb at initialisation, chosen by the tuning study (docs/mode.md); with experts copied from their whole
     * slice (the defaults), or with the residual merge, it does not move the starting point, only how much each
     * expert's update counts at first. The paper's formulation is usually run with 0.9.
     */
    public static final double DEFAULT_GATE_INIT_BACKBONE = 0.5;

    /**
     * The default merge, the paper's mixture: with experts copied from their whole backbone slice (the defaults,
     * {@link #DEFAULT_EXPERT_INIT} and k = L/B) a block starts at {@code Σ α · f_bb(x) = f_bb(x)} up to float32
     * rounding (the BTX-style start, chosen on validation accuracy by the tuning study, docs/mode.md).
     */
    public static final Merge DEFAULT_MERGE = Merge.MIXTURE;

    /** The default expert initialisation: a copy of the backbone slice's last k layers (BTX, FlexOlmo). */
    public static final ExpertInit DEFAULT_EXPERT_INIT = ExpertInit.COPY;

    /** The default gate input (docs/mode.md, "Tuning study"). */
    public static final GateInput DEFAULT_GATE_INPUT = GateInput.RMSNORM;

    /** How a block combines the backbone slice f_bb and the experts f_e^j under the gate weights α. */
    public enum Merge {
        /**
         * The paper's mixture, {@code y = α_bb f_bb(x) + Σ_j α_j f_e^j(x)} (the default): with experts copied from
         * their whole slice a block starts at {@code f_bb(x)} up to float32 rounding; with zero-output
         * ("uninitialised") experts at {@code α_bb f_bb(x) + (1 - α_bb) x}, off the base model.
         */
        MIXTURE,
        /**
         * The backbone plus gated expert updates, {@code y = f_bb(x) + Σ_j α_j (f_e^j(x) - x)}: an expert that is
         * still the identity contributes exactly nothing, so a block starts at {@code f_bb(x)} bit for bit; the gate's
         * backbone row is the share no expert gets. Dense routing only.
         */
        RESIDUAL;

        /** Parses {@code mixture} / {@code residual} (case-insensitive). */
        public static Merge parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "mixture" -> MIXTURE;
                case "residual" -> RESIDUAL;
                default -> throw new IllegalArgumentException("unknown merge '" + s + "'; use 'residual' or 'mixture'");
            };
        }

        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** What the gate reads: the block input x itself, or x normalised to unit RMS (no gain). */
    public enum GateInput {
        /** {@code g(x) = softmax(W x + b)} (the paper). */
        RAW,
        /** {@code g(x) = softmax(W RMSNorm(x) + b)}: every block's gate sees inputs of the same scale. */
        RMSNORM;

        /** Parses {@code raw} / {@code rmsnorm} (case-insensitive). */
        public static GateInput parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "raw" -> RAW;
                case "rmsnorm", "norm" -> RMSNORM;
                default -> throw new IllegalArgumentException("unknown gate input '" + s + "'; use 'rmsnorm' or 'raw'");
            };
        }

        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The paper's formulation (mixture merge, raw gate input) with the given choices. */
    public ModeConfig(
            int numBlocks,
            int layersPerExpert,
            List<String> domains,
            ExpertInit expertInit,
            double gateInitBackbone,
            Routing routing) {
        this(numBlocks, layersPerExpert, domains, expertInit, gateInitBackbone, routing, Merge.MIXTURE, GateInput.RAW);
    }

    /** How a new expert's layers are initialised. */
    public enum ExpertInit {
        /** Copy of the backbone slice's last k layers (needs k <= L/B). */
        COPY,
        /** Normal(0, 0.02) matrices and unit norm gains, with o_proj and down_proj zero: each layer starts as the identity. */
        RANDOM_ZERO_OUT;

        /** Parses {@code copy} / {@code random} (case-insensitive). */
        public static ExpertInit parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "copy" -> COPY;
                case "random", "random-zero-out", "zero-out" -> RANDOM_ZERO_OUT;
                default ->
                    throw new IllegalArgumentException("unknown expert init '" + s + "'; use 'copy' or 'random'");
            };
        }

        public String cliName() {
            return this == COPY ? "copy" : "random";
        }
    }

    public ModeConfig {
        domains = List.copyOf(domains);
        List<String> errors = new ArrayList<>();
        if (numBlocks < 1) errors.add("number of blocks B must be >= 1 (got " + numBlocks + ")");
        if (layersPerExpert < 1) errors.add("layers per expert k must be >= 1 (got " + layersPerExpert + ")");
        if (domains.isEmpty()) errors.add("a MoDE model needs at least one expert (domain list is empty)");
        for (String d : domains) {
            if (d == null || d.isBlank() || !d.matches("[A-Za-z0-9_.+-]+")) {
                errors.add("domain name '" + d + "' must be non-empty letters, digits or _.+-");
            }
        }
        if (expertInit == null) errors.add("expert init must be given");
        if (!(gateInitBackbone > 0 && gateInitBackbone < 1)) {
            errors.add("initial backbone gate weight must be in (0, 1) (got " + gateInitBackbone + ")");
        }
        if (merge == null) errors.add("merge must be given");
        if (gateInput == null) errors.add("gate input must be given");
        if (routing == null) errors.add("routing must be given");
        else if (merge == Merge.RESIDUAL && !routing.dense()) {
            errors.add("the residual merge runs the backbone on every token and has no top-k form; use --merge mixture"
                    + " with --routing " + routing + ", or --routing dense");
        } else if (routing.topK() > domains.size() + 1) {
            errors.add("top-k " + routing.topK() + " exceeds the " + (domains.size() + 1) + " branches (backbone + "
                    + domains.size() + " experts); use --routing topK with K in 1.." + (domains.size() + 1)
                    + " (e.g. --routing top1), or --routing dense");
        }
        if (!errors.isEmpty()) throw new IllegalArgumentException("invalid MoDE config: " + String.join("; ", errors));
    }

    /**
     * The defaults over {@code backbone}: B = {@code numBlocks}, experts copied from their whole backbone slice
     * (k = L/B), the mixture merge, so the model starts at its backbone up to float32 rounding; dense routing, α_bb =
     * {@link #DEFAULT_GATE_INIT_BACKBONE}, {@link #DEFAULT_GATE_INPUT}.
     */
    public static ModeConfig of(LlamaConfig backbone, int numBlocks, List<String> domains) {
        return of(numBlocks, defaultLayersPerExpert(backbone.numLayers(), numBlocks, DEFAULT_EXPERT_INIT), domains);
    }

    /**
     * The default choices ({@link #DEFAULT_EXPERT_INIT}, {@link #DEFAULT_MERGE}, dense routing, α_bb =
     * {@link #DEFAULT_GATE_INIT_BACKBONE}, {@link #DEFAULT_GATE_INPUT}) with k = {@code layersPerExpert}; the model
     * starts at its backbone only with k = L/B (copied experts of fewer layers skip the slice's first layers).
     */
    public static ModeConfig of(int numBlocks, int layersPerExpert, List<String> domains) {
        return new ModeConfig(
                numBlocks,
                layersPerExpert,
                domains,
                DEFAULT_EXPERT_INIT,
                DEFAULT_GATE_INIT_BACKBONE,
                Routing.DENSE,
                DEFAULT_MERGE,
                DEFAULT_GATE_INPUT);
    }

    /**
     * The residual merge with random ("uninitialised", the paper's) experts, k = {@code layersPerExpert}: the defaults
     * before the tuning study chose the copied start; the model starts at its backbone bit for bit since every expert
     * layer starts as the identity. Dense routing, α_bb = {@link #DEFAULT_GATE_INIT_BACKBONE},
     * {@link #DEFAULT_GATE_INPUT}.
     */
    public static ModeConfig residualRandom(int numBlocks, int layersPerExpert, List<String> domains) {
        return of(numBlocks, layersPerExpert, domains)
                .withExpertInit(ExpertInit.RANDOM_ZERO_OUT)
                .withMerge(Merge.RESIDUAL);
    }

    /**
     * k when none is given ({@code --expert-layers slice}): the slice depth L/B for copied experts, so each expert is
     * a copy of its whole slice, and 1 for random ones (at least 1; B must divide L, checked by
     * {@link #validateAgainst}).
     */
    public static int defaultLayersPerExpert(int backboneLayers, int numBlocks, ExpertInit init) {
        return init == ExpertInit.COPY ? Math.max(1, backboneLayers / Math.max(1, numBlocks)) : 1;
    }

    /** N, the number of experts. */
    public int numExperts() {
        return domains.size();
    }

    /** N+1: backbone plus experts. */
    public int numBranches() {
        return domains.size() + 1;
    }

    /**
     * Parameters a model of this configuration adds to {@code backbone}: every expert's layers in every block and the
     * gates' weights and biases.
     */
    public long addedParameterCount(LlamaConfig backbone) {
        long experts = (long) numBlocks * numExperts() * layersPerExpert * backbone.layerParameterCount();
        return experts + (long) numBlocks * numBranches() * (backbone.hiddenSize() + 1L);
    }

    public ModeConfig withDomains(List<String> newDomains) {
        return new ModeConfig(
                numBlocks, layersPerExpert, newDomains, expertInit, gateInitBackbone, routing, merge, gateInput);
    }

    /**
     * This config with routing {@code r}; a top-k routing takes the paper's mixture merge, since the residual merge
     * has no top-k form (a dense one keeps the merge).
     */
    public ModeConfig withRouting(Routing r) {
        Merge m = r != null && !r.dense() ? Merge.MIXTURE : merge;
        return new ModeConfig(numBlocks, layersPerExpert, domains, expertInit, gateInitBackbone, r, m, gateInput);
    }

    public ModeConfig withExpertInit(ExpertInit init) {
        return new ModeConfig(numBlocks, layersPerExpert, domains, init, gateInitBackbone, routing, merge, gateInput);
    }

    public ModeConfig withGateInitBackbone(double p) {
        return new ModeConfig(numBlocks, layersPerExpert, domains, expertInit, p, routing, merge, gateInput);
    }

    public ModeConfig withMerge(Merge m) {
        return new ModeConfig(numBlocks, layersPerExpert, domains, expertInit, gateInitBackbone, routing, m, gateInput);
    }

    public ModeConfig withGateInput(GateInput g) {
        return new ModeConfig(numBlocks, layersPerExpert, domains, expertInit, gateInitBackbone, routing, merge, g);
    }

    /** Checks that this config fits {@code backbone}; throws a one-line message naming the fix. */
    public void validateAgainst(LlamaConfig backbone) {
        int l = backbone.numLayers();
        if (l % numBlocks != 0) {
            throw new IllegalArgumentException("number of blocks B=" + numBlocks + " must divide the backbone's " + l
                    + " layers; choose --blocks from " + divisors(l));
        }
        if (expertInit == ExpertInit.COPY && layersPerExpert > l / numBlocks) {
            throw new IllegalArgumentException(
                    "--expert-init copy copies the last k layers of each backbone slice, but k=" + layersPerExpert
                            + " exceeds the slice's " + (l / numBlocks)
                            + " layers; use a smaller --expert-layers or --expert-init random");
        }
    }

    /** Backbone layers per block, L/B. */
    public int sliceLayers(LlamaConfig backbone) {
        return backbone.numLayers() / numBlocks;
    }

    /** The gate bias for the backbone row that gives α_bb = gateInitBackbone with zero weights and zero expert biases. */
    public double backboneGateBias() {
        return Math.log(gateInitBackbone * numExperts() / (1 - gateInitBackbone));
    }

    private static String divisors(int l) {
        List<String> out = new ArrayList<>();
        for (int i = 1; i <= l; i++) if (l % i == 0) out.add(Integer.toString(i));
        return String.join(", ", out);
    }

    /** JSON form stored in expert files and reports. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("num_blocks", numBlocks);
        o.addProperty("layers_per_expert", layersPerExpert);
        JsonArray d = new JsonArray();
        domains.forEach(d::add);
        o.add("domains", d);
        o.addProperty("expert_init", expertInit.cliName());
        o.addProperty("gate_init_backbone", gateInitBackbone);
        o.addProperty("routing", routing.toString());
        o.addProperty("merge", merge.cliName());
        o.addProperty("gate_input", gateInput.cliName());
        return o;
    }
}
