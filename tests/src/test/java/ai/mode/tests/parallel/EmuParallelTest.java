// The parallel runtime on emulated devices: the same device code path as cuda (DeviceBackend, kernels on the
// CPU emulator) under MPMD (top-k dispatch) and data-parallel placements, and a mixed cpu + emu placement, against one
// cpu device.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.InProcessWorld;
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
import ai.mode.runtime.device.DeviceBackend;
import ai.mode.runtime.emu.EmuDevice;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.function.BiFunction;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

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
            for (DeviceId d : ds) backends.add(float32Lane(d));
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

    /**
     * A lane's backend computing in float32 as cpu does: emu with tensor cores off. By default the experts' grouped
     * GEMMs run on bf16 tensor cores on a device and differ from cpu by bf16 rounding (bounded by
     * GroupedExpertsEmuTest), which would hide a placement error of that size; here the placement alone is compared.
     */
    private static Backend float32Lane(DeviceId d) {
        return d.kind().equals("emu") ? new DeviceBackend(EmuDevice.open(), "emu", false) : ParallelLaunch.open(d, 1);
    }

    /**
     * The lanes' creation order, which the NCCL path relies on to avoid a hang: every local lane's world
     * communicator exists before any lane splits it, the split gets every rank's color from the placement (no
     * exchange), and no lane builds its shard before every split is done. Rank 1 finishes joining only after rank
     * 0 has; when it fails to join, rank 0 (held at the barrier) must never start its split.
     */
    @ParameterizedTest(name = "rank 1 fails to join: {0}")
    @ValueSource(booleans = {false, true})
    void everyLaneJoinsBeforeAnyLaneSplits(boolean rank1Fails) throws Exception {
        assumeTrue(EmuDevice.libraryAvailable(), "emu backend unavailable: " + EmuDevice.unavailableReason());
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, Routing.parse("top2"), 21)) {
            ModelSnapshot snap = ModelSnapshot.of(ref);
            List<DeviceId> ds = DeviceSpec.parse("emu:0-1");
            Placement pl = Placement.fromOption("mpmd", ds, 2, 3, 2, 0);
            List<Backend> backends = new ArrayList<>();
            for (DeviceId d : ds) backends.add(ParallelLaunch.open(d, 1));
            List<Communicator> hub = InProcessWorld.create(backends, Duration.ofSeconds(60));
            List<String> events = Collections.synchronizedList(new ArrayList<>());
            CountDownLatch rank0Joined = new CountDownLatch(1);
            BiFunction<Integer, Backend, Communicator> join = (rank, backend) -> {
                if (rank == 1) {
                    try {
                        rank0Joined.await();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    if (rank1Fails) throw new IllegalStateException("rank 1 cannot join");
                }
                events.add("joined " + rank);
                if (rank == 0) rank0Joined.countDown();
                return recordingSplits(hub.get(rank), events);
            };
            if (rank1Fails) {
                IllegalStateException e = assertThrows(
                        IllegalStateException.class,
                        () -> ParallelModeModel.create(pl, 0, backends, join, snap, AdamW.Config.defaults()));
                assertTrue(e.getMessage().contains("rank 1 cannot join"), e.getMessage());
                assertEquals(List.of("joined 0"), events, "rank 0 waited for rank 1 and never split");
                return;
            }
            try (ParallelModeModel pm =
                    ParallelModeModel.create(pl, 0, backends, join, snap, AdamW.Config.defaults())) {
                assertEquals(4, events.size(), events.toString());
                assertEquals(Set.of("joined 0", "joined 1"), Set.copyOf(events.subList(0, 2)), events.toString());
                int[] colors = {pl.groupOf(0), pl.groupOf(1)};
                assertEquals(
                        Set.of("split 0 " + Arrays.toString(colors), "split 1 " + Arrays.toString(colors)),
                        Set.copyOf(events.subList(2, 4)),
                        events.toString());
            }
        }
    }

    /** {@code c}, recording each call of {@link Communicator#split(int[])} (and failing on the exchanging one). */
    private static Communicator recordingSplits(Communicator c, List<String> events) {
        InvocationHandler h = (proxy, method, args) -> {
            if (method.getName().equals("split")) {
                if (!(args[0] instanceof int[] colors)) {
                    throw new AssertionError("split(int) exchanges colors; the placement's colors are known");
                }
                events.add("split " + c.rank() + " " + Arrays.toString(colors));
            }
            try {
                return method.invoke(c, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        };
        return (Communicator)
                Proxy.newProxyInstance(Communicator.class.getClassLoader(), new Class<?>[] {Communicator.class}, h);
    }
}
