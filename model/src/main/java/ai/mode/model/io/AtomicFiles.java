package ai.mode.model.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Crash-safe file replacement: write to a temp file in the same directory, force it to disk, rename it over the target
 * atomically, then fsync the directory so the rename itself is durable. A crash at any point leaves either the old file
 * or the new file, never a mixture.
 *
 * <pre>{@code
 * AtomicFiles.write(Path.of("out/model.safetensors"), channel -> channel.write(buffer));
 * AtomicFiles.writeString(Path.of("out/latest"), "step-00000100\n");
 * }</pre>
 *
 * Temporary names start with {@link #TEMP_PREFIX} so that directory scanners can ignore and clean them.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Prefix of every temporary file or directory this package creates. */
    public static final String TEMP_PREFIX = ".tmp-";

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final System.Logger LOG = System.getLogger(AtomicFiles.class.getName());

    /** Writes a file's content into an open channel positioned at 0. */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    /**
     * Replaces {@code target} atomically with what {@code writer} writes. If the writer throws, the temp file is
     * deleted, {@code target} is untouched and the exception propagates.
     */
    public static void write(Path target, ChannelWriter writer) throws IOException {
        Path dir = parentOf(target);
        Files.createDirectories(dir);
        Path temp = tempSibling(target);
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writer.write(ch);
                ch.force(true);
            }
            moveAtomically(temp, target);
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(temp);
        }
        fsyncDirectory(dir);
    }

    /** Fills a fresh temporary directory with a directory's files. */
    @FunctionalInterface
    public interface DirectoryWriter {
        void write(Path dir) throws IOException;
    }

    /**
     * Replaces the directory {@code target} atomically with what {@code writer} puts into a temporary sibling
     * directory: the files are forced to disk and the directory takes {@code target}'s name ({@link
     * #replaceDirectory}). If the writer throws, the temporary directory is deleted, {@code target} is untouched and
     * the exception propagates.
     */
    public static void writeDirectory(Path target, DirectoryWriter writer) throws IOException {
        Files.createDirectories(parentOf(target));
        Path temp = tempSibling(target);
        Files.createDirectory(temp);
        boolean done = false;
        try {
            writer.write(temp);
            fsyncDirectory(temp);
            replaceDirectory(temp, target);
            done = true;
        } finally {
            if (!done) deleteRecursively(temp);
        }
    }

    /** Replaces {@code target} atomically with {@code bytes}. */
    public static void writeBytes(Path target, byte[] bytes) throws IOException {
        write(target, ch -> writeFully(ch, ByteBuffer.wrap(bytes)));
    }

    /** Replaces {@code target} atomically with {@code text} in UTF-8. */
    public static void writeString(Path target, String text) throws IOException {
        writeBytes(target, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Writes every remaining byte of {@code buffer}. */
    public static void writeFully(FileChannel ch, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) ch.write(buffer);
    }

    /** A fresh unused name {@code .tmp-<name>-<random>} beside {@code target}. */
    static Path tempSibling(Path target) {
        byte[] r = new byte[6];
        RANDOM.nextBytes(r);
        return parentOf(target)
                .resolve(TEMP_PREFIX + target.getFileName() + "-"
                        + HexFormat.of().formatHex(r));
    }

    /** Renames {@code source} to {@code target} in one atomic step (replacing a file target). */
    static void moveAtomically(Path source, Path target) throws IOException {
        try {
            Files.move(source, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException(
                    "cannot rename " + source + " to " + target
                            + " atomically (different file systems?); checkpoints need a file system with atomic rename",
                    e);
        }
    }

    /**
     * Puts the complete directory {@code temp} (a {@link #tempSibling} of {@code target}, already forced to disk) in
     * place of {@code target}: an existing {@code target} is renamed aside first and deleted after, so the name holds
     * either the old or the new directory at every moment; then the parent directory is forced to disk.
     */
    private static void replaceDirectory(Path temp, Path target) throws IOException {
        Path parent = parentOf(target);
        if (Files.exists(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            Path old = tempSibling(target);
            moveAtomically(target, old);
            moveAtomically(temp, target);
            fsyncDirectory(parent);
            deleteRecursively(old);
        } else {
            moveAtomically(temp, target);
        }
        fsyncDirectory(parent);
    }

    /**
     * Forces a directory's entries (creations, renames) to disk where the platform allows opening a directory;
     * silently does nothing where it does not (e.g. Windows).
     */
    public static void fsyncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.log(System.Logger.Level.DEBUG, "directory fsync not available for {0}: {1}", dir, e.getMessage());
        }
    }

    /** Deletes a file or a directory tree; no error if it does not exist. */
    public static void deleteRecursively(Path root) throws IOException {
        if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                if (exc != null) throw exc;
                Files.deleteIfExists(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** Parent directory of a path, the current directory for a bare file name. */
    static Path parentOf(Path p) {
        Path parent = p.toAbsolutePath().getParent();
        if (parent == null) throw new IllegalArgumentException("path has no parent directory: " + p);
        return parent;
    }
}
