package ai.mode.runtime.device;

/** A failed device call; the message names the call, the error name and the key arguments. */
public class DeviceException extends RuntimeException {
    public DeviceException(String message) {
        super(message);
    }

    public DeviceException(String message, Throwable cause) {
        super(message, cause);
    }
}
