package ai.mode.bindings.emu;

/** A failed call into the CPU emulator library; the message names the call, the error name and the arguments. */
public class EmuException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EmuException(String message) {
        super(message);
    }
}
