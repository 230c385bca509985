package ai.mode.model.io;

/**
 * Refusal to write a checkpoint file holding a NaN or infinite value: such a checkpoint is never written, so the newest
 * checkpoint of a run is always one that training or evaluation can use. A tensor about to be written to a checkpoint
 * is not finite; the message is one line.
 */
public final class NonFiniteTensorException extends IllegalArgumentException {
    private final String detail;

    NonFiniteTensorException(String file, String detail) {
        super("refusing to write a checkpoint whose " + file + " " + detail
                + "; only finite weights and optimizer state are saved");
        this.detail = file + " " + detail;
    }

    /** Which file and tensor, e.g. {@code model.safetensors tensor lm_head.weight holds NaN at element 3}. */
    public String detail() {
        return detail;
    }
}
