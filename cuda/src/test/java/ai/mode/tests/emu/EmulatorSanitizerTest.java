package ai.mode.tests.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The emulator catches what it should under sanitizer builds (OS-thread engine, one thread per CUDA thread):
 * ThreadSanitizer reports the race of a kernel missing its {@code __syncthreads} and nothing for the same
 * kernel with it (no false positives from the emulator's barriers); AddressSanitizer reports an off-by-one
 * global write and nothing for the in-bounds launch.
 */
class EmulatorSanitizerTest {
    private static CompletableFuture<Path> tsan;
    private static CompletableFuture<Path> asan;

    /** Both programs compile at once (one per core). */
    @BeforeAll
    static void build() {
        EmuBuilds.assumeCompiler();
        tsan = CompletableFuture.supplyAsync(() -> EmuBuilds.sanitizerProgram("thread"));
        asan = CompletableFuture.supplyAsync(() -> EmuBuilds.sanitizerProgram("address"));
    }

    private static Path await(CompletableFuture<Path> build) {
        try {
            return build.join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw e;
        }
    }

    @Test
    void threadSanitizerFindsTheMissingSyncthreads() {
        Path prog = await(tsan);
        EmuBuilds.Result clean = EmuBuilds.run(List.of(prog.toString(), "norace"), 120);
        assertEquals(0, clean.exitCode(), clean.output());
        assertFalse(clean.output().contains("ThreadSanitizer"), clean.output());

        EmuBuilds.Result race = EmuBuilds.run(List.of(prog.toString(), "race"), 120);
        assertNotEquals(0, race.exitCode(), race.output());
        assertTrue(race.output().contains("WARNING: ThreadSanitizer: data race"), race.output());
        assertTrue(race.output().contains("in emu_test_rotate"), race.output());
    }

    @Test
    void addressSanitizerFindsTheOutOfBoundsWrite() {
        Path prog = await(asan);
        EmuBuilds.Result clean = EmuBuilds.run(List.of(prog.toString(), "inbounds"), 120);
        assertEquals(0, clean.exitCode(), clean.output());
        assertFalse(clean.output().contains("AddressSanitizer"), clean.output());

        EmuBuilds.Result oob = EmuBuilds.run(List.of(prog.toString(), "oob"), 120);
        assertNotEquals(0, oob.exitCode(), oob.output());
        assertTrue(oob.output().contains("ERROR: AddressSanitizer: heap-buffer-overflow"), oob.output());
        assertTrue(oob.output().contains("in emu_test_write"), oob.output());
    }
}
