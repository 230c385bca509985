// The parallel runtime on emulated devices: the same device code path as cuda (DeviceBackend, kernels on the
// CPU emulator) under MPMD (top-k dispatch) and data-parallel placements, and a mixed cpu + emu placement, against one
// cpu device.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import ai.mode.parallel.sched.ModelSnapshot;
import ai.mode.parallel.sched.ParallelLaunch;
import ai.mode.parallel.sched.ParallelModeModel;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.emu.EmuDevice;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class EmuParallelTest {
    private static final int BATCH = 2, SEQ = 3;

    @ParameterizedTest(name = "{0} on {1}, {2}")
    @CsvSource({"mpmd, 'emu:0-1', top2", "data, 'emu:0-1', dense", "mpmd, 'cpu:0,emu:0', dense"})
    void gradientsMatchOneCpuDevice(String placement, String devices, String routing) {
        assumeTrue(EmuDevice.libraryAvailable(), "emu backend unavailable: " + EmuDevice.unavailableReason());
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, Routing.parse(routing), 21)) {
            ref.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            int[] win = new int[BATCH * (SEQ + 1)];
            new TinyMode.Stream(8, TinyMode.CFG.vocabSize()).next(BATCH, SEQ, win);
            int[] ids = Evaluator.inputs(win, BATCH, SEQ), tg = Evaluator.targets(win, BATCH, SEQ);
            float scale = 1f / (BATCH * SEQ);
            LossStats want;
            try (Tensor i = be.fromHost(ids, BATCH, SEQ);
                    Tensor t = be.fromHost(tg, BATCH, SEQ)) {
                want = ref.forwardBackward(i, t, scale);
            }
            List<DeviceId> ds = DeviceSpec.parse(devices);
            Placement pl = Placement.fromOption(placement, ds, 2, 3, 2, 0);
            List<Backend> backends = new ArrayList<>();
            for (DeviceId d : ds) backends.add(ParallelLaunch.open(d, 1));
            try (ParallelModeModel pm =
                    ParallelModeModel.inProcess(pl, backends, snap, AdamW.Config.defaults(), Duration.ofSeconds(60))) {
                LossStats got = pm.forwardBackward(ids, tg, BATCH, SEQ, scale, true, true);
                assertEquals(want.lossSum(), got.lossSum(), 1e-4 * Math.abs(want.lossSum()));
                NamedTensors grads = pm.gather(true);
                for (Parameter p : ref.trainableParameters()) {
                    double err = TinyMode.relError(grads.data(p.name()), be.toHostFloats(p.grad()));
                    assertTrue(
                            err < 2e-3, placement + " " + devices + ": gradient of " + p.name() + " differs by " + err);
                }
            }
        }
    }
}
