package ai.mode.model.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Keeps a command from writing over its own inputs or over files it did not create (issue 14): an output file or
 * folder that is one of the command's inputs, or lies inside an input folder (a checkpoint), is refused always,
 * since writing there destroys what the run reads; an output file that exists already, or an output folder that
 * holds files another command wrote, is refused unless the user passes {@code --force}. A command's output folder
 * carries a marker, {@value #MARKER}, naming the command that made it, so that the same command may write into it
 * again (a rerun, a resume) and another may not.
 */
public final class OutputGuard {
    private OutputGuard() {}

    /** The marker file in an output folder: the name of the command that made it. */
    public static final String MARKER = ".mode-command";

    /**
     * Checks the output file {@code out} (given as {@code option}) before a command writes it.
     *
     * @param inputs the command's input files and folders
     */
    public static void file(Path out, String option, boolean force, List<Path> inputs) {
        notAnInput(out, option, inputs);
        if (Files.isDirectory(out))
            throw new IllegalArgumentException(option + " " + out + " is a folder; give the path of a file to write");
        if (Files.exists(out) && !force)
            throw new IllegalArgumentException(option + " " + out
                    + " already exists and this command did not write it; choose another path, or pass --force to"
                    + " replace it");
    }

    /**
     * Checks and claims the output folder {@code dir} of {@code command}: refused when it is or lies inside an
     * input, or (without {@code force}) when it already holds files and was not made by {@code command}; then
     * creates it and marks it as {@code command}'s.
     */
    public static void folder(Path dir, String command, boolean force, List<Path> inputs) {
        String owner = checkFolder(dir, command, force, inputs);
        try {
            Files.createDirectories(dir);
            if (!command.equals(owner)) AtomicFiles.writeString(dir.resolve(MARKER), command + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the output folder " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * The checks of {@link #folder} without creating or marking anything, for a command that assembles its folder
     * elsewhere and renames it into place (it writes the marker itself).
     *
     * @return the command named by the folder's marker, or null
     */
    public static String checkFolder(Path dir, String command, boolean force, List<Path> inputs) {
        notAnInput(dir, "--out", inputs);
        Path marker = dir.resolve(MARKER);
        try {
            if (Files.exists(dir) && !Files.isDirectory(dir))
                throw new IllegalArgumentException(
                        "--out " + dir + " is a file, not a folder; choose another --out for the output folder");
            String owner = Files.isRegularFile(marker)
                    ? Files.readString(marker, StandardCharsets.UTF_8).strip()
                    : null;
            if (!force && !command.equals(owner) && holdsFiles(dir)) {
                throw new IllegalArgumentException("--out " + dir + " already holds files that `mode " + command
                        + "` did not write" + (owner == null ? "" : " (it is the output of `mode " + owner + "`)")
                        + "; choose another --out, or pass --force to write over them");
            }
            return owner;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the output folder " + dir + ": " + e.getMessage(), e);
        }
    }

    private static boolean holdsFiles(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return false;
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(p -> !p.getFileName().toString().equals(MARKER));
        }
    }

    /** Refuses {@code out} when it is one of {@code inputs} or lies inside an input folder. */
    private static void notAnInput(Path out, String option, List<Path> inputs) {
        Path o = real(out);
        for (Path in : inputs) {
            if (in == null) continue;
            Path i = real(in);
            if (o.equals(i))
                throw new IllegalArgumentException(option + " " + out
                        + " is an input of this command; write the output elsewhere (--force does not allow this)");
            if (Files.isDirectory(i) && o.startsWith(i))
                throw new IllegalArgumentException(option + " " + out + " lies inside " + in
                        + ", an input of this command; write the output elsewhere (--force does not allow this)");
        }
    }

    /**
     * The absolute, normalised path with its existing part's links resolved, so that two spellings of one file
     * compare equal.
     */
    private static Path real(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null) return abs;
        try {
            return existing.toRealPath().resolve(existing.relativize(abs));
        } catch (IOException e) {
            return abs;
        }
    }
}
