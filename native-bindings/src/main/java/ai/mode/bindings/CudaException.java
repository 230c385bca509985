package ai.mode.bindings;

/** A failed call into the CUDA driver API (a non-success `CUresult`); see {@link NativeCallException} for the message format. */
public class CudaException extends NativeCallException {
    public CudaException(String call, int code, String errorName, String description) {
        super(call, code, errorName, description);
    }
}
