package dev.loralego.peft;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A safetensors file opened for reading, with its header fully validated and its data memory-mapped.
 *
 * <p>Format (github.com/huggingface/safetensors, README "Format"): an unsigned 64-bit little-endian header
 * length {@code N}; {@code N} bytes of UTF-8 JSON, an object starting with <code>{</code>, optionally padded
 * with trailing spaces, mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}}
 * plus an optional {@code "__metadata__"} object of string → string; then the data section, in which the
 * tensors' byte ranges (relative to its start) must cover every byte exactly once, with no overlap and no
 * hole. Offsets are {@code long}, so files beyond 2 GiB work.
 *
 * <p>{@link #open} rejects, with a {@link SafetensorsFormatException} naming the file and tensor: a truncated
 * file, a header over 100 MB ({@value #MAX_HEADER_BYTES} bytes, the reference implementation's limit), a header
 * that is not one JSON object, duplicate names, a dtype the format does not define, a shape whose byte count
 * disagrees with its offsets (for the sub-byte F4/F6 types also one whose bits are not a whole number of bytes),
 * offsets outside the file, overlapping or gapped offsets.
 *
 * <p>Every dtype of the format is accepted ({@link ElementType}), so a file that carries integer or boolean tensors
 * beside its floats opens; only F32, F16, BF16 and F64 tensors can be read as numbers ({@link #readFloats},
 * {@link #readDoubles}), any tensor as raw bytes ({@link #readRawBytes}).
 *
 * <p>Reading maps the file in chunks smaller than 2 GiB (a {@link MappedByteBuffer} is int-indexed), lazily,
 * and copies a tensor piecewise across chunk boundaries, so any tensor at any {@code long} offset can be read.
 * Reads never move buffer positions and are safe from several threads; {@link #close()} must not race them.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The header key that holds free-form string metadata instead of a tensor. */
    public static final String METADATA_KEY = "__metadata__";
    /** Largest accepted header length in bytes (100 MB, as in the reference implementation). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    static final int DEFAULT_CHUNK_BYTES = 1 << 30;
    private static final int COPY_BLOCK_BYTES = 1 << 16;
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    private final Path file;
    private final FileChannel channel;
    private final long fileSize;
    private final long dataSectionOffset;
    private final Map<String, String> metadata;
    private final SortedMap<String, TensorInfo> tensors;
    private final int chunkBytes;
    private final MappedByteBuffer[] chunks;
    private volatile boolean closed;

    private SafetensorsFile(Path file, FileChannel channel, long fileSize, long dataSectionOffset,
                            Map<String, String> metadata, SortedMap<String, TensorInfo> tensors, int chunkBytes) {
        this.file = file;
        this.channel = channel;
        this.fileSize = fileSize;
        this.dataSectionOffset = dataSectionOffset;
        this.metadata = metadata;
        this.tensors = tensors;
        this.chunkBytes = chunkBytes;
        long chunkCount = (fileSize + chunkBytes - 1) / chunkBytes;
        this.chunks = new MappedByteBuffer[(int) chunkCount];
    }

    /**
     * Opens and validates {@code file}.
     *
     * @throws SafetensorsFormatException if the file breaks the format (see the class comment)
     * @throws IOException                if it cannot be read
     */
    public static SafetensorsFile open(Path file) throws IOException {
        return open(file, DEFAULT_CHUNK_BYTES);
    }

    /** As {@link #open(Path)}, mapping in chunks of {@code chunkBytes} (tests use small chunks). */
    static SafetensorsFile open(Path file, int chunkBytes) throws IOException {
        if (chunkBytes < 8) {
            throw new IllegalArgumentException("chunk size " + chunkBytes);
        }
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            long size = channel.size();
            if (size < 8) {
                throw new SafetensorsFormatException(file + ": truncated file: " + size
                        + " bytes, fewer than the 8-byte header length");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0);
            long headerLength = lengthBytes.getLong(0);
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new SafetensorsFormatException(file + ": header length " + Long.toUnsignedString(headerLength)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes (100 MB)");
            }
            if (headerLength > size - 8) {
                throw new SafetensorsFormatException(file + ": truncated file: header length " + headerLength
                        + " but only " + (size - 8) + " bytes follow the length prefix");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            readFully(channel, header, 8);
            long dataOffset = 8 + headerLength;
            Header parsed = parseHeader(file.toString(), header.array(), size - dataOffset);
            SafetensorsFile result = new SafetensorsFile(file, channel, size, dataOffset, parsed.metadata,
                    parsed.tensors, chunkBytes);
            channel = null;
            return result;
        } finally {
            if (channel != null) {
                channel.close();
            }
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file at byte " + pos);
            }
            pos += n;
        }
    }

    private record Header(Map<String, String> metadata, SortedMap<String, TensorInfo> tensors) {
    }

    /**
     * Parses and validates a header's JSON bytes against a data section of {@code dataLength} bytes.
     * {@code source} names the file in messages.
     */
    static Header parseHeader(String source, byte[] json, long dataLength) throws SafetensorsFormatException {
        if (json.length == 0 || json[0] != '{') {
            throw new SafetensorsFormatException(source + ": header does not start with '{'");
        }
        String text;
        try {
            // Strict UTF-8, as the reference implementation (str::from_utf8): Jackson's byte parser would auto-detect
            // UTF-16/32 and accept overlong forms and encoded surrogates.
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(json)).toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsFormatException(source + ": header is not valid UTF-8");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> entries = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        JsonFactory factory = JSON.getFactory();
        try (JsonParser p = factory.createParser(text)) {
            p.setCodec(JSON);
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new SafetensorsFormatException(source + ": header is not a JSON object");
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                if (!seen.add(name)) {
                    throw new SafetensorsFormatException(source + ": duplicate tensor name '" + name + "' in header");
                }
                p.nextToken();
                JsonNode value = p.readValueAsTree();
                if (METADATA_KEY.equals(name)) {
                    readMetadata(source, value, metadata);
                } else {
                    entries.add(readEntry(source, name, value));
                }
            }
            if (t != JsonToken.END_OBJECT) {
                throw new SafetensorsFormatException(source + ": malformed header JSON near " + p.currentLocation());
            }
            boolean trailing;
            try {
                trailing = p.nextToken() != null;
            } catch (JsonProcessingException e) {
                trailing = true;
            }
            if (trailing) {
                throw new SafetensorsFormatException(source + ": unexpected content after the header's JSON object"
                        + " (only space padding may follow it)");
            }
        } catch (SafetensorsFormatException e) {
            throw e;
        } catch (JsonProcessingException e) {
            String msg = e.getOriginalMessage();
            String what = msg != null && msg.startsWith("Duplicate field") ? "duplicate key in header: " : "header is not valid JSON: ";
            throw new SafetensorsFormatException(source + ": " + what + msg, e);
        } catch (IOException e) {
            throw new SafetensorsFormatException(source + ": header cannot be parsed: " + e.getMessage(), e);
        }
        checkLayout(source, entries, dataLength);
        SortedMap<String, TensorInfo> byName = new TreeMap<>();
        for (TensorInfo e : entries) {
            byName.put(e.name(), e);
        }
        return new Header(Collections.unmodifiableMap(metadata), Collections.unmodifiableSortedMap(byName));
    }

    private static void readMetadata(String source, JsonNode value, Map<String, String> out) throws SafetensorsFormatException {
        if (!value.isObject()) {
            throw new SafetensorsFormatException(source + ": " + METADATA_KEY + " must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> e : value.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafetensorsFormatException(source + ": " + METADATA_KEY + " value of '" + e.getKey()
                        + "' is not a string: " + e.getValue());
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
    }

    private static TensorInfo readEntry(String source, String name, JsonNode v) throws SafetensorsFormatException {
        String where = source + ": tensor '" + name + "'";
        if (!v.isObject()) {
            throw new SafetensorsFormatException(where + ": header entry is not an object");
        }
        JsonNode dtypeNode = v.get("dtype");
        JsonNode shapeNode = v.get("shape");
        JsonNode offsetsNode = v.get("data_offsets");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new SafetensorsFormatException(where + ": missing or non-string 'dtype'");
        }
        ElementType type;
        try {
            type = ElementType.parse(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw new SafetensorsFormatException(where + ": " + e.getMessage());
        }
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new SafetensorsFormatException(where + ": missing or non-array 'shape'");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = nonNegativeLong(where, "shape", shapeNode.get(i));
        }
        if (offsetsNode == null || !offsetsNode.isArray() || offsetsNode.size() != 2) {
            throw new SafetensorsFormatException(where + ": 'data_offsets' must be an array [begin, end]");
        }
        long begin = nonNegativeLong(where, "data_offsets", offsetsNode.get(0));
        long end = nonNegativeLong(where, "data_offsets", offsetsNode.get(1));
        if (end < begin) {
            throw new SafetensorsFormatException(where + ": data_offsets [" + begin + ", " + end + "] end before begin");
        }
        long count;
        try {
            count = TensorShapes.elementCount(name, shape);
        } catch (IllegalArgumentException e) {
            throw new SafetensorsFormatException(where + ": " + e.getMessage());
        }
        String mismatch = type.byteRangeMismatch(shape, count, begin, end);
        if (mismatch != null) {
            throw new SafetensorsFormatException(where + ": shape/byte-count mismatch: " + mismatch);
        }
        return new TensorInfo(name, type, shape, begin, end);
    }

    private static long nonNegativeLong(String where, String field, JsonNode n) throws SafetensorsFormatException {
        if (n == null || !n.isIntegralNumber() || !n.canConvertToLong() || n.longValue() < 0) {
            throw new SafetensorsFormatException(where + ": '" + field + "' holds " + n + ", not a non-negative 64-bit integer");
        }
        return n.longValue();
    }

    /** Offsets must lie in the data section and cover it exactly: sorted by begin, each begins where the last ended. */
    private static void checkLayout(String source, List<TensorInfo> entries, long dataLength) throws SafetensorsFormatException {
        for (TensorInfo e : entries) {
            if (e.dataEnd() > dataLength) {
                throw new SafetensorsFormatException(source + ": tensor '" + e.name() + "': data_offsets [" + e.dataStart()
                        + ", " + e.dataEnd() + "] lie outside the file: the data section has only " + dataLength
                        + " bytes (file truncated?)");
            }
        }
        List<TensorInfo> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(TensorInfo::dataStart).thenComparingLong(TensorInfo::dataEnd)
                .thenComparing(TensorInfo::name));
        long expected = 0;
        String previous = null;
        for (TensorInfo e : sorted) {
            if (e.dataStart() < expected) {
                throw new SafetensorsFormatException(source + ": overlapping data_offsets: tensor '" + e.name() + "' ["
                        + e.dataStart() + ", " + e.dataEnd() + "] overlaps tensor '" + previous + "' which ends at " + expected);
            }
            if (e.dataStart() > expected) {
                throw new SafetensorsFormatException(source + ": gap in data_offsets: bytes [" + expected + ", "
                        + e.dataStart() + ") before tensor '" + e.name() + "' belong to no tensor");
            }
            expected = e.dataEnd();
            previous = e.name();
        }
        if (expected != dataLength) {
            throw new SafetensorsFormatException(source + ": gap in data_offsets: the data section has " + dataLength
                    + " bytes but the tensors cover only [0, " + expected + ")");
        }
    }

    // ---------------------------------------------------------------- accessors

    /** The file this was opened from. */
    public Path path() {
        return file;
    }

    /** Total file size in bytes. */
    public long fileSize() {
        return fileSize;
    }

    /** Absolute file position of the data section ({@code 8 + header length}); tensor offsets are relative to it. */
    public long dataSectionOffset() {
        return dataSectionOffset;
    }

    /** The {@code __metadata__} entries (empty if absent), in header order; unmodifiable. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** All tensors by name; unmodifiable. */
    public SortedMap<String, TensorInfo> tensors() {
        return tensors;
    }

    /**
     * The tensor called {@code name}.
     *
     * @throws IllegalArgumentException naming the tensor and file if there is none
     */
    public TensorInfo tensor(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(file + ": no tensor '" + name + "'");
        }
        return t;
    }

    // ---------------------------------------------------------------- reading

    /**
     * All elements of {@code name} as floats (row-major); F64 is rounded to nearest even.
     *
     * @throws IllegalArgumentException if the tensor has more than {@code Integer.MAX_VALUE - 8} elements, or is not
     *                                  F32, F16, BF16 or F64 (an integer tensor, say: read its raw bytes)
     */
    public float[] readFloats(String name) throws IOException {
        TensorInfo t = tensor(name);
        decodableType(t);
        float[] out = new float[arrayLength(t)];
        readFloats(name, 0, out, 0, out.length);
        return out;
    }

    /** All elements of {@code name} as doubles (row-major, exact). Same limits as {@link #readFloats(String)}. */
    public double[] readDoubles(String name) throws IOException {
        TensorInfo t = tensor(name);
        decodableType(t);
        double[] out = new double[arrayLength(t)];
        readDoubles(name, 0, out, 0, out.length);
        return out;
    }

    /**
     * Elements {@code [first, first + n)} of {@code name} into {@code dst[off..]}: streams tensors of any size.
     *
     * @throws IllegalArgumentException if the tensor is not F32, F16, BF16 or F64
     */
    public void readFloats(String name, long first, float[] dst, int off, int n) throws IOException {
        TensorInfo t = tensor(name);
        DType dtype = decodableType(t);
        checkElementRange(t, first, n);
        Objects.checkFromIndexSize(off, n, dst.length);
        int size = dtype.byteSize();
        byte[] scratch = new byte[(int) Math.min(COPY_BLOCK_BYTES, Math.max(size, (long) n * size))];
        int perBlock = scratch.length / size;
        long pos = dataSectionOffset + t.dataStart() + first * size;
        for (int done = 0; done < n; ) {
            int k = Math.min(perBlock, n - done);
            copyBytes(pos, scratch, k * size);
            DTypeCodec.decode(dtype, scratch, 0, dst, off + done, k);
            pos += (long) k * size;
            done += k;
        }
    }

    /**
     * Elements {@code [first, first + n)} of {@code name} into {@code dst[off..]} as doubles.
     *
     * @throws IllegalArgumentException if the tensor is not F32, F16, BF16 or F64
     */
    public void readDoubles(String name, long first, double[] dst, int off, int n) throws IOException {
        TensorInfo t = tensor(name);
        DType dtype = decodableType(t);
        checkElementRange(t, first, n);
        Objects.checkFromIndexSize(off, n, dst.length);
        int size = dtype.byteSize();
        byte[] scratch = new byte[(int) Math.min(COPY_BLOCK_BYTES, Math.max(size, (long) n * size))];
        int perBlock = scratch.length / size;
        long pos = dataSectionOffset + t.dataStart() + first * size;
        for (int done = 0; done < n; ) {
            int k = Math.min(perBlock, n - done);
            copyBytes(pos, scratch, k * size);
            DTypeCodec.decode(dtype, scratch, 0, dst, off + done, k);
            pos += (long) k * size;
            done += k;
        }
    }

    /**
     * The stored bytes of {@code name}, little-endian as in the file; works for every dtype.
     *
     * @throws IllegalArgumentException if the tensor is larger than a Java array can hold
     */
    public byte[] readRawBytes(String name) throws IOException {
        TensorInfo t = tensor(name);
        if (t.byteLength() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(file + ": tensor '" + name + "' has " + t.byteLength()
                    + " bytes, too many for one array; read it in ranges");
        }
        byte[] out = new byte[(int) t.byteLength()];
        copyBytes(dataSectionOffset + t.dataStart(), out, out.length);
        return out;
    }

    /** The dtype to decode {@code t} with, or an exception naming the file, the tensor and its dtype. */
    private DType decodableType(TensorInfo t) {
        if (!t.decodable()) {
            throw new IllegalArgumentException(file + ": tensor '" + t.name() + "' has dtype "
                    + t.elementType().safetensorsName() + ", which cannot be read as numbers (only F32, F16, BF16 and"
                    + " F64 can); read its raw bytes instead");
        }
        return t.dtype();
    }

    private int arrayLength(TensorInfo t) {
        long n = t.elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(file + ": tensor '" + t.name() + "' has " + n
                    + " elements, more than Integer.MAX_VALUE; read it in ranges");
        }
        return (int) n;
    }

    private static void checkElementRange(TensorInfo t, long first, int n) {
        if (first < 0 || n < 0 || first > t.elementCount() - n) {
            throw new IndexOutOfBoundsException("tensor '" + t.name() + "': elements [" + first + ", " + (first + n)
                    + ") outside [0, " + t.elementCount() + ")");
        }
    }

    /** Copies {@code length} bytes from absolute file position {@code pos}, across chunk boundaries. */
    private void copyBytes(long pos, byte[] dst, int length) throws IOException {
        int done = 0;
        while (done < length) {
            long p = pos + done;
            int chunkIndex = (int) (p / chunkBytes);
            int within = (int) (p % chunkBytes);
            MappedByteBuffer chunk = chunk(chunkIndex);
            int k = Math.min(length - done, chunk.capacity() - within);
            chunk.get(within, dst, done, k);
            done += k;
        }
    }

    private MappedByteBuffer chunk(int index) throws IOException {
        if (closed) {
            throw new IllegalStateException(file + " is closed");
        }
        MappedByteBuffer c = chunks[index];
        if (c == null) {
            synchronized (chunks) {
                c = chunks[index];
                if (c == null) {
                    long start = (long) index * chunkBytes;
                    long len = Math.min(chunkBytes, fileSize - start);
                    c = channel.map(FileChannel.MapMode.READ_ONLY, start, len);
                    chunks[index] = c;
                }
            }
        }
        return c;
    }

    /** Releases the file; mapped regions are unmapped when collected. Reading afterwards fails. */
    @Override
    public void close() throws IOException {
        closed = true;
        synchronized (chunks) {
            Arrays.fill(chunks, null);
        }
        channel.close();
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + file + ", " + tensors.size() + " tensors]";
    }
}
