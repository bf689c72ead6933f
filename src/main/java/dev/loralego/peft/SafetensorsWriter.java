package dev.loralego.peft;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Writes safetensors files (format: see {@link SafetensorsFile}) deterministically and in a streaming way:
 * the header is written first from the announced {@link TensorSpec}s, then the data tensor by tensor (or chunk by
 * chunk), so a file of any size is written with a small, fixed buffer.
 *
 * <p>Layout, always the same for the same input: tensors in sorted name order (header entries and data alike);
 * {@code __metadata__} first, with {@code "format": "pt"} first (unless the caller sets another value) and the
 * other metadata keys sorted; compact JSON; the header padded with spaces so the data section starts at a
 * multiple of 8 bytes. No timestamps. Values are encoded to each tensor's dtype with round-to-nearest-even.
 *
 * <p>The data goes to a temporary file next to the target, which {@link #close()} moves into place atomically
 * (where the file system allows) once every tensor has been written completely; otherwise the temporary file is
 * deleted and the target is left untouched.
 */
public final class SafetensorsWriter implements AutoCloseable {

    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final int BUFFER_BYTES = 1 << 20;

    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private final List<TensorSpec> order;
    private final ByteBuffer buffer = ByteBuffer.allocate(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    private final byte[] scratch = new byte[BUFFER_BYTES];
    private int current;            // index into order of the tensor being written
    private long elementsWritten;   // of the current tensor
    private boolean failed;
    private boolean closed;

    private SafetensorsWriter(Path target, Path temp, FileChannel channel, List<TensorSpec> order) {
        this.target = target;
        this.temp = temp;
        this.channel = channel;
        this.order = order;
    }

    /**
     * Writes a whole file: {@code tensors} in sorted name order, then atomically moves it to {@code file}.
     *
     * @param metadata extra {@code __metadata__} entries ({@code format=pt} is added unless present); may be null
     */
    public static void write(Path file, Map<String, String> metadata, List<TensorData> tensors) throws IOException {
        List<TensorSpec> specs = new ArrayList<>(tensors.size());
        for (TensorData t : tensors) {
            specs.add(t.spec());
        }
        try (SafetensorsWriter w = open(file, metadata, specs)) {
            List<TensorData> sorted = new ArrayList<>(tensors);
            sorted.sort(Comparator.comparing(TensorData::name));
            for (TensorData t : sorted) {
                if (t.values() != null) {
                    w.writeTensor(t.name(), t.values());
                } else {
                    w.writeTensor(t.name(), t.floats());
                }
            }
        }
    }

    /**
     * Starts a file: validates the specs (unique, valid names), writes the header to a temporary file next to
     * {@code file} and returns the writer, which expects the tensors' data in {@link #order()}.
     *
     * @param metadata extra {@code __metadata__} entries ({@code format=pt} is added unless present); may be null
     */
    public static SafetensorsWriter open(Path file, Map<String, String> metadata, List<TensorSpec> specs) throws IOException {
        List<TensorSpec> sorted = new ArrayList<>(specs);
        sorted.sort(Comparator.comparing(TensorSpec::name));
        Set<String> names = new HashSet<>();
        for (TensorSpec s : sorted) {
            if (!names.add(s.name())) {
                throw new IllegalArgumentException("duplicate tensor name '" + s.name() + "' for " + file);
            }
        }
        byte[] header = headerBytes(metadata, sorted);
        Path absolute = file.toAbsolutePath();
        Path dir = absolute.getParent();
        Files.createDirectories(dir);
        Path temp = AtomicFiles.tempBeside(absolute);
        FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        SafetensorsWriter w = new SafetensorsWriter(absolute, temp, ch, Collections.unmodifiableList(sorted));
        try {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            w.writeFully(len);
            w.writeFully(ByteBuffer.wrap(header));
            w.skipEmptyTensors();
        } catch (IOException | RuntimeException e) {
            w.abort();
            throw e;
        }
        return w;
    }

    /**
     * The header JSON, padded with spaces to make {@code 8 + length} a multiple of 8: {@code __metadata__}
     * first, then every tensor in the given order with consecutive offsets.
     */
    static byte[] headerBytes(Map<String, String> metadata, List<TensorSpec> sorted) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
        Map<String, String> extra = metadata == null ? Map.of() : metadata;
        meta.put("format", extra.getOrDefault("format", "pt"));
        for (Map.Entry<String, String> e : new TreeMap<>(extra).entrySet()) {
            if (!e.getKey().equals("format")) {
                meta.put(e.getKey(), Objects.requireNonNull(e.getValue(), "metadata value of " + e.getKey()));
            }
        }
        long offset = 0;
        for (TensorSpec s : sorted) {
            ObjectNode entry = root.putObject(s.name());
            entry.put("dtype", s.dtype().safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : s.shape()) {
                shape.add(d);
            }
            long end = Math.addExact(offset, s.byteLength());
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot serialise a safetensors header", e);
        }
        int pad = (8 - json.length % 8) % 8;
        byte[] out = new byte[json.length + pad];
        System.arraycopy(json, 0, out, 0, json.length);
        for (int i = json.length; i < out.length; i++) {
            out[i] = ' ';
        }
        return out;
    }

    /** The order in which tensors must be written: sorted by name. */
    public List<TensorSpec> order() {
        return order;
    }

    /** Writes all values of the next tensor, which must be {@code name}. */
    public void writeTensor(String name, float[] values) throws IOException {
        expectStart(name, values.length);
        writeTensorChunk(name, values, 0, values.length);
    }

    /** Writes all values of the next tensor, which must be {@code name}. */
    public void writeTensor(String name, double[] values) throws IOException {
        expectStart(name, values.length);
        writeTensorChunk(name, values, 0, values.length);
    }

    /**
     * Appends {@code len} values to tensor {@code name}, which must be the tensor in progress (or the next one
     * if the previous is complete). Chunks of one tensor are concatenated in call order.
     */
    public void writeTensorChunk(String name, float[] values, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, values.length);
        TensorSpec s = beginChunk(name, len);
        int size = s.dtype().byteSize();
        int perBlock = scratch.length / size;
        try {
            for (int done = 0; done < len; ) {
                int k = Math.min(perBlock, len - done);
                DTypeCodec.encode(s.dtype(), values, off + done, k, scratch, 0);
                put(scratch, k * size);
                done += k;
            }
        } catch (IOException | RuntimeException e) {
            failed = true;
            throw e;
        }
        endChunk(s, len);
    }

    /** As {@link #writeTensorChunk(String, float[], int, int)} with double values. */
    public void writeTensorChunk(String name, double[] values, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, values.length);
        TensorSpec s = beginChunk(name, len);
        int size = s.dtype().byteSize();
        int perBlock = scratch.length / size;
        try {
            for (int done = 0; done < len; ) {
                int k = Math.min(perBlock, len - done);
                DTypeCodec.encode(s.dtype(), values, off + done, k, scratch, 0);
                put(scratch, k * size);
                done += k;
            }
        } catch (IOException | RuntimeException e) {
            failed = true;
            throw e;
        }
        endChunk(s, len);
    }

    /** Writes the next tensor's stored bytes as they are (little-endian, already in its dtype). */
    public void writeRawTensor(String name, byte[] bytes) throws IOException {
        TensorSpec s = nextSpec(name);
        if (s.byteLength() != bytes.length) {
            failed = true;
            throw new IllegalArgumentException("tensor '" + name + "' needs " + s.byteLength() + " bytes, got " + bytes.length);
        }
        if (elementsWritten != 0) {
            failed = true;
            throw new IllegalStateException("tensor '" + name + "' is partly written");
        }
        try {
            put(bytes, bytes.length);
        } catch (IOException e) {
            failed = true;
            throw e;
        }
        elementsWritten = s.elementCount();
        advanceIfComplete(s);
    }

    private void expectStart(String name, int length) {
        TensorSpec s = nextSpec(name);
        if (elementsWritten != 0 || s.elementCount() != length) {
            failed = true;
            throw new IllegalArgumentException("tensor '" + name + "' " + TensorShapes.format(s.shape()) + " needs "
                    + s.elementCount() + " values, got " + length + (elementsWritten != 0 ? " (and it is partly written)" : ""));
        }
    }

    private TensorSpec nextSpec(String name) {
        if (closed) {
            throw new IllegalStateException("writer for " + target + " is closed");
        }
        if (current >= order.size()) {
            failed = true;
            throw new IllegalStateException("tensor '" + name + "' written but all " + order.size()
                    + " announced tensors of " + target + " are complete");
        }
        TensorSpec s = order.get(current);
        if (!s.name().equals(name)) {
            failed = true;
            throw new IllegalStateException("tensor '" + name + "' written out of order: expected '" + s.name()
                    + "' (tensors are written in sorted name order)");
        }
        return s;
    }

    private TensorSpec beginChunk(String name, int len) {
        TensorSpec s = nextSpec(name);
        if (elementsWritten + len > s.elementCount()) {
            failed = true;
            throw new IllegalArgumentException("tensor '" + name + "' has " + s.elementCount() + " elements; "
                    + (elementsWritten + len) + " written");
        }
        return s;
    }

    private void endChunk(TensorSpec s, int len) throws IOException {
        elementsWritten += len;
        advanceIfComplete(s);
    }

    private void advanceIfComplete(TensorSpec s) throws IOException {
        if (elementsWritten == s.elementCount()) {
            current++;
            elementsWritten = 0;
            skipEmptyTensors();
        }
    }

    /** Tensors with zero elements need no data call. */
    private void skipEmptyTensors() {
        while (current < order.size() && order.get(current).elementCount() == 0) {
            current++;
        }
    }

    private void put(byte[] src, int len) throws IOException {
        int done = 0;
        while (done < len) {
            if (!buffer.hasRemaining()) {
                flush();
            }
            int k = Math.min(len - done, buffer.remaining());
            buffer.put(src, done, k);
            done += k;
        }
    }

    private void flush() throws IOException {
        buffer.flip();
        writeFully(buffer);
        buffer.clear();
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    private void abort() {
        closed = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // already failing; the temp file is removed below
        }
        try {
            Files.deleteIfExists(temp);
        } catch (IOException ignored) {
            // best effort
        }
    }

    /**
     * Finishes the file: if every announced tensor was written completely, flushes, syncs and moves the
     * temporary file onto the target; otherwise deletes it and throws.
     *
     * @throws IllegalStateException if tensors are missing or a write failed
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        if (failed || current < order.size()) {
            String missing = current < order.size() ? order.get(current).name() : null;
            abort();
            throw new IllegalStateException("safetensors file " + target + " not written: "
                    + (failed ? "a write failed" : "tensor '" + missing + "' and " + (order.size() - current - 1)
                    + " later ones are missing or incomplete"));
        }
        try {
            flush();
            channel.force(true);
            channel.close();
            closed = true;
            AtomicFiles.moveIntoPlace(temp, target);
        } catch (IOException | RuntimeException e) {
            abort();
            throw e;
        }
    }
}
