package ai.mode.model.data;

/** The three disjoint parts of every corpus; documents are assigned whole (by group) with a fixed seed. */
public enum Split {
    TRAIN,
    VALIDATION,
    TEST;

    /** Lower-case name used in file names and messages ("train", "validation", "test"). */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Parses "train", "validation"/"val"/"valid" or "test", case-insensitively. */
    public static Split parse(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "train" -> TRAIN;
            case "validation", "val", "valid" -> VALIDATION;
            case "test" -> TEST;
            default -> throw new IllegalArgumentException("unknown split '" + s + "': use train, validation or test");
        };
    }
}
