package ai.mode.bindings;

/**
 * A failed NVRTC call (a non-success {@code nvrtcResult}); see {@link NativeCallException} for the message
 * format. A failed compilation carries the compiler log ({@link #log()}), also appended to the message.
 */
public class NvrtcException extends NativeCallException {
    private final String log;

    public NvrtcException(String call, int code, String errorName, String description) {
        this(call, code, errorName, description, null);
    }

    public NvrtcException(String call, int code, String errorName, String description, String log) {
        super(
                call,
                code,
                errorName,
                log == null || log.isBlank()
                        ? description
                        : (description == null ? "" : description + "; ") + "compiler log:\n" + log.strip());
        this.log = log;
    }

    /** The compiler log of a failed compilation, or null. */
    public String log() {
        return log;
    }
}
