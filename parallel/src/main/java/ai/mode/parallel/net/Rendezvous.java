package ai.mode.parallel.net;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * Joining a multi-process run: rank 0 starts the HubServer, every process (rank 0 too) connects to
 * MASTER_ADDR:MASTER_PORT, says how many devices it brings, and learns its first world rank, the world size in devices
 * and the shared payload (the NCCL unique id). The connection then carries the hub traffic. Static entry points of the
 * rendezvous.
 */
public final class Rendezvous {
    private Rendezvous() {}

    /**
     * What this process learned.
     *
     * @param firstRank   world rank of this process's first device (its devices are firstRank.. firstRank+devices-1)
     * @param worldSize   devices over all processes
     * @param processes   number of processes (WORLD_SIZE)
     * @param payload     the bytes rank 0 shared
     * @param transport   the hub connection (close it at the end)
     * @param server      the server, in rank 0's process only (close after the transport), else null
     */
    public record Joined(
            int firstRank, int worldSize, int processes, byte[] payload, TcpTransport transport, HubServer server)
            implements AutoCloseable {
        @Override
        public void close() {
            transport.close();
            if (server != null) server.close();
        }
    }

    /**
     * Runs the rendezvous for {@code env}: rank 0 first starts the server (with {@code payload.get()}), then every
     * process connects (retrying until the server is up) and waits for the others. Fails with one line naming
     * what is missing when not everyone arrives within {@code timeout}.
     *
     * @param devices how many devices (world ranks) this process brings
     */
    public static Joined join(LaunchEnv env, int devices, Duration timeout, Supplier<byte[]> payload) {
        return join(env, devices, timeout, payload, HubServer.Hooks.NONE);
    }

    /** {@link #join(LaunchEnv, int, Duration, Supplier)} with the {@code hooks} of the server that rank 0 starts (other ranks ignore them). */
    public static Joined join(
            LaunchEnv env, int devices, Duration timeout, Supplier<byte[]> payload, HubServer.Hooks hooks) {
        HubServer server = env.rank() == 0
                ? HubServer.start(env.masterAddr(), env.masterPort(), env.worldSize(), timeout, payload.get(), hooks)
                : null;
        try {
            return connect(env, devices, timeout, server);
        } catch (RuntimeException e) {
            if (server != null) server.close();
            throw e;
        }
    }

    private static Joined connect(LaunchEnv env, int devices, Duration timeout, HubServer server) {
        // a grace second beyond the timeout, so that the master's verdict (naming the missing ranks) arrives first
        long deadline = System.nanoTime() + timeout.toNanos() + 1_000_000_000L;
        String where = env.master();
        Socket s = null;
        IOException last = null;
        while (s == null) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new IllegalStateException(String.format(
                        Locale.ROOT,
                        "could not reach the rendezvous at %s within %.1f s (%s); is rank 0 running, and are "
                                + "MASTER_ADDR and MASTER_PORT the same on every process?",
                        where,
                        timeout.toMillis() / 1000.0,
                        last == null ? "no answer" : last.getMessage()));
            }
            try {
                Socket c = new Socket();
                c.connect(new InetSocketAddress(InetAddress.getByName(env.masterAddr()), env.masterPort()), (int)
                        Math.max(1, Math.min(left / 1_000_000, 2000)));
                s = c;
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException(
                        "MASTER_ADDR '" + env.masterAddr() + "' does not resolve: " + e.getMessage());
            } catch (ConnectException | NoRouteToHostException | SocketTimeoutException e) {
                last = e;
                sleep(100);
            } catch (IOException e) {
                last = e;
                sleep(100);
            }
        }
        try {
            s.setTcpNoDelay(true);
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
            out.writeByte(Wire.HELLO);
            out.writeInt(Wire.MAGIC);
            out.writeInt(env.rank());
            out.writeInt(env.worldSize());
            out.writeInt(devices);
            out.writeUTF(hostName());
            out.flush();
            long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
            s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, left));
            byte type;
            try {
                type = in.readByte();
            } catch (SocketTimeoutException e) {
                closeQuietly(s);
                throw new IllegalStateException(String.format(
                        Locale.ROOT,
                        "rendezvous at %s: not every process arrived within %.1f s (this is rank %d of %d)",
                        where,
                        timeout.toMillis() / 1000.0,
                        env.rank(),
                        env.worldSize()));
            }
            if (type == Wire.REFUSED) {
                String why = in.readUTF();
                closeQuietly(s);
                throw new IllegalStateException("rendezvous at " + where + " failed: " + why);
            }
            if (type != Wire.WELCOME) throw new IOException("unexpected reply " + type);
            int first = in.readInt(), total = in.readInt(), processes = in.readInt();
            byte[] payload = Wire.readBytes(in);
            s.setSoTimeout(0);
            return new Joined(first, total, processes, payload, new TcpTransport(s, in, out, where), server);
        } catch (IOException e) {
            closeQuietly(s);
            throw new IllegalStateException("rendezvous at " + where + " broke off: " + e.getMessage(), e);
        }
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown-host";
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the rendezvous");
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // the connection already failed
        }
    }
}
