package ai.mode.bindings;

/**
 * A native library (or one of its symbols) could not be found or loaded. The message is one line that
 * names the library, why it is needed and the fix, e.g.
 * {@code libcuda.so.1 not found: no NVIDIA driver; use --backend cpu}.
 */
public class NativeLibraryException extends RuntimeException {
    public NativeLibraryException(String message) {
        super(message);
    }

    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
