package dev.loralego.peft;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A safetensors file assembled byte by byte, tensor after tensor, with any dtype name: for tests of what
 * {@link SafetensorsWriter} cannot write (integer and boolean tensors). Offsets follow the order of the calls; the
 * header is not padded. Independent of {@link ElementType}: the caller gives the dtype name and the bytes.
 */
public final class HandBuiltSafetensors {
    private final StringBuilder header = new StringBuilder("{");
    private final ByteArrayOutputStream data = new ByteArrayOutputStream();

    /** Adds a tensor with the given header dtype name, shape and stored bytes (which may disagree, on purpose). */
    public HandBuiltSafetensors tensor(String name, String dtype, long[] shape, byte[] bytes) {
        if (header.length() > 1) {
            header.append(',');
        }
        StringBuilder dims = new StringBuilder();
        for (long d : shape) {
            dims.append(dims.length() == 0 ? "" : ",").append(d);
        }
        long begin = data.size();
        data.writeBytes(bytes);
        header.append('"').append(name).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":[").append(dims)
                .append("],\"data_offsets\":[").append(begin).append(',').append(data.size()).append("]}");
        return this;
    }

    /** Adds an F32 tensor of {@code values}, little-endian. */
    public HandBuiltSafetensors f32(String name, long[] shape, float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return tensor(name, "F32", shape, b.array());
    }

    /** Adds an I64 tensor of {@code values}, little-endian. */
    public HandBuiltSafetensors i64(String name, long[] shape, long... values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            b.putLong(v);
        }
        return tensor(name, "I64", shape, b.array());
    }

    /** The whole file: u64 little-endian header length, the JSON header, the data. */
    public byte[] bytes() {
        byte[] json = (header + "}").getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
        out.writeBytes(json);
        out.writeBytes(data.toByteArray());
        return out.toByteArray();
    }

    /** Writes {@link #bytes()} to {@code file} and returns it. */
    public Path write(Path file) throws IOException {
        Files.write(file, bytes());
        return file;
    }
}
