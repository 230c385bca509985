package ai.mode.parallel.place;

import java.util.Locale;

/**
 * One device of a parallel run, as users write it: kind and ordinal, e.g. cuda:3.
 *
 * @param kind    {@code cpu}, {@code emu} or {@code cuda}
 * @param ordinal the device number: the GPU ordinal for cuda; a label for cpu and emu devices (each is a
 *                separate backend instance in this process)
 */
public record DeviceId(String kind, int ordinal) {
    /** The device kinds a run can use. */
    public static final java.util.List<String> KINDS = java.util.List.of("cpu", "emu", "cuda");

    public DeviceId {
        kind = kind.toLowerCase(Locale.ROOT);
        if (!KINDS.contains(kind))
            throw new IllegalArgumentException(
                    "unknown device kind '" + kind + "'; use cpu, emu or cuda (e.g. cuda:0-7)");
        if (ordinal < 0) throw new IllegalArgumentException("device number must be >= 0, got " + kind + ":" + ordinal);
    }

    @Override
    public String toString() {
        return kind + ":" + ordinal;
    }
}
