package ai.mode.model.train;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.CRC32C;

/**
 * The settings a training run was started with, recorded in every checkpoint and compared when the run resumes
 * (issue 14 item 8), one implementation for {@code pretrain}, {@code expert}, {@code compose} and {@code baseline}.
 * Each setting has a policy for a changed value:
 *
 * <ul>
 *   <li>{@link OnChange#FIXED}: the saved state means nothing without it (batch, sequence length, seed, data, the
 *       model's shape and what trains): refused, naming the setting, both values and the fix;
 *   <li>{@link OnChange#REFUSE}: the run could go on, but every remaining step would differ from the uninterrupted
 *       run's (learning rate, warm-up, accumulation): refused unless the user names it in {@code --allow-changed};
 *   <li>{@link OnChange#WARN}: a legitimate change (more {@code --steps} to train on, another machine's numerics,
 *       the validation set's size): one warning, and the new value is recorded.
 * </ul>
 *
 * Every accepted change is kept in the checkpoints that follow as {@code {"step", "setting", "from", "to"}}, so a
 * run's folder says what it was trained with and when that changed. docs/checkpoints.md has the table.
 */
public final class RunSettings {
    private static final System.Logger LOG = System.getLogger(RunSettings.class.getName());

    /** What a resume does when a setting differs from the checkpoint's. */
    public enum OnChange {
        FIXED,
        REFUSE,
        WARN
    }

    /**
     * @param key   the command-line option ({@code --lr}) or, for what no single option sets, a name ({@code data},
     *              {@code numerics}); also the name {@code --allow-changed} takes, without the dashes
     * @param value the value as text, compared exactly
     */
    private record Setting(String key, String value, OnChange onChange) {
        boolean isOption() {
            return key.startsWith("--");
        }

        String shown(String v) {
            return isOption() ? key + " " + v : key + " [" + v + "]";
        }
    }

    private final Map<String, Setting> settings = new LinkedHashMap<>();
    private final JsonArray changes = new JsonArray();

    /** The settings, added in the order messages and files show them. */
    public RunSettings() {}

    /** Adds (or replaces) a setting. */
    public RunSettings add(String key, Object value, OnChange onChange) {
        settings.put(key, new Setting(key, text(value), onChange));
        return this;
    }

    /** Adds every setting of {@code other} (replacing those of the same key). */
    public RunSettings addAll(RunSettings other) {
        settings.putAll(other.settings);
        return this;
    }

    private static String text(Object v) {
        if (v instanceof Double d) return Double.toString(d);
        if (v instanceof Float f) return Float.toString(f);
        return String.valueOf(v);
    }

    /**
     * The identity of training data, for the {@code data} setting: per source its name, token count and the
     * CRC32C of its token ids, so a changed corpus or tokenizer is noticed even at the same size.
     */
    public static String dataFingerprint(Map<String, int[]> sources) {
        List<String> parts = new ArrayList<>();
        sources.forEach((name, tokens) -> {
            CRC32C crc = new CRC32C();
            ByteBuffer b = ByteBuffer.allocate(4096 * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < tokens.length; i += 4096) {
                b.clear();
                b.asIntBuffer().put(tokens, i, Math.min(4096, tokens.length - i));
                b.limit(Math.min(4096, tokens.length - i) * 4);
                crc.update(b);
            }
            parts.add(String.format(
                    Locale.ROOT,
                    "%s: %d tokens, crc32c %s",
                    name,
                    tokens.length,
                    HexFormat.of().toHexDigits((int) crc.getValue())));
        });
        return String.join("; ", parts);
    }

    /** The record stored in a checkpoint: {@code {"values": {key: value}, "changes": [...]}}. */
    public JsonObject toJson() {
        JsonObject values = new JsonObject();
        settings.values().forEach(s -> values.addProperty(s.key(), s.value()));
        JsonObject o = new JsonObject();
        o.add("values", values);
        o.add("changes", changes.deepCopy());
        return o;
    }

    /**
     * Compares these (the resumed run's) settings with a checkpoint's record and applies the policies: throws for
     * the first refused change, logs one warning per accepted one and records them (with the earlier record's
     * changes) for the checkpoints to come. A setting the checkpoint does not record (one written before it
     * existed) is not compared.
     *
     * @param saved        the checkpoint's record ({@link #toJson()}); null for none
     * @param step         the step the run resumes at
     * @param allowChanged keys (without dashes) whose {@link OnChange#REFUSE} change the user accepted, or
     *                     {@code all}
     * @throws IllegalArgumentException a refused change or an {@code allowChanged} entry that names no such
     *                                  setting, in one line with the fix
     */
    public void resumeFrom(JsonObject saved, int step, Set<String> allowChanged) {
        Set<String> allowed = normalise(allowChanged);
        Set<String> mayChange = new TreeSet<>();
        settings.values().stream()
                .filter(s -> s.onChange() == OnChange.REFUSE)
                .forEach(s -> mayChange.add(bare(s.key())));
        for (String a : allowed) {
            if (!a.equals("all") && !mayChange.contains(a))
                throw new IllegalArgumentException("--allow-changed " + a + " names no setting that may change on"
                        + " resume; use " + (mayChange.isEmpty() ? "none" : String.join(", ", mayChange))
                        + " or all");
        }
        JsonObject values = saved == null || !saved.has("values") ? new JsonObject() : saved.getAsJsonObject("values");
        if (saved != null && saved.has("changes")) {
            changes.addAll(saved.getAsJsonArray("changes"));
        }
        List<Setting> accepted = new ArrayList<>();
        List<String> before = new ArrayList<>();
        for (Setting s : settings.values()) {
            JsonElement was = values.get(s.key());
            if (was == null || was.getAsString().equals(s.value())) continue;
            String old = was.getAsString();
            boolean allow = s.onChange() == OnChange.WARN
                    || (s.onChange() == OnChange.REFUSE
                            && (allowed.contains("all") || allowed.contains(bare(s.key()))));
            if (!allow) throw refusal(s, old, step);
            accepted.add(s);
            before.add(old);
        }
        for (int i = 0; i < accepted.size(); i++) {
            Setting s = accepted.get(i);
            String old = before.get(i);
            JsonObject c = new JsonObject();
            c.addProperty("step", step);
            c.addProperty("setting", s.key());
            c.addProperty("from", old);
            c.addProperty("to", s.value());
            changes.add(c);
            LOG.log(
                    System.Logger.Level.WARNING,
                    "resuming at step " + step + " with " + s.shown(s.value())
                            + " (the checkpoint has " + (s.isOption() ? old : "[" + old + "]") + "): "
                            + (s.onChange() == OnChange.WARN
                                    ? "the run continues correctly but not bit for bit as it would have"
                                    : "as --allow-changed asks, the remaining steps differ from the uninterrupted run's")
                            + "; later checkpoints record the new value");
        }
    }

    private static IllegalArgumentException refusal(Setting s, String old, int step) {
        String now = s.isOption() ? s.key() + " is " + s.value() : s.key() + " is now [" + s.value() + "]";
        String was = s.isOption() ? old : "[" + old + "]";
        String same = s.isOption() ? "resume with " + s.key() + " " + old : "resume with the same " + s.key();
        return new IllegalArgumentException(
                switch (s.onChange()) {
                    case FIXED ->
                        "cannot resume at step " + step + ": " + now
                                + " but the run was started with " + was
                                + ", and its saved state only continues with that; " + same
                                + ", or start a new run with another --out";
                    case REFUSE ->
                        "cannot resume at step " + step + ": " + now
                                + " but the run was trained with " + was
                                + ", so every remaining step would differ from the uninterrupted run's; " + same
                                + ", or pass --allow-changed " + bare(s.key()) + " to continue with " + s.value()
                                + " (recorded in the checkpoints)";
                    case WARN -> throw new IllegalStateException("a warned change is never refused");
                });
    }

    private static String bare(String key) {
        return key.startsWith("--") ? key.substring(2) : key;
    }

    private static Set<String> normalise(Set<String> names) {
        Set<String> out = new TreeSet<>();
        for (String n : names) {
            String t = bare(n.strip().toLowerCase(Locale.ROOT));
            if (!t.isEmpty()) out.add(t);
        }
        return out;
    }
}
