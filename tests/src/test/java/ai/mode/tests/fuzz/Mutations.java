package ai.mode.tests.fuzz;

import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.SplittableRandom;

/** Random edits of a valid file for the fuzz tests: each seed flips, inserts, deletes or overwrites bytes, or cuts. */
public final class Mutations {
    private Mutations() {}

    /** {@code valid} with one edit per seed, in order. */
    public static byte[] apply(byte[] valid, List<Long> seeds) {
        byte[] b = valid.clone();
        for (long seed : seeds) b = edit(b, new SplittableRandom(seed));
        return b;
    }

    private static byte[] edit(byte[] b, SplittableRandom r) {
        if (b.length == 0) return new byte[] {(byte) r.nextInt(256)};
        int at = r.nextInt(b.length);
        ByteArrayOutputStream out = new ByteArrayOutputStream(b.length + 8);
        switch (r.nextInt(6)) {
            case 0 -> { // flip a bit
                byte[] c = b.clone();
                c[at] ^= (byte) (1 << r.nextInt(8));
                return c;
            }
            case 1 -> { // insert a random byte or an interesting one
                byte[] interesting = {0, -1, '"', '{', '}', '[', ']', ',', ':', '\\', '9', '-', (byte) 0x7F, (byte) 0x80
                };
                out.write(b, 0, at);
                out.write(r.nextBoolean() ? interesting[r.nextInt(interesting.length)] : r.nextInt(256));
                out.write(b, at, b.length - at);
                return out.toByteArray();
            }
            case 2 -> { // delete a run of bytes
                int n = 1 + r.nextInt(Math.min(16, b.length - at));
                out.write(b, 0, at);
                out.write(b, at + n, b.length - at - n);
                return out.toByteArray();
            }
            case 3 -> { // cut the file short
                return java.util.Arrays.copyOf(b, at);
            }
            case 4 -> { // overwrite 8 bytes with an extreme little-endian length (the safetensors header size)
                byte[] c = b.clone();
                long v = r.nextBoolean() ? Long.MAX_VALUE : r.nextLong();
                for (int i = 0; i < 8 && at + i < c.length; i++) c[at + i] = (byte) (v >>> (8 * i));
                return c;
            }
            default -> { // duplicate a slice
                int n = 1 + r.nextInt(Math.min(32, b.length - at));
                out.write(b, 0, at + n);
                out.write(b, at, b.length - at);
                return out.toByteArray();
            }
        }
    }
}
