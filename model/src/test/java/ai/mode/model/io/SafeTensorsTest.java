// safetensors reader against files built byte by byte by the test (all dtypes, scalars, empty tensors, metadata),
// writer output parsed independently (header JSON, offsets, alignment, little-endian bytes), round trips bit-exact,
// and one clear error per kind of malformed header.
package ai.mode.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {

    @TempDir
    Path tmp;

    @Test
    void readsEveryDtypeFromAnIndependentlyBuiltFile() throws IOException {
        Path f = new RawSafeTensors()
                .meta("format", "pt")
                .f32("a", new int[] {2, 3}, 1f, -2.5f, 3e-30f, Float.MIN_VALUE, -0f, 7f)
                .bits16("h", "F16", new int[] {4}, 0x3C00, 0xC000, 0x0001, 0x7C00) // 1, -2, 2^-24, +inf
                .bits16("b", "BF16", new int[] {3}, 0x3F80, 0xC0A0, 0x0080) // 1, -5, 2^-126
                .f64("d", new int[] {2}, Math.PI, -1e-3)
                .i32("i", new int[] {3}, 7, -1, Integer.MAX_VALUE)
                .i64("l", new int[] {2}, Long.MIN_VALUE, 42L)
                .f32("scalar", new int[] {}, 9.5f)
                .f32("empty", new int[] {0, 5})
                .writeTo(tmp.resolve("x.safetensors"));
        try (SafeTensorsReader r = SafeTensorsReader.open(f)) {
            assertEquals(List.of("a", "h", "b", "d", "i", "l", "scalar", "empty"), r.names());
            assertEquals(Map.of("format", "pt"), r.metadata());
            assertArrayEquals(new float[] {1f, -2.5f, 3e-30f, Float.MIN_VALUE, -0f, 7f}, r.readFloats("a"));
            assertArrayEquals(new int[] {2, 3}, r.info("a").shape());
            assertArrayEquals(new float[] {1f, -2f, 0x1p-24f, Float.POSITIVE_INFINITY}, r.readFloats("h"));
            assertArrayEquals(new float[] {1f, -5f, 0x1p-126f}, r.readFloats("b"));
            assertArrayEquals(new float[] {(float) Math.PI, -1e-3f}, r.readFloats("d"));
            assertArrayEquals(new int[] {7, -1, Integer.MAX_VALUE}, r.readInts("i"));
            assertArrayEquals(new long[] {7, -1, Integer.MAX_VALUE}, r.readLongs("i"));
            assertArrayEquals(new long[] {Long.MIN_VALUE, 42L}, r.readLongs("l"));
            assertArrayEquals(new float[] {9.5f}, r.readFloats("scalar"));
            assertEquals(1, r.info("scalar").numel());
            assertEquals(0, r.readFloats("empty").length);
            assertEquals(SafeDType.BF16, r.info("b").dtype());
            assertEquals(6, r.bytes("b").byteSize());

            float[] dst = new float[10];
            r.readFloats("h", dst, 3);
            assertEquals(-2f, dst[4]);

            assertMessage(
                    assertThrows(CheckpointFormatException.class, () -> r.readFloats("i")), "tensor i has dtype I32");
            assertMessage(assertThrows(CheckpointFormatException.class, () -> r.readInts("a")), "expected I32");
            assertMessage(
                    assertThrows(CheckpointFormatException.class, () -> r.readFloats("nope")), "no tensor named nope");
            assertMessage(assertThrows(CheckpointFormatException.class, r::readAll), "not a floating-point type");
        }
    }

    @Test
    void writerOutputMatchesTheFormatByteForByte() throws IOException {
        NamedTensors t = new NamedTensors()
                .put("w", new int[] {2, 2}, new float[] {1f, 2f, 3f, 4f})
                .put("z.\"quoted\"é", new int[] {3}, new float[] {-1f, 0.5f, 1e-40f})
                .put("s", new int[] {}, new float[] {42f});
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("note", "line\nbreak");
        Path f = tmp.resolve("w.safetensors");
        SafeTensors.write(f, t, meta, SafeDType.F32);

        byte[] bytes = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long n = b.getLong();
        assertEquals(0, (8 + n) % 8, "data section must start 8-byte aligned");
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        JsonObject h = JsonParser.parseString(header).getAsJsonObject();
        assertEquals(
                "line\nbreak", h.getAsJsonObject("__metadata__").get("note").getAsString());
        JsonObject z = h.getAsJsonObject("z.\"quoted\"é");
        assertEquals("F32", z.get("dtype").getAsString());
        assertEquals("[3]", z.get("shape").toString());
        assertEquals("[16,28]", z.get("data_offsets").toString());
        assertEquals("[]", h.getAsJsonObject("s").get("shape").toString());
        assertEquals(8 + n + 32, bytes.length);
        b.position((int) (8 + n + 16));
        assertEquals(Float.floatToRawIntBits(-1f), b.getInt());
        assertEquals(Float.floatToRawIntBits(0.5f), b.getInt());
        assertEquals(Float.floatToRawIntBits(1e-40f), b.getInt());
        assertEquals(bytes.length, SafeTensors.fileSize(t, meta, SafeDType.F32));

        try (SafeTensorsReader r = SafeTensors.open(f)) {
            assertEquals(meta, r.metadata());
            assertTrue(r.readAll().bitwiseEquals(t));
        }
    }

    @Test
    void f32RoundTripIsBitExactAcrossChunkBoundaries() throws IOException {
        SplittableRandom rnd = new SplittableRandom(7);
        float[] big = new float[300_001]; // more than one 1 MiB write chunk
        for (int i = 0; i < big.length; i++) big[i] = Float.intBitsToFloat(rnd.nextInt()); // includes NaN payloads
        big[0] = Float.intBitsToFloat(0x7FA0_0001); // signalling NaN payload
        big[1] = -0f;
        NamedTensors t = new NamedTensors()
                .put("big", new int[] {big.length}, big)
                .put("one", new int[] {1, 1}, new float[] {3f});
        Path f = tmp.resolve("big.safetensors");
        SafeTensors.write(f, t);
        NamedTensors back = SafeTensors.read(f);
        assertTrue(back.bitwiseEquals(t));
        assertEquals(Float.floatToRawIntBits(big[0]), Float.floatToRawIntBits(back.data("big")[0]));
    }

    @Test
    void f16AndBf16StorageRoundToNearestEven() throws IOException {
        SplittableRandom rnd = new SplittableRandom(11);
        float[] v = new float[30_000];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(-9, 6)));
        v[0] = Float.NaN;
        v[1] = Float.NEGATIVE_INFINITY;
        v[2] = 1e-8f; // f16 subnormal range
        NamedTensors t = new NamedTensors().put("v", new int[] {v.length}, v);
        for (SafeDType storage : new SafeDType[] {SafeDType.F16, SafeDType.BF16}) {
            HalfReference.Format ref = storage == SafeDType.F16 ? HalfReference.Format.F16 : HalfReference.Format.BF16;
            Path f = tmp.resolve(storage + ".safetensors");
            SafeTensors.write(f, t, Map.of(), storage);
            try (SafeTensorsReader r = SafeTensors.open(f)) {
                assertEquals(storage, r.info("v").dtype());
                MemorySegment raw = r.bytes("v");
                float[] back = r.readFloats("v");
                assertTrue(Float.isNaN(back[0]));
                for (int i = 1; i < v.length; i += 7) {
                    int stored = raw.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i)
                            & 0xFFFF;
                    assertEquals(ref.encode(v[i]), stored, "element " + i + " = " + v[i]);
                    assertEquals((float) ref.decode(stored), back[i]);
                }
            }
        }
    }

    @Test
    void emptyFileAndDirectoryPaths() throws IOException {
        Path f = tmp.resolve("empty.safetensors");
        SafeTensors.write(f, new NamedTensors(), Map.of("k", "v"), SafeDType.F32);
        try (SafeTensorsReader r = SafeTensors.open(f)) {
            assertEquals(0, r.size());
            assertEquals("v", r.metadata().get("k"));
        }
        SafeTensors.write(f, new NamedTensors());
        assertEquals(16, Files.size(f), "8-byte length + \"{}\" padded to 8");
        assertTrue(SafeTensors.read(f).isEmpty());
        assertMessage(assertThrows(CheckpointFormatException.class, () -> SafeTensors.open(tmp)), "is a directory");
    }

    @Test
    void closedReaderReleasesItsMapping() throws IOException {
        Path f = new RawSafeTensors().f32("a", new int[] {1}, 1f).writeTo(tmp.resolve("c.safetensors"));
        SafeTensorsReader r = SafeTensorsReader.open(f);
        MemorySegment view = r.bytes("a");
        r.close();
        r.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> view.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void writerRejectsInvalidInput() {
        NamedTensors bad = new NamedTensors().put("__metadata__", new int[] {1}, new float[] {1});
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(tmp.resolve("b.safetensors"), bad));
        NamedTensors ok = new NamedTensors().put("a", new int[] {1}, new float[] {1});
        assertThrows(
                IllegalArgumentException.class,
                () -> SafeTensors.write(tmp.resolve("b.safetensors"), ok, Map.of(), SafeDType.I32));
        assertFalse(Files.exists(tmp.resolve("b.safetensors")));
        assertThrows(IllegalArgumentException.class, () -> ok.put("a", new int[] {1}, new float[] {2}));
        assertThrows(IllegalArgumentException.class, () -> ok.put("c", new int[] {2, 2}, new float[] {1, 2, 3}));
        assertThrows(IllegalArgumentException.class, () -> ok.put("d", new int[] {-1}, new float[] {}));
    }

    // ------------------------------------------------------------------------------------------ malformed files

    private static final String GOOD_A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    @Test
    void tooShortForTheLengthPrefix() throws IOException {
        expectError(new byte[5], "shorter than the 8-byte header length");
        expectError(new byte[0], "file is 0 bytes");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        byte[] f = RawSafeTensors.file("{" + GOOD_A + "}", new byte[8]);
        ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 10_000);
        expectError(f, "header length 10000 (bytes 0-7) does not fit");
        ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -1);
        expectError(f, "header length 18446744073709551615");
    }

    @Test
    void headerIsNotJson() throws IOException {
        expectError(RawSafeTensors.file("{\"a\":{\"dtype\":", new byte[0]), "header is not valid safetensors JSON");
        expectError(RawSafeTensors.file("[1,2,3]", new byte[0]), "header must be a JSON object");
        expectError(
                RawSafeTensors.file("{" + GOOD_A + "}x", new byte[8]), "header has content after its closing brace");
        expectError(RawSafeTensors.file("{'a':{}}", new byte[0]), "not valid safetensors JSON");
        expectError(
                RawSafeTensors.file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"x\"],\"data_offsets\":[0,4]}}", new byte[4]),
                "in entry \"a\"");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", new byte[4]),
                "not valid safetensors JSON");
    }

    @Test
    void headerIsNotUtf8() throws IOException {
        byte[] f = RawSafeTensors.file("{" + GOOD_A + "}", new byte[8]);
        f[12] = (byte) 0xC3; // lone lead byte inside the name
        f[13] = (byte) 0x28;
        expectError(f, "not valid UTF-8");
    }

    @Test
    void unknownDtype() throws IOException {
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", new byte[1]),
                "tensor \"a\": unknown dtype \"F4\"");
    }

    @Test
    void missingFields() throws IOException {
        expectError(
                RawSafeTensors.file("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "lacks \"dtype\"");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", new byte[8]),
                "lacks \"shape\"");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", new byte[8]),
                "lacks \"data_offsets\"");
    }

    @Test
    void badShapesAndOffsets() throws IOException {
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", new byte[8]),
                "invalid dimension -2");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", new byte[8]),
                "data_offsets must be [begin, end]");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", new byte[8]),
                "not an increasing pair");
        expectError(
                RawSafeTensors.file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]),
                "span 8 bytes but F32[3] needs 12");
        expectError(
                RawSafeTensors.file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,4],\"data_offsets\":[0,8]}}",
                        new byte[8]),
                "too large");
    }

    @Test
    void rangesOutsideTheFileOverlappingOrLeavingGaps() throws IOException {
        String b = "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}";
        expectError(
                RawSafeTensors.file("{" + GOOD_A + "," + b.formatted(8, 12) + "}", new byte[10]),
                "tensor \"b\": data ends at file byte");
        expectError(RawSafeTensors.file("{" + GOOD_A + "," + b.formatted(4, 8) + "}", new byte[8]), "overlap tensor");
        expectError(
                RawSafeTensors.file("{" + GOOD_A + "," + b.formatted(12, 16) + "}", new byte[16]),
                "data bytes [8, 12) belong to no tensor (gap before tensor \"b\")");
        expectError(RawSafeTensors.file("{" + GOOD_A + "}", new byte[9]), "1 trailing bytes after the last tensor");
    }

    @Test
    void duplicateNames() throws IOException {
        expectError(RawSafeTensors.file("{" + GOOD_A + "," + GOOD_A + "}", new byte[8]), "duplicate tensor name \"a\"");
        expectError(
                RawSafeTensors.file("{\"__metadata__\":{},\"__metadata__\":{}," + GOOD_A + "}", new byte[8]),
                "duplicate __metadata__");
        expectError(
                RawSafeTensors.file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + GOOD_A + "}", new byte[8]),
                "duplicate key \"k\"");
    }

    @Test
    void metadataValuesMustBeStrings() throws IOException {
        expectError(
                RawSafeTensors.file("{\"__metadata__\":{\"step\":3}," + GOOD_A + "}", new byte[8]),
                "__metadata__ value of \"step\" must be a string");
    }

    @Test
    void missingFileIsAFormatError() {
        CheckpointFormatException e = assertThrows(
                CheckpointFormatException.class, () -> SafeTensorsReader.open(tmp.resolve("absent.safetensors")));
        assertMessage(e, "file not found");
    }

    private void expectError(byte[] content, String expected) throws IOException {
        Path f = tmp.resolve("bad-" + Integer.toHexString(expected.hashCode()) + ".safetensors");
        Files.write(f, content);
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> {
            try (SafeTensorsReader r = SafeTensorsReader.open(f)) {
                r.readAll();
            }
        });
        assertMessage(e, expected);
        assertTrue(e.getMessage().startsWith(f.toString()), "message must name the file: " + e.getMessage());
    }

    static void assertMessage(Exception e, String expected) {
        assertTrue(
                e.getMessage().contains(expected),
                () -> "expected message containing [" + expected + "], got: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), () -> "message must be one line: " + e.getMessage());
    }
}
