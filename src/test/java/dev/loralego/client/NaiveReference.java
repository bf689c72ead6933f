package dev.loralego.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * Obviously-correct reference code the client tests compare against: a safetensors reader written from the
 * format description (8-byte little-endian header length, JSON header with {@code data_offsets} relative to
 * the end of the header), SHA-256 over concatenated bytes, and little-endian float decoding.
 */
final class NaiveReference {
    private NaiveReference() {
    }

    static Path fixture(String name) {
        URL url = NaiveReference.class.getResource("/real-adapters/" + name);
        if (url == null) throw new IllegalStateException("fixture " + name + " missing from the test classpath");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The stored bytes of tensor {@code name} in a safetensors file. */
    static byte[] rawTensor(Path file, String name) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(all, 8, (int) headerLength, StandardCharsets.UTF_8));
        JsonNode entry = header.get(name);
        if (entry == null) throw new IllegalArgumentException("no tensor " + name + " in " + file);
        int start = 8 + (int) headerLength + entry.get("data_offsets").get(0).asInt();
        int end = 8 + (int) headerLength + entry.get("data_offsets").get(1).asInt();
        return Arrays.copyOfRange(all, start, end);
    }

    /** The dtype string of tensor {@code name} in a safetensors file. */
    static String dtype(Path file, String name) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(all, 8, (int) headerLength, StandardCharsets.UTF_8));
        return header.get(name).get("dtype").asText();
    }

    /** Hex SHA-256 of the concatenation of {@code parts}. */
    static String sha256(byte[]... parts) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (byte[] p : parts) md.update(p);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Hex SHA-256 of {@code name '\n' digest '\n'} for each module in the given order. */
    static String wholeDigest(List<String> names, List<String> digests) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < names.size(); i++) sb.append(names.get(i)).append('\n').append(digests.get(i)).append('\n');
        return sha256(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** Little-endian F32 bytes as floats. */
    static float[] f32(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.length / 4];
        for (int i = 0; i < out.length; i++) out[i] = b.getFloat();
        return out;
    }

    /** Floats as little-endian F32 bytes. */
    static byte[] f32Bytes(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return b.array();
    }

    /** BF16 values given as floats whose low 16 bits are zero, as little-endian BF16 bytes. */
    static byte[] bf16Bytes(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            int bits = Float.floatToIntBits(v);
            if ((bits & 0xffff) != 0) throw new IllegalArgumentException(v + " is not a bfloat16 value");
            b.putShort((short) (bits >>> 16));
        }
        return b.array();
    }
}
