package ai.mode.cli;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import picocli.CommandLine.Option;

/**
 * Options shared by the training and evaluation commands (backend, threads, seed, quiet), as a picocli mixin.
 */
public final class CommonOptions {
    @Option(
            names = "--backend",
            defaultValue = "cpu",
            description = "Compute backend: cpu, emu or cuda (default: ${DEFAULT-VALUE}).")
    public String backend;

    @Option(
            names = "--threads",
            defaultValue = "0",
            description = "CPU threads (0 = one per core; default: ${DEFAULT-VALUE}).")
    public int threads;

    @Option(
            names = "--seed",
            defaultValue = "1234",
            description = "Seed for initialisation and data order (default: ${DEFAULT-VALUE}).")
    public long seed;

    @Option(
            names = {"-q", "--quiet"},
            description = "No progress bar or progress lines.")
    public boolean quiet;

    /** Creates the chosen backend (one-line error if unknown or unavailable). */
    public Backend openBackend() {
        if (threads < 0) throw new IllegalArgumentException("--threads must be >= 0 (got " + threads + ")");
        return Backends.create(backend, threads);
    }
}
