package ai.mode.model.mode;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.io.TensorNames;
import ai.mode.model.nn.LlamaModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Stage 2 assembly: experts from one or more expert files (separate stage-1 runs) put side by side under one (N+1)-way
 * gate per block, after checking that every file belongs to this backbone and configuration. Builds composed
 * {@link ModeModel}s from {@link ExpertFile}s.
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
        STACKED;

        public static GateConstruction parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "fresh", "new" -> FRESH;
                case "stacked", "stack" -> STACKED;
                default ->
                    throw new IllegalArgumentException(
                            "unknown gate construction '" + s + "'; use 'fresh' or 'stacked'");
            };
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
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return model;
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
