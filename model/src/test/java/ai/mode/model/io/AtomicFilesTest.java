// Atomic replacement: content is all-new or all-old; a writer that fails part-way leaves the old file and no
// temporary files behind.
package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {

    @TempDir
    Path tmp;

    private long entries() throws IOException {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.count();
        }
    }

    @Test
    void replacesContentWhole() throws IOException {
        Path f = tmp.resolve("sub/dir/a.txt");
        AtomicFiles.writeString(f, "first");
        AtomicFiles.writeString(f, "second, longer");
        assertEquals("second, longer", Files.readString(f));
        AtomicFiles.writeBytes(f, new byte[] {1});
        assertArrayEquals(new byte[] {1}, Files.readAllBytes(f));
        try (Stream<Path> s = Files.list(f.getParent())) {
            assertEquals(1, s.count(), "no temporary files left");
        }
    }

    @Test
    void failureMidWriteKeepsTheOldFile() throws IOException {
        Path f = tmp.resolve("model.bin");
        AtomicFiles.writeString(f, "old content");
        IOException e = assertThrows(
                IOException.class,
                () -> AtomicFiles.write(f, ch -> {
                    AtomicFiles.writeFully(ch, ByteBuffer.wrap("new par".getBytes()));
                    throw new IOException("disk full (simulated)");
                }));
        assertEquals("disk full (simulated)", e.getMessage());
        assertEquals("old content", Files.readString(f));
        assertEquals(1, entries());

        Path g = tmp.resolve("fresh.bin");
        assertThrows(
                IllegalStateException.class,
                () -> AtomicFiles.write(g, ch -> {
                    AtomicFiles.writeFully(ch, ByteBuffer.wrap(new byte[100]));
                    throw new IllegalStateException("bug in writer");
                }));
        assertFalse(Files.exists(g));
        assertEquals(1, entries());
    }

    @Test
    void deleteRecursivelyRemovesTrees() throws IOException {
        Path d = tmp.resolve("tree");
        Files.createDirectories(d.resolve("a/b"));
        Files.writeString(d.resolve("a/b/c"), "x");
        Files.writeString(d.resolve("top"), "y");
        AtomicFiles.deleteRecursively(d);
        assertFalse(Files.exists(d));
        AtomicFiles.deleteRecursively(d); // absent: no error
        AtomicFiles.fsyncDirectory(tmp);
    }
}
