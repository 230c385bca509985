package ai.mode.model.train;

/**
 * Raised when the loss or gradient norm stops being finite; its message is the one line the user sees. Training hit a
 * NaN/infinite loss or gradient; the message names the step and the last good checkpoint.
 */
public final class TrainingDivergedException extends RuntimeException {
    private final int step;

    public TrainingDivergedException(int step, String message) {
        super(message);
        this.step = step;
    }

    /** The optimizer step at which the non-finite value appeared. */
    public int step() {
        return step;
    }
}
