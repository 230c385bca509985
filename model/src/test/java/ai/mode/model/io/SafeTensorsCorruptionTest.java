// Every truncation point and many single-byte corruptions of a small safetensors file: each must either load or
// fail with a one-line CheckpointFormatException naming the file; no other exception type may escape.
package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsCorruptionTest {

    @TempDir
    Path tmp;

    private byte[] sample() throws IOException {
        NamedTensors t = new NamedTensors()
                .put("model.embed_tokens.weight", new int[] {3, 2}, new float[] {1, 2, 3, 4, 5, 6})
                .put("model.norm.weight", new int[] {2}, new float[] {0.5f, -0.25f})
                .put("s", new int[] {}, new float[] {7});
        Path f = tmp.resolve("sample.safetensors");
        SafeTensors.write(f, t, Map.of("format", "pt", "step", "12"), SafeDType.F16);
        return Files.readAllBytes(f);
    }

    private int counter;

    /**
     * Writes {@code content} to a fresh file (rewriting one file in place costs milliseconds per truncation on ext4)
     * and loads it fully; returns null on success or the format error; fails the test on any other throwable.
     */
    private CheckpointFormatException tryLoad(byte[] content, String what) throws IOException {
        Path f = tmp.resolve("case-" + counter++ + ".safetensors");
        Files.write(f, content);
        try {
            return tryLoad(f, what);
        } finally {
            Files.delete(f);
        }
    }

    private CheckpointFormatException tryLoad(Path f, String what) {
        try (SafeTensorsReader r = SafeTensorsReader.open(f)) {
            r.readAll();
            r.metadata();
            return null;
        } catch (CheckpointFormatException e) {
            assertFalse(e.getMessage().contains("\n"), () -> what + ": message must be one line: " + e.getMessage());
            assertTrue(
                    e.getMessage().startsWith(f.toString()),
                    () -> what + ": message must name the file: " + e.getMessage());
            return e;
        } catch (Throwable t) {
            fail(what + ": expected a CheckpointFormatException, got " + t, t);
            return null;
        }
    }

    @Test
    void everyTruncationPointGivesAOneLineError() throws IOException {
        byte[] full = sample();
        for (int len = 0; len < full.length; len++) {
            CheckpointFormatException e = tryLoad(Arrays.copyOf(full, len), "truncated to " + len + " bytes");
            if (e == null) fail("a file truncated to " + len + " of " + full.length + " bytes loaded without error");
        }
        assertEquals(null, tryLoad(full, "intact file"));
    }

    @Test
    void singleByteCorruptionsNeverEscapeAsOtherExceptions() throws IOException {
        byte[] full = sample();
        long headerEnd =
                8 + ByteBuffer.wrap(full).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        byte[] replacements = {0, '{', '}', '"', ',', ':', '[', ']', '9', '-', 'e', ' ', '\\', (byte) 0xFF, (byte) 0x80
        };
        int failures = 0;
        for (int pos = 0; pos < headerEnd; pos++) {
            for (int k = 0; k < 3; k++) { // three of the replacements per position, rotating
                byte r = replacements[(pos + 5 * k) % replacements.length];
                if (full[pos] == r) continue;
                byte[] c = full.clone();
                c[pos] = r;
                if (tryLoad(c, "byte " + pos + " set to " + (r & 0xFF)) != null) failures++;
            }
        }
        assertTrue(failures > 0);
    }

    @Test
    void randomGarbageAndAppendedBytesAreRejectedCleanly() throws IOException {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = 0; i < 300; i++) {
            byte[] g = new byte[rnd.nextInt(0, 200)];
            for (int j = 0; j < g.length; j++) g[j] = (byte) rnd.nextInt(256);
            if (g.length >= 8 && rnd.nextBoolean()) { // plausible header length so the JSON parser is reached
                ByteBuffer.wrap(g).order(ByteOrder.LITTLE_ENDIAN).putLong(0, rnd.nextInt(0, g.length - 7));
                if (g.length > 8) g[8] = '{';
            }
            tryLoad(g, "garbage #" + i);
        }
        byte[] full = sample();
        byte[] longer = Arrays.copyOf(full, full.length + 3);
        assertTrue(tryLoad(longer, "appended bytes").getMessage().contains("trailing bytes"));
    }
}
