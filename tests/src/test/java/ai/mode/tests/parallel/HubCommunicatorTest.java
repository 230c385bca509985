// Collective semantics of the hub communicator (threads as ranks, in-process hub) against naive references:
// every collective on 1-4 ranks with uneven sizes, i32 data, splits and async overlap; and the failure modes:
// a failing rank, a rank that never arrives (timeout naming it), mismatched calls, wrong sizes. Timeouts bound
// hangs; the outcomes never depend on how fast a rank's thread runs.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.InProcessWorld;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.TestData;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HubCommunicatorTest {

    private static <T> List<T> onRanks(int n, Duration timeout, InProcessWorld.RankTask<T> task) {
        List<Backend> bs = TinyMode.cpus(n);
        try {
            return InProcessWorld.run(InProcessWorld.create(bs, timeout), task);
        } finally {
            bs.forEach(Backend::close);
        }
    }

    /** Rank r's input of length len for a named op: seeded normals, different on every rank. */
    private static float[] data(int rank, int len, int salt) {
        return TestData.normal(1000L * salt + rank, len);
    }

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {1, 2, 3, 4})
    void collectivesMatchNaiveReferences(int n) {
        int len = 37;
        List<String> ok = onRanks(n, Duration.ofSeconds(20), (r, c) -> {
            Backend be = c.backend();
            assertEquals(r, c.rank());
            assertEquals(n, c.size());
            // all-reduce: float32 accumulation in rank order (bitwise), average, max
            for (ReduceOp op : ReduceOp.values()) {
                try (Tensor t = be.fromHost(data(r, len, 1), len)) {
                    c.allReduce(t, op).await();
                    float[] got = be.toHostFloats(t);
                    for (int i = 0; i < len; i++) {
                        float want = data(0, len, 1)[i];
                        for (int q = 1; q < n; q++)
                            want = op == ReduceOp.MAX ? Math.max(want, data(q, len, 1)[i]) : want + data(q, len, 1)[i];
                        if (op == ReduceOp.AVG) want /= n;
                        assertEquals(want, got[i], 0f, op + " element " + i);
                    }
                }
            }
            // uneven all-gather: rank q contributes q+1 elements... and rank 0 none when n > 1
            int[] counts = new int[n];
            for (int q = 0; q < n; q++) counts[q] = n > 1 && q == 0 ? 0 : q + 2;
            int total = Arrays.stream(counts).sum();
            try (Tensor s = be.fromHost(counts[r] == 0 ? new float[1] : data(r, counts[r], 2), Math.max(1, counts[r]));
                    Tensor g = be.zeros(total)) {
                c.allGather(be.slice(s, 0, counts[r]), g, counts).await();
                float[] got = be.toHostFloats(g);
                int pos = 0;
                for (int q = 0; q < n; q++) {
                    float[] w = data(q, Math.max(1, counts[q]), 2);
                    for (int i = 0; i < counts[q]; i++) assertEquals(w[i], got[pos++], 0f, "all-gather block " + q);
                }
            }
            // uneven reduce-scatter: rank q gets counts[q] elements of the elementwise sum
            try (Tensor s = be.fromHost(data(r, total, 3), total);
                    Tensor out = be.zeros(Math.max(1, counts[r]))) {
                c.reduceScatter(s, be.slice(out, 0, counts[r]), counts, ReduceOp.SUM)
                        .await();
                float[] got = be.toHostFloats(out);
                int from = 0;
                for (int q = 0; q < r; q++) from += counts[q];
                for (int i = 0; i < counts[r]; i++) {
                    float want = data(0, total, 3)[from + i];
                    for (int q = 1; q < n; q++) want += data(q, total, 3)[from + i];
                    assertEquals(want, got[i], 0f, "reduce-scatter element " + i);
                }
            }
            // broadcast from every root, f32 and i32
            for (int root = 0; root < n; root++) {
                try (Tensor t = be.fromHost(data(r, len, 4), len);
                        Tensor ti = be.fromHost(new int[] {r * 10, r * 10 + 1, -r}, 3)) {
                    c.broadcast(t, root).await();
                    c.broadcast(ti, root).await();
                    assertArrayEquals(data(root, len, 4), be.toHostFloats(t), "broadcast from " + root);
                    int[] gi = new int[3];
                    be.toHost(ti, gi);
                    assertArrayEquals(new int[] {root * 10, root * 10 + 1, -root}, gi);
                }
            }
            // ring send/recv in one exchange, plus a self-send
            int next = (r + 1) % n, prev = (r + n - 1) % n;
            try (Tensor s = be.fromHost(data(r, 5, 5), 5);
                    Tensor got = be.zeros(5);
                    Tensor self = be.zeros(5)) {
                c.exchange(List.of(Communicator.Transfer.send(s, next), Communicator.Transfer.recv(got, prev)))
                        .await();
                assertArrayEquals(data(prev, 5, 5), be.toHostFloats(got), "ring message from " + prev);
                c.send(s, r);
                c.recv(self, r).await();
                assertArrayEquals(data(r, 5, 5), be.toHostFloats(self), "self message");
            }
            // all-to-all with uneven (some zero) block sizes: rank s sends (s + d) % 3 elements to d
            int[] sc = new int[n], rc = new int[n];
            for (int q = 0; q < n; q++) {
                sc[q] = (r + q) % 3;
                rc[q] = (q + r) % 3;
            }
            int sn = Arrays.stream(sc).sum(), rn = Arrays.stream(rc).sum();
            float[] send = new float[Math.max(1, sn)];
            for (int q = 0, pos = 0; q < n; q++) for (int i = 0; i < sc[q]; i++) send[pos++] = 100 * r + 10 * q + i;
            try (Tensor s = be.fromHost(send, send.length);
                    Tensor rv = be.zeros(Math.max(1, rn))) {
                c.allToAll(be.slice(s, 0, sn), sc, be.slice(rv, 0, rn), rc).await();
                float[] got = be.toHostFloats(rv);
                for (int q = 0, pos = 0; q < n; q++)
                    for (int i = 0; i < rc[q]; i++)
                        assertEquals(100 * q + 10 * r + i, got[pos++], 0f, "all-to-all from " + q);
            }
            // host doubles, barrier
            double[] sum = c.allReduce(new double[] {r + 0.5, 1e20, -r}, ReduceOp.SUM);
            assertArrayEquals(new double[] {n * (n - 1) / 2.0 + 0.5 * n, 1e20 * n, -n * (n - 1) / 2.0}, sum, 1e-3);
            c.barrier();
            return "ok";
        });
        assertEquals(n, ok.size());
    }

    @Test
    void issuedOperationsOverlapAndCompleteInAnyAwaitOrder() {
        int n = 3, len = 11;
        onRanks(n, Duration.ofSeconds(20), (r, c) -> {
            Backend be = c.backend();
            List<Tensor> ts = new ArrayList<>();
            List<CommHandle> hs = new ArrayList<>();
            for (int k = 0; k < 4; k++) {
                Tensor t = be.fromHost(data(r, len, 10 + k), len);
                ts.add(t);
                hs.add(c.allReduce(t, ReduceOp.SUM));
            }
            // inputs may change as soon as an operation is issued; the results are those of the issued values
            for (Tensor t : ts) be.fill(t, 1e6f);
            for (int k = 3; k >= 0; k--) {
                hs.get(k).await();
                hs.get(k).await();
                assertTrue(hs.get(k).isDone());
                float[] got = be.toHostFloats(ts.get(k));
                float want0 = data(0, len, 10 + k)[0] + data(1, len, 10 + k)[0] + data(2, len, 10 + k)[0];
                assertEquals(want0, got[0], 0f);
            }
            ts.forEach(Tensor::close);
            return null;
        });
    }

    @Test
    void splitFormsGroupsByColor() {
        onRanks(4, Duration.ofSeconds(20), (r, c) -> {
            Backend be = c.backend();
            Communicator half = c.split(r % 2);
            assertEquals(List.of(r % 2, r % 2 + 2), half.worldRanks());
            assertEquals(r / 2, half.rank());
            try (Tensor t = be.fromHost(new float[] {r}, 1)) {
                half.allReduce(t, ReduceOp.SUM).await();
                assertEquals(r % 2 == 0 ? 2f : 4f, be.toHostFloats(t)[0]);
            }
            Communicator none = c.split(r == 3 ? -1 : 0);
            if (r == 3) assertNull(none);
            else assertEquals(3, none.size());
            return null;
        });
    }

    @Test
    void aFailingRankFailsTheOthersInsteadOfHanging() {
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> onRanks(4, Duration.ofSeconds(30), (r, c) -> {
                    try (Tensor t = c.backend().fromHost(new float[] {1, 2}, 2)) {
                        c.allReduce(t, ReduceOp.SUM).await();
                        if (r == 2) throw new IllegalStateException("simulated failure on rank 2");
                        c.allReduce(t, ReduceOp.SUM).await(); // the others wait here for rank 2
                        c.barrier();
                    }
                    return null;
                }));
        assertEquals("simulated failure on rank 2", e.getMessage());
        assertEquals(3, e.getSuppressed().length, "the three other ranks failed too");
        for (Throwable s : e.getSuppressed()) { // with rank 2's reason, not after timing out
            assertTrue(
                    s instanceof CommunicatorException && s.getMessage().contains("rank 2 failed: simulated failure"),
                    s.getMessage());
        }
    }

    @Test
    void aRankThatNeverArrivesTimesOutWithItsName() {
        CountDownLatch rank2In = new CountDownLatch(1);
        CommunicatorException e = assertThrows(
                CommunicatorException.class,
                () -> onRanks(3, Duration.ofMillis(300), (r, c) -> {
                    if (r == 1) return null; // rank 1 leaves without joining the all-reduce
                    try (Tensor t = c.backend().zeros(2)) {
                        CommHandle h =
                                c.allReduce(t, ReduceOp.SUM); // contributes now; only rank 0 waits, once rank 2 is in
                        if (r == 2) {
                            rank2In.countDown();
                            return null;
                        }
                        assertTrue(rank2In.await(20, TimeUnit.SECONDS));
                        h.await();
                    }
                    return null;
                }));
        assertTrue(
                e.getMessage().contains("rank 0 timed out") && e.getMessage().contains("rank(s) [1] did not arrive"),
                e.getMessage());
        CommunicatorException p2p = assertThrows(
                CommunicatorException.class,
                () -> onRanks(2, Duration.ofMillis(300), (r, c) -> {
                    if (r == 0) {
                        try (Tensor t = c.backend().zeros(3)) {
                            c.recv(t, 1).await();
                        }
                    }
                    return null;
                }));
        assertTrue(p2p.getMessage().contains("rank 1 sent nothing"), p2p.getMessage());
    }

    @Test
    void mismatchedCallsAndSizesAreErrorsOnEveryRank() {
        CommunicatorException e = assertThrows(
                CommunicatorException.class,
                () -> onRanks(2, Duration.ofSeconds(20), (r, c) -> {
                    try (Tensor t = c.backend().zeros(4)) {
                        if (r == 0) c.allReduce(t, ReduceOp.SUM).await();
                        else c.broadcast(t, 0).await();
                    }
                    return null;
                }));
        assertTrue(
                e.getMessage().contains("member 0 called all-reduce(SUM) but member 1 called broadcast(root 0)"),
                e.getMessage());
        CommunicatorException sizes = assertThrows(
                CommunicatorException.class,
                () -> onRanks(2, Duration.ofSeconds(20), (r, c) -> {
                    try (Tensor t = c.backend().zeros(3 + r)) {
                        c.allReduce(t, ReduceOp.SUM).await();
                    }
                    return null;
                }));
        assertTrue(sizes.getMessage().contains("all-reduce sizes differ"), sizes.getMessage());
        CommunicatorException recv = assertThrows(
                CommunicatorException.class,
                () -> onRanks(2, Duration.ofSeconds(20), (r, c) -> {
                    try (Tensor t = c.backend().zeros(r == 0 ? 3 : 5)) {
                        if (r == 0) c.send(t, 1).await();
                        else c.recv(t, 0).await();
                    }
                    return null;
                }));
        assertTrue(recv.getMessage().contains("sent f32[3] but rank 1 expected f32[5]"), recv.getMessage());
    }

    @Test
    void unsupportedTensorsAreRejectedWithTheFix() {
        onRanks(1, Duration.ofSeconds(5), (r, c) -> {
            try (Tensor i = c.backend().allocate(DType.I32, 2)) {
                IllegalArgumentException e =
                        assertThrows(IllegalArgumentException.class, () -> c.allReduce(i, ReduceOp.SUM));
                assertTrue(e.getMessage().contains("reduces f32"), e.getMessage());
            }
            try (Tensor t = c.backend().zeros(2)) {
                IllegalArgumentException e =
                        assertThrows(IllegalArgumentException.class, () -> c.allGather(t, t, new int[] {1}));
                assertTrue(e.getMessage().contains("this rank's count is 1"), e.getMessage());
                assertThrows(IllegalArgumentException.class, () -> c.send(t, 1));
            }
            return null;
        });
    }
}
