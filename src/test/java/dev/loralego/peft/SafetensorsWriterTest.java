package dev.loralego.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writing safetensors: round trips of every dtype, layout rules, determinism, streaming contract. */
class SafetensorsWriterTest {

    @TempDir
    Path dir;

    /** Values that exercise rounding: ordinary, subnormal in F16/BF16, huge, ties, specials. */
    private static double[] awkwardValues(long seed, int n) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[n];
        double[] specials = {0.0, -0.0, 1.0, -1.0, 65504, 65520, 1e5, 0x1p-24, 0x1p-25, 3 * 0x1p-25, 1e-8, 1e-40,
                1 + 0x1p-11, 1 + 0x1p-8, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN, 1e300, -1e-300};
        System.arraycopy(specials, 0, v, 0, specials.length);
        for (int i = specials.length; i < n; i++) {
            v[i] = Math.scalb(rnd.nextDouble(-2, 2), rnd.nextInt(-30, 20));
        }
        return v;
    }

    private static double expectedStored(DType t, double x) {
        switch (t) {
            case F64:
                return x;
            case F32:
                return (float) x;
            case F16:
                return Double.isNaN(x) ? Double.NaN : NarrowFloatReference.HALF.decode(NarrowFloatReference.HALF.round(x));
            case BF16:
                return Double.isNaN(x) ? Double.NaN : NarrowFloatReference.BFLOAT16.decode(NarrowFloatReference.BFLOAT16.round(x));
            default:
                throw new AssertionError(t);
        }
    }

    @Test
    void roundTripsEveryDtypeWithCorrectRounding() throws IOException {
        double[] values = awkwardValues(3, 2000);
        List<TensorData> tensors = new ArrayList<>();
        for (DType t : DType.values()) {
            tensors.add(new TensorData("w." + t, t, new long[]{40, 50}, values));
        }
        float[] floats = new float[values.length];
        for (int i = 0; i < floats.length; i++) {
            floats[i] = (float) values[i];
        }
        tensors.add(TensorData.ofFloats("f.F16", DType.F16, new long[]{2000}, floats));
        Path p = dir.resolve("all.safetensors");
        SafetensorsWriter.write(p, null, tensors);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            for (DType t : DType.values()) {
                TensorInfo info = f.tensor("w." + t);
                assertEquals(t, info.dtype());
                assertArrayEquals(new long[]{40, 50}, info.shape());
                double[] back = f.readDoubles("w." + t);
                for (int i = 0; i < values.length; i++) {
                    assertEquals(expectedStored(t, values[i]), back[i], 0.0, t + " value " + values[i]);
                }
            }
            double[] fromFloats = f.readDoubles("f.F16");
            for (int i = 0; i < floats.length; i++) {
                assertEquals(expectedStored(DType.F16, floats[i]), fromFloats[i], 0.0, "float " + floats[i]);
            }
        }
    }

    @Test
    void headerIsAlignedPaddedWithSpacesAndCarriesFormatPt() throws IOException {
        for (int nameLength = 1; nameLength < 10; nameLength++) {
            Path p = dir.resolve("h" + nameLength + ".safetensors");
            String name = "t".repeat(nameLength);
            SafetensorsWriter.write(p, null, List.of(new TensorData(name, DType.F32, new long[]{3}, new double[]{1, 2, 3})));
            byte[] bytes = Files.readAllBytes(p);
            long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            assertEquals(0, (8 + n) % 8, "data starts 8-byte aligned");
            String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
            String json = header.stripTrailing();
            assertTrue(header.substring(json.length()).chars().allMatch(c -> c == ' '), "padding is spaces");
            assertTrue(header.length() - json.length() < 8);
            JsonNode root = new ObjectMapper().readTree(json);
            assertEquals("{\"format\":\"pt\"}", root.get("__metadata__").toString());
            assertEquals("__metadata__", root.fieldNames().next(), "metadata first");
            assertEquals(8 + n + 12, bytes.length);
        }
    }

    @Test
    void exactBytesOfASmallFile() throws IOException {
        Path p = dir.resolve("golden.safetensors");
        SafetensorsWriter.write(p, Map.of("z", "last", "a", "first"), List.of(
                new TensorData("b", DType.F16, new long[]{1}, new double[]{-2}),
                new TensorData("a", DType.F32, new long[]{1}, new double[]{1.5})));
        String json = "{\"__metadata__\":{\"format\":\"pt\",\"a\":\"first\",\"z\":\"last\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
        byte[] expected = SafetensorsFileTest.assemble(json, true,
                new byte[]{0x00, 0x00, (byte) 0xC0, 0x3F, 0x00, (byte) 0xC0});
        assertArrayEquals(expected, Files.readAllBytes(p));
    }

    @Test
    void bytesAreDeterministicRegardlessOfInputOrder() throws IOException {
        List<TensorData> tensors = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(11);
        for (int i = 0; i < 12; i++) {
            double[] v = rnd.doubles(30).toArray();
            tensors.add(new TensorData("layer." + i + ".w", DType.BF16, new long[]{5, 6}, v));
        }
        Path p1 = dir.resolve("one.safetensors");
        Path p2 = dir.resolve("two.safetensors");
        SafetensorsWriter.write(p1, Map.of("k", "v"), tensors);
        List<TensorData> shuffled = new ArrayList<>(tensors);
        Collections.shuffle(shuffled, new java.util.Random(5));
        SafetensorsWriter.write(p2, Map.of("k", "v"), shuffled);
        assertArrayEquals(Files.readAllBytes(p1), Files.readAllBytes(p2));
        SafetensorsWriter.write(p1, Map.of("k", "v"), tensors); // overwrite in place
        assertArrayEquals(Files.readAllBytes(p2), Files.readAllBytes(p1));
        try (SafetensorsFile f = SafetensorsFile.open(p1)) {
            List<String> byOffset = new ArrayList<>(f.tensors().keySet());
            byOffset.sort((a, b) -> Long.compare(f.tensor(a).dataStart(), f.tensor(b).dataStart()));
            assertEquals(new ArrayList<>(f.tensors().keySet()), byOffset, "data in sorted name order");
        }
    }

    @Test
    void streamingChunksEqualWholeTensorWrites() throws IOException {
        double[] a = awkwardValues(9, 1000);
        float[] b = new float[333];
        for (int i = 0; i < b.length; i++) {
            b[i] = i * 0.5f;
        }
        List<TensorSpec> specs = List.of(new TensorSpec("b", DType.F16, new long[]{333}),
                new TensorSpec("a", DType.F32, new long[]{10, 100}), new TensorSpec("empty", DType.F64, new long[]{0, 4}));
        Path whole = dir.resolve("whole.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.open(whole, null, specs)) {
            assertEquals(List.of("a", "b", "empty"), w.order().stream().map(TensorSpec::name).toList());
            w.writeTensor("a", a);
            w.writeTensor("b", b);
        }
        Path chunked = dir.resolve("chunked.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.open(chunked, null, specs)) {
            w.writeTensorChunk("a", a, 0, 1);
            w.writeTensorChunk("a", a, 1, 600);
            w.writeTensorChunk("a", a, 601, 399);
            w.writeTensorChunk("b", b, 0, 100);
            w.writeTensorChunk("b", b, 100, 233);
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(chunked));
        try (SafetensorsFile f = SafetensorsFile.open(whole)) {
            assertEquals(0, f.tensor("empty").byteLength());
            assertEquals(0, f.readDoubles("empty").length);
        }
    }

    @Test
    void rawTensorsPassThrough() throws IOException {
        Path src = dir.resolve("src.safetensors");
        SafetensorsWriter.write(src, null, List.of(new TensorData("x", DType.BF16, new long[]{4}, new double[]{1, 2, 3, 4})));
        byte[] raw;
        try (SafetensorsFile f = SafetensorsFile.open(src)) {
            raw = f.readRawBytes("x");
        }
        Path dst = dir.resolve("dst.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.open(dst, null, List.of(new TensorSpec("x", DType.BF16, new long[]{4})))) {
            w.writeRawTensor("x", raw);
        }
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
    }

    @Test
    void incompleteOrOutOfOrderWritesLeaveNoFile() throws IOException {
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.F32, new long[]{2}), new TensorSpec("b", DType.F32, new long[]{2}));
        Path p = dir.resolve("partial.safetensors");
        IllegalStateException missing = assertThrows(IllegalStateException.class, () -> {
            try (SafetensorsWriter w = SafetensorsWriter.open(p, null, specs)) {
                w.writeTensor("a", new float[]{1, 2});
            }
        });
        assertTrue(missing.getMessage().contains("'b'"), missing.getMessage());
        assertFalse(Files.exists(p));
        IllegalStateException order = assertThrows(IllegalStateException.class, () -> {
            SafetensorsWriter w = SafetensorsWriter.open(p, null, specs);
            try {
                w.writeTensor("b", new float[]{1, 2});
            } finally {
                assertThrows(IllegalStateException.class, w::close);
            }
        });
        assertTrue(order.getMessage().contains("out of order") && order.getMessage().contains("'a'"), order.getMessage());
        assertFalse(Files.exists(p));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.open(p, null,
                List.of(new TensorSpec("a", DType.F32, new long[]{1}), new TensorSpec("a", DType.F16, new long[]{1}))));
        assertThrows(IllegalArgumentException.class, () -> new TensorData("x", DType.F32, new long[]{3}, new double[2]));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.toList(), "no temporary files left behind");
        }
    }

    @Test
    void readsBackLongShapesAndMetadata() throws IOException {
        Path p = dir.resolve("meta.safetensors");
        double[] v = new double[2 * 3 * 4];
        Arrays.setAll(v, i -> i - 5.5);
        SafetensorsWriter.write(p, Map.of("format", "np", "source", "test"),
                List.of(new TensorData("cube", DType.F64, new long[]{2, 3, 4}, v)));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("format", "source"), List.copyOf(f.metadata().keySet()));
            assertEquals("np", f.metadata().get("format"));
            assertArrayEquals(v, f.readDoubles("cube"));
            assertArrayEquals(new long[]{2, 3, 4}, f.tensor("cube").shape());
        }
    }
}
