package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.io.StoreLock;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One writer per checkpoint store (issue 14): while a run holds the store's lock, a second one fails at once with
 * one line naming the holder's pid and host and the fix; once the first lets go, the store can be taken again.
 */
class StoreLockTest {
    @Test
    void aSecondWriterIsRefusedNamingTheHolder(@TempDir Path dir) {
        Path store = dir.resolve("run/checkpoints");
        try (StoreLock first = StoreLock.acquire(store)) {
            String m = assertThrows(IllegalStateException.class, () -> StoreLock.acquire(store))
                    .getMessage();
            assertTrue(
                    m.startsWith("checkpoint store " + store + " is in use by another run (pid "
                                    + ProcessHandle.current().pid() + " on host ")
                            && m.contains("another --out")
                            && !m.contains("\n"),
                    m);
        }
        try (StoreLock again = StoreLock.acquire(store)) {
            assertTrue(store.resolve(StoreLock.FILE).toFile().isFile());
        }
    }
}
