package ai.mode.model.tokenizer;

import java.io.IOException;

/** A {@code tokenizer.json} that is missing, malformed or not a byte-level BPE tokenizer; the message is one line. */
public final class TokenizerFileException extends IOException {
    public TokenizerFileException(String message) {
        super(message);
    }
}
