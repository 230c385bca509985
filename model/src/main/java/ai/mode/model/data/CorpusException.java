package ai.mode.model.data;

/**
 * A corpus that cannot be used: unknown name, missing path, empty, invalid UTF-8, malformed JSONL, or an empty split.
 * The message is one line naming the problem, the file or corpus, and the fix.
 */
public final class CorpusException extends RuntimeException {
    public CorpusException(String message) {
        super(message);
    }

    public CorpusException(String message, Throwable cause) {
        super(message, cause);
    }
}
