package dev.loralego.registry;

import org.apache.avro.Schema;

import java.util.List;

/**
 * Checks that a byte range is exactly one well-formed Avro binary datum of a writer schema (Avro
 * specification, "Binary Encoding"), without building it.
 *
 * <p>Why: a corrupt length prefix (string, bytes, array or map block count) must not make the decoder
 * allocate more than the record holds, whatever guards the Avro version in use has; walking the schema
 * first, with every length and count checked against the bytes actually present, bounds every
 * allocation of the real decode by the record's size. It also names the field where the data goes wrong
 * (for the dead-letter reason) and rejects trailing bytes after the datum. The walk skips the contents
 * of strings and bytes, so its cost does not grow with tensor sizes.
 *
 * <p>Arrays and maps of items that can encode in zero bytes (e.g. {@code null}) are limited to
 * {@link #MAX_ZERO_SIZE_ITEMS} items; no schema of this project has such items.
 */
final class AvroBinaryBounds {

    /** Deepest nesting of records, unions, arrays and maps accepted. */
    static final int MAX_DEPTH = 200;
    /** Largest item count of an array or map whose items can encode in zero bytes. */
    static final long MAX_ZERO_SIZE_ITEMS = 1L << 20;

    private static final Schema MAP_KEY = Schema.create(Schema.Type.STRING);

    /** A malformed datum; the message is the reason. */
    static final class MalformedException extends Exception {
        private static final long serialVersionUID = 1L;

        MalformedException(String reason) {
            super(reason, null, false, false);
        }
    }

    private final byte[] buf;
    private final int end;
    private int pos;

    private AvroBinaryBounds(byte[] buf, int offset, int length) {
        this.buf = buf;
        this.pos = offset;
        this.end = offset + length;
    }

    /**
     * Checks that {@code buf[offset, offset+length)} is exactly one datum of {@code writer}.
     *
     * @throws MalformedException with the reason if it is not
     */
    static void check(Schema writer, byte[] buf, int offset, int length) throws MalformedException {
        AvroBinaryBounds b = new AvroBinaryBounds(buf, offset, length);
        b.walk(writer, 0, writer.getFullName());
        if (b.pos != b.end) {
            throw new MalformedException((b.end - b.pos) + " trailing bytes after the " + writer.getFullName()
                    + " datum (" + length + " bytes of Avro, datum ends at byte " + (b.pos - offset) + ")");
        }
    }

    private void walk(Schema s, int depth, String path) throws MalformedException {
        if (depth > MAX_DEPTH) {
            throw new MalformedException("nesting deeper than " + MAX_DEPTH + " at " + path);
        }
        switch (s.getType()) {
            case NULL -> { }
            case BOOLEAN -> skip(1, path);
            case INT -> readInt(path);
            case LONG -> readLong(path);
            case FLOAT -> skip(4, path);
            case DOUBLE -> skip(8, path);
            case STRING, BYTES -> {
                long len = readLong(path);
                if (len < 0) {
                    throw new MalformedException("negative length " + len + " of " + s.getType().getName()
                            + " at " + path);
                }
                skip(len, path);
            }
            case FIXED -> skip(s.getFixedSize(), path);
            case ENUM -> {
                int i = readInt(path);
                if (i < 0 || i >= s.getEnumSymbols().size()) {
                    throw new MalformedException("enum index " + i + " out of range [0, "
                            + s.getEnumSymbols().size() + ") of " + s.getFullName() + " at " + path);
                }
            }
            case UNION -> {
                List<Schema> types = s.getTypes();
                int i = readInt(path);
                if (i < 0 || i >= types.size()) {
                    throw new MalformedException("union branch " + i + " out of range [0, " + types.size()
                            + ") at " + path);
                }
                walk(types.get(i), depth + 1, path);
            }
            case RECORD -> {
                for (Schema.Field f : s.getFields()) {
                    walk(f.schema(), depth + 1, path + "." + f.name());
                }
            }
            case ARRAY -> blocks(s.getElementType(), false, depth, path + "[]");
            case MAP -> blocks(s.getValueType(), true, depth, path + "{}");
            default -> throw new MalformedException("unsupported schema type " + s.getType() + " at " + path);
        }
    }

    /** Array or map blocks: count (negative: followed by the block's byte size), items, ..., 0. */
    private void blocks(Schema item, boolean map, int depth, String path) throws MalformedException {
        long itemMin = minSize(item) + (map ? 1 : 0);
        while (true) {
            long count = readLong(path);
            if (count == 0) {
                return;
            }
            if (count < 0) {
                if (count == Long.MIN_VALUE) {
                    throw new MalformedException("invalid block count at " + path);
                }
                count = -count;
                long size = readLong(path);
                if (size < 0 || size > end - pos) {
                    throw new MalformedException("block size " + size + " at " + path + " exceeds the "
                            + (end - pos) + " bytes left");
                }
            }
            long bound = itemMin > 0 ? (end - pos) / itemMin : MAX_ZERO_SIZE_ITEMS;
            if (count > bound) {
                throw new MalformedException("block of " + count + " items at " + path + " cannot fit in the "
                        + (end - pos) + " bytes left");
            }
            for (long i = 0; i < count; i++) {
                if (map) {
                    walk(MAP_KEY, depth + 1, path);
                }
                walk(item, depth + 1, path);
            }
        }
    }

    /** Fewest bytes a datum of {@code s} can take. */
    private static long minSize(Schema s) {
        return switch (s.getType()) {
            case NULL -> 0;
            case FLOAT -> 4;
            case DOUBLE -> 8;
            case FIXED -> s.getFixedSize();
            case RECORD -> {
                long sum = 0;
                for (Schema.Field f : s.getFields()) {
                    sum += minSize(f.schema());
                }
                yield sum;
            }
            // boolean, int, long, string, bytes, enum, union, array, map: at least one byte
            default -> 1;
        };
    }

    private void skip(long n, String path) throws MalformedException {
        if (n > end - pos) {
            throw new MalformedException("truncated at " + path + ": needs " + n + " bytes, "
                    + (end - pos) + " left");
        }
        pos += (int) n;
    }

    private int readInt(String path) throws MalformedException {
        // Bits above 32 are dropped, as Avro's BinaryDecoder does.
        int raw = (int) readVarint(5, path);
        return (raw >>> 1) ^ -(raw & 1);
    }

    private long readLong(String path) throws MalformedException {
        long raw = readVarint(10, path);
        return (raw >>> 1) ^ -(raw & 1);
    }

    /** Unsigned little-endian base-128 varint of at most {@code maxBytes} bytes. */
    private long readVarint(int maxBytes, String path) throws MalformedException {
        long value = 0;
        for (int i = 0; i < maxBytes; i++) {
            if (pos >= end) {
                throw new MalformedException("truncated varint at " + path);
            }
            int b = buf[pos++] & 0xff;
            value |= (long) (b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new MalformedException("varint longer than " + maxBytes + " bytes at " + path);
    }
}
