// NCCL through the parallel runtime on real GPUs: the NCCL communicator's collectives against the hub's
// semantics (one rank per visible GPU, each on its own thread; with one GPU a single-rank communicator), and
// an MPMD MoDE model on two GPUs against one cpu device. Skips by assumption without a GPU / NCCL, and the
// multi-GPU parts without at least two GPUs.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.Nccl;
import ai.mode.model.io.NamedTensors;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.Evaluator;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.InProcessWorld;
import ai.mode.parallel.comm.NcclCommunicator;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.sched.ModelSnapshot;
import ai.mode.parallel.sched.ParallelLaunch;
import ai.mode.parallel.sched.ParallelModeModel;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.TestData;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class NcclParallelGpuTest {

    private static int gpus() {
        assumeTrue(
                CudaDriver.unavailableReason().isEmpty(),
                () -> "no CUDA driver: " + CudaDriver.unavailableReason().orElse(""));
        int n = CudaDriver.get().deviceCount();
        assumeTrue(n > 0, "no GPU visible");
        assumeTrue(
                Nccl.unavailableReason().isEmpty(),
                () -> "NCCL not available: " + Nccl.unavailableReason().orElse(""));
        return Math.min(n, 4);
    }

    @Test
    void ncclCollectivesOnEveryGpu() throws Exception {
        int n = gpus();
        Nccl.UniqueId id = Nccl.get().uniqueId();
        List<Integer> ranks = new ArrayList<>();
        for (int r = 0; r < n; r++) ranks.add(r);
        List<Backend> bs = new ArrayList<>();
        for (int r = 0; r < n; r++) bs.add(ParallelLaunch.open(new DeviceId("cuda", r), 1));
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<Communicator>> fs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                fs.add(pool.submit(
                        () -> (Communicator) NcclCommunicator.initRank(bs.get(rank), id, rank, ranks, "world")));
            }
            List<Communicator> comms = new ArrayList<>();
            for (Future<Communicator> f : fs) comms.add(f.get(120, TimeUnit.SECONDS));
            int len = 1000;
            InProcessWorld.run(comms, (r, c) -> {
                Backend be = c.backend();
                try (Tensor t = be.fromHost(TestData.normal(r, len), len)) {
                    c.allReduce(t, ReduceOp.SUM).await();
                    float[] got = be.toHostFloats(t);
                    for (int i = 0; i < len; i++) {
                        double s = 0;
                        for (int q = 0; q < n; q++) s += TestData.normal(q, len)[i];
                        assertEquals(s, got[i], 1e-5 * n);
                    }
                }
                int[] counts = new int[n];
                for (int q = 0; q < n; q++) counts[q] = q + 1;
                int total = Arrays.stream(counts).sum();
                try (Tensor s = be.fromHost(TestData.normal(50 + r, counts[r]), counts[r]);
                        Tensor g = be.zeros(total)) {
                    c.allGather(s, g, counts).await();
                    float[] got = be.toHostFloats(g);
                    for (int q = 0, pos = 0; q < n; q++)
                        for (int i = 0; i < counts[q]; i++)
                            assertEquals(TestData.normal(50 + q, counts[q])[i], got[pos++]);
                }
                int[] sc = new int[n], rc = new int[n];
                for (int q = 0; q < n; q++) {
                    sc[q] = (r + q) % 3 + 1;
                    rc[q] = (q + r) % 3 + 1;
                }
                float[] send = new float[Arrays.stream(sc).sum()];
                for (int q = 0, pos = 0; q < n; q++) for (int i = 0; i < sc[q]; i++) send[pos++] = 100 * r + 10 * q + i;
                try (Tensor s = be.fromHost(send, send.length);
                        Tensor rv = be.zeros(Arrays.stream(rc).sum())) {
                    c.allToAll(s, sc, rv, rc).await();
                    float[] got = be.toHostFloats(rv);
                    for (int q = 0, pos = 0; q < n; q++)
                        for (int i = 0; i < rc[q]; i++) assertEquals(100 * q + 10 * r + i, got[pos++], 0f);
                }
                double[] d = c.allReduce(new double[] {r, 1}, ReduceOp.SUM);
                assertArrayEquals(new double[] {n * (n - 1) / 2.0, n}, d, 0);
                Communicator split = c.split(r % 2);
                try (Tensor t = be.fromHost(new float[] {r}, 1)) {
                    split.allReduce(t, ReduceOp.MAX).await();
                    assertEquals(split.worldRanks().get(split.size() - 1), (int) be.toHostFloats(t)[0]);
                }
                split.close();
                c.barrier();
                c.close();
                return null;
            });
        } finally {
            pool.shutdownNow();
            bs.forEach(Backend::close);
        }
    }

    /**
     * Communicator creation repeated: each round every local GPU joins a fresh world on its own thread, the threads
     * meet at a barrier (no collective before every sibling's ncclCommInitRank returned), then split it by locally
     * known colors ({@code ncclCommSplit}, odd rounds) or by exchanged colors (even rounds), reduce over the group
     * and destroy both. A hang here is the deadlock the barrier and the split prevent.
     */
    @Test
    void createAndSplitCommunicatorsTwentyTimes() throws Exception {
        int n = gpus();
        List<Integer> ranks = new ArrayList<>();
        for (int r = 0; r < n; r++) ranks.add(r);
        int[] colors = new int[n];
        for (int r = 0; r < n; r++) colors[r] = r % 2;
        List<Backend> bs = new ArrayList<>();
        for (int r = 0; r < n; r++) bs.add(ParallelLaunch.open(new DeviceId("cuda", r), 1));
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            for (int round = 0; round < 20; round++) {
                Nccl.UniqueId id = Nccl.get().uniqueId();
                CyclicBarrier joined = new CyclicBarrier(n);
                boolean local = round % 2 == 1;
                String world = "world" + round;
                List<Future<Float>> fs = new ArrayList<>();
                for (int r = 0; r < n; r++) {
                    int rank = r;
                    fs.add(pool.submit(() -> {
                        try (Communicator c = NcclCommunicator.initRank(bs.get(rank), id, rank, ranks, world)) {
                            joined.await(120, TimeUnit.SECONDS);
                            try (Communicator g = local ? c.split(colors) : c.split(colors[rank]);
                                    Tensor t = bs.get(rank).fromHost(new float[] {rank + 1}, 1)) {
                                assertEquals(
                                        ranks.stream()
                                                .filter(q -> q % 2 == rank % 2)
                                                .toList(),
                                        g.worldRanks());
                                g.allReduce(t, ReduceOp.SUM).await();
                                return bs.get(rank).toHostFloats(t)[0];
                            }
                        }
                    }));
                }
                for (int r = 0; r < n; r++) {
                    float want = 0;
                    for (int q = r % 2; q < n; q += 2) want += q + 1;
                    assertEquals(want, fs.get(r).get(120, TimeUnit.SECONDS), "round " + round + ", rank " + r);
                }
            }
        } finally {
            pool.shutdownNow();
            bs.forEach(Backend::close);
        }
    }

    @Test
    void mpmdOnTwoGpusMatchesOneCpuDevice() {
        assumeTrue(gpus() >= 2, "needs two GPUs");
        int batch = 4, seq = 6;
        try (Backend be = Backends.create("cpu", 1);
                ModeModel ref = TinyMode.model(be, TinyMode.CFG, Routing.parse("top2"), 31)) {
            ref.selectTrainable(true);
            ModelSnapshot snap = ModelSnapshot.of(ref);
            int[] win = new int[batch * (seq + 1)];
            new TinyMode.Stream(2, TinyMode.CFG.vocabSize()).next(batch, seq, win);
            int[] ids = Evaluator.inputs(win, batch, seq), tg = Evaluator.targets(win, batch, seq);
            try (Tensor i = be.fromHost(ids, batch, seq);
                    Tensor t = be.fromHost(tg, batch, seq)) {
                ref.forwardBackward(i, t, 1f / (batch * seq));
            }
            ParallelLaunch.Options o = new ParallelLaunch.Options(
                    DeviceSpec.parse("cuda:0-1"),
                    "mpmd",
                    2,
                    0,
                    ParallelLaunch.Comm.NCCL,
                    1,
                    java.time.Duration.ofSeconds(60),
                    java.time.Duration.ofSeconds(60));
            try (ParallelLaunch launch = ParallelLaunch.start(o, java.util.Optional.empty(), 2, 3);
                    ParallelModeModel pm = launch.model(snap, AdamW.Config.defaults())) {
                assertEquals("nccl", launch.communicator());
                pm.forwardBackward(ids, tg, batch, seq, 1f / (batch * seq), true, true);
                NamedTensors grads = pm.gather(true);
                for (Parameter p : ref.trainableParameters()) {
                    double err = TinyMode.relError(grads.data(p.name()), be.toHostFloats(p.grad()));
                    assertTrue(err < 1e-2, "gradient of " + p.name() + " differs by " + err);
                }
            }
        }
    }
}
