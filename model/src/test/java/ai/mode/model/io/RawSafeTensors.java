// Test-side safetensors builder written without the production writer: header JSON by string concatenation,
// data as explicit little-endian bytes, so reader tests check against an independent construction.
package ai.mode.model.io;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

final class RawSafeTensors {
    private record Item(String name, String dtype, int[] shape, byte[] data) {}

    private final List<Item> items = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    RawSafeTensors add(String name, String dtype, int[] shape, byte[] data) {
        items.add(new Item(name, dtype, shape, data));
        return this;
    }

    RawSafeTensors f32(String name, int[] shape, float... v) {
        ByteBuffer b = le(4 * v.length);
        for (float x : v) b.putInt(Float.floatToRawIntBits(x));
        return add(name, "F32", shape, b.array());
    }

    RawSafeTensors f64(String name, int[] shape, double... v) {
        ByteBuffer b = le(8 * v.length);
        for (double x : v) b.putLong(Double.doubleToRawLongBits(x));
        return add(name, "F64", shape, b.array());
    }

    /** 16-bit patterns under dtype F16 or BF16. */
    RawSafeTensors bits16(String name, String dtype, int[] shape, int... bits) {
        ByteBuffer b = le(2 * bits.length);
        for (int x : bits) b.putShort((short) x);
        return add(name, dtype, shape, b.array());
    }

    RawSafeTensors i32(String name, int[] shape, int... v) {
        ByteBuffer b = le(4 * v.length);
        for (int x : v) b.putInt(x);
        return add(name, "I32", shape, b.array());
    }

    RawSafeTensors i64(String name, int[] shape, long... v) {
        ByteBuffer b = le(8 * v.length);
        for (long x : v) b.putLong(x);
        return add(name, "I64", shape, b.array());
    }

    RawSafeTensors meta(String k, String v) {
        metadata.put(k, v);
        return this;
    }

    /** The header JSON as this builder would write it (tensors in insertion order, contiguous offsets). */
    String header() {
        List<String> parts = new ArrayList<>();
        if (!metadata.isEmpty()) {
            parts.add("\"__metadata__\":{"
                    + metadata.entrySet().stream()
                            .map(e -> "\"" + e.getKey() + "\":\"" + e.getValue() + "\"")
                            .collect(Collectors.joining(","))
                    + "}");
        }
        long offset = 0;
        for (Item it : items) {
            parts.add("\"" + it.name + "\":{\"dtype\":\"" + it.dtype + "\",\"shape\":" + shapeJson(it.shape)
                    + ",\"data_offsets\":[" + offset + "," + (offset + it.data.length) + "]}");
            offset += it.data.length;
        }
        return "{" + String.join(",", parts) + "}";
    }

    byte[] data() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Item it : items) out.writeBytes(it.data);
        return out.toByteArray();
    }

    byte[] toBytes() {
        return file(header(), data());
    }

    Path writeTo(Path file) throws IOException {
        Files.write(file, toBytes());
        return file;
    }

    /** A file from an arbitrary header string and data bytes (length prefix = header's UTF-8 length). */
    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + data.length)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(h.length)
                .put(h)
                .put(data)
                .array();
    }

    static String shapeJson(int[] shape) {
        return Arrays.stream(shape).mapToObj(Integer::toString).collect(Collectors.joining(",", "[", "]"));
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
}
