package ai.mode.model.mode;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Stage 2 assembly: experts from one or more expert files (separate stage-1 runs) put side by side under one (N+1)-way
 * gate per block, after checking that every file belongs to this backbone and configuration. Builds composed
 * {@link ModeModel}s from {@link ExpertFile}s, and adds new stage-1 experts to a composed model later
 * ({@link #addExperts}) without touching its experts.
 */
public final class Composer {
    private Composer() {}

    /** How the composed gate starts. */
    public enum GateConstruction {
        /** A new gate: zero weights, bias so that α_bb = gate-init-backbone and the experts share the rest equally. */
        FRESH,
        /**
         * The stage-1 gates stacked: each expert's row (weight and bias) is copied from the file it came from; the
         * backbone row is the mean of the files' backbone rows.
         */
        STACKED,
        /**
         * Built from each domain's data alone, without joint training ({@link DomainRouter}): usable with zero
         * stage-2 steps.
         */
        DOMAIN_EMBEDDINGS;

        public static GateConstruction parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "fresh", "new" -> FRESH;
                case "stacked", "stack" -> STACKED;
                case "domain-embeddings", "domain" -> DOMAIN_EMBEDDINGS;
                default ->
                    throw new IllegalArgumentException(
                            "unknown gate construction '" + s + "'; use 'fresh', 'stacked' or 'domain-embeddings'");
            };
        }

        public String cliName() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    /**
     * A model over {@code backbone} with every expert of {@code files}, in order (domains concatenated).
     *
     * @param settings routing and gate initialisation of the composed model (its blocks, k, domains and expert
     *                 init are taken from the files)
     */
    public static ModeModel compose(
            LlamaModel backbone,
            List<ExpertFile> files,
            Routing routing,
            double gateInitBackbone,
            GateConstruction gates) {
        return compose(backbone, files, routing, gateInitBackbone, gates, null);
    }

    /**
     * As {@link #compose(LlamaModel, List, Routing, double, GateConstruction)}, with the domains' data for
     * {@link GateConstruction#DOMAIN_EMBEDDINGS} (one expert corpus per composed expert, in order; null otherwise).
     */
    public static ModeModel compose(
            LlamaModel backbone,
            List<ExpertFile> files,
            Routing routing,
            double gateInitBackbone,
            GateConstruction gates,
            DomainRouter.Settings router) {
        if (files.isEmpty()) throw new IllegalArgumentException("compose needs at least one expert file");
        ExpertFile first = files.get(0);
        List<String> domains = new ArrayList<>();
        BackboneFingerprint fp = BackboneFingerprint.of(backbone.config(), backbone.parameters());
        for (ExpertFile f : files) {
            f.checkBackbone(backbone.config(), fp);
            if (f.config().numBlocks() != first.config().numBlocks()
                    || f.config().layersPerExpert() != first.config().layersPerExpert()) {
                throw new IllegalArgumentException("cannot compose " + f.source() + " (B="
                        + f.config().numBlocks() + ", k=" + f.config().layersPerExpert()
                        + ") with " + first.source() + " (B=" + first.config().numBlocks() + ", k="
                        + first.config().layersPerExpert()
                        + "): experts must have the same number of blocks and layers per expert");
            }
            if (f.config().merge() != first.config().merge()
                    || f.config().gateInput() != first.config().gateInput()) {
                throw new IllegalArgumentException("cannot compose " + f.source() + " (merge "
                        + f.config().merge().cliName() + ", gate input "
                        + f.config().gateInput().cliName()
                        + ") with " + first.source() + " (merge "
                        + first.config().merge().cliName()
                        + ", gate input " + first.config().gateInput().cliName()
                        + "): train the experts with the same --merge and --gate-input");
            }
            for (String d : f.config().domains()) {
                if (domains.contains(d))
                    throw new IllegalArgumentException("domain '" + d + "' appears in more than one expert file ("
                            + f.source() + "); compose distinct experts");
                domains.add(d);
            }
        }
        ModeConfig mc = new ModeConfig(
                first.config().numBlocks(),
                first.config().layersPerExpert(),
                domains,
                first.config().expertInit(),
                gateInitBackbone,
                routing,
                first.config().merge(),
                first.config().gateInput());
        ModeModel model = ModeModel.create(backbone, mc, 0L);
        try {
            int slot = 0;
            for (ExpertFile f : files) {
                for (int j = 0; j < f.numExperts(); j++)
                    model.loadExpert(f.tensors(), j, slot++, f.source().toString());
            }
            if (gates == GateConstruction.STACKED) model.loadGates(stackGates(files, mc), "stacked stage-1 gates");
            if (gates == GateConstruction.DOMAIN_EMBEDDINGS)
                model.loadGates(domainGates(backbone, mc, router), "router");
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return model;
    }

    private static NamedTensors domainGates(LlamaModel backbone, ModeConfig mc, DomainRouter.Settings router) {
        if (router == null)
            throw new IllegalArgumentException(
                    "the domain-embeddings router needs each domain's data; give one corpus per expert");
        if (router.experts().size() != mc.numExperts())
            throw new IllegalArgumentException(
                    "the domain-embeddings router got " + router.experts().size()
                            + " expert corpora for the " + mc.numExperts() + " experts " + mc.domains()
                            + "; give one corpus per expert, in expert order (--domains)");
        return DomainRouter.build(backbone, mc.numBlocks(), router, mc.gateInitBackbone());
    }

    /**
     * Adds the experts of stage-1 files to a composed model: N+M experts, the composed model's N experts first,
     * copied bit for bit, then the new ones, all frozen. The gate:
     *
     * <ul>
     *   <li>{@link GateConstruction#STACKED} (the usual choice): the composed gate's N+1 rows unchanged, and each
     *       new expert's row placed so that its logit relative to the backbone is what its stage-1 gate gave:
     *       {@code row = composed row 0 + (stage-1 expert row - stage-1 row 0)}, weights and bias alike;</li>
     *   <li>{@link GateConstruction#FRESH}: a new gate ({@code gateInitBackbone} on the backbone);</li>
     *   <li>{@link GateConstruction#DOMAIN_EMBEDDINGS}: every row rebuilt from each domain's data.</li>
     * </ul>
     *
     * The result is an ordinary composed model (routing, α_bb at init and expert init from {@code composed} unless
     * {@code routing} is given). Then train only the new rows ({@link ModeModel#selectGateRows}) or the gate.
     *
     * @param routing null for the composed model's
     */
    public static ModeModel addExperts(
            LlamaModel backbone,
            ExpertFile composed,
            List<ExpertFile> added,
            Routing routing,
            GateConstruction gates,
            DomainRouter.Settings router) {
        if (added.isEmpty()) throw new IllegalArgumentException("give at least one stage-1 expert to add");
        int width = composed.tensors().shape(TensorNames.gateWeight(0))[1];
        for (ExpertFile f : added) {
            int w = f.tensors().shape(TensorNames.gateWeight(0))[1];
            if (w != width)
                throw new IllegalArgumentException("cannot add " + f.source() + " to " + composed.source()
                        + ": its experts have hidden size " + w + " but the composed model's have " + width
                        + "; train the new expert with 'mode expert' on the composed model's backbone");
        }
        List<ExpertFile> files = new ArrayList<>(List.of(composed));
        files.addAll(added);
        Routing r = routing != null ? routing : composed.config().routing();
        double alpha = composed.config().gateInitBackbone();
        if (gates != GateConstruction.STACKED) return compose(backbone, files, r, alpha, gates, router);
        ModeModel m = compose(backbone, files, r, alpha, GateConstruction.FRESH, null);
        try {
            m.loadGates(appendGates(composed, added, m.modeConfig()), "composed gate with the added rows");
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return m;
    }

    /** The composed gate's rows, then each added expert's row relative to the backbone row (see {@link #addExperts}). */
    static NamedTensors appendGates(ExpertFile composed, List<ExpertFile> added, ModeConfig result) {
        NamedTensors out = new NamedTensors();
        int e = result.numBranches(), old = composed.config().numBranches();
        for (int i = 0; i < result.numBlocks(); i++) {
            String wn = TensorNames.gateWeight(i), bn = TensorNames.gateBias(i);
            float[] cw = composed.tensors().data(wn), cb = composed.tensors().data(bn);
            int d = cw.length / old;
            float[] w = Arrays.copyOf(cw, e * d), b = Arrays.copyOf(cb, e);
            int row = old;
            for (ExpertFile f : added) {
                float[] fw = f.tensors().data(wn), fb = f.tensors().data(bn);
                for (int j = 1; j <= f.numExperts(); j++, row++) {
                    for (int c = 0; c < d; c++) w[row * d + c] = cw[c] + (fw[j * d + c] - fw[c]);
                    b[row] = cb[0] + (fb[j] - fb[0]);
                }
            }
            out.put(wn, new int[] {e, d}, w);
            out.put(bn, new int[] {e}, b);
        }
        return out;
    }

    /** Gate tensors for the composed model from the files' gates (see {@link GateConstruction#STACKED}). */
    static NamedTensors stackGates(List<ExpertFile> files, ModeConfig composed) {
        NamedTensors out = new NamedTensors();
        int e = composed.numBranches();
        for (int i = 0; i < composed.numBlocks(); i++) {
            String wn = TensorNames.gateWeight(i), bn = TensorNames.gateBias(i);
            int d = files.get(0).tensors().shape(wn)[1];
            float[] w = new float[e * d], b = new float[e];
            int row = 1;
            for (ExpertFile f : files) {
                float[] fw = f.tensors().data(wn), fb = f.tensors().data(bn);
                for (int c = 0; c < d; c++) w[c] += fw[c] / files.size();
                b[0] += fb[0] / files.size();
                for (int j = 1; j <= f.numExperts(); j++, row++) {
                    System.arraycopy(fw, j * d, w, row * d, d);
                    b[row] = fb[j];
                }
            }
            out.put(wn, new int[] {e, d}, w);
            out.put(bn, new int[] {e}, b);
        }
        return out;
    }

    /** A model with exactly one file's experts and gates (e.g. to evaluate a stage-1 run). */
    public static ModeModel load(LlamaModel backbone, ExpertFile file, Routing routing) {
        ModeModel m =
                compose(backbone, List.of(file), routing, file.config().gateInitBackbone(), GateConstruction.FRESH);
        try {
            m.loadGates(file.tensors(), file.source().toString());
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return m;
    }
}
