package ai.mode.model.data;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * One corpus document.
 *
 * @param id    unique name within its corpus (e.g. {@code kjv/Genesis/1}, a file's relative path)
 * @param group documents sharing a group always land in the same split (near-duplicates, one licence family)
 * @param text  the text (valid Unicode; user files are checked to be valid UTF-8 when read)
 */
public record Document(String id, String group, String text) {
    public Document {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(group, "group");
        Objects.requireNonNull(text, "text");
    }

    /** The text as UTF-8 bytes. */
    public byte[] utf8() {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
