package dev.loralego.stream;

import dev.loralego.registry.ShippedAvroClasses;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * Avro binary encoding of the topology's own records (internal topics and state stores), prefixed by one
 * format byte. These bytes never leave the application, so they need no schema registry; the format byte
 * lets a later release read stores written by this one.
 *
 * @param <T> generated Avro record class
 */
public final class InternalCodec<T extends SpecificRecord> {
    private static final byte FORMAT = 1;
    private final SpecificDatumWriter<T> writer;
    private final SpecificDatumReader<T> reader;
    private final String name;

    public InternalCodec(Class<T> type) {
        ShippedAvroClasses.trust();
        Schema schema = SpecificData.get().getSchema(type);
        this.writer = new SpecificDatumWriter<>(schema);
        this.reader = new SpecificDatumReader<>(schema);
        this.name = type.getSimpleName();
    }

    public byte[] encode(T value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        out.write(FORMAT);
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        try {
            writer.write(value, enc);
            enc.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public T decode(byte[] bytes) {
        if (bytes == null || bytes.length < 1 || bytes[0] != FORMAT) {
            throw new IllegalStateException("not an internal " + name + " record (format byte "
                    + (bytes == null || bytes.length == 0 ? "missing" : bytes[0]) + ")");
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(bytes, 1, bytes.length - 1, null);
        try {
            return reader.read(null, dec);
        } catch (IOException e) {
            throw new UncheckedIOException("corrupt internal " + name + " record", e);
        }
    }
}
