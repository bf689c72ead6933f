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
 * <p>Formats: 4 (written now, since 0.4.0) is the records' current schema. 3 (0.3.0) is the schema before the
 * fields named in {@link #FIELDS_ADDED_IN_FORMAT_4} were added, 2 (0.2.0) the schema before those of
 * {@link #FIELDS_ADDED_IN_FORMAT_3} too, 1 (0.1.0) before those of {@link #FIELDS_ADDED_IN_FORMAT_2} too (each
 * with a default): an older record is read through Avro's schema resolution from its older writer schema, so
 * state and changelogs written by earlier builds keep working. Earlier builds cannot read a later format (an
 * upgrade is one-way).
 *
 * @param <T> generated Avro record class
 */
public final class InternalCodec<T extends SpecificRecord> {
    private static final byte FORMAT = 4;

    /** Fields (record full name to field names) that format 2 added; format-1 records were written without them. */
    static final Map<String, Set<String>> FIELDS_ADDED_IN_FORMAT_2 =
            Map.of("dev.loralego.avro.internal.LiveAdapter", Set.of("taskType"),
                    "dev.loralego.avro.internal.GroupState", Set.of("withdrawnVersions"),
                    "dev.loralego.avro.internal.VersionPlan", Set.of("withdrawnVersions"));

    /** Fields that format 3 added; format-2 (and format-1) records were written without them. */
    static final Map<String, Set<String>> FIELDS_ADDED_IN_FORMAT_3 =
            Map.of("dev.loralego.avro.internal.LiveAdapter", Set.of("dtype"),
                    "dev.loralego.avro.internal.GroupState", Set.of("outputDType"));

    /** Fields that format 4 added; format-3 (and earlier) records were written without them. */
    static final Map<String, Set<String>> FIELDS_ADDED_IN_FORMAT_4 =
            Map.of("dev.loralego.avro.internal.GroupState", Set.of("moduleParameters"));

    /** The fields each format added, from format 2 on: index {@code f - 2} for format {@code f}. */
    private static final List<Map<String, Set<String>>> FIELDS_ADDED =
            List.of(FIELDS_ADDED_IN_FORMAT_2, FIELDS_ADDED_IN_FORMAT_3, FIELDS_ADDED_IN_FORMAT_4);

    private final SpecificDatumWriter<T> writer;
    /** Index {@code f - 1}: the reader of format {@code f} records (its writer schema, resolved to the current one). */
    private final List<SpecificDatumReader<T>> readers = new ArrayList<>();
    private final String name;

    public InternalCodec(Class<T> type) {
        ShippedAvroClasses.trust();
        Schema schema = SpecificData.get().getSchema(type);
        this.writer = new SpecificDatumWriter<>(schema);
        Schema[] writerSchemas = new Schema[FORMAT + 1];
        writerSchemas[FORMAT] = schema;
        for (int f = FORMAT - 1; f >= 1; f--) writerSchemas[f] = without(writerSchemas[f + 1], FIELDS_ADDED.get(f - 1), new HashMap<>());
        for (int f = 1; f < FORMAT; f++) readers.add(new SpecificDatumReader<>(writerSchemas[f], schema));
        readers.add(new SpecificDatumReader<>(schema));
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
        if (bytes == null || bytes.length < 1 || bytes[0] < 1 || bytes[0] > FORMAT) {
            throw new IllegalStateException("not an internal " + name + " record (format byte "
                    + (bytes == null || bytes.length == 0 ? "missing" : bytes[0]) + ")");
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(bytes, 1, bytes.length - 1, null);
        try {
            return readers.get(bytes[0] - 1).read(null, dec);
        } catch (IOException e) {
            throw new UncheckedIOException("corrupt internal " + name + " record", e);
        }
    }
}
