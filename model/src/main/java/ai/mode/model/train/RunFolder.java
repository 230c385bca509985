package ai.mode.model.train;

import ai.mode.model.io.CheckpointStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The rule for a run folder that already holds a run (issue 14): a new run there would truncate the earlier run's
 * metrics and mix its checkpoints with the new ones, so it is refused with one line and the fix, unless the user
 * resumes that run ({@code --resume}) or, where the earlier run left metrics but no checkpoint, replaces it
 * ({@code --force}). Checked by every command that trains into a run folder, under the folder's {@code StoreLock}.
 */
public final class RunFolder {
    private RunFolder() {}

    /**
     * @param out     the run folder, as the user named it
     * @param store   its checkpoint store
     * @param metrics its metrics file
     * @param resume  whether the run continues the one in the folder
     * @param force   whether the user asked to replace what the folder holds
     */
    public static void requireNewOrResumed(Path out, CheckpointStore store, Path metrics, boolean resume, boolean force)
            throws IOException {
        if (resume) return;
        if (!store.list().isEmpty())
            throw new IllegalArgumentException(
                    out + " already holds checkpoints; pass --resume to continue that run, or choose another --out");
        requireNoMetrics(out, metrics, force);
    }

    /** The rule for a run that keeps no checkpoints: refused where an earlier run left metrics, unless forced. */
    public static void requireNoMetrics(Path out, Path metrics, boolean force) throws IOException {
        if (!force && Files.isRegularFile(metrics) && Files.size(metrics) > 0)
            throw new IllegalArgumentException(out + " already holds the metrics of an earlier run ("
                    + metrics.getFileName() + ") and no checkpoint to resume it from; pass --force to start again"
                    + " and replace them, or choose another --out");
    }
}
