package ai.mode.bindings;

/** A failed call into NCCL (a non-success `ncclResult_t`); see {@link NativeCallException} for the message format. */
public class NcclException extends NativeCallException {
    public NcclException(String call, int code, String errorName, String description) {
        super(call, code, errorName, description);
    }
}
