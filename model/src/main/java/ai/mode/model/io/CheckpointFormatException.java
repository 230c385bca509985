package ai.mode.model.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The one error type for malformed, truncated or inconsistent checkpoint files: its message is a single line that names
 * the file and the tensor, field or byte offset at fault, so the CLI can print it as is.
 *
 * <p>A checkpoint file (safetensors, {@code config.json}, index, manifest, trainer state) is malformed, truncated or does
 * not match what it should hold. The message is one line of the form {@code <file>: <what is wrong>}.
 */
public class CheckpointFormatException extends IOException {

    public CheckpointFormatException(Path file, String detail) {
        super(oneLine(file + ": " + detail));
    }

    public CheckpointFormatException(Path file, String detail, Throwable cause) {
        super(oneLine(file + ": " + detail), cause);
    }

    /** Collapses line breaks and other control characters so that every message stays on one line. */
    static String oneLine(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(Character.isISOControl(c) ? ' ' : c);
        }
        return b.toString();
    }

    /** First line of an exception message from a parser (Gson appends a troubleshooting URL on a second line). */
    static String firstLine(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isBlank()) return t.getClass().getSimpleName();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
