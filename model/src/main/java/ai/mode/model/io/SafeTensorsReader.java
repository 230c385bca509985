package ai.mode.model.io;

import ai.mode.model.text.StrictUtf8;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Memory-mapped, validating reader of the safetensors format: 8-byte little-endian header length, a JSON header (dtype
 * / shape / data_offsets per tensor, optional __metadata__ string map), then the packed data section. The whole file is
 * mapped once in a shared Arena, so tensors are converted straight from the page cache into float arrays without an
 * intermediate copy; close() unmaps it.
 *
 * <p>Reads one {@code .safetensors} file. Opening validates the whole header against the file: header length,
 * JSON syntax, known dtypes, shapes, and that the tensors' byte ranges tile the data section exactly (no overlap,
 * gap, truncation or trailing bytes). Every problem is a {@link CheckpointFormatException} with a one-line message
 * naming the file and the tensor or byte offset.
 *
 * <pre>{@code
 * try (SafeTensorsReader r = SafeTensorsReader.open(Path.of("model.safetensors"))) {
 *     TensorInfo info = r.info("model.norm.weight");        // dtype, shape, byte range
 *     float[] w = r.readFloats("model.norm.weight");        // F32/F16/BF16/F64 converted to float32
 *     NamedTensors all = r.readAll();                       // every floating-point tensor, in file order
 * }
 * }</pre>
 *
 * <p>Thread-safe for concurrent reads; all views from {@link #bytes} become invalid after {@link #close}.
 */
public final class SafeTensorsReader implements AutoCloseable {

    /** Largest header accepted, as in the reference implementation (100 MB). */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    static final String METADATA_KEY = "__metadata__";

    private static final ValueLayout.OfLong LE_LONG =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble LE_DOUBLE =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final long dataStart;
    private final LinkedHashMap<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafeTensorsReader(
            Path path,
            Arena arena,
            MemorySegment file,
            long dataStart,
            LinkedHashMap<String, TensorInfo> tensors,
            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps and validates a safetensors file. */
    public static SafeTensorsReader open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            throw new CheckpointFormatException(path, "is a directory, expected a .safetensors file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new CheckpointFormatException(
                        path,
                        "file is " + size
                                + " bytes, shorter than the 8-byte header length; truncated or not a safetensors file");
            }
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLen = file.get(LE_LONG, 0);
            if (headerLen < 2 || headerLen > size - 8) {
                throw new CheckpointFormatException(
                        path,
                        "header length " + Long.toUnsignedString(headerLen) + " (bytes 0-7) does not fit the "
                                + (size - 8) + " bytes after it; truncated or not a safetensors file");
            }
            if (headerLen > MAX_HEADER_BYTES) {
                throw new CheckpointFormatException(
                        path,
                        "header length " + headerLen + " exceeds the " + MAX_HEADER_BYTES
                                + "-byte limit; not a safetensors file");
            }
            String header = decodeUtf8(path, file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE));
            long dataStart = 8 + headerLen;
            LinkedHashMap<String, String> metadata = new LinkedHashMap<>();
            List<RawEntry> raw = parseHeader(path, header, metadata);
            LinkedHashMap<String, TensorInfo> tensors = validate(path, raw, size - dataStart, dataStart);
            return new SafeTensorsReader(path, arena, file, dataStart, tensors, Collections.unmodifiableMap(metadata));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new CheckpointFormatException(path, "file not found", e);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The file this reader maps. */
    public Path path() {
        return path;
    }

    /** The {@code __metadata__} string map (empty if absent), unmodifiable. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensor names in header order. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    /** Every tensor's header entry, in header order. */
    public List<TensorInfo> infos() {
        return List.copyOf(tensors.values());
    }

    /** Whether the file holds a tensor of this name. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** Number of tensors. */
    public int size() {
        return tensors.size();
    }

    /** The header entry of a tensor; a {@link CheckpointFormatException} naming it if absent. */
    public TensorInfo info(String name) throws CheckpointFormatException {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new CheckpointFormatException(
                    path,
                    "no tensor named " + name + " (file holds " + tensors.size() + " tensors"
                            + (tensors.isEmpty()
                                    ? ""
                                    : ", e.g. " + tensors.keySet().iterator().next()) + ")");
        }
        return t;
    }

    /** Read-only view of a tensor's raw little-endian bytes; valid until {@link #close}. */
    public MemorySegment bytes(String name) throws CheckpointFormatException {
        TensorInfo t = info(name);
        return file.asSlice(dataStart + t.begin(), t.byteSize()).asReadOnly();
    }

    /** A tensor converted to float32 (F32 copied bit-exactly; F16, BF16 exactly; F64 rounded to nearest). */
    public float[] readFloats(String name) throws CheckpointFormatException {
        TensorInfo t = info(name);
        float[] out = new float[arrayLength(t)];
        readFloats(name, out, 0);
        return out;
    }

    /** Converts a tensor to float32 into {@code dst[offset ..]}. */
    public void readFloats(String name, float[] dst, int offset) throws CheckpointFormatException {
        TensorInfo t = info(name);
        int n = arrayLength(t);
        if (offset < 0 || offset > dst.length - n) {
            throw new IndexOutOfBoundsException("tensor " + name + " has " + n + " elements; destination has "
                    + dst.length + " from offset " + offset);
        }
        if (!t.dtype().isFloat()) {
            throw new CheckpointFormatException(
                    path,
                    "tensor " + name + " has dtype " + t.dtype() + ", not a floating-point type (F32, F16, BF16, F64)");
        }
        long base = dataStart + t.begin();
        if (n < PARALLEL_MIN_ELEMENTS) {
            convert(t.dtype(), base, dst, offset, 0, n);
        } else {
            // large tensors: page faults of the mapping and the conversion both spread over the cores
            int chunks = (n + PARALLEL_CHUNK - 1) / PARALLEL_CHUNK;
            IntStream.range(0, chunks).parallel().forEach(c -> {
                int from = c * PARALLEL_CHUNK;
                convert(t.dtype(), base, dst, offset, from, Math.min(n, from + PARALLEL_CHUNK));
            });
        }
    }

    private static final int PARALLEL_MIN_ELEMENTS = 1 << 22;
    private static final int PARALLEL_CHUNK = 1 << 20;

    /** Converts elements [from, to) of the tensor starting at file byte {@code base} into {@code dst[offset + i]}. */
    private void convert(SafeDType dtype, long base, float[] dst, int offset, int from, int to) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(file, LE_FLOAT, base + 4L * from, dst, offset + from, to - from);
            case F16 -> {
                for (int i = from; i < to; i++)
                    dst[offset + i] = FloatFormats.f16ToFloat(file.get(LE_SHORT, base + 2L * i));
            }
            case BF16 -> {
                for (int i = from; i < to; i++)
                    dst[offset + i] = FloatFormats.bf16ToFloat(file.get(LE_SHORT, base + 2L * i));
            }
            case F64 -> {
                for (int i = from; i < to; i++) dst[offset + i] = (float) file.get(LE_DOUBLE, base + 8L * i);
            }
            default -> throw new IllegalStateException("checked by the caller: " + dtype);
        }
    }

    /** An I32 tensor as ints. */
    public int[] readInts(String name) throws CheckpointFormatException {
        TensorInfo t = info(name);
        if (t.dtype() != SafeDType.I32) {
            throw new CheckpointFormatException(path, "tensor " + name + " has dtype " + t.dtype() + ", expected I32");
        }
        int[] out = new int[arrayLength(t)];
        MemorySegment.copy(file, LE_INT, dataStart + t.begin(), out, 0, out.length);
        return out;
    }

    /** An I64 or I32 tensor as longs. */
    public long[] readLongs(String name) throws CheckpointFormatException {
        TensorInfo t = info(name);
        long[] out = new long[arrayLength(t)];
        long base = dataStart + t.begin();
        switch (t.dtype()) {
            case I64 -> MemorySegment.copy(file, LE_LONG, base, out, 0, out.length);
            case I32 -> {
                for (int i = 0; i < out.length; i++) out[i] = file.get(LE_INT, base + 4L * i);
            }
            default ->
                throw new CheckpointFormatException(
                        path, "tensor " + name + " has dtype " + t.dtype() + ", expected I64 or I32");
        }
        return out;
    }

    /** Every tensor converted to float32, in header order; fails naming the first non-float tensor. */
    public NamedTensors readAll() throws CheckpointFormatException {
        NamedTensors out = new NamedTensors();
        for (TensorInfo t : tensors.values()) out.put(t.name(), t.shape(), readFloats(t.name()));
        return out;
    }

    /** Unmaps the file. Idempotent. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }

    private int arrayLength(TensorInfo t) throws CheckpointFormatException {
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new CheckpointFormatException(
                    path,
                    "tensor " + t.name() + " has " + t.numel() + " elements, more than one Java array holds; split it");
        }
        return (int) t.numel();
    }

    // ------------------------------------------------------------------------------------------- header parsing

    private record RawEntry(String name, String dtype, long[] shape, long[] offsets) {}

    private static String decodeUtf8(Path path, byte[] bytes) throws CheckpointFormatException {
        try {
            return StrictUtf8.decode(bytes);
        } catch (StrictUtf8.InvalidException e) {
            throw new CheckpointFormatException(
                    path, "header (bytes 8-" + (8 + bytes.length) + ") is not valid UTF-8", e);
        }
    }

    /** Parses the JSON header with a streaming reader, so duplicate names are detected rather than overwritten. */
    private static List<RawEntry> parseHeader(Path path, String header, Map<String, String> metadata)
            throws CheckpointFormatException {
        List<RawEntry> entries = new ArrayList<>();
        JsonReader json = StrictJson.reader(header);
        String current = null;
        try {
            if (json.peek() != JsonToken.BEGIN_OBJECT) {
                throw new CheckpointFormatException(path, "header must be a JSON object, found " + json.peek());
            }
            json.beginObject();
            java.util.HashSet<String> seen = new java.util.HashSet<>();
            while (json.hasNext()) {
                current = json.nextName();
                if (!seen.add(current)) {
                    throw new CheckpointFormatException(
                            path,
                            "duplicate "
                                    + (current.equals(METADATA_KEY) ? METADATA_KEY : "tensor name " + quote(current))
                                    + " in header");
                }
                if (current.equals(METADATA_KEY)) {
                    parseMetadata(path, json, metadata);
                } else {
                    entries.add(parseEntry(path, json, current));
                }
                current = null;
            }
            json.endObject();
            try {
                StrictJson.requireEnd(json);
            } catch (IOException trailing) {
                throw new CheckpointFormatException(path, "header has content after its closing brace");
            }
        } catch (CheckpointFormatException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new CheckpointFormatException(
                    path,
                    "header is not valid safetensors JSON"
                            + (current == null ? "" : " (in entry " + quote(current) + ")") + ": "
                            + CheckpointFormatException.firstLine(e),
                    e);
        }
        return entries;
    }

    private static void parseMetadata(Path path, JsonReader json, Map<String, String> metadata) throws IOException {
        if (json.peek() == JsonToken.NULL) {
            json.nextNull();
            return;
        }
        json.beginObject();
        while (json.hasNext()) {
            String key = json.nextName();
            if (json.peek() != JsonToken.STRING) {
                throw new CheckpointFormatException(
                        path, METADATA_KEY + " value of " + quote(key) + " must be a string, found " + json.peek());
            }
            if (metadata.put(key, json.nextString()) != null) {
                throw new CheckpointFormatException(path, "duplicate key " + quote(key) + " in " + METADATA_KEY);
            }
        }
        json.endObject();
    }

    private static RawEntry parseEntry(Path path, JsonReader json, String name) throws IOException {
        String dtype = null;
        long[] shape = null, offsets = null;
        json.beginObject();
        while (json.hasNext()) {
            String field = json.nextName();
            switch (field) {
                case "dtype" -> dtype = json.nextString();
                case "shape" -> shape = longArray(json);
                case "data_offsets" -> offsets = longArray(json);
                default -> json.skipValue();
            }
        }
        json.endObject();
        String where = "tensor " + quote(name) + ": ";
        if (dtype == null) throw new CheckpointFormatException(path, where + "header entry lacks \"dtype\"");
        if (shape == null) throw new CheckpointFormatException(path, where + "header entry lacks \"shape\"");
        if (offsets == null) throw new CheckpointFormatException(path, where + "header entry lacks \"data_offsets\"");
        return new RawEntry(name, dtype, shape, offsets);
    }

    private static long[] longArray(JsonReader json) throws IOException {
        List<Long> values = new ArrayList<>();
        json.beginArray();
        while (json.hasNext()) values.add(json.nextLong());
        json.endArray();
        return values.stream().mapToLong(Long::longValue).toArray();
    }

    /** Checks dtypes, shapes and that the byte ranges tile [0, dataSize) exactly. */
    private static LinkedHashMap<String, TensorInfo> validate(
            Path path, List<RawEntry> raw, long dataSize, long dataStart) throws CheckpointFormatException {
        LinkedHashMap<String, TensorInfo> out = new LinkedHashMap<>();
        for (RawEntry r : raw) {
            String where = "tensor " + quote(r.name()) + ": ";
            SafeDType dtype = SafeDType.parse(r.dtype())
                    .orElseThrow(() -> new CheckpointFormatException(
                            path,
                            where + "unknown dtype " + quote(r.dtype()) + " (supported: " + SafeDType.known() + ")"));
            int[] shape = new int[r.shape().length];
            for (int i = 0; i < shape.length; i++) {
                long d = r.shape()[i];
                if (d < 0 || d > Integer.MAX_VALUE) {
                    throw new CheckpointFormatException(
                            path, where + "shape " + Arrays.toString(r.shape()) + " has an invalid dimension " + d);
                }
                shape[i] = (int) d;
            }
            long numel = NamedTensors.numel(shape);
            if (numel < 0 || numel > Long.MAX_VALUE / dtype.bytes()) {
                throw new CheckpointFormatException(path, where + "shape " + Arrays.toString(shape) + " is too large");
            }
            if (r.offsets().length != 2) {
                throw new CheckpointFormatException(
                        path, where + "data_offsets must be [begin, end], found " + Arrays.toString(r.offsets()));
            }
            long begin = r.offsets()[0], end = r.offsets()[1];
            if (begin < 0 || end < begin) {
                throw new CheckpointFormatException(
                        path,
                        where + "data_offsets " + Arrays.toString(r.offsets())
                                + " are not an increasing pair of non-negative offsets");
            }
            long expected = numel * dtype.bytes();
            if (end - begin != expected) {
                throw new CheckpointFormatException(
                        path,
                        where + "data_offsets [" + begin + ", " + end + ") span " + (end - begin) + " bytes but "
                                + dtype + Arrays.toString(shape) + " needs " + expected);
            }
            out.put(r.name(), new TensorInfo(r.name(), dtype, shape, begin, end));
        }
        List<TensorInfo> byOffset = new ArrayList<>(out.values());
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long cursor = 0;
        TensorInfo previous = null;
        for (TensorInfo t : byOffset) {
            if (t.end() > dataSize) {
                throw new CheckpointFormatException(
                        path,
                        "tensor " + quote(t.name()) + ": data ends at file byte "
                                + (dataStart + t.end()) + " but the file has only " + (dataStart + dataSize)
                                + " bytes; the file is truncated");
            }
            if (t.begin() < cursor) {
                throw new CheckpointFormatException(
                        path,
                        "tensor " + quote(t.name()) + ": data_offsets [" + t.begin()
                                + ", " + t.end() + ") overlap tensor " + quote(previous.name()) + " ["
                                + previous.begin() + ", "
                                + previous.end() + ")");
            }
            if (t.begin() > cursor) {
                throw new CheckpointFormatException(
                        path,
                        "data bytes [" + cursor + ", " + t.begin() + ") belong to no tensor (gap before tensor "
                                + quote(t.name()) + ")");
            }
            cursor = t.end();
            previous = t;
        }
        if (cursor != dataSize) {
            throw new CheckpointFormatException(
                    path,
                    (dataSize - cursor) + " trailing bytes after the last tensor's data" + " (file byte "
                            + (dataStart + cursor) + " onwards belong to no tensor)");
        }
        return out;
    }

    /** A name in double quotes with control characters escaped, so that messages stay on one line. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isISOControl(c)) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
