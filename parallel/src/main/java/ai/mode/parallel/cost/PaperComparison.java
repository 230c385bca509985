package ai.mode.parallel.cost;

import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.Placement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The paper's systems experiment (docs/design.md, "The method": 8 TPU v5e, 4 experts, 2 blocks; one mesh 329 ms vs MPMD
 * 204 ms) through the cost model: layer times from FLOPs and assumed hardware figures, one unknown (tokens per step)
 * calibrated so the one-mesh prediction meets the paper's 329 ms, then the MPMD layouts predicted from it. Builds
 * cost-model inputs from a model shape and hardware figures, and runs the 1/3/5-group comparison.
 */
public final class PaperComparison {
    private PaperComparison() {}

    /**
     * Hardware figures (assumptions, not measurements).
     *
     * @param peakTflops dense bf16 peak per device
     * @param mfu        fraction of peak the layers reach
     * @param linkGBps   one inter-device link, one direction, GB/s
     * @param latencyUs  fixed cost per message or collective step, microseconds
     */
    public record Hardware(String name, double peakTflops, double mfu, double linkGBps, double latencyUs) {
        /** TPU v5e's published 197 TFLOP/s bf16 peak; 50% of it reached; ~45 GB/s per ICI link and direction; 10 µs per step. */
        public static final Hardware TPU_V5E = new Hardware("TPU v5e (assumed figures)", 197, 0.5, 45, 10);

        CostModel.Link link() {
            return new CostModel.Link(linkGBps * 1e9, latencyUs / 1e3);
        }
    }

    /**
     * A Llama-style model under MoDE.
     *
     * @param hidden          D
     * @param ffn             F (SwiGLU)
     * @param kvDim           width of k and v projections
     * @param vocab           vocabulary
     * @param layers          backbone layers L
     * @param blocks          B
     * @param experts         N
     * @param layersPerExpert k, per block
     * @param seqLen          T
     * @param bytesPerElement activation element size (2 for bf16)
     */
    public record Shape(
            int hidden,
            int ffn,
            int kvDim,
            int vocab,
            int layers,
            int blocks,
            int experts,
            int layersPerExpert,
            int seqLen,
            int bytesPerElement) {
        /**
         * The paper's setting as we read it: a 1.58B backbone with L=18 and 2 blocks (9 layers each), 4 experts of 6
         * layers (3 per block). D=2048, F=8192 give the ~66M parameters per layer implied by "2 experts add 0.79B"
         * with 6 layers each; the vocabulary (~180k) makes up the 1.58B total; T=1024 is our guess.
         */
        public static final Shape PAPER = new Shape(2048, 8192, 2048, 180_000, 18, 2, 4, 3, 1024, 2);

        public long layerParams() {
            return 2L * hidden * hidden + 2L * hidden * kvDim + 3L * hidden * ffn + 2L * hidden;
        }

        public Shape withLayersPerExpert(int k) {
            return new Shape(hidden, ffn, kvDim, vocab, layers, blocks, experts, k, seqLen, bytesPerElement);
        }
    }

    /** The cost-model workload of one step of {@code tokens} tokens (frozen backbone, trainable experts). */
    public static CostModel.Workload workload(Shape s, Hardware h, double tokens) {
        double flopsPerSecond = h.peakTflops() * 1e12 * h.mfu();
        double matmul = 2.0 * s.layerParams() * tokens; // forward GEMMs
        double attention = 2.0 * s.seqLen() * s.hidden() * tokens; // causal QK^T and AV, forward
        double fwd = (matmul + attention) / flopsPerSecond * 1e3;
        double bwdIn = (matmul + 2 * attention) / flopsPerSecond * 1e3;
        double bwdW = matmul / flopsPerSecond * 1e3;
        double head = 3
                * 2.0
                * s.vocab()
                * s.hidden()
                * tokens
                / flopsPerSecond
                * 1e3
                * (2.0 / 3.0); // frozen head: forward + input gradient
        double merge = 4.0 * (s.experts() + 1) * s.hidden() * tokens * 2 / flopsPerSecond * 1e3;
        return new CostModel.Workload(
                s.layers() / s.blocks(),
                s.layersPerExpert(),
                new CostModel.LayerTimes(fwd, bwdIn, bwdW),
                merge,
                head,
                tokens * s.hidden() * s.bytesPerElement(),
                (double) s.layerParams() * 4,
                false,
                true);
    }

    /** A named placement of the comparison and its prediction. */
    public record Row(String name, Placement placement, CostModel.Prediction prediction) {}

    /** The comparison: calibrated tokens per step and the predictions for one mesh, 3 groups and 5 groups. */
    public record Result(Shape shape, Hardware hardware, double tokens, List<Row> rows) {
        public Row row(String name) {
            return rows.stream().filter(r -> r.name().equals(name)).findFirst().orElseThrow();
        }

        /** A Markdown table with the relative change against the first row. */
        public String table() {
            StringBuilder sb = new StringBuilder("| layout | predicted step | vs one mesh |\n|---|---|---|\n");
            double base = rows.get(0).prediction().stepMs();
            for (Row r : rows) {
                sb.append(String.format(
                        Locale.ROOT,
                        "| %s | %.0f ms | %+.0f%% |%n",
                        r.name(),
                        r.prediction().stepMs(),
                        100 * (r.prediction().stepMs() / base - 1)));
            }
            return sb.toString();
        }
    }

    /** The three layouts on 8 devices: one tensor-parallel mesh; backbone on 4 and experts on 2 groups of 2; or on 4 groups of 1. */
    public static List<String> layouts() {
        return List.of(
                "1 mesh (8 devices)", "3 groups (backbone 4 | experts 2+2)", "5 groups (backbone 4 | experts 1+1+1+1)");
    }

    /** Predictions for the three layouts with {@code tokens} tokens per step. */
    public static Result predict(Shape s, Hardware h, double tokens) {
        List<DeviceId> eight = new ArrayList<>();
        for (int d = 0; d < 8; d++) eight.add(new DeviceId("cuda", d));
        List<Placement> ps = List.of(
                Placement.data(eight, s.blocks(), s.experts()),
                Placement.mpmd(eight, s.blocks(), s.experts(), 3, 4),
                Placement.mpmd(eight, s.blocks(), s.experts(), 5, 4));
        CostModel.Workload w = workload(s, h, tokens);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < ps.size(); i++)
            rows.add(new Row(
                    layouts().get(i),
                    ps.get(i),
                    CostModel.predict(w, ps.get(i), h.link(), CostModel.IntraGroup.TENSOR)));
        return new Result(s, h, tokens, rows);
    }

    /**
     * The tokens per step at which the one-mesh prediction equals {@code meshMs} (bisection; the prediction grows
     * with tokens), and the three predictions there.
     */
    public static Result calibrate(Shape s, Hardware h, double meshMs) {
        double lo = 1, hi = 1e9;
        if (predict(s, h, lo).rows().get(0).prediction().stepMs() > meshMs) {
            throw new IllegalArgumentException("even one token per step takes longer than " + meshMs
                    + " ms with these figures (latency too high?)");
        }
        for (int it = 0; it < 200; it++) {
            double mid = Math.sqrt(lo * hi);
            if (predict(s, h, mid).rows().get(0).prediction().stepMs() < meshMs) lo = mid;
            else hi = mid;
        }
        return predict(s, h, Math.sqrt(lo * hi));
    }
}
