package ai.mode.tests.emu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Builds the emulator from the repository's sources for tests that need a variant of it: a shared library
 * with the test-only kernels ({@code kernels/src/test/cuda/emu_checks.cu}), and standalone ThreadSanitizer /
 * AddressSanitizer programs. Outputs are cached under the system temp directory by a hash of the sources
 * and flags, so reruns do not recompile. Tests skip by assumption when g++ is missing.
 */
final class EmuBuilds {
    private EmuBuilds() {}

    static final List<String> COMMON = List.of("-std=c++20", "-pthread", "-DMODE_EMU");

    /** The repository root (surefire passes it as {@code mode.repo.root}). */
    static Path repoRoot() {
        String root = System.getProperty("mode.repo.root");
        Path p = root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
        assumeTrue(p != null && Files.isDirectory(p.resolve("kernels/src/main/emu")), "repository sources not found");
        return p;
    }

    static void assumeCompiler() {
        assumeTrue(run(List.of("g++", "--version"), 30).exitCode() == 0, "g++ not found");
    }

    /** The test-kernel library, fiber engine (the default), as the shipped library is built. */
    static Path checksLibrary() {
        Path root = repoRoot();
        List<String> args = new ArrayList<>(COMMON);
        args.addAll(List.of("-O1", "-fPIC", "-shared"));
        return build("libemu_checks.so", args, root);
    }

    /** A standalone program running the sanitizer scenarios, with the OS-thread engine and the given sanitizer. */
    static Path sanitizerProgram(String sanitizer) {
        Path root = repoRoot();
        List<String> args = new ArrayList<>(COMMON);
        args.addAll(
                List.of("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=" + sanitizer, "-DMODE_EMU_OS_THREADS"));
        return build("emu_" + sanitizer, args, root, root.resolve("kernels/src/test/cuda/sanitizer_main.cpp"));
    }

    private static Path build(String output, List<String> flags, Path root, Path... extra) {
        assumeCompiler();
        Path emu = root.resolve("kernels/src/main/emu");
        Path include = root.resolve("kernels/src/main/cuda/include");
        List<Path> inputs = new ArrayList<>(List.of(
                root.resolve("kernels/src/test/cuda/emu_checks.cu"),
                emu.resolve("cuda_emu_runtime.cpp"),
                emu.resolve("cuda_emu.h"),
                include.resolve("mode_common.cuh")));
        inputs.addAll(List.of(extra));
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "mode-emu-tests", hash(inputs, flags));
        Path out = dir.resolve(output);
        if (Files.isRegularFile(out)) return out;
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path tmp = dir.resolve(output + ".tmp" + ProcessHandle.current().pid());
        List<String> cmd = new ArrayList<>(List.of("g++"));
        cmd.addAll(flags);
        cmd.addAll(List.of(
                "-I" + emu,
                "-I" + include,
                "-x",
                "c++",
                root.resolve("kernels/src/test/cuda/emu_checks.cu").toString(),
                emu.resolve("cuda_emu_runtime.cpp").toString()));
        for (Path p : extra) cmd.add(p.toString());
        cmd.addAll(List.of("-o", tmp.toString()));
        Result r = run(cmd, 600);
        if (r.exitCode() != 0) {
            boolean noRuntime = r.output().contains("-ltsan")
                    || r.output().contains("-lasan")
                    || r.output().contains("libtsan")
                    || r.output().contains("libasan");
            assumeTrue(!noRuntime, "sanitizer runtime not installed: " + r.output());
            throw new IllegalStateException("g++ failed (" + r.exitCode() + "): " + r.output());
        }
        try {
            Files.move(
                    tmp,
                    out,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    record Result(int exitCode, String output) {}

    /** Runs a command, merging stdout and stderr. */
    static Result run(List<String> cmd, int timeoutSeconds) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("timed out: " + cmd);
            }
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
        } catch (IOException e) {
            return new Result(-1, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String hash(List<Path> inputs, List<String> flags) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Path p : inputs) md.update(Files.readAllBytes(p));
            md.update(String.join(" ", flags).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(md.digest()).substring(0, 24);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
