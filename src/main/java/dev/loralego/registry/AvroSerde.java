package dev.loralego.registry;

import org.apache.avro.AvroRuntimeException;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DatumReader;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Kafka serde of one generated Avro class in Confluent's wire format ({@link ConfluentWireFormat}):
 * magic byte {@code 0}, 4-byte big-endian schema id, Avro binary.
 *
 * <p>Serializing registers the class's schema under the subject {@code <topic>-value} (Confluent's
 * {@code TopicNameStrategy}) through the {@link SchemaResolver}; the id is cached per topic. Deserializing
 * looks the writer schema up by the id in the header and reads with Avro schema resolution into the
 * class's current schema, so records written with an older or newer compatible schema decode (fields
 * added with defaults get their defaults; removed fields are skipped).
 *
 * <p>Every way a record can be bad (short, wrong magic byte, unknown schema id, writer schema not
 * readable as this class, truncated or malformed Avro, trailing bytes) raises {@link BadRecordException}
 * with the reason. Malformed lengths are caught before any allocation ({@link AvroBinaryBounds}), so a
 * corrupt record cannot make the decoder allocate more than the record's size. Failures of the resolver
 * itself (registry unreachable) are not {@code BadRecordException}s. {@code null} maps to {@code null}
 * (tombstones). Thread-safe; {@link #serializer()} and {@link #deserializer()} return this object.
 *
 * @param <T> the generated record class
 */
public final class AvroSerde<T extends SpecificRecord> implements Serde<T>, Serializer<T>, Deserializer<T> {

    static {
        ShippedAvroClasses.trust();
    }

    private final Class<T> type;
    private final Schema readerSchema;
    private final SchemaResolver resolver;
    private final SpecificDatumWriter<T> writer;
    /** topic -> schema id of {@link #readerSchema} (the writer schema when serializing). */
    private final Map<String, Integer> idByTopic = new ConcurrentHashMap<>();
    /** writer schema id -> reader resolving that writer schema into {@link #readerSchema}. */
    private final Map<Integer, DatumReader<T>> readers = new ConcurrentHashMap<>();

    /**
     * @param type     the generated class (its {@code SCHEMA$} is the writer schema when serializing and
     *                 the reader schema when deserializing)
     * @param resolver schema ids
     */
    public AvroSerde(Class<T> type, SchemaResolver resolver) {
        this.type = Objects.requireNonNull(type, "type");
        this.resolver = Objects.requireNonNull(resolver, "resolver");
        this.readerSchema = SpecificData.get().getSchema(type);
        if (readerSchema == null || readerSchema.getType() != Schema.Type.RECORD) {
            throw new IllegalArgumentException(type.getName() + " is not a generated Avro record class");
        }
        this.writer = new SpecificDatumWriter<>(readerSchema);
    }

    /** The subject a topic's values are registered under: {@code <topic>-value}. */
    public static String subject(String topic) {
        return topic + "-value";
    }

    /** The record class. */
    public Class<T> type() {
        return type;
    }

    /** The schema id this serde writes to {@code topic} (registering the schema if needed). */
    public int schemaId(String topic) {
        return idByTopic.computeIfAbsent(Objects.requireNonNull(topic, "topic"),
                t -> resolver.register(subject(t), readerSchema));
    }

    @Override
    public byte[] serialize(String topic, T data) {
        if (data == null) {
            return null;
        }
        int id = schemaId(topic);
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        out.write(ConfluentWireFormat.MAGIC_BYTE);
        out.write(id >>> 24);
        out.write(id >>> 16);
        out.write(id >>> 8);
        out.write(id);
        try {
            BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
            writer.write(data, encoder);
            encoder.flush();
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot serialize " + type.getSimpleName() + " for topic " + topic
                    + ": " + e.getMessage(), e);
        }
        return out.toByteArray();
    }

    /**
     * Decodes a record.
     *
     * @throws BadRecordException if the bytes are not a valid record of a schema readable as {@code T}
     */
    @Override
    public T deserialize(String topic, byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        if (bytes.length < ConfluentWireFormat.HEADER_SIZE) {
            throw new BadRecordException(topic, "record of " + bytes.length + " bytes is shorter than the 5-byte "
                    + "header of the Confluent wire format", -1, null);
        }
        if (bytes[0] != ConfluentWireFormat.MAGIC_BYTE) {
            throw new BadRecordException(topic, String.format("unknown magic byte 0x%02x (expected 0x00, "
                    + "Confluent wire format)", bytes[0] & 0xff), -1, null);
        }
        int id = ConfluentWireFormat.schemaId(bytes);
        Schema writerSchema;
        try {
            writerSchema = resolver.byId(id);
        } catch (UnknownSchemaIdException e) {
            throw new BadRecordException(topic, e.getMessage(), id, e);
        }
        int length = bytes.length - ConfluentWireFormat.HEADER_SIZE;
        try {
            AvroBinaryBounds.check(writerSchema, bytes, ConfluentWireFormat.HEADER_SIZE, length);
        } catch (AvroBinaryBounds.MalformedException e) {
            throw new BadRecordException(topic, "malformed Avro for schema id " + id + " ("
                    + writerSchema.getFullName() + "): " + e.getMessage(), id, e);
        }
        DatumReader<T> reader;
        try {
            reader = readers.computeIfAbsent(id, k -> newReader(writerSchema));
        } catch (AvroRuntimeException e) {
            throw new BadRecordException(topic, "schema id " + id + " (" + writerSchema.getFullName()
                    + ") cannot be read as " + readerSchema.getFullName() + ": " + e.getMessage(), id, e);
        }
        try {
            BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(bytes, ConfluentWireFormat.HEADER_SIZE,
                    length, null);
            T record = reader.read(null, decoder);
            if (!decoder.isEnd()) {
                throw new BadRecordException(topic, "trailing bytes after the " + writerSchema.getFullName()
                        + " datum (schema id " + id + ")", id, null);
            }
            return record;
        } catch (BadRecordException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            String what = e instanceof org.apache.avro.AvroTypeException
                    ? "schema id " + id + " (" + writerSchema.getFullName() + ") cannot be read as "
                    + readerSchema.getFullName()
                    : "malformed Avro for schema id " + id + " (" + writerSchema.getFullName() + ")";
            throw new BadRecordException(topic, what + ": " + e.getClass().getSimpleName()
                    + (e.getMessage() == null ? "" : " " + e.getMessage()), id, e);
        }
    }

    private DatumReader<T> newReader(Schema writerSchema) {
        return new SpecificDatumReader<>(writerSchema, readerSchema);
    }

    @Override
    public Serializer<T> serializer() {
        return this;
    }

    @Override
    public Deserializer<T> deserializer() {
        return this;
    }

    /** Nothing to configure: the serde is built with its class and resolver. */
    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
    }

    /** Nothing to release; the resolver is owned by the caller. */
    @Override
    public void close() {
    }
}
