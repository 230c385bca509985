package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.net.HubServer;
import ai.mode.parallel.net.JobSecret;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.net.Rendezvous;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job secret of a multi-process run (issue 14): a launch without one refuses to start with one line saying how
 * to make one; a short secret, a secret file other users can read, and both variables at once are one-line errors
 * with the fix; a secret file of the owner's works like the variable; a process with another secret is refused at
 * the challenge (it learns that rank 0 did not prove the secret, and rank 0 logs and drops it) and never joins.
 */
class JobSecretTest {
    private static Map<String, String> launch(int rank, String... more) {
        Map<String, String> env = new HashMap<>(Map.of(
                "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "29500", "RANK", Integer.toString(rank), "WORLD_SIZE", "2"));
        for (int i = 0; i < more.length; i += 2) env.put(more[i], more[i + 1]);
        return env;
    }

    private static void oneLine(String msg, String... parts) {
        assertFalse(msg.contains("\n"), msg);
        for (String p : parts) assertTrue(msg.contains(p), "missing '" + p + "' in: " + msg);
    }

    @Test
    void aLaunchWithoutASecretRefusesToStartSayingHowToMakeOne() {
        String msg = assertThrows(IllegalArgumentException.class, () -> LaunchEnv.from(launch(0)))
                .getMessage();
        oneLine(msg, "needs a job secret", "MODE_JOB_SECRET", "export MODE_JOB_SECRET=$(openssl rand -hex 32)");
        assertTrue(LaunchEnv.from(Map.of()).isEmpty(), "a single-process run needs none");
    }

    @Test
    void badSecretsAreOneLineErrorsWithTheFix(@TempDir Path dir) throws Exception {
        oneLine(
                assertThrows(
                                IllegalArgumentException.class,
                                () -> LaunchEnv.from(launch(0, "MODE_JOB_SECRET", "hunter2")))
                        .getMessage(),
                "7 characters, fewer than 32",
                "openssl rand -hex 32");
        Path open = Files.writeString(dir.resolve("open"), RendezvousTest.SECRET_TEXT);
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rw-r--r--"));
        oneLine(
                assertThrows(
                                IllegalArgumentException.class,
                                () -> LaunchEnv.from(launch(0, "MODE_JOB_SECRET_FILE", open.toString())))
                        .getMessage(),
                "is open to other users (rw-r--r--)",
                "chmod 600 " + open);
        oneLine(
                assertThrows(
                                IllegalArgumentException.class,
                                () -> LaunchEnv.from(launch(
                                        0,
                                        "MODE_JOB_SECRET",
                                        RendezvousTest.SECRET_TEXT,
                                        "MODE_JOB_SECRET_FILE",
                                        open.toString())))
                        .getMessage(),
                "both MODE_JOB_SECRET and MODE_JOB_SECRET_FILE are set");
        oneLine(
                assertThrows(
                                IllegalArgumentException.class,
                                () -> LaunchEnv.from(launch(
                                        0,
                                        "MODE_JOB_SECRET_FILE",
                                        dir.resolve("none").toString())))
                        .getMessage(),
                "does not exist");
    }

    /** Rank 0 with the secret from the variable, rank 1 from its file, then a rank 1 with another secret. */
    @Test
    void aSecretFileJoinsAndAnotherSecretIsRefusedAtTheChallenge(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("secret"), RendezvousTest.SECRET_TEXT + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        int port = RendezvousTest.freePort();
        String p = Integer.toString(port);
        LaunchEnv zero = LaunchEnv.from(launch(0, "MASTER_PORT", p, "MODE_JOB_SECRET", RendezvousTest.SECRET_TEXT))
                .orElseThrow();
        LaunchEnv one = LaunchEnv.from(launch(1, "MASTER_PORT", p, "MODE_JOB_SECRET_FILE", file.toString()))
                .orElseThrow();
        LaunchEnv impostor = new LaunchEnv(
                "127.0.0.1", port, 1, 2, 1, JobSecret.of("another secret, 32 characters or more", "test"));
        CompletableFuture<Void> zeroIn = new CompletableFuture<>();
        CompletableFuture<String> dropped = new CompletableFuture<>();
        HubServer.Hooks hooks = new HubServer.Hooks() {
            @Override
            public void arrived(int rank, int arrived) {
                if (rank == 0) zeroIn.complete(null);
            }

            @Override
            public void dropped(InetSocketAddress remote, String why) {
                dropped.complete(why);
            }
        };
        ExecutorService pool = Executors.newFixedThreadPool(1);
        try {
            Future<Integer> master = pool.submit(() -> {
                try (Rendezvous.Joined j = Rendezvous.join(zero, 1, Duration.ofSeconds(30), () -> new byte[0], hooks)) {
                    return j.worldSize();
                }
            });
            zeroIn.get(20, TimeUnit.SECONDS);
            String refused = assertThrows(
                            IllegalStateException.class,
                            () -> Rendezvous.join(impostor, 1, Duration.ofSeconds(30), () -> new byte[0]))
                    .getMessage();
            oneLine(refused, "did not prove that it knows the job secret", "the same MODE_JOB_SECRET");
            String why = dropped.get(20, TimeUnit.SECONDS);
            assertTrue(why.contains("instead of answering the challenge to its HELLO for RANK 1"), why);
            assertFalse(master.isDone(), "the run still waits for the real rank 1");
            try (Rendezvous.Joined j = Rendezvous.join(one, 1, Duration.ofSeconds(30), () -> new byte[0])) {
                assertEquals(1, j.firstRank());
                assertEquals(2, j.worldSize());
            }
            assertEquals(2, master.get(20, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }
}
