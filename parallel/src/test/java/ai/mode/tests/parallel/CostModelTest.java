// Internal consistency of the step-latency cost model (hand-computed cases, limits, monotonicity, the balance
// condition) and the paper comparison it drives: calibrated on the one-mesh time, printed for the record.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.cost.CostModel;
import ai.mode.parallel.cost.CostModel.IntraGroup;
import ai.mode.parallel.cost.CostModel.LayerTimes;
import ai.mode.parallel.cost.CostModel.Link;
import ai.mode.parallel.cost.CostModel.Workload;
import ai.mode.parallel.cost.PaperComparison;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import java.util.List;
import org.junit.jupiter.api.Test;

class CostModelTest {
    private static final LayerTimes LAYER = new LayerTimes(2, 2.5, 2);
    private static final Workload W = new Workload(9, 3, LAYER, 1, 6, 8e6, 1e6, false, true);
    private static final Link FREE = new Link(1e30, 0), SLOW = new Link(1e9, 0.05);

    private static Placement p(
            String devices, java.util.function.Function<List<ai.mode.parallel.place.DeviceId>, Placement> f) {
        return f.apply(DeviceSpec.parse(devices));
    }

    @Test
    void oneDeviceIsTheSumOfTheWork() {
        Placement one = p("cuda:0", d -> Placement.single(d, 2, 4));
        double want = 2 * (9 * (2 + 2.5) + 4 * 3 * (2 + 2.5 + 2) + 1) + 6;
        assertEquals(want, CostModel.predict(W, one, SLOW, IntraGroup.TENSOR).stepMs(), 1e-9);
        assertEquals(want, CostModel.computeDeviceMs(W, 2, 4), 1e-9);
    }

    @Test
    void aMeshWithFreeLinksSplitsTheWorkPerfectly() {
        Placement mesh = p("cuda:0-7", d -> Placement.data(d, 2, 4));
        assertEquals(
                CostModel.computeDeviceMs(W, 2, 4) / 8,
                CostModel.predict(W, mesh, FREE, IntraGroup.TENSOR).stepMs(),
                1e-9);
        // tensor parallelism: two activation all-reduces per layer each way, by hand for the ring on 8 devices
        double ar = 2.0 * 7 / 8 * 8e6 / 1e9 * 1e3 + 2 * 7 * 0.05;
        double layers = 2 * (9 + 4 * 3);
        double want = CostModel.computeDeviceMs(W, 2, 4) / 8 + layers * 4 * ar + 4 * ar; // + the head's four
        assertEquals(want, CostModel.predict(W, mesh, SLOW, IntraGroup.TENSOR).stepMs(), 1e-6);
    }

    @Test
    void groupsRunConcurrentlyAndTheSlowestSetsTheBlockTime() {
        Placement five = p("cuda:0-7", d -> Placement.mpmd(d, 2, 4, 5, 4));
        CostModel.Prediction pr = CostModel.predict(W, five, FREE, IntraGroup.TENSOR);
        double backbone = (9 * (2 + 2.5) + 1) / 4, expert = 3 * (2 + 2.5 + 2);
        assertEquals(2 * Math.max(backbone, expert) + 6.0 / 4, pr.stepMs(), 1e-9);
        for (CostModel.BlockTiming b : pr.blocks()) assertEquals(5, b.groups().size());
        // free links: the mesh is the ideal split, so MPMD cannot beat it; with slow links it does (per-layer
        // all-reduces dominate)
        Placement mesh = p("cuda:0-7", d -> Placement.data(d, 2, 4));
        assertTrue(CostModel.predict(W, mesh, FREE, IntraGroup.TENSOR).stepMs() <= pr.stepMs());
        assertTrue(CostModel.predict(W, five, SLOW, IntraGroup.TENSOR).stepMs()
                < CostModel.predict(W, mesh, SLOW, IntraGroup.TENSOR).stepMs());
        // unbalanced: every expert on one device beside a 7-device backbone group is slower than the balanced layout
        Placement lopsided = p("cuda:0-7", d -> Placement.mpmd(d, 2, 4, 2, 7));
        CostModel.Prediction lop = CostModel.predict(W, lopsided, FREE, IntraGroup.TENSOR);
        assertEquals(2 * 4 * expert + 6.0 / 7, lop.stepMs(), 1e-9);
        assertTrue(lop.stepMs() > pr.stepMs());
    }

    @Test
    void fasterLinksAndMoreDevicesNeverSlowAStepDown() {
        List<Placement> ps = List.of(
                p("cuda:0-7", d -> Placement.data(d, 2, 4)),
                p("cuda:0-7", d -> Placement.mpmd(d, 2, 4, 3, 4)),
                p("cuda:0-7", d -> Placement.mpmd(d, 2, 4, 5, 4)),
                p("cuda:0-3", d -> Placement.mpmd(d, 2, 4, 3, 2)));
        for (Placement pl : ps) {
            for (IntraGroup mode : IntraGroup.values()) {
                double prev = Double.POSITIVE_INFINITY;
                for (double bw : new double[] {1e8, 1e9, 1e10, 1e11, 1e12}) {
                    double t =
                            CostModel.predict(W, pl, new Link(bw, 0.01), mode).stepMs();
                    assertTrue(
                            t <= prev + 1e-9,
                            "bandwidth " + bw + " slowed " + pl.groups().size() + " groups " + mode);
                    prev = t;
                }
            }
        }
        double prev = Double.POSITIVE_INFINITY;
        for (int n = 1; n <= 8; n++) {
            int devices = n;
            double t = CostModel.predict(
                            W, p("cpu:0-" + (devices - 1), d -> Placement.data(d, 2, 4)), FREE, IntraGroup.DATA)
                    .stepMs();
            assertTrue(t < prev);
            prev = t;
        }
        // data parallelism pays one all-reduce of the trainable expert gradients
        CostModel.Prediction dp =
                CostModel.predict(W, p("cpu:0-1", d -> Placement.data(d, 2, 4)), SLOW, IntraGroup.DATA);
        assertEquals(SLOW.allReduceMs(2 * 4 * 3 * 1e6, 2), dp.gradientSyncMs(), 1e-9);
    }

    @Test
    void thePapersLayoutsCalibratedOnTheOneMeshTime() {
        PaperComparison.Result r =
                PaperComparison.calibrate(PaperComparison.Shape.PAPER, PaperComparison.Hardware.TPU_V5E, 329);
        assertEquals(329, r.rows().get(0).prediction().stepMs(), 0.01);
        PaperComparison.Result again =
                PaperComparison.predict(PaperComparison.Shape.PAPER, PaperComparison.Hardware.TPU_V5E, r.tokens());
        for (int i = 0; i < 3; i++)
            assertEquals(
                    r.rows().get(i).prediction().stepMs(),
                    again.rows().get(i).prediction().stepMs(),
                    1e-9);
        assertTrue(r.tokens() > 100 && r.tokens() < 1e6, "calibrated tokens per step " + r.tokens());
        // every layout's step is at least its busiest group's compute, and the MPMD layouts use 3 and 5 groups
        for (PaperComparison.Row row : r.rows()) {
            for (CostModel.BlockTiming b : row.prediction().blocks()) {
                for (CostModel.GroupTiming g : b.groups()) assertTrue(b.totalMs() >= g.computeMs() - 1e-9);
            }
        }
        assertEquals(
                3, r.row(PaperComparison.layouts().get(1)).placement().groups().size());
        assertEquals(
                5, r.row(PaperComparison.layouts().get(2)).placement().groups().size());
        System.out.println("paper shape, TPU v5e assumptions, calibrated to " + Math.round(r.tokens())
                + " tokens/step:\n" + r.table());
        assertTrue(r.table().contains("| 1 mesh (8 devices) | 329 ms | +0% |"), r.table());
    }
}
