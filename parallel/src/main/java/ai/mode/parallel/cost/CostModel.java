package ai.mode.parallel.cost;

import ai.mode.parallel.place.Placement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A step-latency model of MoDE training under a placement: per-layer compute times, link bandwidth and latency, and how
 * each group parallelises internally (tensor-parallel mesh, as in the paper's one-mesh baseline, or data parallel, as
 * our scheduler does). Groups run concurrently between merges; each merge is a synchronisation point.
 *
 * <p>Predicts one training step's latency (forward + backward, optimizer excluded) of a MoDE model.
 *
 * <p>Per block, every group does its work in sequence (its backbone slice, gate and merge if it is the block's
 * merge group, then its experts as one batch); groups work concurrently. Forward: the block input travels from
 * the producer group to each group that needs it, groups compute, expert outputs travel to the merge group,
 * which merges. Backward mirrors it. The block's time is the slowest group's chain; blocks follow each other.
 *
 * <p>Inside a group of R devices, work is split R ways: {@link IntraGroup#TENSOR} (model parallel, one mesh)
 * adds two all-reduces of the activations per layer in forward and two in backward (also for frozen layers,
 * whose input gradients still flow); {@link IntraGroup#DATA} splits the batch and all-reduces the group's
 * trainable gradients once per step. A transfer between groups uses min(R_src, R_dst) links in parallel.
 */
public final class CostModel {
    private CostModel() {}

    /** How a group of several devices shares its work. */
    public enum IntraGroup {
        TENSOR,
        DATA
    }

    /**
     * One decoder layer on one device for the whole step's batch.
     *
     * @param forwardMs        forward
     * @param backwardInputMs  input-gradient part of backward (always needed above a trainable part)
     * @param backwardWeightMs weight-gradient part of backward (only for trainable layers)
     */
    public record LayerTimes(double forwardMs, double backwardInputMs, double backwardWeightMs) {
        public LayerTimes {
            if (!(forwardMs >= 0 && backwardInputMs >= 0 && backwardWeightMs >= 0))
                throw new IllegalArgumentException("layer times must be >= 0");
        }

        double total(boolean trainable) {
            return forwardMs + backwardInputMs + (trainable ? backwardWeightMs : 0);
        }
    }

    /**
     * The interconnect between two devices.
     *
     * @param bytesPerSecond bandwidth of one link, one direction
     * @param latencyMs      fixed cost of each message or collective step
     */
    public record Link(double bytesPerSecond, double latencyMs) {
        public Link {
            if (!(bytesPerSecond > 0) || !(latencyMs >= 0))
                throw new IllegalArgumentException("link bandwidth must be > 0 and latency >= 0");
        }

        /** Ring all-reduce of {@code bytes} over {@code n} devices. */
        public double allReduceMs(double bytes, int n) {
            if (n <= 1) return 0;
            return 2.0 * (n - 1) / n * bytes / bytesPerSecond * 1e3 + 2.0 * (n - 1) * latencyMs;
        }

        /** {@code bytes} split over {@code links} parallel point-to-point links. */
        public double transferMs(double bytes, int links) {
            return bytes / (Math.max(1, links) * bytesPerSecond) * 1e3 + latencyMs;
        }
    }

    /**
     * What one step computes.
     *
     * @param sliceLayers       backbone layers per block (L/B)
     * @param expertLayers      layers per expert per block (k)
     * @param layer             one layer's times (backbone and expert layers share the shape)
     * @param mergeMs           gate and weighted merge, forward + backward, whole batch on one device
     * @param stemHeadMs        embedding, final norm, LM head and loss, forward + backward, one device
     * @param activationBytes   one [B, T, D] activation of the whole batch
     * @param expertParamBytes  one expert layer's parameters (for data-parallel gradient all-reduces)
     * @param backboneTrainable whether backbone slices train (MoDE: no)
     * @param expertsTrainable  whether experts train
     */
    public record Workload(
            int sliceLayers,
            int expertLayers,
            LayerTimes layer,
            double mergeMs,
            double stemHeadMs,
            double activationBytes,
            double expertParamBytes,
            boolean backboneTrainable,
            boolean expertsTrainable) {
        public Workload {
            if (sliceLayers < 1 || expertLayers < 1)
                throw new IllegalArgumentException("slice and expert layers must be >= 1");
        }
    }

    /** A group's part of one block: compute, its own collectives, and its transfers. */
    public record GroupTiming(int group, double computeMs, double collectiveMs, double transferMs) {
        public double totalMs() {
            return computeMs + collectiveMs + transferMs;
        }
    }

    /** One block: the slowest group's chain in forward and in backward, and every group's share. */
    public record BlockTiming(int block, double forwardMs, double backwardMs, List<GroupTiming> groups) {
        public double totalMs() {
            return forwardMs + backwardMs;
        }
    }

    /** The predicted step. */
    public record Prediction(double stepMs, List<BlockTiming> blocks, double stemHeadMs, double gradientSyncMs) {
        /** Fraction of the step each device is busy computing, averaged over devices. */
        public double utilization(double totalComputeDeviceMs, int devices) {
            return totalComputeDeviceMs / (devices * stepMs);
        }

        /** A multi-line breakdown. */
        public String describe() {
            StringBuilder sb = new StringBuilder();
            for (BlockTiming b : blocks) {
                sb.append(String.format(
                        Locale.ROOT,
                        "block %d: forward %.1f ms, backward %.1f ms;",
                        b.block(),
                        b.forwardMs(),
                        b.backwardMs()));
                for (GroupTiming g : b.groups()) {
                    sb.append(String.format(
                            Locale.ROOT,
                            " group %d %.1f (compute %.1f, collectives %.1f, transfers %.1f)",
                            g.group(),
                            g.totalMs(),
                            g.computeMs(),
                            g.collectiveMs(),
                            g.transferMs()));
                }
                sb.append('\n');
            }
            sb.append(String.format(
                    Locale.ROOT,
                    "embedding/head %.1f ms, gradient sync %.1f ms, step %.1f ms%n",
                    stemHeadMs,
                    gradientSyncMs,
                    stepMs));
            return sb.toString();
        }
    }

    /** Predicts a step of {@code w} under {@code p} with links {@code link}, groups parallelised as {@code mode}. */
    public static Prediction predict(Workload w, Placement p, Link link, IntraGroup mode) {
        List<BlockTiming> blocks = new ArrayList<>();
        double total = 0, gradSync = 0;
        int ng = p.groups().size();
        double[] trainableBytes = new double[ng];
        for (int i = 0; i < p.numBlocks(); i++) {
            int merge = p.mergeGroup(i), prod = p.producerGroup(i);
            double[] fwd = new double[ng],
                    bwd = new double[ng],
                    coll = new double[ng],
                    xfer = new double[ng],
                    comp = new double[ng];
            for (int g = 0; g < ng; g++) {
                int r = p.groupSize(g);
                int experts = p.expertsOn(i, g).length;
                boolean isMerge = g == merge;
                if (experts == 0 && !isMerge) continue;
                int bbLayers = isMerge ? w.sliceLayers() : 0, exLayers = experts * w.expertLayers();
                double f = (bbLayers + exLayers) * w.layer().forwardMs() / r + (isMerge ? w.mergeMs() / 2 / r : 0);
                double b = bbLayers * w.layer().total(w.backboneTrainable()) / r
                        - bbLayers * w.layer().forwardMs() / r
                        + exLayers
                                * (w.layer().total(w.expertsTrainable())
                                        - w.layer().forwardMs())
                                / r
                        + (isMerge ? w.mergeMs() / 2 / r : 0);
                double cf = 0, cb = 0;
                if (mode == IntraGroup.TENSOR) {
                    double perLayer = 2 * link.allReduceMs(w.activationBytes(), r);
                    cf = (bbLayers + exLayers) * perLayer;
                    cb = (bbLayers + exLayers) * perLayer;
                } else {
                    if (w.expertsTrainable()) trainableBytes[g] += exLayers * w.expertParamBytes();
                    if (w.backboneTrainable()) trainableBytes[g] += bbLayers * w.expertParamBytes();
                }
                double inF = 0, outF = 0, inB = 0, outB = 0;
                if (g != prod)
                    inF = link.transferMs(w.activationBytes(), Math.min(r, p.groupSize(prod))); // block input
                if (!isMerge) {
                    int links = Math.min(r, p.groupSize(merge));
                    outF = experts * link.transferMs(w.activationBytes(), links); // expert outputs
                    inB = experts * link.transferMs(w.activationBytes(), links); // their gradients
                    outB = link.transferMs(w.activationBytes(), links); // input-gradient sum
                } else if (prod != merge) {
                    outB = link.transferMs(w.activationBytes(), Math.min(r, p.groupSize(prod)));
                }
                fwd[g] = inF + f + cf + outF;
                bwd[g] = inB + b + cb + outB;
                comp[g] = f + b;
                coll[g] = cf + cb;
                xfer[g] = inF + outF + inB + outB;
            }
            double bf = 0, bb = 0;
            List<GroupTiming> gt = new ArrayList<>();
            for (int g = 0; g < ng; g++) {
                bf = Math.max(bf, fwd[g]);
                bb = Math.max(bb, bwd[g]);
                if (fwd[g] + bwd[g] > 0) gt.add(new GroupTiming(g, comp[g], coll[g], xfer[g]));
            }
            blocks.add(new BlockTiming(i, bf, bb, gt));
            total += bf + bb;
        }
        int hg = p.headGroup();
        double head = w.stemHeadMs() / p.groupSize(hg);
        if (mode == IntraGroup.TENSOR) head += 4 * link.allReduceMs(w.activationBytes(), p.groupSize(hg));
        for (int g = 0; g < ng; g++)
            if (trainableBytes[g] > 0)
                gradSync = Math.max(gradSync, link.allReduceMs(trainableBytes[g], p.groupSize(g)));
        return new Prediction(total + head + gradSync, blocks, head, gradSync);
    }

    /** Device-milliseconds of pure compute in one step (what a perfect split over every device would share). */
    public static double computeDeviceMs(Workload w, int numBlocks, int numExperts) {
        double perBlock = w.sliceLayers() * w.layer().total(w.backboneTrainable())
                + numExperts * w.expertLayers() * w.layer().total(w.expertsTrainable())
                + w.mergeMs();
        return numBlocks * perBlock + w.stemHeadMs();
    }
}
