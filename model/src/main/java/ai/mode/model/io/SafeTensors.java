package ai.mode.model.io;

import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writer of the safetensors format (and entry point for reading): JSON header with 8-byte-aligned data, tensors packed
 * in the order given, float32 data stored as F32, F16 or BF16. Writes go through AtomicFiles so a crash never leaves a
 * half-written file under the target name.
 *
 * <pre>{@code
 * NamedTensors t = new NamedTensors().put("w", new int[]{2, 3}, new float[]{1, 2, 3, 4, 5, 6});
 * SafeTensors.write(Path.of("w.safetensors"), t, Map.of("format", "pt"), SafeDType.F32);   // atomic
 * NamedTensors back = SafeTensors.read(Path.of("w.safetensors"));
 * try (SafeTensorsReader r = SafeTensors.open(Path.of("w.safetensors"))) { float[] w = r.readFloats("w"); }
 * }</pre>
 */
public final class SafeTensors {
    private SafeTensors() {}

    private static final int CHUNK_BYTES = 1 << 20;
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Opens a file for reading; see {@link SafeTensorsReader}. */
    public static SafeTensorsReader open(Path file) throws IOException {
        return SafeTensorsReader.open(file);
    }

    /** Reads every tensor of a file as float32. */
    public static NamedTensors read(Path file) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            return r.readAll();
        }
    }

    /** Writes float32 tensors atomically, no metadata. */
    public static void write(Path file, NamedTensors tensors) throws IOException {
        write(file, tensors, Map.of(), SafeDType.F32);
    }

    /**
     * Writes tensors atomically, each stored as {@code storage} (F32 bit-exact; F16 or BF16 rounded to nearest even),
     * with a {@code __metadata__} string map (omitted when empty).
     */
    public static void write(Path file, NamedTensors tensors, Map<String, String> metadata, SafeDType storage)
            throws IOException {
        String header = header(tensors, metadata, storage);
        AtomicFiles.write(file, ch -> writeTo(ch, header, tensors, storage));
    }

    /** Writes the complete file content into a channel (not atomic); returns the number of bytes written. */
    public static long writeTo(
            WritableByteChannel ch, NamedTensors tensors, Map<String, String> metadata, SafeDType storage)
            throws IOException {
        return writeTo(ch, header(tensors, metadata, storage), tensors, storage);
    }

    /** Size in bytes of the file {@link #write} produces. */
    public static long fileSize(NamedTensors tensors, Map<String, String> metadata, SafeDType storage) {
        return 8
                + header(tensors, metadata, storage).getBytes(StandardCharsets.UTF_8).length
                + tensors.totalElements() * storage.bytes();
    }

    private static long writeTo(WritableByteChannel ch, String header, NamedTensors tensors, SafeDType storage)
            throws IOException {
        byte[] headerBytes = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer prefix = ByteBuffer.allocate(8 + headerBytes.length).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(headerBytes.length).put(headerBytes).flip();
        long written = writeAll(ch, prefix);
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment chunkSegment = MemorySegment.ofBuffer(chunk);
        int perChunk = CHUNK_BYTES / storage.bytes();
        for (NamedTensors.Entry e : tensors) {
            float[] data = e.data();
            for (int start = 0; start < data.length; start += perChunk) {
                int n = Math.min(perChunk, data.length - start);
                chunk.clear();
                switch (storage) {
                    case F32 -> {
                        MemorySegment.copy(data, start, chunkSegment, LE_FLOAT, 0, n);
                        chunk.position(4 * n);
                    }
                    case F16 -> {
                        for (int i = 0; i < n; i++) chunk.putShort(FloatFormats.floatToF16(data[start + i]));
                    }
                    case BF16 -> {
                        for (int i = 0; i < n; i++) chunk.putShort(FloatFormats.floatToBf16(data[start + i]));
                    }
                    default -> throw new IllegalArgumentException("cannot write dtype " + storage);
                }
                chunk.flip();
                written += writeAll(ch, chunk);
            }
        }
        return written;
    }

    private static long writeAll(WritableByteChannel ch, ByteBuffer b) throws IOException {
        long n = b.remaining();
        while (b.hasRemaining()) ch.write(b);
        return n;
    }

    /** The JSON header, padded with spaces so that the data section starts at a multiple of 8 bytes. */
    static String header(NamedTensors tensors, Map<String, String> metadata, SafeDType storage) {
        if (!storage.isWritable()) {
            throw new IllegalArgumentException("cannot write dtype " + storage + "; use F32, F16 or BF16");
        }
        StringWriter out = new StringWriter();
        try (JsonWriter json = new JsonWriter(out)) {
            json.setHtmlSafe(false);
            json.beginObject();
            if (!metadata.isEmpty()) {
                json.name(SafeTensorsReader.METADATA_KEY).beginObject();
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    if (m.getKey() == null || m.getValue() == null) {
                        throw new IllegalArgumentException("metadata keys and values must be non-null: " + m);
                    }
                    json.name(m.getKey()).value(m.getValue());
                }
                json.endObject();
            }
            long offset = 0;
            for (NamedTensors.Entry e : tensors) {
                if (e.name().equals(SafeTensorsReader.METADATA_KEY)) {
                    throw new IllegalArgumentException("a tensor cannot be named " + SafeTensorsReader.METADATA_KEY);
                }
                long bytes = (long) e.data().length * storage.bytes();
                json.name(e.name()).beginObject();
                json.name("dtype").value(storage.headerName());
                json.name("shape").beginArray();
                for (int d : e.shape()) json.value(d);
                json.endArray();
                json.name("data_offsets")
                        .beginArray()
                        .value(offset)
                        .value(offset + bytes)
                        .endArray();
                json.endObject();
                offset += bytes;
            }
            json.endObject();
        } catch (IOException e) {
            throw new IllegalStateException("writing JSON to a string cannot fail", e);
        }
        StringBuilder header = new StringBuilder(out.toString());
        int length = header.toString().getBytes(StandardCharsets.UTF_8).length;
        header.repeat(' ', (8 - length % 8) % 8);
        return header.toString();
    }
}
