package ai.mode.parallel.comm;

/**
 * The one error type of the communicators: a failed or aborted collective, a timeout, a mismatched call.
 *
 * <p>A collective or point-to-point operation failed: a peer rank failed or disconnected (the communicator is
 * aborted and every later operation fails with the same reason), an operation timed out (the message names
 * the ranks that did not arrive), the ranks called mismatching operations, or a native call failed.
 */
public class CommunicatorException extends RuntimeException {
    public CommunicatorException(String message) {
        super(message);
    }

    public CommunicatorException(String message, Throwable cause) {
        super(message, cause);
    }
}
