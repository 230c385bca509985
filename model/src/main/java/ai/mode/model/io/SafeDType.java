package ai.mode.model.io;

import java.util.Arrays;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Element types a safetensors header may name (its {@code "dtype"} field), with byte sizes, and which ones convert to
 * float32. Only whole-byte types are supported.
 */
public enum SafeDType {
    BOOL(1),
    U8(1),
    I8(1),
    F8_E5M2(1),
    F8_E4M3(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    I64(8),
    U64(8),
    F64(8);

    private final int bytes;

    SafeDType(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Whether {@link SafeTensorsReader#readFloats} converts this type (F32, F16, BF16, F64). */
    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16 || this == F64;
    }

    /** Whether {@link SafeTensors} can write this type from float32 data (F32, F16, BF16). */
    public boolean isWritable() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** The header name, e.g. {@code BF16}. */
    public String headerName() {
        return name();
    }

    /** The type a header names, or empty if unknown. */
    public static Optional<SafeDType> parse(String headerName) {
        for (SafeDType t : values()) if (t.name().equals(headerName)) return Optional.of(t);
        return Optional.empty();
    }

    /** Comma-separated list of every supported header name, for error messages. */
    public static String known() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }

    /** The Hugging Face {@code torch_dtype} name of a float type ({@code float32}, {@code float16}, {@code bfloat16}). */
    public String torchName() {
        return switch (this) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case F64 -> "float64";
            default -> throw new IllegalArgumentException("no torch float dtype for " + this);
        };
    }
}
