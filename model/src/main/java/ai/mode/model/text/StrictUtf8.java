package ai.mode.model.text;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Strict UTF-8 decoding for every reader of outside bytes (corpora, tokenizer.json, config.json, safetensors headers,
 * GGUF strings): malformed or unmappable input is an error that carries the byte offset of the first bad sequence,
 * never a silent U+FFFD, so each reader can name the file and the offset in its own one-line message.
 */
public final class StrictUtf8 {
    private StrictUtf8() {}

    /** Bytes that are not valid UTF-8; {@link #offset()} is where the first invalid sequence starts. */
    public static final class InvalidException extends Exception {
        private static final long serialVersionUID = 1L;
        private final int offset;

        InvalidException(int offset) {
            super("not valid UTF-8 at byte offset " + offset, null, false, false);
            this.offset = offset;
        }

        /** The byte offset of the first invalid sequence. */
        public int offset() {
            return offset;
        }
    }

    /** {@code bytes} as text, or an {@link InvalidException} naming the first invalid byte's offset. */
    public static String decode(byte[] bytes) throws InvalidException {
        CharsetDecoder dec = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never decodes to more chars than bytes
        CoderResult r = dec.decode(in, out, true);
        if (r.isUnderflow()) r = dec.flush(out);
        if (r.isError()) throw new InvalidException(in.position());
        return out.flip().toString();
    }
}
