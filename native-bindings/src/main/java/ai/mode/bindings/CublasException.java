package ai.mode.bindings;

/** A failed call into cuBLASLt (a non-success `cublasStatus_t`); see {@link NativeCallException} for the message format. */
public class CublasException extends NativeCallException {
    public CublasException(String call, int code, String errorName, String description) {
        super(call, code, errorName, description);
    }
}
