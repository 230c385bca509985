package ai.mode.parallel.net;

import ai.mode.parallel.comm.CollectiveSpec;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.HostBuffer;
import ai.mode.parallel.comm.LocalHub;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ProtocolException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * The rendezvous and exchange hub that rank 0's process serves on MASTER_ADDR:MASTER_PORT: every process says hello
 * (rank, device count, host), gets its first world rank and the shared payload (e.g. the NCCL unique id) once all have
 * arrived, and then sends its collectives and messages through the same connection to one LocalHub. A process that does
 * not arrive in time, or that disconnects, aborts the run with a message naming it; a connection that never completes a
 * valid hello (a port scan, a health probe, garbage) is logged and dropped. Hooks report its events and supply the
 * timers of the rendezvous and the hello, so tests act on events, not on time. The master's server. Thread-safe; one
 * handler thread per connected process.
 */
public final class HubServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(HubServer.class.getName());

    /**
     * How long a new connection may take to send its complete HELLO before it is dropped, so that a silent or
     * trickling stranger cannot hold a connection open; a MoDE-J process sends its hello right after connecting.
     */
    public static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);

    private final ServerSocket server;
    private final int worldSize;
    private final Duration timeout;
    private final byte[] payload;
    private final Hooks hooks;
    private final LocalHub hub = new LocalHub();
    private final TreeMap<Integer, Conn> joined = new TreeMap<>();
    private final List<Conn> all = new ArrayList<>();
    private final Object lock = new Object();
    private boolean welcomed;
    private volatile int runDevices; // devices of the whole run, fixed at the welcome
    private String refused; // why the rendezvous failed, once it has (guarded by lock)
    private volatile boolean closed;

    /**
     * What the server reports and the timer it waits on: for monitoring, and for tests, which wait for an event
     * instead of sleeping and end the rendezvous when they choose. The defaults report nothing and use the wall
     * clock. The methods run on the server's threads and must not block.
     */
    public interface Hooks {
        /** The wall clock, no reports. */
        Hooks NONE = new Hooks() {};

        /** Process {@code rank} said hello; {@code arrived} processes (this one included) are in. */
        default void arrived(int rank, int arrived) {}

        /** {@link HubServer#close()} waits for these process ranks to leave. */
        default void closeWaits(List<Integer> ranks) {}

        /** The connection from {@code remote} did not complete a valid HELLO ({@code why}) and was dropped; the run goes on. */
        default void dropped(InetSocketAddress remote, String why) {}

        /**
         * Completes once {@code timeout} has passed; the rendezvous fails then unless everyone has arrived. The
         * default completes on the JDK's delay thread, not in the common pool, which the application may keep busy.
         */
        default CompletionStage<?> after(Duration timeout) {
            return wallClock(timeout);
        }

        /**
         * Completes when the connection from {@code remote} has had its time to say hello; it is dropped then unless
         * it has completed a valid HELLO. The default is {@link #HANDSHAKE_TIMEOUT} on the wall clock.
         */
        default CompletionStage<?> handshakeTimer(InetSocketAddress remote) {
            return wallClock(HANDSHAKE_TIMEOUT);
        }
    }

    private static CompletionStage<?> wallClock(Duration d) {
        return CompletableFuture.runAsync(
                () -> {}, CompletableFuture.delayedExecutor(d.toNanos(), TimeUnit.NANOSECONDS, Runnable::run));
    }

    /** One connected process. */
    private final class Conn {
        final Socket socket;
        final DataInputStream in;
        final DataOutputStream out;
        final InetSocketAddress remote;
        int rank = -1, devices;
        String host = "?";
        boolean bye;
        volatile boolean member; // completed its HELLO as a rank (written under lock)
        boolean expired; // the handshake timer closed it before its HELLO (guarded by lock)
        boolean ended; // its handler thread has finished (guarded by lock)

        Conn(Socket s) throws IOException {
            this.socket = s;
            this.remote = (InetSocketAddress) s.getRemoteSocketAddress();
            s.setTcpNoDelay(true);
            this.in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
            this.out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
        }

        String who() {
            return "process rank " + rank + " (" + host + ")";
        }

        void write(IoWriter w) {
            synchronized (out) {
                try {
                    w.write(out);
                    out.flush();
                } catch (IOException e) {
                    if (member)
                        hub.abort("lost the connection to " + who() + ": "
                                + e.getMessage()); // a stranger's loss is no loss
                }
            }
        }
    }

    @FunctionalInterface
    private interface IoWriter {
        void write(DataOutputStream out) throws IOException;
    }

    private HubServer(ServerSocket server, int worldSize, Duration timeout, byte[] payload, Hooks hooks) {
        this.server = server;
        this.worldSize = worldSize;
        this.timeout = timeout;
        this.payload = payload.clone();
        this.hooks = hooks;
        Thread acceptor = new Thread(this::acceptLoop, "mode-hub-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        hooks.after(timeout).thenRun(this::expire);
    }

    /**
     * Listens on exactly {@code addr:port} (no wildcard fallback) for {@code worldSize} processes; they must all say
     * hello within {@code timeout}. Port 0 picks a free port (see {@link #port()}).
     *
     * @param payload bytes handed to every process with its welcome (e.g. the NCCL unique id; may be empty)
     * @param hooks   the events' observer and the timer ({@link Hooks#NONE}: none, the wall clock)
     */
    public static HubServer start(String addr, int port, int worldSize, Duration timeout, byte[] payload, Hooks hooks) {
        ServerSocket s = null;
        try {
            InetAddress a = InetAddress.getByName(addr);
            s = new ServerSocket();
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(a, port), 256);
        } catch (IOException e) {
            if (s != null) closeQuietly(s);
            String why = e instanceof UnknownHostException ? "the name does not resolve" : e.getMessage();
            throw new IllegalStateException(
                    "rank 0 could not listen on MASTER_ADDR:MASTER_PORT = " + addr + ":" + port + " (" + why
                            + "); set MASTER_ADDR "
                            + "to an address of rank 0's node that the other processes reach (127.0.0.1 on one machine) and MASTER_PORT to a free port",
                    e);
        }
        return new HubServer(s, worldSize, timeout, payload, hooks);
    }

    /** The port listened on. */
    public int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) hub.abort("the rendezvous server stopped accepting: " + e.getMessage());
                return;
            }
            Thread t = new Thread(() -> serve(s), "mode-hub-conn");
            t.setDaemon(true);
            t.start();
        }
    }

    /** The rendezvous timeout has passed: fails it, naming the missing processes, unless it is over already. */
    private void expire() {
        synchronized (lock) {
            if (welcomed || closed || refused != null) return;
            List<Integer> missing = new ArrayList<>();
            for (int r = 0; r < worldSize; r++) if (!joined.containsKey(r)) missing.add(r);
            refuseAll(String.format(
                    Locale.ROOT,
                    "rendezvous at port %d timed out after %.1f s: %d of %d processes arrived; missing rank(s) %s "
                            + "(check that every process was started with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE)",
                    port(),
                    timeout.toMillis() / 1000.0,
                    joined.size(),
                    worldSize,
                    missing));
        }
    }

    /** Fails the run with {@code reason}: every process that arrived hears it, and so does any that arrives later. */
    private void refuseAll(String reason) {
        List<Conn> arrived;
        synchronized (lock) {
            if (refused == null) refused = reason;
            arrived = new ArrayList<>(joined.values());
        }
        hub.abort(reason);
        for (Conn c : arrived) {
            c.write(o -> {
                o.writeByte(Wire.REFUSED);
                o.writeUTF(reason);
            });
            closeQuietly(c.socket);
        }
    }

    private void serve(Socket s) {
        Conn c;
        try {
            c = new Conn(s);
        } catch (IOException e) {
            closeQuietly(s);
            return;
        }
        synchronized (lock) {
            all.add(c);
        }
        hooks.handshakeTimer(c.remote).thenRun(() -> handshakeExpired(c));
        try {
            if (handshake(c)) requests(c);
        } catch (EOFException | SocketException e) {
            if (!c.bye && !closed)
                hub.abort(c.who() + " disconnected (" + e.getMessage() + "); the run cannot continue without it");
        } catch (IOException | RuntimeException e) {
            if (!closed) hub.abort("protocol error with " + c.who() + ": " + e.getMessage());
        } finally {
            closeQuietly(s);
            synchronized (lock) {
                c.ended = true;
                if (!c.member) all.remove(c); // strangers do not pile up over a long run
                lock.notifyAll();
            }
        }
    }

    /** The hello timer of {@code c} has run out: closes it unless it has become a member. */
    private void handshakeExpired(Conn c) {
        synchronized (lock) {
            if (c.member || c.ended) return;
            c.expired = true;
        }
        closeQuietly(c.socket);
    }

    /**
     * Reads the hello of {@code c}: true once it is a member. A connection that does not complete a valid HELLO in
     * time is logged and dropped, and the run goes on; false then, and when the process was refused.
     */
    private boolean handshake(Conn c) {
        String why;
        try {
            why = hello(c);
        } catch (EOFException e) {
            why = "it closed the connection in the middle of its HELLO (a partial frame)";
        } catch (IOException | RuntimeException e) {
            why = e.getMessage() == null ? e.toString() : e.getMessage();
        }
        if (why == null) return true;
        synchronized (lock) {
            if (c.expired)
                why = "it sent no complete HELLO before its handshake timer ran out (HubServer.HANDSHAKE_TIMEOUT, "
                        + HANDSHAKE_TIMEOUT.toSeconds() + " s)";
        }
        if (why.isEmpty()) return false; // refused with the run's reason, not a stranger
        LOG.log(
                System.Logger.Level.WARNING,
                "dropped the connection from {0} to the rendezvous port {1,number,#}: {2}",
                c.remote,
                port(),
                why);
        String reply = why;
        c.write(
                o -> { // best effort: a client of another version learns why
                    o.writeByte(Wire.REFUSED);
                    o.writeUTF("not accepted as a process of this run: " + reply);
                });
        hooks.dropped(c.remote, why);
        return false;
    }

    /**
     * Reads and checks the hello; replies once everyone is there. Returns null when {@code c} became a member,
     * "" when it was refused with the run's reason, else what was wrong with it (it is then dropped).
     */
    private String hello(Conn c) throws IOException {
        int type = c.in.read();
        if (type < 0) return "it closed the connection without sending anything";
        if (type != Wire.HELLO) return "its first byte is " + type + ", not a HELLO (" + Wire.HELLO + ")";
        int magic = c.in.readInt();
        if (magic != Wire.MAGIC)
            return String.format(
                    Locale.ROOT,
                    "its HELLO has magic 0x%08X, not 0x%08X (not a MoDE-J process of this version)",
                    magic,
                    Wire.MAGIC);
        int rank = c.in.readInt(), world = c.in.readInt(), devices = c.in.readInt();
        String host = c.in.readUTF();
        if (world < 1 || rank < 0 || rank >= world)
            return "its HELLO has RANK=" + rank + ", WORLD_SIZE=" + world + " (RANK must be in 0..WORLD_SIZE-1)";
        if (devices < 1 || devices > Wire.MAX_DEVICES)
            return "its HELLO has devices=" + devices + " (must be 1.." + Wire.MAX_DEVICES + ")";
        String problem = null, late = null;
        int arrived = 0;
        synchronized (lock) {
            if (c.expired) return "timed out"; // replaced by the timeout's description
            if (welcomed)
                return "process rank " + rank + " (" + host + ") said hello after the rendezvous was complete";
            if (refused != null) late = refused;
            else if (world != worldSize)
                problem = "process rank " + rank + " says WORLD_SIZE=" + world + " but rank 0 has WORLD_SIZE="
                        + worldSize;
            else if (joined.containsKey(rank))
                problem = "two processes claim RANK " + rank + " (" + joined.get(rank).host + " and " + host + ")";
            if (problem == null && late == null) {
                c.rank = rank;
                c.devices = devices;
                c.host = host;
                c.member = true;
                joined.put(rank, c);
                arrived = joined.size();
                if (arrived == worldSize) welcomeAll();
            }
        }
        if (problem != null || late != null) {
            String p = late != null ? late : problem;
            c.write(
                    o -> { // first the offender, before rank 0 hears it and closes the server
                        o.writeByte(Wire.REFUSED);
                        o.writeUTF(p);
                    });
            if (late == null) refuseAll(p);
            return "";
        }
        hooks.arrived(rank, arrived);
        return null;
    }

    private void welcomeAll() {
        welcomed = true;
        int total = 0;
        for (Conn c : joined.values()) total += c.devices;
        runDevices = total;
        int first = 0;
        for (Conn c : joined.values()) {
            int f = first, t = total;
            c.write(o -> {
                o.writeByte(Wire.WELCOME);
                o.writeInt(f);
                o.writeInt(t);
                o.writeInt(worldSize);
                Wire.writeBytes(o, payload);
            });
            first += c.devices;
        }
        LOG.log(System.Logger.Level.INFO, "rendezvous complete: {0} processes, {1} devices", worldSize, total);
    }

    private void requests(Conn c) throws IOException {
        DataInputStream in = c.in;
        while (true) {
            byte type = in.readByte();
            switch (type) {
                case Wire.COLLECTIVE -> {
                    long id = in.readLong();
                    String group = in.readUTF();
                    int members = in.readInt();
                    if (members < 1 || members > runDevices) {
                        throw new ProtocolException("corrupt frame: field 'group members' is " + members
                                + ", outside 1.." + runDevices + " (the run's devices)");
                    }
                    long seq = in.readLong();
                    int member = in.readInt();
                    CollectiveSpec spec = Wire.readSpec(in);
                    HostBuffer data = Wire.readBuffer(in);
                    hub.collective(group, members, seq, member, spec, data).whenComplete((r, e) -> reply(c, id, r, e));
                }
                case Wire.SEND -> {
                    String group = in.readUTF();
                    int src = in.readInt(), dst = in.readInt();
                    HostBuffer data = Wire.readBuffer(in);
                    try {
                        hub.send(group, src, dst, data);
                    } catch (CommunicatorException e) {
                        // the hub is aborted: the sender learns it at its next operation
                    }
                }
                case Wire.RECV -> {
                    long id = in.readLong();
                    String group = in.readUTF();
                    int src = in.readInt(), dst = in.readInt();
                    hub.receive(group, src, dst).whenComplete((r, e) -> reply(c, id, r, e));
                }
                case Wire.MISSING -> {
                    long id = in.readLong();
                    String group = in.readUTF();
                    long seq = in.readLong();
                    int[] m = hub.missing(group, seq).stream()
                            .mapToInt(Integer::intValue)
                            .toArray();
                    c.write(o -> {
                        o.writeByte(Wire.MISSING_RESULT);
                        o.writeLong(id);
                        Wire.writeInts(o, m);
                    });
                }
                case Wire.ABORT -> hub.abort(in.readUTF());
                case Wire.BYE -> {
                    c.bye = true;
                    return;
                }
                default -> throw new IOException("unknown frame type " + type);
            }
        }
    }

    private void reply(Conn c, long id, HostBuffer r, Throwable e) {
        if (e != null) {
            Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            String msg = cause.getMessage() == null ? cause.toString() : cause.getMessage();
            c.write(o -> {
                o.writeByte(Wire.FAILED);
                o.writeLong(id);
                o.writeUTF(msg.length() > 60000 ? msg.substring(0, 60000) : msg);
            });
        } else {
            try {
                Wire.frameBytes(r);
            } catch (CommunicatorException tooBig) {
                reply(c, id, null, tooBig);
                return;
            }
            c.write(o -> {
                o.writeByte(Wire.RESULT);
                o.writeLong(id);
                Wire.writeBuffer(o, r);
            });
        }
    }

    private static void closeQuietly(AutoCloseable s) {
        try {
            s.close();
        } catch (Exception ignored) {
            // closing a socket that already failed
        }
    }

    /**
     * Once the rendezvous is complete, waits until every process has said goodbye or disconnected (at most the
     * rendezvous timeout), then stops listening and closes every connection. Rank 0's process closes its server
     * after its own transport and may get there first: the hub keeps serving the others (replies still being
     * written to them, collectives among their own ranks) until they leave.
     */
    @Override
    public void close() {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<Integer> waits = new ArrayList<>();
        synchronized (lock) {
            if (welcomed && !closed) for (Conn c : stillConnected()) waits.add(c.rank);
        }
        if (!waits.isEmpty()) hooks.closeWaits(waits);
        synchronized (lock) {
            while (welcomed && !closed && !stillConnected().isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.log(
                            System.Logger.Level.WARNING,
                            "closing the hub with processes still connected after {0} s: {1}",
                            timeout.toSeconds(),
                            stillConnected().stream().map(Conn::who).toList());
                    break;
                }
                try {
                    lock.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            closed = true;
            lock.notifyAll();
            for (Conn c : all) closeQuietly(c.socket);
        }
        try {
            server.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    private List<Conn> stillConnected() {
        List<Conn> out = new ArrayList<>();
        for (Conn c : joined.values()) if (!c.ended) out.add(c);
        return out;
    }
}
