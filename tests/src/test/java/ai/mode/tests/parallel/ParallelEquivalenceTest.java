// Every placement on 1, 2 and 4 cpu devices (in-process communicator) gives the single-device model's
// gradients and, over several AdamW steps, its losses and parameters: dense and top-k routing, token and
// sequence level, data parallel with uneven shards, MPMD groups, per-block backbone groups.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.Trainer;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import ai.mode.parallel.sched.ModelSnapshot;
import ai.mode.parallel.sched.ParallelModeModel;
import ai.mode.parallel.sched.ParallelTrainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ParallelEquivalenceTest {
    private static final int BATCH = 5, SEQ = 6;

    /** (name, devices, placement from devices) */
    static Stream<Arguments> placements() {
        return Stream.of(
                Arguments.of("single", 1, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.single(d, 2, 3)),
                Arguments.of("data x2", 2, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.data(d, 2, 3)),
                Arguments.of("mpmd 2 groups", 2, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.mpmd(d, 2, 3, 2, 0)),
                Arguments.of("data x4 (uneven shards)", 4, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.data(d, 2, 3)),
                Arguments.of(
                        "mpmd 3 groups, backbone x2", 4, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                                d -> Placement.mpmd(d, 2, 3, 3, 2)),
                Arguments.of("mpmd 2 groups, each x2", 4, (Function<List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.mpmd(d, 2, 3, 2, 2)),
                Arguments.of("per-block backbones, experts x2", 4, (Function<
                                List<ai.mode.parallel.place.DeviceId>, Placement>)
                        d -> Placement.parse(
                                "cpu:0=backbone:0+experts:2@0;cpu:1=backbone:1;cpu:2-3=experts:0-1+experts:2@1",
                                d,
                                2,
                                3)));
    }

    static Stream<Arguments> routedPlacements() {
        List<Arguments> out = new ArrayList<>();
        for (Routing r : List.of(
                Routing.DENSE,
                Routing.parse("top2"),
                Routing.parse("sequence-dense"),
                Routing.parse("sequence-top1"))) {
            placements().forEach(a -> out.add(Arguments.of(r, a.get()[0], a.get()[1], a.get()[2])));
        }
        return out.stream();
    }

    private static ParallelModeModel parallel(
            ModelSnapshot snap, int devices, Function<List<ai.mode.parallel.place.DeviceId>, Placement> place) {
        Placement pl = place.apply(DeviceSpec.parse("cpu:0-" + (devices - 1)));
        return ParallelModeModel.inProcess(
                pl, TinyMode.cpus(devices), snap, AdamW.Config.defaults(), Duration.ofSeconds(20));
    }

    @ParameterizedTest(name = "{0} / {1}")
    @MethodSource("routedPlacements")
    void gradientsMatchOneDevice(
            Routing routing,
            String name,
            int devices,
            Function<List<ai.mode.parallel.place.DeviceId>, Placement> place) {
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, routing, 7)) {
            ref.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            int[] win = new int[BATCH * (SEQ + 1)];
            new TinyMode.Stream(3, TinyMode.CFG.vocabSize()).next(BATCH, SEQ, win);
            int[] ids = Evaluator.inputs(win, BATCH, SEQ), tg = Evaluator.targets(win, BATCH, SEQ);
            float scale = 1f / (BATCH * SEQ);
            LossStats want;
            try (Tensor i = be.fromHost(ids, BATCH, SEQ);
                    Tensor t = be.fromHost(tg, BATCH, SEQ)) {
                want = ref.forwardBackward(i, t, scale);
            }
            try (ParallelModeModel pm = parallel(snap, devices, place)) {
                LossStats got = pm.forwardBackward(ids, tg, BATCH, SEQ, scale, true, true);
                assertEquals(want.count(), got.count());
                assertEquals(want.correct(), got.correct());
                assertEquals(want.lossSum(), got.lossSum(), 1e-5 * Math.abs(want.lossSum()), name + ": loss");
                NamedTensors grads = pm.gather(true);
                int checked = 0;
                for (Parameter p : ref.trainableParameters()) {
                    float[] w = be.toHostFloats(p.grad());
                    assertTrue(grads.contains(p.name()), name + ": no gradient for " + p.name());
                    double err = TinyMode.relError(grads.data(p.name()), w);
                    assertTrue(err < 2e-4, name + ": gradient of " + p.name() + " differs by " + err);
                    checked++;
                }
                assertEquals(ref.trainableParameters().size(), grads.size(), name + ": gathered gradients");
                assertTrue(checked > 20);
            }
        }
    }

    /** Every parameter trainable (backbone, embedding tied to the head, final norm): backward reaches the embedding. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("placements")
    void fullFineTuningGradientsMatch(
            String name, int devices, Function<List<ai.mode.parallel.place.DeviceId>, Placement> place) {
        ai.mode.model.LlamaConfig tied = TinyMode.CFG.withOverrides("tie_word_embeddings=true");
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, tied, Routing.parse("top3"), 13)) {
            for (Parameter p : ref.parameters()) p.setTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            int[] win = new int[BATCH * (SEQ + 1)];
            new TinyMode.Stream(4, tied.vocabSize()).next(BATCH, SEQ, win);
            int[] ids = Evaluator.inputs(win, BATCH, SEQ), tg = Evaluator.targets(win, BATCH, SEQ);
            float scale = 1f / (BATCH * SEQ);
            try (Tensor i = be.fromHost(ids, BATCH, SEQ);
                    Tensor t = be.fromHost(tg, BATCH, SEQ)) {
                ref.forwardBackward(i, t, scale);
            }
            Placement pl = place.apply(DeviceSpec.parse("cpu:0-" + (devices - 1)));
            if (pl.stemGroup() != pl.headGroup()) {
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class,
                        () -> ParallelModeModel.inProcess(
                                        pl,
                                        TinyMode.cpus(devices),
                                        snap,
                                        AdamW.Config.defaults(),
                                        Duration.ofSeconds(20))
                                .close());
                assertTrue(e.getMessage().contains("tied embeddings"), e.getMessage());
                return;
            }
            try (ParallelModeModel pm = ParallelModeModel.inProcess(
                    pl, TinyMode.cpus(devices), snap, AdamW.Config.defaults(), Duration.ofSeconds(20))) {
                pm.forwardBackward(ids, tg, BATCH, SEQ, scale, true, true);
                NamedTensors grads = pm.gather(true);
                assertEquals(ref.trainableParameters().size(), grads.size(), name + ": gathered gradients");
                for (Parameter p : ref.trainableParameters()) {
                    double err = TinyMode.relError(grads.data(p.name()), be.toHostFloats(p.grad()));
                    assertTrue(err < 2e-4, name + ": gradient of " + p.name() + " differs by " + err);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("placements")
    void trainingMatchesOneDevice(
            String name, int devices, Function<List<ai.mode.parallel.place.DeviceId>, Placement> place) {
        Trainer.Options opt =
                new Trainer.Options(3, BATCH, SEQ, 2, LrSchedule.constant(3e-3), AdamW.Config.defaults(), 0, 0, 11);
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, Routing.DENSE, 9)) {
            ref.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            List<Double> want = new ArrayList<>();
            Trainer.Listener rec = new Trainer.Listener() {
                @Override
                public void onStep(Trainer.StepMetrics m) {
                    want.add(m.loss());
                }
            };
            new Trainer(ref, new TinyMode.Stream(5, TinyMode.CFG.vocabSize()), null, opt, null, List.of(rec)).run();
            try (ParallelModeModel pm = parallel(snap, devices, place)) {
                ParallelTrainer pt =
                        new ParallelTrainer(pm, new TinyMode.Stream(5, TinyMode.CFG.vocabSize()), null, opt, List.of());
                pt.run();
                List<Double> got = pt.losses();
                assertEquals(want.size(), got.size());
                for (int s = 0; s < want.size(); s++)
                    assertEquals(want.get(s), got.get(s), 1e-5, name + ": loss of step " + (s + 1));
                NamedTensors values = pm.gather(false);
                for (Parameter p : ref.parameters()) {
                    assertTrue(values.contains(p.name()), name + ": parameter " + p.name() + " not gathered");
                    double err = TinyMode.relError(values.data(p.name()), be.toHostFloats(p.value()));
                    assertTrue(err < 1e-4, name + ": parameter " + p.name() + " after training differs by " + err);
                }
            }
        }
    }
}
