package ai.mode.model.train;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.CheckpointStore;
import ai.mode.model.nn.LlamaModel;
import ai.mode.runtime.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locating and loading saved models: a checkpoint directory, a folder of step-N checkpoints, or a run folder that holds
 * one under checkpoints/. Static helpers for commands that take {@code --checkpoint DIR}.
 */
public final class SavedModels {
    /** Sub-folder of a run directory that holds its checkpoints. */
    public static final String CHECKPOINTS = "checkpoints";

    private SavedModels() {}

    /** The checkpoint a user path means: itself, the latest under it, or the latest under {@code path/checkpoints}. */
    public static Checkpoint resolve(Path path) throws IOException {
        Path sub = path.resolve(CHECKPOINTS);
        if (Files.isDirectory(sub) && !Files.exists(path.resolve(Checkpoint.CONFIG)))
            return CheckpointStore.resolve(sub);
        return CheckpointStore.resolve(path);
    }

    /** A Llama model with the checkpoint's config and weights (all parameters frozen). */
    public static LlamaModel load(Backend backend, Checkpoint c) throws IOException {
        LlamaModel m = LlamaModel.create(backend, c.config());
        try {
            Weights.load(m.parameters(), c.readModel(), true);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return m;
    }
}
