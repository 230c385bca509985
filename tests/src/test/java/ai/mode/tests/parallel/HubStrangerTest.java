package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.HubCommunicator;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.net.HubServer;
import ai.mode.parallel.net.JobSecret;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.net.Rendezvous;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Strangers at the rendezvous port (issue 14): an empty connection, a single 0x01 byte, random garbage, partial and
 * malformed HELLOs, silent clients, HELLOs that cannot answer the job-secret challenge (forgers claiming rank 1
 * before the real rank 1 arrives and while the job runs) are each logged with one warning and dropped, while a
 * pending rendezvous and a running 2-process job (a collective in flight) go on and get correct results; a member's
 * frame declaring a huge length is a one-line protocol error; rank 0 binds exactly MASTER_ADDR. Ordering comes from
 * HubServer.Hooks (drops, arrivals, the strangers' handshake timers run out by the test), never from sleeps.
 */
class HubStrangerTest {
    private static final int MAGIC = 0x4D6F4402;
    private static final String SECRET_TEXT = RendezvousTest.SECRET_TEXT;
    static final JobSecret SECRET = JobSecret.of(SECRET_TEXT, "test");

    private final Logger hubLog = Logger.getLogger(HubServer.class.getName());
    private final List<String> warnings = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            if (r.getLevel() == Level.WARNING) warnings.add(new SimpleFormatter().formatMessage(r));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void captureWarnings() {
        hubLog.addHandler(capture);
    }

    @AfterEach
    void stopCapturing() {
        hubLog.removeHandler(capture);
    }

    /** The hub's events, by the remote port of the connection; the handshake timers are the test's to run out. */
    private static final class Watch implements HubServer.Hooks {
        final Map<Integer, CompletableFuture<String>> drops = new ConcurrentHashMap<>();
        final Map<Integer, CompletableFuture<Void>> timers = new ConcurrentHashMap<>();
        final CompletableFuture<Void> rankZeroIn = new CompletableFuture<>();

        CompletableFuture<String> drop(int port) {
            return drops.computeIfAbsent(port, k -> new CompletableFuture<>());
        }

        CompletableFuture<Void> timer(int port) {
            return timers.computeIfAbsent(port, k -> new CompletableFuture<>());
        }

        @Override
        public void arrived(int rank, int arrived) {
            if (rank == 0) rankZeroIn.complete(null);
        }

        @Override
        public void dropped(InetSocketAddress remote, String why) {
            drop(remote.getPort()).complete(why);
        }

        @Override
        public CompletionStage<?> handshakeTimer(InetSocketAddress remote) {
            return timer(remote.getPort()); // members say hello at once; only the test runs a timer out
        }
    }

    /** What a stranger sends; a silent one keeps the connection open until its handshake timer runs out. */
    private record Stranger(String what, byte[] bytes, boolean silent, String why) {}

    private static byte[] hello(int magic, int rank, int world, int devices) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        DataOutputStream o = new DataOutputStream(b);
        o.writeByte(1);
        o.writeInt(magic);
        o.writeInt(rank);
        o.writeInt(world);
        o.writeInt(devices);
        o.writeUTF("stranger");
        o.write(new byte[32]); // the client nonce
        return b.toByteArray();
    }

    /** A HELLO for {@code rank} answered at once with a proof made up without the secret. */
    private static byte[] forged(int rank) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(hello(MAGIC, rank, 2, 1));
        b.write(8); // AUTH
        byte[] proof = new byte[32];
        new Random(rank).nextBytes(proof);
        b.write(proof);
        return b.toByteArray();
    }

    /**
     * HMAC-SHA256 of the documented proof (docs/parallel.md): key = the secret's UTF-8 bytes; data = "mode-j
     * rendezvous " + role, the checker's nonce, the prover's nonce, rank, WORLD_SIZE and devices as big-endian ints.
     */
    private static byte[] proof(String role, byte[] checker, byte[] prover, int rank, int world, int devices)
            throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(SECRET_TEXT.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        mac.update(("mode-j rendezvous " + role).getBytes(StandardCharsets.US_ASCII));
        mac.update(checker);
        mac.update(prover);
        mac.update(ByteBuffer.allocate(12)
                .putInt(rank)
                .putInt(world)
                .putInt(devices)
                .array());
        return mac.doFinal();
    }

    /**
     * A HELLO for {@code rank} of 2 with one device and the challenge-response done by hand from the documented
     * format: checks the server's proof, then answers with the client's. The server's verdict comes next.
     */
    private static void authenticHello(DataOutputStream out, DataInputStream in, int rank) throws Exception {
        byte[] clientNonce = new byte[32];
        new Random(rank + 100).nextBytes(clientNonce);
        byte[] h = hello(MAGIC, rank, 2, 1);
        System.arraycopy(clientNonce, 0, h, h.length - 32, 32);
        out.write(h);
        out.flush();
        assertEquals(25, in.readByte(), "CHALLENGE");
        byte[] serverNonce = in.readNBytes(32), serverProof = in.readNBytes(32);
        assertArrayEquals(proof("server", clientNonce, serverNonce, rank, 2, 1), serverProof, "the server's proof");
        out.writeByte(8); // AUTH
        out.write(proof("client", serverNonce, clientNonce, rank, 2, 1));
        out.flush();
    }

    private static List<Stranger> strangers() throws IOException {
        byte[] garbage = new byte[256];
        new Random(14).nextBytes(garbage);
        garbage[0] = 'G';
        byte[] partial = java.util.Arrays.copyOf(hello(MAGIC, 1, 2, 1), 7);
        return List.of(
                new Stranger("an empty connection", new byte[0], false, "without sending anything"),
                new Stranger("a single 0x01 byte", new byte[] {1}, false, "partial frame"),
                new Stranger("random garbage", garbage, false, "its first byte is 71"),
                new Stranger("a partial HELLO", partial, false, "partial frame"),
                new Stranger("a HELLO with a wrong magic", hello(0xDEADBEEF, 1, 2, 1), false, "magic 0xDEADBEEF"),
                new Stranger("a HELLO offering no devices", hello(MAGIC, 1, 2, 0), false, "devices=0"),
                new Stranger("a HELLO with a negative rank", hello(MAGIC, -1, 2, 1), false, "RANK=-1"),
                new Stranger("a silent connection", new byte[0], true, "no complete HELLO"),
                new Stranger("a partial HELLO, then silence", partial, true, "no complete HELLO"),
                new Stranger(
                        "a HELLO that ignores the challenge", hello(MAGIC, 1, 2, 1), false, "instead of answering"),
                new Stranger("a HELLO, then silence at the challenge", hello(MAGIC, 1, 2, 1), true, "no complete"),
                new Stranger(
                        "a forged HELLO for RANK 1",
                        forged(1),
                        false,
                        "proof of the job secret is wrong: a forged HELLO"),
                new Stranger(
                        "a forged HELLO for RANK 0",
                        forged(0),
                        false,
                        "proof of the job secret is wrong: a forged HELLO"));
    }

    /** Each stranger in turn connects; waits until the hub has dropped it and checks the reason and the warning. */
    private void visit(Watch w, int port, List<Stranger> strangers) throws Exception {
        for (Stranger s : strangers) {
            try (Socket sock = new Socket("127.0.0.1", port)) {
                int mine = sock.getLocalPort();
                sock.getOutputStream().write(s.bytes());
                sock.getOutputStream().flush();
                if (s.silent()) w.timer(mine).complete(null);
                else sock.shutdownOutput();
                String why = w.drop(mine).get(20, TimeUnit.SECONDS);
                w.drops.remove(mine);
                assertTrue(why.contains(s.why()), s.what() + ": " + why);
                List<String> mineWarned = warnings.stream()
                        .filter(m -> m.contains("127.0.0.1:" + mine + " "))
                        .toList();
                assertEquals(1, mineWarned.size(), s.what() + ": " + warnings);
                assertTrue(
                        mineWarned.get(0).startsWith("dropped the connection from /127.0.0.1:" + mine)
                                && mineWarned.get(0).contains(why)
                                && !mineWarned.get(0).contains("\n"),
                        mineWarned.get(0));
            }
        }
    }

    private static LaunchEnv env(int port, int rank) {
        return new LaunchEnv("127.0.0.1", port, rank, 2, rank, SECRET);
    }

    private static String joinAndRun(int port, int rank, HubServer.Hooks hooks) {
        try (Rendezvous.Joined j =
                        Rendezvous.join(env(port, rank), 1, Duration.ofSeconds(20), () -> new byte[0], hooks);
                Backend be = Backends.create("cpu", 1)) {
            return RendezvousProbe.run(j, be);
        }
    }

    @Test
    void strangersDuringTheRendezvousAreDroppedAndItCompletes() throws Exception {
        int port = RendezvousTest.freePort();
        Watch w = new Watch();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<String> r0 = pool.submit(() -> joinAndRun(port, 0, w));
            w.rankZeroIn.get(20, TimeUnit.SECONDS);
            visit(w, port, strangers());
            assertFalse(r0.isDone(), "rank 0 still waits for rank 1, which has not started");
            Future<String> r1 = pool.submit(() -> joinAndRun(port, 1, HubServer.Hooks.NONE));
            assertEquals("rank=0 sum=3.0 gathered=[0.0, 10.0] ring=1.0", r0.get(40, TimeUnit.SECONDS));
            assertEquals("rank=1 sum=3.0 gathered=[0.0, 10.0] ring=0.0", r1.get(40, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void strangersDuringARunningJobAreDroppedAndItsCollectivesComplete() throws Exception {
        int port = RendezvousTest.freePort();
        Watch w = new Watch();
        CountDownLatch strangersGone = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(1);
        try {
            Future<String> r1 = pool.submit(() -> {
                try (Rendezvous.Joined j = Rendezvous.join(env(port, 1), 1, Duration.ofSeconds(20), () -> new byte[0]);
                        Backend be = Backends.create("cpu", 1)) {
                    Communicator c =
                            new HubCommunicator(j.transport(), "during", 1, List.of(0, 1), be, Duration.ofSeconds(20));
                    assertTrue(strangersGone.await(40, TimeUnit.SECONDS));
                    try (Tensor t = be.fromHost(new float[] {10, 20}, 2)) {
                        c.allReduce(t, ReduceOp.SUM).await();
                        assertArrayEquals(new float[] {11, 22}, be.toHostFloats(t));
                    }
                    return RendezvousProbe.run(j, be, "after");
                }
            });
            try (Rendezvous.Joined j = Rendezvous.join(env(port, 0), 1, Duration.ofSeconds(20), () -> new byte[0], w);
                    Backend be = Backends.create("cpu", 1);
                    Tensor t = be.fromHost(new float[] {1, 2}, 2)) {
                Communicator c =
                        new HubCommunicator(j.transport(), "during", 0, List.of(0, 1), be, Duration.ofSeconds(20));
                CommHandle inFlight =
                        c.allReduce(t, ReduceOp.SUM); // rank 1 contributes only once the strangers are gone
                List<Stranger> all = new ArrayList<>(strangers());
                all.add(new Stranger(
                        "a forged HELLO for a member's rank while the job runs",
                        forged(1),
                        false,
                        "a forged HELLO for RANK 1"));
                visit(w, port, all);
                try (Socket late = new Socket("127.0.0.1", port)) { // knows the secret, but the run is complete
                    authenticHello(
                            new DataOutputStream(late.getOutputStream()),
                            new DataInputStream(late.getInputStream()),
                            1);
                    DataInputStream in = new DataInputStream(late.getInputStream());
                    assertEquals(21, in.readByte(), "REFUSED");
                    assertTrue(in.readUTF().contains("after the rendezvous was complete"));
                    String why = w.drop(late.getLocalPort()).get(20, TimeUnit.SECONDS);
                    assertTrue(why.contains("said hello after the rendezvous was complete"), why);
                }
                assertFalse(inFlight.isDone(), "the all-reduce still waits for rank 1");
                strangersGone.countDown();
                inFlight.await();
                assertArrayEquals(new float[] {11, 22}, be.toHostFloats(t));
                assertEquals("rank=0 sum=3.0 gathered=[0.0, 10.0] ring=1.0", RendezvousProbe.run(j, be, "after"));
            }
            assertEquals("rank=1 sum=3.0 gathered=[0.0, 10.0] ring=0.0", r1.get(40, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aHugeDeclaredLengthIsAOneLineProtocolError() throws Exception {
        int port = RendezvousTest.freePort();
        Watch w = new Watch();
        ExecutorService pool = Executors.newFixedThreadPool(1);
        try {
            Future<String> r0 = pool.submit(() -> {
                try (Rendezvous.Joined j =
                                Rendezvous.join(env(port, 0), 1, Duration.ofSeconds(20), () -> new byte[0], w);
                        Backend be = Backends.create("cpu", 1)) {
                    Communicator c =
                            new HubCommunicator(j.transport(), "world", 0, List.of(0, 1), be, Duration.ofSeconds(20));
                    return assertThrows(CommunicatorException.class, c::barrier).getMessage();
                }
            });
            w.rankZeroIn.get(20, TimeUnit.SECONDS);
            try (Socket raw = new Socket("127.0.0.1", port)) { // rank 1, speaking the protocol by hand
                DataOutputStream out = new DataOutputStream(raw.getOutputStream());
                DataInputStream in = new DataInputStream(raw.getInputStream());
                authenticHello(out, in, 1);
                assertEquals(20, in.readByte(), "WELCOME");
                in.readInt();
                in.readInt();
                in.readInt();
                in.readNBytes(in.readInt());
                out.writeByte(2); // COLLECTIVE: id, group, members, seq, member, spec, buffer
                out.writeLong(1);
                out.writeUTF("world");
                out.writeInt(2);
                out.writeLong(0);
                out.writeInt(1);
                out.writeByte(5); // barrier, no op, no root, no counts
                out.writeByte(-1);
                out.writeInt(-1);
                out.writeInt(0);
                out.writeInt(0);
                out.writeByte(2); // an f64 buffer of 0x20000001 elements: 4 GiB + 8 bytes
                out.writeInt(0x20000001);
                out.flush();
                String msg = r0.get(40, TimeUnit.SECONDS);
                assertTrue(
                        msg.contains("protocol error with process rank 1")
                                && msg.contains("field 'buffer length' is 536870913 (4294967304 bytes)")
                                && msg.contains("frame limit")
                                && !msg.contains("\n"),
                        msg);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void rankZeroBindsExactlyMasterAddr() throws Exception {
        int port = RendezvousTest.freePort();
        // 192.0.2.1 is TEST-NET-1 (RFC 5737), never an address of this machine: binding it fails, no packet leaves
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> HubServer.start(
                                "192.0.2.1", port, 2, Duration.ofSeconds(20), new byte[0], SECRET, HubServer.Hooks.NONE)
                        .close());
        String msg = e.getMessage();
        assertTrue(
                msg.contains("could not listen on MASTER_ADDR:MASTER_PORT = 192.0.2.1:" + port)
                        && msg.contains("set MASTER_ADDR")
                        && !msg.contains("\n"),
                msg);
    }
}
