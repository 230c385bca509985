// The binary frames of the rendezvous and hub protocol: messages, host buffers and collective specs over a
// DataInput/DataOutput (big-endian headers, bulk little-endian array payloads).
package ai.mode.parallel.net;

import ai.mode.parallel.comm.CollectiveSpec;
import ai.mode.parallel.comm.HostBuffer;
import ai.mode.parallel.comm.ReduceOp;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Frame types and (de)serialisation helpers. */
final class Wire {
    private Wire() {}

    /** Protocol magic and version, the first int of a HELLO. */
    static final int MAGIC = 0x4D6F4445;   // "MoDE"

    // client -> server
    static final byte HELLO = 1, COLLECTIVE = 2, SEND = 3, RECV = 4, MISSING = 5, ABORT = 6, BYE = 7;
    // server -> client
    static final byte WELCOME = 20, REFUSED = 21, RESULT = 22, FAILED = 23, MISSING_RESULT = 24;

    /** Upper bound of one array payload (elements), against corrupt frames. */
    static final int MAX_ELEMENTS = 1 << 30;

    static void writeBuffer(DataOutputStream out, HostBuffer b) throws IOException {
        out.writeByte(b.kind().ordinal());
        int n = b.length();
        out.writeInt(n);
        int width = b.kind() == HostBuffer.Kind.F64 ? 8 : 4;
        ByteBuffer bb = ByteBuffer.allocate(n * width).order(ByteOrder.LITTLE_ENDIAN);
        switch (b.kind()) {
            case F32 -> bb.asFloatBuffer().put(b.floats());
            case I32 -> bb.asIntBuffer().put(b.ints());
            case F64 -> bb.asDoubleBuffer().put(b.doubles());
        }
        out.write(bb.array());
    }

    static HostBuffer readBuffer(DataInputStream in) throws IOException {
        int k = in.readByte();
        if (k < 0 || k >= HostBuffer.Kind.values().length) throw new IOException("corrupt frame: buffer kind " + k);
        HostBuffer.Kind kind = HostBuffer.Kind.values()[k];
        int n = in.readInt();
        if (n < 0 || n > MAX_ELEMENTS) throw new IOException("corrupt frame: buffer length " + n);
        int width = kind == HostBuffer.Kind.F64 ? 8 : 4;
        byte[] raw = new byte[n * width];
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
        int n = in.readInt();
        if (n < 0 || n > MAX_ELEMENTS) throw new IOException("corrupt frame: int list length " + n);
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
        if (k < 0 || k >= CollectiveSpec.Kind.values().length || op < -1 || op >= ReduceOp.values().length) throw new IOException("corrupt frame: collective " + k + "/" + op);
        int root = in.readInt();
        int[] counts = readInts(in), recv = readInts(in);
        return new CollectiveSpec(CollectiveSpec.Kind.values()[k], op < 0 ? null : ReduceOp.values()[op], root, counts, recv);
    }

    static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
        out.writeInt(b.length);
        out.write(b);
    }

    static byte[] readBytes(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > (1 << 20)) throw new IOException("corrupt frame: byte payload " + n);
        byte[] b = new byte[n];
        in.readFully(b);
        return b;
    }
}
