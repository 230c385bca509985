package ai.mode.bindings;

/**
 * A native call returned an error code. The message names the call with its key arguments, the error
 * name and code, and the library's description, e.g.
 * {@code cuMemAlloc(bytes=1073741824) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory}.
 * Subclasses tell the libraries apart so callers can react to one (e.g. retry after an out-of-memory).
 */
public class NativeCallException extends RuntimeException {
    private final String call;
    private final int code;
    private final String errorName;
    private final String description;

    public NativeCallException(String call, int code, String errorName, String description) {
        super(format(call, code, errorName, description));
        this.call = call;
        this.code = code;
        this.errorName = errorName;
        this.description = description;
    }

    private static String format(String call, int code, String errorName, String description) {
        String base = call + " failed: " + errorName + " (" + code + ")";
        return description == null || description.isBlank() || description.equals(errorName)
                ? base
                : base + ": " + description;
    }

    /** The failed call with its key arguments, e.g. {@code cuMemAlloc(bytes=1024)}. */
    public String call() {
        return call;
    }

    /** The library's numeric error code. */
    public int code() {
        return code;
    }

    /** The symbolic error name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }

    /** The library's description of the error (may be null). */
    public String description() {
        return description;
    }
}
