package ai.mode.model.train;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * Everything besides tensors that a checkpoint must hold to resume training exactly.
 *
 * @param step          optimizer steps completed
 * @param seed          the run's seed
 * @param data          the training stream's position ({@link TokenStream#state()})
 * @param tokensSeen    training tokens consumed so far
 * @param lastValLoss   the latest validation loss (NaN if none yet)
 * @param numerics      the backend's {@link ai.mode.runtime.Backend#numerics()} that computed the run so far (null
 *                      when a checkpoint from before it was recorded)
 * @param settings      the run's settings and their changes ({@link RunSettings#toJson()}), compared on resume
 *                      (null when a checkpoint from before they were recorded)
 */
public record TrainProgress(
        int step,
        long seed,
        JsonElement data,
        long tokensSeen,
        double lastValLoss,
        String numerics,
        JsonObject settings) {}
