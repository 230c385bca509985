// The multi-process launch on loopback: torchrun variables, the rendezvous with real sockets (threads as
// processes bringing different device counts, then collectives over the TCP hub), rank 0's hub serving the
// others until they leave, separate JVM processes, and the failures: a rank that never arrives times out with
// its name, a mismatched WORLD_SIZE is refused, a process that dies mid-run fails the others instead of hanging.
// Ordering comes from the hub's hooks (its events, its timer), never from sleeps or elapsed times.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.HubCommunicator;
import ai.mode.parallel.comm.InProcessWorld;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.net.HubServer;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.net.Rendezvous;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

public class RendezvousTest {

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The job secret of the tests' multi-process runs (what {@code openssl rand -hex 32} would make). */
    static final String SECRET_TEXT = "0123456789abcdef0123456789abcdef-test-job";

    private static LaunchEnv env(int port, int rank, int world) {
        return new LaunchEnv("127.0.0.1", port, rank, world, rank, HubStrangerTest.SECRET);
    }

    @Test
    void launchVariablesParse() {
        assertTrue(LaunchEnv.from(Map.of()).isEmpty());
        LaunchEnv e = LaunchEnv.from(Map.of(
                        "MASTER_ADDR",
                        "node0",
                        "MASTER_PORT",
                        "29500",
                        "RANK",
                        "3",
                        "WORLD_SIZE",
                        "8",
                        "LOCAL_RANK",
                        "1",
                        "MODE_JOB_SECRET",
                        SECRET_TEXT))
                .orElseThrow();
        assertEquals(
                List.of("node0", 29500, 3, 8, 1),
                List.of(e.masterAddr(), e.masterPort(), e.rank(), e.worldSize(), e.localRank()));
        assertFalse(e.toString().contains(SECRET_TEXT), e.toString());
        assertEquals("node0:29500", e.master());
        IllegalArgumentException missing = assertThrows(
                IllegalArgumentException.class, () -> LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "2")));
        assertTrue(missing.getMessage().contains("MASTER_ADDR, MASTER_PORT are not set"), missing.getMessage());
        IllegalArgumentException range = assertThrows(
                IllegalArgumentException.class,
                () -> LaunchEnv.from(Map.of(
                        "MASTER_ADDR",
                        "h",
                        "MASTER_PORT",
                        "1",
                        "RANK",
                        "2",
                        "WORLD_SIZE",
                        "2",
                        "MODE_JOB_SECRET",
                        SECRET_TEXT)));
        assertTrue(range.getMessage().contains("RANK must be in 0..1"), range.getMessage());
        IllegalArgumentException num = assertThrows(
                IllegalArgumentException.class,
                () -> LaunchEnv.from(Map.of("MASTER_ADDR", "h", "MASTER_PORT", "x", "RANK", "0", "WORLD_SIZE", "2")));
        assertTrue(num.getMessage().contains("MASTER_PORT must be an integer"), num.getMessage());
    }

    @Test
    void processesWithSeveralDevicesJoinAndRunCollectivesOverTcp() throws Exception {
        int port = freePort();
        int[] devices = {2, 1, 3};
        byte[] payload = "nccl-id-stand-in".getBytes(StandardCharsets.UTF_8);
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            List<Future<List<String>>> fs = new ArrayList<>();
            for (int p = 2; p >= 0; p--) { // rank 0 starts last: the others retry until it listens
                int proc = p;
                fs.add(0, pool.submit(() -> {
                    try (Rendezvous.Joined j =
                            Rendezvous.join(env(port, proc, 3), devices[proc], Duration.ofSeconds(20), () -> payload)) {
                        assertArrayEquals(payload, j.payload());
                        assertEquals(6, j.worldSize());
                        assertEquals(3, j.processes());
                        List<Backend> bs = TinyMode.cpus(devices[proc]);
                        List<Communicator> comms = new ArrayList<>();
                        List<Integer> all = List.of(0, 1, 2, 3, 4, 5);
                        for (int d = 0; d < devices[proc]; d++)
                            comms.add(new HubCommunicator(
                                    j.transport(), "world", j.firstRank() + d, all, bs.get(d), Duration.ofSeconds(20)));
                        try {
                            return InProcessWorld.run(comms, (i, c) -> {
                                Backend be = c.backend();
                                int r = c.rank();
                                try (Tensor t = be.fromHost(new float[] {r, 1}, 2);
                                        Tensor g = be.allocate(ai.mode.runtime.DType.I32, 6)) {
                                    c.allReduce(t, ReduceOp.SUM).await();
                                    c.allGather(be.fromHost(new int[] {r * r}, 1), g)
                                            .await();
                                    Communicator sub = c.split(r < 3 ? 0 : 1);
                                    sub.allReduce(t, ReduceOp.MAX).await();
                                    c.barrier();
                                    int[] gi = new int[6];
                                    be.toHost(g, gi);
                                    return r + ":" + be.toHostFloats(t)[0] + "," + be.toHostFloats(t)[1] + ":"
                                            + java.util.Arrays.toString(gi) + ":" + sub.worldRanks();
                                }
                            });
                        } finally {
                            bs.forEach(Backend::close);
                        }
                    }
                }));
            }
            List<String> lines = new ArrayList<>();
            for (Future<List<String>> f : fs) lines.addAll(f.get(60, TimeUnit.SECONDS));
            assertEquals(6, lines.size());
            for (int r = 0; r < 6; r++) {
                String line = lines.get(r);
                assertEquals(
                        r + ":15.0,6.0:[0, 1, 4, 9, 16, 25]:" + (r < 3 ? "[0, 1, 2]" : "[3, 4, 5]"),
                        line,
                        "process order gives world ranks 0-1 | 2 | 3-5");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void theHubServesTheOtherProcessesUntilTheyLeaveAfterRankZeroCloses() throws Exception {
        int port = freePort();
        CompletableFuture<List<Integer>> closeWaits = new CompletableFuture<>();
        HubServer.Hooks hooks = new HubServer.Hooks() {
            @Override
            public void closeWaits(List<Integer> ranks) {
                closeWaits.complete(ranks);
            }
        };
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> master = pool.submit(() -> {
                Rendezvous.join(env(port, 0, 2), 1, Duration.ofSeconds(20), () -> new byte[0], hooks)
                        .close(); // done before the other process
                return null;
            });
            float[] reduced;
            try (Rendezvous.Joined j = Rendezvous.join(env(port, 1, 2), 2, Duration.ofSeconds(20), () -> new byte[0])) {
                List<Integer> waits = closeWaits.get(20, TimeUnit.SECONDS);
                assertTrue(waits.contains(1), "rank 0's close waits for process 1: " + waits);
                List<Backend> bs = TinyMode.cpus(2);
                try {
                    List<Communicator> pair = new ArrayList<>();
                    for (int d = 0; d < 2; d++)
                        pair.add(new HubCommunicator(
                                j.transport(),
                                "pair",
                                d,
                                List.of(j.firstRank(), j.firstRank() + 1),
                                bs.get(d),
                                Duration.ofSeconds(20)));
                    List<float[]> out = InProcessWorld.run(pair, (i, c) -> {
                        try (Tensor t = c.backend().fromHost(new float[] {c.rank() + 1, 10}, 2)) {
                            c.allReduce(t, ReduceOp.SUM).await();
                            return c.backend().toHostFloats(t);
                        }
                    });
                    reduced = out.get(1);
                    assertArrayEquals(out.get(0), reduced);
                } finally {
                    bs.forEach(Backend::close);
                }
                assertFalse(master.isDone(), "rank 0's close returned while process 1 was still connected");
            }
            assertArrayEquals(
                    new float[] {3, 20}, reduced, "ranks 1 and 2 reduced through the hub while rank 0 was closing");
            master.get(20, TimeUnit.SECONDS); // and it returns once process 1 has left
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aRankThatNeverArrivesTimesOutCleanly() throws Exception {
        int port = freePort();
        CompletableFuture<Void> timeUp = new CompletableFuture<>();
        HubServer.Hooks clock = new HubServer.Hooks() { // the timeout passes once ranks 0 and 1 are in
                    @Override
                    public void arrived(int rank, int arrived) {
                        if (arrived == 2) timeUp.complete(null);
                    }

                    @Override
                    public CompletionStage<?> after(Duration timeout) {
                        return timeUp;
                    }
                };
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<String>> fs = new ArrayList<>();
            for (int p = 0; p < 2; p++) {
                int proc = p;
                fs.add(pool.submit(() -> {
                    IllegalStateException e = assertThrows(
                            IllegalStateException.class,
                            () -> Rendezvous.join(
                                            env(port, proc, 3), 1, Duration.ofSeconds(20), () -> new byte[0], clock)
                                    .close());
                    return e.getMessage();
                }));
            }
            for (Future<String> f : fs) {
                String msg = f.get(40, TimeUnit.SECONDS);
                assertTrue(msg.contains("timed out after 20.0 s: 2 of 3 processes arrived; missing rank(s) [2]"), msg);
            }
        } finally {
            pool.shutdownNow();
        }
        HubServer.Hooks.NONE
                .after(Duration.ofMillis(1))
                .toCompletableFuture()
                .get(20, TimeUnit.SECONDS); // the wall-clock timer does pass
        IllegalStateException nobody = assertThrows(
                IllegalStateException.class,
                () -> Rendezvous.join(env(freePort(), 1, 2), 1, Duration.ofMillis(500), () -> new byte[0])
                        .close());
        assertTrue(nobody.getMessage().contains("could not reach the rendezvous at 127.0.0.1"), nobody.getMessage());
    }

    @Test
    void aMismatchedWorldSizeIsRefused() throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<String> master = pool.submit(() -> assertThrows(
                            IllegalStateException.class,
                            () -> Rendezvous.join(env(port, 0, 2), 1, Duration.ofSeconds(10), () -> new byte[0])
                                    .close())
                    .getMessage());
            String other = assertThrows(
                            IllegalStateException.class,
                            () -> Rendezvous.join(
                                            new LaunchEnv("127.0.0.1", port, 1, 3, 1, HubStrangerTest.SECRET),
                                            1,
                                            Duration.ofSeconds(10),
                                            () -> new byte[0])
                                    .close())
                    .getMessage();
            String m0 = master.get(20, TimeUnit.SECONDS);
            assertTrue(other.contains("says WORLD_SIZE=3 but rank 0 has WORLD_SIZE=2"), other + " / master: " + m0);
            assertTrue(m0.contains("WORLD_SIZE=3"), m0);
        } finally {
            pool.shutdownNow();
        }
    }

    /** A child JVM on this test's class path that runs {@code mainClass} with {@code args} (a fast-starting one). */
    public static List<String> childJvm(String mainClass, String... args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(
                java,
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "--add-modules",
                "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                cp,
                mainClass));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private static Process child(int port, int rank, int world, String mode) throws IOException {
        ProcessBuilder pb =
                new ProcessBuilder(childJvm(RendezvousProbe.class.getName(), mode)).redirectErrorStream(true);
        pb.environment()
                .putAll(Map.of(
                        "MASTER_ADDR",
                        "127.0.0.1",
                        "MASTER_PORT",
                        Integer.toString(port),
                        "RANK",
                        Integer.toString(rank),
                        "WORLD_SIZE",
                        Integer.toString(world),
                        "LOCAL_RANK",
                        "0",
                        "MODE_JOB_SECRET",
                        SECRET_TEXT));
        return pb.start();
    }

    @Test
    void separateJvmProcessesJoinAndAgree() throws Exception {
        int port = freePort();
        List<Process> kids = List.of(child(port, 1, 3, "run"), child(port, 2, 3, "run"));
        try (Rendezvous.Joined j = Rendezvous.join(env(port, 0, 3), 1, Duration.ofSeconds(30), () -> new byte[0]);
                Backend be = Backends.create("cpu", 1)) {
            String mine = RendezvousProbe.run(j, be);
            assertEquals("rank=0 sum=6.0 gathered=[0.0, 10.0, 20.0] ring=2.0", mine);
            for (int k = 0; k < 2; k++) {
                Process p = kids.get(k);
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "child exits");
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertEquals(0, p.exitValue(), out);
                int r = k + 1;
                assertTrue(
                        out.contains("rank=" + r + " sum=6.0 gathered=[0.0, 10.0, 20.0] ring=" + (float) (r - 1)), out);
            }
        } finally {
            kids.forEach(Process::destroyForcibly);
        }
    }

    /**
     * A frozen process (SIGSTOP: connected, silent): rank 0's collective fails after the communication timeout naming
     * it, and rank 0's close then returns instead of waiting the rendezvous timeout (an hour here) for the frozen
     * process to say goodbye.
     */
    @Test
    void aFrozenProcessEndsTheRunWithinTheCommunicationTimeoutNamingIt() throws Exception {
        String msg = frozenPeer();
        assertTrue(msg.contains("timed out") && msg.contains("rank(s) [1] did not arrive"), msg);
    }

    /**
     * Rank 1 joins and freezes; rank 0's barrier fails at a 0.5 s communication timeout and rank 0 closes while
     * rank 1 is still frozen (checked). Returns rank 0's error.
     */
    static String frozenPeer() throws Exception {
        int port = freePort();
        CountDownLatch thaw = new CountDownLatch(1);
        CompletableFuture<Void> frozen = new CompletableFuture<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> peer = pool.submit(() -> {
                try (Rendezvous.Joined j =
                        Rendezvous.join(env(port, 1, 2), 1, Duration.ofHours(1), () -> new byte[0])) {
                    frozen.complete(null);
                    thaw.await(); // frozen: connected, never joins the collective, never says goodbye
                }
                return null;
            });
            Future<String> master = pool.submit(() -> {
                try (Rendezvous.Joined j = Rendezvous.join(env(port, 0, 2), 1, Duration.ofHours(1), () -> new byte[0]);
                        Backend be = Backends.create("cpu", 1)) {
                    frozen.get(20, TimeUnit.SECONDS);
                    Communicator c =
                            new HubCommunicator(j.transport(), "world", 0, List.of(0, 1), be, Duration.ofMillis(500));
                    return assertThrows(CommunicatorException.class, c::barrier).getMessage();
                } // the close: returns without waiting for the frozen process
            });
            String msg = master.get(60, TimeUnit.SECONDS);
            assertFalse(peer.isDone(), "the peer is still frozen while rank 0 has finished");
            thaw.countDown();
            peer.get(20, TimeUnit.SECONDS);
            return msg;
        } finally {
            thaw.countDown();
            pool.shutdownNow();
        }
    }

    @Test
    void aProcessThatDiesFailsTheOthersInsteadOfHanging() throws Exception {
        int port = freePort();
        Process kid = child(port, 1, 2, "die");
        try (Rendezvous.Joined j = Rendezvous.join(env(port, 0, 2), 1, Duration.ofSeconds(30), () -> new byte[0]);
                Backend be = Backends.create("cpu", 1)) {
            Communicator c = new HubCommunicator(j.transport(), "world", 0, List.of(0, 1), be, Duration.ofSeconds(30));
            CommunicatorException e = assertThrows(CommunicatorException.class, c::barrier);
            // the disconnect, not the communicator timeout, ended the wait
            assertTrue(
                    e.getMessage().contains("process rank 1")
                            && e.getMessage().contains("disconnected")
                            && !e.getMessage().contains("timed out"),
                    e.getMessage());
            assertTrue(kid.waitFor(20, TimeUnit.SECONDS));
            assertEquals(3, kid.exitValue());
        } finally {
            kid.destroyForcibly();
        }
    }
}
