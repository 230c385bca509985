package ai.mode.parallel.net;

import ai.mode.parallel.comm.CollectiveSpec;
import ai.mode.parallel.comm.CommunicatorException;
import ai.mode.parallel.comm.HostBuffer;
import ai.mode.parallel.comm.ReduceOp;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The binary frames of the rendezvous and hub protocol: messages, host buffers and collective specs over a
 * DataInput/DataOutput (big-endian headers, bulk little-endian array payloads). Frame types and (de)serialisation
 * helpers.
 */
final class Wire {
    private Wire() {}

    /** Protocol magic and version, the first int of a HELLO. */
    static final int MAGIC = 0x4D6F4445; // "MoDE"

    // client -> server
    static final byte HELLO = 1, COLLECTIVE = 2, SEND = 3, RECV = 4, MISSING = 5, ABORT = 6, BYE = 7;
    // server -> client
    static final byte WELCOME = 20, REFUSED = 21, RESULT = 22, FAILED = 23, MISSING_RESULT = 24;

    /**
     * The frame limit: the most bytes one array of a frame (a host buffer, a count list) may hold, 1 GiB. Every
     * length read from the wire is checked against it before anything is allocated.
     */
    static final long MAX_FRAME_BYTES = 1L << 30;

    /** The most bytes of the payload a WELCOME carries (the NCCL unique id is 128). */
    static final long MAX_PAYLOAD_BYTES = 1L << 20;

    /** The most devices one process may bring (a HELLO field). */
    static final int MAX_DEVICES = 1 << 16;

    private static int width(HostBuffer.Kind kind) {
        return kind == HostBuffer.Kind.F64 ? 8 : 4;
    }

    /**
     * Checks a length field read from the wire: {@code n} items of {@code width} bytes, computed in long, must be
     * non-negative and within {@code maxBytes}; else a one-line protocol error naming the field and its value.
     */
    static int checkLength(String field, int n, int width, long maxBytes) throws ProtocolException {
        long bytes = (long) n * width;
        if (n < 0 || bytes > maxBytes) {
            throw new ProtocolException("corrupt frame: field '" + field + "' is " + n
                    + (n < 0 ? " (negative)" : " (" + bytes + " bytes)") + ", outside 0.." + maxBytes / width + " (the "
                    + maxBytes + "-byte frame limit); the peer is not a MoDE-J process of this version");
        }
        return n;
    }

    /** Bytes of {@code b} on the wire; a buffer over the frame limit is a one-line error (check before writing a frame). */
    static int frameBytes(HostBuffer b) {
        long bytes = (long) b.length() * width(b.kind());
        if (bytes > MAX_FRAME_BYTES) {
            throw new CommunicatorException("a " + b.kind() + " host buffer of " + b.length() + " elements (" + bytes
                    + " bytes) is over the hub's " + MAX_FRAME_BYTES
                    + "-byte frame limit; split the tensor, or use --comm nccl on cuda devices");
        }
        return (int) bytes;
    }

    static void writeBuffer(DataOutputStream out, HostBuffer b) throws IOException {
        int bytes = frameBytes(b);
        out.writeByte(b.kind().ordinal());
        int n = b.length();
        out.writeInt(n);
        ByteBuffer bb = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        switch (b.kind()) {
            case F32 -> bb.asFloatBuffer().put(b.floats());
            case I32 -> bb.asIntBuffer().put(b.ints());
            case F64 -> bb.asDoubleBuffer().put(b.doubles());
        }
        out.write(bb.array());
    }

    static HostBuffer readBuffer(DataInputStream in) throws IOException {
        int k = in.readByte();
        if (k < 0 || k >= HostBuffer.Kind.values().length)
            throw new ProtocolException("corrupt frame: field 'buffer kind' is " + k + ", outside 0.."
                    + (HostBuffer.Kind.values().length - 1));
        HostBuffer.Kind kind = HostBuffer.Kind.values()[k];
        int width = width(kind);
        int n = checkLength("buffer length", in.readInt(), width, MAX_FRAME_BYTES);
        byte[] raw = new byte[n * width]; // within the frame limit, so no int overflow
        in.readFully(raw);
        ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return switch (kind) {
            case F32 -> {
                float[] a = new float[n];
                bb.asFloatBuffer().get(a);
                yield HostBuffer.of(a);
            }
            case I32 -> {
                int[] a = new int[n];
                bb.asIntBuffer().get(a);
                yield HostBuffer.of(a);
            }
            case F64 -> {
                double[] a = new double[n];
                bb.asDoubleBuffer().get(a);
                yield HostBuffer.of(a);
            }
        };
    }

    static void writeInts(DataOutputStream out, int[] v) throws IOException {
        out.writeInt(v.length);
        for (int x : v) out.writeInt(x);
    }

    static int[] readInts(DataInputStream in) throws IOException {
        int n = checkLength("int list length", in.readInt(), 4, MAX_FRAME_BYTES);
        int[] v = new int[n];
        for (int i = 0; i < n; i++) v[i] = in.readInt();
        return v;
    }

    static void writeSpec(DataOutputStream out, CollectiveSpec s) throws IOException {
        out.writeByte(s.kind().ordinal());
        out.writeByte(s.op() == null ? -1 : s.op().ordinal());
        out.writeInt(s.root());
        writeInts(out, s.counts());
        writeInts(out, s.recvCounts());
    }

    static CollectiveSpec readSpec(DataInputStream in) throws IOException {
        int k = in.readByte(), op = in.readByte();
        if (k < 0 || k >= CollectiveSpec.Kind.values().length || op < -1 || op >= ReduceOp.values().length) {
            throw new ProtocolException(
                    "corrupt frame: fields 'collective kind'/'reduce op' are " + k + "/" + op + ", outside 0.."
                            + (CollectiveSpec.Kind.values().length - 1) + "/-1.." + (ReduceOp.values().length - 1));
        }
        int root = in.readInt();
        int[] counts = readInts(in), recv = readInts(in);
        return new CollectiveSpec(
                CollectiveSpec.Kind.values()[k], op < 0 ? null : ReduceOp.values()[op], root, counts, recv);
    }

    static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
        out.writeInt(b.length);
        out.write(b);
    }

    static byte[] readBytes(DataInputStream in) throws IOException {
        int n = checkLength("payload length", in.readInt(), 1, MAX_PAYLOAD_BYTES);
        byte[] b = new byte[n];
        in.readFully(b);
        return b;
    }
}
