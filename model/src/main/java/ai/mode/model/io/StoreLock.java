package ai.mode.model.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;

/**
 * One writer per checkpoint store (issue 14): a run holds an exclusive lock on {@code <store>/.lock} (an OS file
 * lock, released by the OS when the process dies, so a killed run leaves nothing to clean up) for as long as it
 * may write checkpoints or its metrics; a second run on the same store, in this process or another, fails at once
 * with one line naming the holder (pid, host, since when) instead of the two deleting each other's temporary files.
 * The file stays; only the lock on it counts.
 */
public final class StoreLock implements AutoCloseable {
    /** The lock file's name inside the store. */
    public static final String FILE = ".lock";

    private final FileChannel channel;
    private final FileLock lock;

    private StoreLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the lock of the store at {@code root} (created if missing), or fails naming the run that holds it. */
    public static StoreLock acquire(Path root) {
        return acquire(root, "checkpoint store");
    }

    /**
     * The same lock on any folder a run writes alone (a run folder without checkpoints), called {@code what} in the
     * message.
     */
    public static StoreLock acquire(Path root, String what) {
        Path file = root.resolve(FILE);
        FileChannel ch = null;
        try {
            Files.createDirectories(root);
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                l = null; // held by this process already
            }
            if (l == null) {
                String holder = Files.readString(file, StandardCharsets.UTF_8).strip();
                throw new IllegalStateException(what + " " + root + " is in use by another run ("
                        + (holder.isEmpty() ? "holder unknown" : holder)
                        + "); wait for it to finish or stop it, or give this run another --out");
            }
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(holder().getBytes(StandardCharsets.UTF_8)), 0);
            ch.force(false);
            return new StoreLock(ch, l);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new UncheckedIOException("cannot lock the " + what + " " + root + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /** {@code pid N on host H since T}: who holds the lock. */
    private static String holder() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "an unknown host";
        }
        return "pid " + ProcessHandle.current().pid() + " on host " + host + " since " + Instant.now();
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch == null) return;
        try {
            ch.close();
        } catch (IOException ignored) {
            // the lock could not be taken; nothing to release
        }
    }

    /** Releases the lock. */
    @Override
    public void close() {
        try {
            lock.release();
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot release the checkpoint store lock: " + e.getMessage(), e);
        }
    }
}
