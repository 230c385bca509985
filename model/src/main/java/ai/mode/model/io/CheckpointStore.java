package ai.mode.model.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A run's checkpoint folder: step-NNNNNNNN directories written atomically, a {@code latest} pointer file replaced
 * atomically after each save, and retention of the newest N. Because a step directory only ever appears by rename of a
 * complete temporary directory, a crash at any point leaves every earlier checkpoint intact and loadable.
 *
 * <pre>{@code
 * CheckpointStore store = new CheckpointStore(Path.of("runs/base/checkpoints"), 3);   // keep the newest 3
 * store.save(step, Checkpoint.builder().config(cfg).model(weights).trainerState(state));
 * Optional<Checkpoint> resume = store.latest();        // follows `latest`, falls back to the newest valid step
 * Checkpoint c = CheckpointStore.resolve(Path.of(arg)); // a store root or a single checkpoint directory
 * }</pre>
 *
 * Layout: {@code <root>/step-00000100/...}, {@code <root>/latest} (one line: the directory name). Entries starting
 * with {@code .tmp-} are leftovers of interrupted writes and are removed by the next {@link #save}. One writer per
 * root at a time.
 */
public final class CheckpointStore {

    /** Name of the pointer file holding the newest checkpoint's directory name. */
    public static final String LATEST = "latest";

    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{1,18})");
    private static final System.Logger LOG = System.getLogger(CheckpointStore.class.getName());

    private final Path root;
    private final int keepLast;

    /**
     * @param root     folder holding the step directories (created on first save)
     * @param keepLast how many newest checkpoints to keep after each save; 0 keeps all
     */
    public CheckpointStore(Path root, int keepLast) {
        if (keepLast < 0) throw new IllegalArgumentException("keepLast must be >= 0 (0 keeps all), got " + keepLast);
        this.root = root.toAbsolutePath().normalize();
        this.keepLast = keepLast;
    }

    public Path root() {
        return root;
    }

    /** The directory name for a step: {@code step-} and at least 8 digits. */
    public static String dirName(long step) {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
        return String.format("step-%08d", step);
    }

    /**
     * Writes the checkpoint for {@code step} (the manifest records the step), points {@code latest} at it, then
     * deletes the oldest checkpoints beyond {@code keepLast} and leftovers of interrupted writes.
     */
    public Path save(long step, Checkpoint.Builder contents) throws IOException {
        Files.createDirectories(root);
        removeLeftovers();
        Path dir = contents.step(step).writeTo(root.resolve(dirName(step)));
        AtomicFiles.writeString(root.resolve(LATEST), dirName(step) + "\n");
        prune(step);
        return dir;
    }

    /** Step directories (complete by construction), oldest first. */
    public List<Path> list() throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(root)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
            for (Path p : ds) {
                if (stepOf(p) >= 0 && Files.isDirectory(p)) out.add(p);
            }
        }
        out.sort(Comparator.comparingLong(CheckpointStore::stepOf));
        return out;
    }

    /**
     * The newest usable checkpoint: the one {@code latest} names if it opens, otherwise (pointer missing, damaged or
     * naming a damaged directory) the newest step directory that opens, with a warning. Empty if there is none.
     */
    public Optional<Checkpoint> latest() throws IOException {
        Path pointer = root.resolve(LATEST);
        if (Files.isRegularFile(pointer)) {
            String name = Files.readString(pointer, StandardCharsets.UTF_8).strip();
            if (STEP_DIR.matcher(name).matches()) {
                try {
                    return Optional.of(Checkpoint.open(root.resolve(name)));
                } catch (CheckpointFormatException | NoSuchFileException e) {
                    LOG.log(
                            System.Logger.Level.WARNING,
                            "{0} names an unusable checkpoint ({1}); using the newest valid one",
                            pointer,
                            e.getMessage());
                }
            } else {
                LOG.log(
                        System.Logger.Level.WARNING,
                        "{0} does not name a step directory; using the newest valid one",
                        pointer);
            }
        }
        List<Path> all = list();
        for (int i = all.size() - 1; i >= 0; i--) {
            try {
                return Optional.of(Checkpoint.open(all.get(i)));
            } catch (CheckpointFormatException e) {
                LOG.log(System.Logger.Level.WARNING, "skipping damaged checkpoint: {0}", e.getMessage());
            }
        }
        return Optional.empty();
    }

    /**
     * A checkpoint from a user-given path: the path itself if it is a checkpoint directory, else the latest
     * checkpoint of the store rooted there. One-line error if neither.
     */
    public static Checkpoint resolve(Path path) throws IOException {
        if (Files.isRegularFile(path.resolve(Checkpoint.MANIFEST))
                || Files.isRegularFile(path.resolve(Checkpoint.CONFIG))
                || Files.isRegularFile(path.resolve(Checkpoint.MODEL))) {
            return Checkpoint.open(path);
        }
        if (!Files.isDirectory(path)) throw new CheckpointFormatException(path, "checkpoint directory not found");
        return new CheckpointStore(path, 0)
                .latest()
                .orElseThrow(() -> new CheckpointFormatException(
                        path,
                        "holds no checkpoint (neither a checkpoint directory nor a folder of step-N checkpoints)"));
    }

    /** The newest step directory beside {@code dir} (a step directory) with a smaller step, if there is one. */
    static Optional<Path> earlierThan(Path dir) {
        long step = stepOf(dir);
        if (step < 0 || dir.getParent() == null) return Optional.empty();
        try {
            List<Path> all = new CheckpointStore(dir.getParent(), 0).list();
            for (int i = all.size() - 1; i >= 0; i--) {
                if (stepOf(all.get(i)) < step) return Optional.of(all.get(i));
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "cannot list {0}: {1}", dir.getParent(), e.getMessage());
        }
        return Optional.empty();
    }

    /** Step number of a step directory path, or -1 if the name is not {@code step-<digits>}. */
    static long stepOf(Path p) {
        Matcher m = STEP_DIR.matcher(p.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    private void prune(long justSaved) throws IOException {
        if (keepLast == 0) return;
        List<Path> all = list();
        int excess = all.size() - keepLast;
        for (int i = 0; i < all.size() && excess > 0; i++) {
            Path p = all.get(i);
            if (stepOf(p) == justSaved) continue;
            if (!Files.isRegularFile(p.resolve(Checkpoint.MANIFEST))) continue; // not written by us: never delete
            // rename first so a half-deleted directory never looks like a checkpoint
            Path doomed = AtomicFiles.tempSibling(p);
            AtomicFiles.moveAtomically(p, doomed);
            AtomicFiles.deleteRecursively(doomed);
            excess--;
        }
        AtomicFiles.fsyncDirectory(root);
    }

    private void removeLeftovers() throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
            for (Path p : ds) {
                if (p.getFileName().toString().startsWith(AtomicFiles.TEMP_PREFIX)) {
                    LOG.log(System.Logger.Level.INFO, "removing leftover of an interrupted write: {0}", p);
                    AtomicFiles.deleteRecursively(p);
                }
            }
        }
    }
}
