package ai.mode.parallel.net;

import ai.mode.parallel.comm.CollectiveSpec;
import ai.mode.parallel.comm.HostBuffer;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.tests.fuzz.ParserFuzzTest;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Fuzzing of the hub's frame readers (issue 14), in the package of {@link Wire}: a collective's spec and buffer, an
 * int list and a payload, from random bytes and random edits of valid frames. Every input is read or fails with an
 * IOException (a protocol error or the end of the stream) with a one-line message: never an allocation of the size
 * a corrupt length field claims, a negative array size or any other exception. Seed and tries as in
 * {@link ParserFuzzTest}.
 */
class WireFuzzTest {
    private static byte[] frame() {
        try {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(b);
            Wire.writeSpec(
                    o,
                    new CollectiveSpec(
                            CollectiveSpec.Kind.values()[0], ReduceOp.SUM, 0, new int[] {1, 2}, new int[] {3}));
            Wire.writeBuffer(o, HostBuffer.of(new float[] {1, 2, 3}));
            Wire.writeInts(o, new int[] {7, 8, 9});
            Wire.writeBytes(o, new byte[] {1, 2, 3, 4});
            return b.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Provide
    Arbitrary<byte[]> frames() {
        return ParserFuzzTest.mutationsOf(frame());
    }

    @Property(seed = "20261207")
    void framesAreReadOrRefusedInOneLine(@ForAll("frames") byte[] bytes) {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes));
        ParserFuzzTest.parsesOrFails(
                () -> {
                    try {
                        Wire.readSpec(in);
                        Wire.readBuffer(in);
                        Wire.readInts(in);
                        Wire.readBytes(in);
                    } catch (EOFException e) {
                        // the frame ended early: the hub treats it as the peer's disconnect
                    }
                },
                IOException.class);
    }
}
