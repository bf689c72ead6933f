package dev.loralego.peft;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Reading safetensors files assembled byte by byte from the format description, valid and malformed. */
class SafetensorsFileTest {

    @TempDir
    Path dir;

    /** u64 LE length + header (optionally space-padded to 8) + data. */
    static byte[] assemble(String headerJson, boolean pad, byte[] data) {
        byte[] json = headerJson.getBytes(StandardCharsets.UTF_8);
        int padding = pad ? (8 - json.length % 8) % 8 : 0;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length + padding);
        out.writeBytes(len.array());
        out.writeBytes(json);
        for (int i = 0; i < padding; i++) {
            out.write(' ');
        }
        out.writeBytes(data);
        return out.toByteArray();
    }

    private Path writeFile(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static byte[] bytes(int... v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = (byte) v[i];
        }
        return b;
    }

    @Test
    void readsAHandBuiltFileOfEveryDtype() throws IOException {
        // a: F32 [2] = {1.5, -2}; b: F16 [2] = {1, -0.5}; c: BF16 [1,1] = {-3}; d: F64 [] (scalar) = 0.25
        String header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"hand\"},"
                + "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[12,14]},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[14,22]}}";
        byte[] data = bytes(
                0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0,   // 1.5f = 0x3FC00000, -2f = 0xC0000000
                0x00, 0x3C, 0x00, 0xB8,                           // half 1 = 0x3C00, -0.5 = 0xB800
                0x40, 0xC0,                                       // bf16 -3 = 0xC040
                0, 0, 0, 0, 0, 0, 0xD0, 0x3F);                    // 0.25 = 0x3FD0000000000000
        for (boolean pad : new boolean[]{true, false}) {
            Path p = writeFile("hand-" + pad + ".safetensors", assemble(header, pad, data));
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                assertEquals(Map.of("format", "pt", "note", "hand"), f.metadata());
                assertEquals(List.of("a", "b", "c", "d"), List.copyOf(f.tensors().keySet()));
                assertArrayEquals(new float[]{1.5f, -2f}, f.readFloats("a"));
                assertArrayEquals(new double[]{1.0, -0.5}, f.readDoubles("b"));
                assertArrayEquals(new float[]{-3f}, f.readFloats("c"));
                assertArrayEquals(new double[]{0.25}, f.readDoubles("d"));
                assertArrayEquals(new long[]{1, 1}, f.tensor("c").shape());
                assertEquals(DType.F16, f.tensor("b").dtype());
                assertEquals(8, f.tensor("b").dataStart());
                assertEquals(12, f.tensor("b").dataEnd());
                assertArrayEquals(bytes(0x00, 0x3C, 0x00, 0xB8), f.readRawBytes("b"));
                assertEquals(f.fileSize() - 22, f.dataSectionOffset());
                assertEquals(1, f.tensor("d").elementCount());
            }
        }
    }

    @Test
    void readsAcrossMappedChunkBoundaries() throws IOException {
        // unpadded header so elements straddle chunk boundaries of a tiny chunk size
        int n = 1000;
        double[] values = new double[n];
        ByteBuffer data = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            values[i] = Math.sin(i) * 1e3;
            data.putDouble(values[i]);
        }
        String header = "{\"x\":{\"dtype\":\"F64\",\"shape\":[10,100],\"data_offsets\":[0," + (n * 8) + "]}}";
        Path p = writeFile("chunks.safetensors", assemble(header, false, data.array()));
        try (SafetensorsFile f = SafetensorsFile.open(p, 13)) {
            assertArrayEquals(values, f.readDoubles("x"));
            double[] part = new double[7];
            f.readDoubles("x", 500, part, 0, 7);
            assertArrayEquals(Arrays.copyOfRange(values, 500, 507), part);
            float[] fl = f.readFloats("x");
            for (int i = 0; i < n; i++) {
                assertEquals((float) values[i], fl[i]);
            }
        }
    }

    // ------------------------------------------------------------ malformed files

    private String rejected(byte[] file) throws IOException {
        Path p = writeFile("bad.safetensors", file);
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(p).close());
        assertTrue(e.getMessage().contains(p.toString()), "message names the file: " + e.getMessage());
        return e.getMessage();
    }

    private static final String GOOD_HEADER = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";

    @Test
    void rejectsTruncatedFiles() throws IOException {
        byte[] good = assemble(GOOD_HEADER, true, new byte[12]);
        assertTrue(rejected(Arrays.copyOf(good, 5)).contains("truncated"), "shorter than the length prefix");
        assertTrue(rejected(Arrays.copyOf(good, 30)).contains("truncated"), "cut inside the header");
        String m = rejected(Arrays.copyOf(good, good.length - 2));
        assertTrue(m.contains("truncated") && m.contains("'b'") && m.contains("outside the file"), m);
    }

    @Test
    void rejectsHeaderOver100MB() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(100_000_001L);
        String m = rejected(b.array());
        assertTrue(m.contains("100000001") && m.contains("100 MB"), m);
        ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        assertTrue(rejected(huge.array()).contains("18446744073709551615"), "u64 shown unsigned");
    }

    @Test
    void rejectsOverlappingOffsets() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        String m = rejected(assemble(header, true, new byte[12]));
        assertTrue(m.contains("overlapping") && m.contains("'b'") && m.contains("'a'"), m);
    }

    @Test
    void rejectsGappedOffsets() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        String m = rejected(assemble(header, true, new byte[12]));
        assertTrue(m.contains("gap") && m.contains("[4, 8)") && m.contains("'b'"), m);
        // trailing bytes after the last tensor are a gap too
        String m2 = rejected(assemble(GOOD_HEADER, true, new byte[16]));
        assertTrue(m2.contains("gap") && m2.contains("16 bytes"), m2);
        // so is a first tensor that does not start at 0
        String header3 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertTrue(rejected(assemble(header3, true, new byte[8])).contains("gap"));
    }

    @Test
    void rejectsDuplicateNames() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        String m = rejected(assemble(header, true, new byte[8]));
        assertTrue(m.toLowerCase().contains("duplicate") && m.contains("'a'"), m);
        String nested = "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertTrue(rejected(assemble(nested, true, new byte[4])).toLowerCase().contains("duplicate"));
    }

    @Test
    void rejectsUnknownDtype() throws IOException {
        // names the format does not define, including a lower-case spelling of a valid one (names are exact)
        for (String dtype : new String[]{"Q4_0", "F128", "i8", "f32"}) {
            String header = "{\"a\":{\"dtype\":\"" + dtype + "\",\"shape\":[4],\"data_offsets\":[0,4]}}";
            String m = rejected(assemble(header, true, new byte[4]));
            assertTrue(m.contains("'a'") && m.contains("unknown") && m.contains("'" + dtype + "'"), m);
        }
    }

    // ------------------------------------------------------------ dtypes that are not F32/F16/BF16/F64

    /**
     * A {@code modules_to_save} BatchNorm saves an I64 {@code num_batches_tracked}, and other extras can be BOOL or U8:
     * such a file opens, with every offset checked as for floats, and its non-float tensors read as raw bytes only.
     */
    @Test
    void readsIntegerAndBooleanTensorsBesideFloatsAsRawBytes() throws IOException {
        byte[] i64 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(3).putLong(-1L << 40).array();
        byte[] bool = bytes(1, 0, 1);
        byte[] u8 = bytes(0, 127, 128, 255);
        byte[] file = new HandBuiltSafetensors()
                .f32("a", new long[]{2}, 1.5f, -2f)                         // [0, 8)
                .tensor("steps", "I64", new long[]{2}, i64)                 // [8, 24)
                .tensor("mask", "BOOL", new long[]{3}, bool)                // [24, 27)
                .tensor("pixels", "U8", new long[]{2, 2}, u8)               // [27, 31)
                .f32("z", new long[]{}, 0.25f)                              // [31, 35): unaligned, as the format allows
                .bytes();
        Path p = writeFile("mixed.safetensors", file);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("a", "mask", "pixels", "steps", "z"), List.copyOf(f.tensors().keySet()));
            TensorInfo steps = f.tensor("steps");
            assertEquals(ElementType.I64, steps.elementType());
            assertArrayEquals(new long[]{2}, steps.shape());
            assertEquals(8, steps.dataStart());
            assertEquals(24, steps.dataEnd());
            assertEquals(ElementType.BOOL, f.tensor("mask").elementType());
            assertEquals(24, f.tensor("mask").dataStart());
            assertEquals(27, f.tensor("mask").dataEnd());
            assertEquals(ElementType.U8, f.tensor("pixels").elementType());
            assertArrayEquals(new long[]{2, 2}, f.tensor("pixels").shape());
            assertEquals(27, f.tensor("pixels").dataStart());
            assertEquals(31, f.tensor("pixels").dataEnd());
            assertEquals(31, f.tensor("z").dataStart());
            assertEquals(f.fileSize() - 35, f.dataSectionOffset());

            assertArrayEquals(i64, f.readRawBytes("steps"));
            assertArrayEquals(bool, f.readRawBytes("mask"));
            assertArrayEquals(u8, f.readRawBytes("pixels"));
            assertArrayEquals(new float[]{1.5f, -2f}, f.readFloats("a"));
            assertArrayEquals(new double[]{0.25}, f.readDoubles("z"));
            assertEquals(DType.F32, f.tensor("z").dtype());

            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.readDoubles("steps"));
            assertTrue(e.getMessage().contains("'steps'") && e.getMessage().contains("I64")
                    && e.getMessage().contains(p.toString()), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> f.readFloats("mask"));
            assertTrue(e.getMessage().contains("'mask'") && e.getMessage().contains("BOOL"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> f.readFloats("pixels", 1, new float[2], 0, 2));
            assertTrue(e.getMessage().contains("'pixels'") && e.getMessage().contains("U8"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> f.readDoubles("steps", 0, new double[1], 0, 1));
            assertTrue(e.getMessage().contains("'steps'") && e.getMessage().contains("I64"), e.getMessage());
            assertFalse(steps.decodable());
            e = assertThrows(IllegalArgumentException.class, steps::dtype);
            assertTrue(e.getMessage().contains("'steps'") && e.getMessage().contains("I64"), e.getMessage());
        }
    }

    @Test
    void rejectsANonFloatShapeByteCountMismatch() throws IOException {
        // I64 [3] needs 24 bytes; the range holds 16 (and they cover the data section, so only the count is wrong)
        String m = rejected(new HandBuiltSafetensors().tensor("n", "I64", new long[]{3}, new byte[16]).bytes());
        assertTrue(m.contains("'n'") && m.contains("shape/byte-count mismatch") && m.contains("[3]") && m.contains("I64")
                && m.contains("3 x 8 bytes") && m.contains("16"), m);
        String b = rejected(new HandBuiltSafetensors().tensor("m", "BOOL", new long[]{2, 2}, new byte[3]).bytes());
        assertTrue(b.contains("'m'") && b.contains("shape/byte-count mismatch") && b.contains("BOOL"), b);
        // and the layout checks hold for them too: a gap after a U8 tensor
        String g = rejected(assemble("{\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", true,
                new byte[3]));
        assertTrue(g.contains("gap"), g);
    }

    /** Bytes per element of every dtype the format defines (huggingface/safetensors {@code Dtype::bitsize} / 8). */
    private static final Map<String, Double> BYTES_PER_ELEMENT = Map.ofEntries(
            Map.entry("BOOL", 1.0), Map.entry("U8", 1.0), Map.entry("I8", 1.0), Map.entry("F8_E5M2", 1.0),
            Map.entry("F8_E4M3", 1.0), Map.entry("F8_E8M0", 1.0), Map.entry("F8_E4M3FNUZ", 1.0),
            Map.entry("F8_E5M2FNUZ", 1.0), Map.entry("I16", 2.0), Map.entry("U16", 2.0),
            Map.entry("F16", 2.0), Map.entry("BF16", 2.0), Map.entry("I32", 4.0), Map.entry("U32", 4.0),
            Map.entry("F32", 4.0), Map.entry("I64", 8.0), Map.entry("U64", 8.0), Map.entry("F64", 8.0),
            Map.entry("C64", 8.0), Map.entry("F4", 0.5), Map.entry("F6_E2M3", 0.75), Map.entry("F6_E3M2", 0.75));

    @Test
    void acceptsEveryDtypeOfTheFormatWithExactlyItsByteLength() throws IOException {
        assertEquals(BYTES_PER_ELEMENT.size(), ElementType.values().length);
        for (Map.Entry<String, Double> e : BYTES_PER_ELEMENT.entrySet()) {
            String dtype = e.getKey();
            int bytes = (int) (8 * e.getValue());   // 8 elements
            Path p = writeFile(dtype + ".safetensors",
                    new HandBuiltSafetensors().tensor("t", dtype, new long[]{2, 4}, new byte[bytes]).bytes());
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                TensorInfo t = f.tensor("t");
                assertEquals(dtype, t.elementType().safetensorsName());
                assertEquals(bytes, t.byteLength(), dtype);
                assertEquals(bytes, f.readRawBytes("t").length, dtype);
                boolean isFloat = dtype.equals("F32") || dtype.equals("F16") || dtype.equals("BF16") || dtype.equals("F64");
                assertEquals(isFloat, t.decodable(), dtype);
                if (isFloat) {
                    assertArrayEquals(new double[8], f.readDoubles("t"), dtype);
                } else {
                    assertThrows(IllegalArgumentException.class, () -> f.readDoubles("t"), dtype);
                }
            }
            for (int off : new int[]{-1, 1}) {
                String m = rejected(new HandBuiltSafetensors().tensor("t", dtype, new long[]{2, 4}, new byte[bytes + off])
                        .bytes());
                assertTrue(m.contains("shape/byte-count mismatch") && m.contains(dtype), m);
            }
        }
        // sub-byte types: the bits of all elements must fill whole bytes (the reference's MisalignedSlice)
        String f4 = rejected(new HandBuiltSafetensors().tensor("t", "F4", new long[]{3}, new byte[2]).bytes());
        assertTrue(f4.contains("'t'") && f4.contains("whole number of bytes") && f4.contains("F4"), f4);
        String f6 = rejected(new HandBuiltSafetensors().tensor("t", "F6_E3M2", new long[]{2}, new byte[2]).bytes());
        assertTrue(f6.contains("whole number of bytes"), f6);
        try (SafetensorsFile f = SafetensorsFile.open(writeFile("f6.safetensors",
                new HandBuiltSafetensors().tensor("t", "F6_E2M3", new long[]{4}, new byte[3]).bytes()))) {
            assertEquals(3, f.tensor("t").byteLength());
        }
    }

    @Test
    void rejectsShapeByteCountMismatch() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        String m = rejected(assemble(header, true, new byte[8]));
        assertTrue(m.contains("'a'") && m.contains("shape/byte-count mismatch") && m.contains("[3]"), m);
    }

    @Test
    void rejectsOtherMalformedHeaders() throws IOException {
        assertTrue(rejected(assemble("[1,2]", true, new byte[0])).contains("does not start with '{'"));
        assertTrue(rejected(assemble("{\"a\":", true, new byte[0])).contains("not valid JSON"));
        assertTrue(rejected(assemble("{\"__metadata__\":{\"k\":1}}", true, new byte[0])).contains("not a string"));
        assertTrue(rejected(assemble("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", true,
                new byte[0])).contains("non-negative"));
        assertTrue(rejected(assemble("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", true, new byte[4]))
                .contains("data_offsets"));
        assertTrue(rejected(assemble("{} x", false, new byte[0])).contains("after the header"));
        String outside = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[100,104]}}";
        assertTrue(rejected(assemble(outside, true, new byte[4])).contains("outside the file"));
    }

    /** u64 LE length + the given header bytes as they are + data. */
    private static byte[] assembleRaw(byte[] header, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
        out.writeBytes(header);
        out.writeBytes(data);
        return out.toByteArray();
    }

    /**
     * The header is UTF-8 (format description; the reference implementation decodes it with {@code str::from_utf8} before
     * parsing). Malformed UTF-8 (an overlong {@code '/'}, an encoded surrogate) and a UTF-16 header are not safetensors,
     * even though a lenient JSON reader would auto-detect or repair them into a valid-looking tensor name.
     */
    @Test
    void rejectsHeadersThatAreNotUtf8() throws IOException {
        String entry = ":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        byte[] tail = entry.getBytes(StandardCharsets.UTF_8);
        byte[] overlongSlash = new byte[4 + tail.length];
        System.arraycopy(bytes('{', '"', 0xC0, 0xAF), 0, overlongSlash, 0, 4);
        byte[] withQuote = Arrays.copyOf(overlongSlash, overlongSlash.length + 1);
        withQuote[4] = '"';
        System.arraycopy(tail, 0, withQuote, 5, tail.length);
        assertTrue(rejected(assembleRaw(withQuote, new byte[8])).contains("UTF-8"), "overlong encoding");

        byte[] surrogate = new byte[6 + tail.length];
        System.arraycopy(bytes('{', '"', 0xED, 0xA0, 0x80, '"'), 0, surrogate, 0, 6);
        System.arraycopy(tail, 0, surrogate, 6, tail.length);
        assertTrue(rejected(assembleRaw(surrogate, new byte[8])).contains("UTF-8"), "encoded surrogate");

        String json = "{\"a\"" + entry;
        Exception e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(
                writeFile("utf16.safetensors", assembleRaw(json.getBytes(StandardCharsets.UTF_16LE), new byte[8]))).close());
        assertTrue(e.getMessage().contains("utf16.safetensors"), e.getMessage());

        // the same header as UTF-8, and a non-ASCII name, are fine
        try (SafetensorsFile f = SafetensorsFile.open(writeFile("ok.safetensors",
                assembleRaw(("{\"\u00e9t\u00e9\"" + entry).getBytes(StandardCharsets.UTF_8), new byte[8])))) {
            assertEquals(List.of("\u00e9t\u00e9"), List.copyOf(f.tensors().keySet()));
        }
    }

    @Test
    void emptyFileWithOnlyMetadataIsValid() throws IOException {
        Path p = writeFile("empty.safetensors", assemble("{\"__metadata__\":{\"format\":\"pt\"}}", true, new byte[0]));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertTrue(f.tensors().isEmpty());
            assertEquals("pt", f.metadata().get("format"));
        }
    }

    @Test
    void unknownTensorNameIsAClearError() throws IOException {
        Path p = writeFile("ok.safetensors", assemble(GOOD_HEADER, true, new byte[12]));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.readFloats("zz"));
            assertTrue(e.getMessage().contains("'zz'"));
        }
    }

    // ------------------------------------------------------------ beyond 2 GiB, sparse

    @Test
    void readsATensorBeyondFourGiBFromASparseFile() throws IOException {
        // "big": BF16 [2^31] = 4 GiB of zeros (never written: a hole), then "small": F32 [4] at offset 2^32.
        long bigBytes = 1L << 32;
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"big\":{\"dtype\":\"BF16\",\"shape\":[2147483648],\"data_offsets\":[0," + bigBytes + "]},"
                + "\"small\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" + bigBytes + "," + (bigBytes + 16) + "]}}";
        byte[] head = assemble(header, true, new byte[0]);
        Path p = dir.resolve("sparse.safetensors");
        float[] small = {1.25f, -7f, 3e-3f, Float.MAX_VALUE};
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            try {
                raf.setLength(head.length + bigBytes + 16);
            } catch (IOException e) {
                assumeTrue(false, "file system cannot create a 4 GiB sparse file: " + e.getMessage());
            }
            raf.seek(0);
            raf.write(head);
            ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : small) {
                data.putFloat(v);
            }
            raf.seek(head.length + bigBytes);
            raf.write(data.array());
        }
        assumeTrue(Files.getFileStore(p).getUsableSpace() > 0);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(bigBytes, f.tensor("small").dataStart());
            assertArrayEquals(small, f.readFloats("small"));
            assertArrayEquals(new double[]{1.25, -7, (double) 3e-3f, (double) Float.MAX_VALUE}, f.readDoubles("small"));
            // a slice of the hole reads as zeros, located by a long element offset
            float[] zeros = new float[5];
            Arrays.fill(zeros, 9f);
            f.readFloats("big", (1L << 31) - 5, zeros, 0, 5);
            assertArrayEquals(new float[5], zeros);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.readFloats("big"));
            assertTrue(e.getMessage().contains("'big'") && e.getMessage().contains("Integer.MAX_VALUE"), e.getMessage());
        } finally {
            Files.deleteIfExists(p);
        }
    }
}
