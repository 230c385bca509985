package ai.mode.model.train;

import ai.mode.model.nn.CausalLm;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Pluggable checkpoint writer/reader for the trainer (backbone checkpoints, MoDE expert files, ...). Saves and restores
 * a training run (model tensors, optimizer moments, {@link TrainProgress}).
 */
public interface Checkpointing {

    /** Writes a checkpoint of the current state atomically; returns its location. */
    Path save(CausalLm model, AdamW optimizer, TrainProgress state) throws IOException;

    /**
     * Restores the latest checkpoint into model and optimizer; empty when there is none. {@code beforeLoading} sees
     * the checkpoint's progress before any tensor is loaded (and may refuse it by throwing).
     */
    Optional<TrainProgress> restoreLatest(CausalLm model, AdamW optimizer, Consumer<TrainProgress> beforeLoading)
            throws IOException;

    /** Location of the latest complete checkpoint, if any. */
    Optional<Path> latest();
}
