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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Avro binary encoding of the topology's own records (internal topics and state stores), prefixed by one
 * format byte. These bytes never leave the application, so they need no schema registry; the format byte
 * lets a later release read stores written by this one.
 *
 * <p>Formats: 3 (written now, since 0.3.0) is the records' current schema. 2 (0.2.0) is the schema before the
 * fields named in {@link #FIELDS_ADDED_IN_FORMAT_3} were added, 1 (0.1.0) the schema before those of
 * {@link #FIELDS_ADDED_IN_FORMAT_2} too (each with a default): an older record is read through Avro's schema
 * resolution from its older writer schema, so state and changelogs written by earlier builds keep working.
 * Earlier builds cannot read a later format (an upgrade is one-way).
 *
 * @param <T> generated Avro record class
 */
public final class InternalCodec<T extends SpecificRecord> {
    private static final byte FORMAT = 3;
    private static final byte FORMAT_2 = 2;
    private static final byte FORMAT_1 = 1;

    /** Fields (record full name to field names) that format 2 added; format-1 records were written without them. */
    static final Map<String, Set<String>> FIELDS_ADDED_IN_FORMAT_2 =
            Map.of("dev.loralego.avro.internal.LiveAdapter", Set.of("taskType"),
                    "dev.loralego.avro.internal.GroupState", Set.of("withdrawnVersions"),
                    "dev.loralego.avro.internal.VersionPlan", Set.of("withdrawnVersions"));

    /** Fields that format 3 added; format-2 (and format-1) records were written without them. */
    static final Map<String, Set<String>> FIELDS_ADDED_IN_FORMAT_3 =
            Map.of("dev.loralego.avro.internal.LiveAdapter", Set.of("dtype"),
                    "dev.loralego.avro.internal.GroupState", Set.of("outputDType"));

    private final SpecificDatumWriter<T> writer;
    private final SpecificDatumReader<T> reader;
    private final SpecificDatumReader<T> format2Reader;
    private final SpecificDatumReader<T> format1Reader;
    private final String name;

    public InternalCodec(Class<T> type) {
        ShippedAvroClasses.trust();
        Schema schema = SpecificData.get().getSchema(type);
        this.writer = new SpecificDatumWriter<>(schema);
        this.reader = new SpecificDatumReader<>(schema);
        Schema format2 = without(schema, FIELDS_ADDED_IN_FORMAT_3, new HashMap<>());
        this.format2Reader = new SpecificDatumReader<>(format2, schema);
        this.format1Reader = new SpecificDatumReader<>(without(format2, FIELDS_ADDED_IN_FORMAT_2, new HashMap<>()), schema);
        this.name = type.getSimpleName();
    }

    /** {@code schema} with the named fields left out of its records, nested ones included (named types built once). */
    static Schema without(Schema schema, Map<String, Set<String>> removed, Map<String, Schema> built) {
        switch (schema.getType()) {
            case RECORD -> {
                Schema done = built.get(schema.getFullName());
                if (done != null) return done;
                Schema copy = Schema.createRecord(schema.getName(), schema.getDoc(), schema.getNamespace(), schema.isError());
                built.put(schema.getFullName(), copy);
                Set<String> drop = removed.getOrDefault(schema.getFullName(), Set.of());
                List<Schema.Field> fields = new ArrayList<>();
                for (Schema.Field f : schema.getFields()) {
                    if (drop.contains(f.name())) continue;
                    fields.add(new Schema.Field(f, without(f.schema(), removed, built)));
                }
                copy.setFields(fields);
                return copy;
            }
            case ARRAY -> {
                return Schema.createArray(without(schema.getElementType(), removed, built));
            }
            case MAP -> {
                return Schema.createMap(without(schema.getValueType(), removed, built));
            }
            case UNION -> {
                List<Schema> branches = new ArrayList<>();
                for (Schema b : schema.getTypes()) branches.add(without(b, removed, built));
                return Schema.createUnion(branches);
            }
            default -> {
                return schema;
            }
        }
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
        if (bytes == null || bytes.length < 1 || (bytes[0] != FORMAT && bytes[0] != FORMAT_2 && bytes[0] != FORMAT_1)) {
            throw new IllegalStateException("not an internal " + name + " record (format byte "
                    + (bytes == null || bytes.length == 0 ? "missing" : bytes[0]) + ")");
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(bytes, 1, bytes.length - 1, null);
        try {
            SpecificDatumReader<T> r = bytes[0] == FORMAT ? reader : bytes[0] == FORMAT_2 ? format2Reader : format1Reader;
            return r.read(null, dec);
        } catch (IOException e) {
            throw new UncheckedIOException("corrupt internal " + name + " record", e);
        }
    }
}
