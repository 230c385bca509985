package ai.mode.parallel.net;

import ai.mode.parallel.comm.CollectiveSpec;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.HostBuffer;
import ai.mode.parallel.comm.Transport;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The client side of the hub protocol: a Transport whose collectives and messages go to the master's HubServer over one
 * TCP connection per process, shared by its local ranks; replies are matched to requests by id. A {@link Transport} to
 * a remote {@link HubServer}. Thread-safe.
 */
public final class TcpTransport implements Transport {
    private final Socket socket;
    private final DataInputStream in;
    private final DataOutputStream out;
    private final String peer;
    private final AtomicLong ids = new AtomicLong();
    private final Map<Long, CompletableFuture<Object>> pending = new ConcurrentHashMap<>();
    private volatile String dead;
    private volatile boolean closing;

    TcpTransport(Socket socket, DataInputStream in, DataOutputStream out, String peer) {
        this.socket = socket;
        this.in = in;
        this.out = out;
        this.peer = peer;
        Thread reader = new Thread(this::readLoop, "mode-hub-client");
        reader.setDaemon(true);
        reader.start();
    }

    @FunctionalInterface
    private interface IoWriter {
        void write(DataOutputStream out) throws IOException;
    }

    private void write(IoWriter w) {
        if (dead != null) throw new CommunicatorException(dead);
        synchronized (out) {
            try {
                w.write(out);
                out.flush();
            } catch (IOException e) {
                fail("lost the connection to the hub at " + peer + ": " + e.getMessage());
                throw new CommunicatorException(dead);
            }
        }
    }

    private CompletableFuture<Object> register(long id) {
        CompletableFuture<Object> f = new CompletableFuture<>();
        pending.put(id, f);
        if (dead != null) {
            pending.remove(id);
            f.completeExceptionally(new CommunicatorException(dead));
        }
        return f;
    }

    @Override
    @SuppressWarnings("unchecked")
    public CompletableFuture<HostBuffer> collective(
            String group, int members, long seq, int member, CollectiveSpec spec, HostBuffer contribution) {
        long id = ids.incrementAndGet();
        CompletableFuture<Object> f = register(id);
        if (f.isDone()) return (CompletableFuture<HostBuffer>) (CompletableFuture<?>) f;
        try {
            Wire.frameBytes(contribution); // over the frame limit: fails here, before a partial frame is written
            write(o -> {
                o.writeByte(Wire.COLLECTIVE);
                o.writeLong(id);
                o.writeUTF(group);
                o.writeInt(members);
                o.writeLong(seq);
                o.writeInt(member);
                Wire.writeSpec(o, spec);
                Wire.writeBuffer(o, contribution);
            });
        } catch (CommunicatorException e) {
            pending.remove(id);
            f.completeExceptionally(e);
        }
        return (CompletableFuture<HostBuffer>) (CompletableFuture<?>) f;
    }

    @Override
    public void send(String group, int src, int dst, HostBuffer data) {
        Wire.frameBytes(data);
        write(o -> {
            o.writeByte(Wire.SEND);
            o.writeUTF(group);
            o.writeInt(src);
            o.writeInt(dst);
            Wire.writeBuffer(o, data);
        });
    }

    @Override
    @SuppressWarnings("unchecked")
    public CompletableFuture<HostBuffer> receive(String group, int src, int dst) {
        long id = ids.incrementAndGet();
        CompletableFuture<Object> f = register(id);
        if (f.isDone()) return (CompletableFuture<HostBuffer>) (CompletableFuture<?>) f;
        try {
            write(o -> {
                o.writeByte(Wire.RECV);
                o.writeLong(id);
                o.writeUTF(group);
                o.writeInt(src);
                o.writeInt(dst);
            });
        } catch (CommunicatorException e) {
            pending.remove(id);
            f.completeExceptionally(e);
        }
        return (CompletableFuture<HostBuffer>) (CompletableFuture<?>) f;
    }

    @Override
    public List<Integer> missing(String group, long seq) {
        long id = ids.incrementAndGet();
        CompletableFuture<Object> f = register(id);
        try {
            write(o -> {
                o.writeByte(Wire.MISSING);
                o.writeLong(id);
                o.writeUTF(group);
                o.writeLong(seq);
            });
            int[] m = (int[]) f.get(5, TimeUnit.SECONDS);
            List<Integer> out = new ArrayList<>();
            for (int x : m) out.add(x);
            return out;
        } catch (Exception e) {
            pending.remove(id);
            return List.of();
        }
    }

    @Override
    public void abort(String reason) {
        try {
            write(o -> {
                o.writeByte(Wire.ABORT);
                o.writeUTF(reason.length() > 60000 ? reason.substring(0, 60000) : reason);
            });
        } catch (CommunicatorException e) {
            fail(reason);
        }
    }

    private void readLoop() {
        try {
            while (true) {
                byte type = in.readByte();
                long id = in.readLong();
                Object value;
                String error = null;
                switch (type) {
                    case Wire.RESULT -> value = Wire.readBuffer(in);
                    case Wire.MISSING_RESULT -> value = Wire.readInts(in);
                    case Wire.FAILED -> {
                        error = in.readUTF();
                        value = null;
                    }
                    default -> throw new IOException("unknown reply type " + type);
                }
                CompletableFuture<Object> f = pending.remove(id);
                if (f == null) continue;
                if (error != null) f.completeExceptionally(new CommunicatorException(error));
                else f.complete(value);
            }
        } catch (IOException e) {
            fail(
                    closing
                            ? "the connection to the hub at " + peer + " was closed"
                            : "lost the connection to the hub at " + peer + " (" + e.getMessage()
                                    + "); did rank 0's process stop?");
        }
    }

    private void fail(String reason) {
        if (dead == null) dead = reason;
        for (Long id : new ArrayList<>(pending.keySet())) {
            CompletableFuture<Object> f = pending.remove(id);
            if (f != null) f.completeExceptionally(new CommunicatorException(dead));
        }
    }

    /** Says goodbye and closes the connection. */
    @Override
    public void close() {
        closing = true;
        try {
            synchronized (out) {
                if (dead == null) {
                    out.writeByte(Wire.BYE);
                    out.flush();
                }
            }
        } catch (IOException ignored) {
            // the hub is gone already
        }
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
