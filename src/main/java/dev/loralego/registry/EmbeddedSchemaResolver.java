package dev.loralego.registry;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The schema source of the embedded default: no server. A schema's id is derived from its content, so
 * every process computes the same ids without talking to anyone:
 * <pre>
 *   fp = CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form   (Avro spec, "Schema Fingerprints")
 *   id = (int) (fp ^ (fp &gt;&gt;&gt; 32)) &amp; 0x7fffffff, or 1 if that is 0
 * </pre>
 * The canonical form drops docs, defaults and aliases, which do not change the binary encoding, so two
 * schemas that differ only there share an id; that is harmless for decoding (defaults come from the
 * reader schema).
 *
 * <p>It knows every schema this application ships (the generated classes of {@code dev.loralego.avro}),
 * the boundary schemas of earlier releases ({@link #EARLIER_SCHEMAS}) and any schema passed to {@link #register}. So that a reader holding only the Kafka log can decode
 * records written with schemas it does not ship (an older or newer writer), {@link #publishSchemas}
 * writes every known schema to a compacted topic (key = id as decimal string, value = schema JSON) and
 * {@link #loadFrom} reads them back; a resolver made with a {@link SchemaSource} also fetches them itself when a
 * lookup meets an id it does not know ({@link SchemasTopicFollower}). Thread-safe.
 */
public final class EmbeddedSchemaResolver implements SchemaResolver {

    /** Schemas of the generated classes ({@link ShippedAvroClasses#SCHEMAS}). */
    public static final List<Schema> SHIPPED_SCHEMAS = ShippedAvroClasses.SCHEMAS;

    /**
     * Boundary schemas as earlier releases shipped them (the current one less the fields added since, each with a
     * default), so that their records decode without a schemas topic: events of a publisher not yet upgraded,
     * manifests an earlier service wrote (latest-version store, the history {@code audit} replays). A change to a
     * boundary schema adds the schema it replaces here.
     * <ul>
     *   <li>{@code AdapterEvent} of 0.1.0 and 0.2.0: no {@code dtype} (0.3.0);</li>
     *   <li>{@code MergedVersionManifest} of 0.1.0 and 0.2.0: no {@code withdrawnVersions}.</li>
     * </ul>
     */
    public static final List<Schema> EARLIER_SCHEMAS = List.of(
            withoutFields(dev.loralego.avro.AdapterEvent.getClassSchema(), Set.of("dtype")),
            withoutFields(dev.loralego.avro.MergedVersionManifest.getClassSchema(), Set.of("withdrawnVersions")));

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedSchemaResolver.class);
    private static final long SEND_TIMEOUT_SECONDS = 60;

    /** id -> schema; a sorted map so publishing order is fixed. Guarded by {@code this}. */
    private final SortedMap<Integer, Schema> schemas = new TreeMap<>();
    /** id -> parsing canonical form, to detect (astronomically unlikely) id collisions. */
    private final Map<Integer, String> canonical = new TreeMap<>();

    /** Where schemas published after start come from, or null. */
    private final SchemaSource onUnknownId;

    /**
     * Schemas published since the last call, fetched when a lookup meets an id the resolver does not know (a record
     * written by a newer build). Called on the looking-up thread, with the lookup's id still unknown.
     */
    @FunctionalInterface
    public interface SchemaSource {
        /**
         * Adds every schema published since the last call to {@code into} ({@link #addPublished}).
         *
         * @throws SchemaRegistryException if the source cannot be read: that says nothing about the record looked up
         */
        void catchUp(EmbeddedSchemaResolver into);
    }

    /** A resolver that knows {@link #SHIPPED_SCHEMAS} and {@link #EARLIER_SCHEMAS}. */
    public EmbeddedSchemaResolver() {
        this(null);
    }

    /**
     * A resolver that knows {@link #SHIPPED_SCHEMAS} and {@link #EARLIER_SCHEMAS}, and that asks {@code onUnknownId}
     * (null: nobody) for newly published schemas before it reports an id as unknown.
     */
    public EmbeddedSchemaResolver(SchemaSource onUnknownId) {
        for (Schema s : SHIPPED_SCHEMAS) {
            add(s);
        }
        for (Schema s : EARLIER_SCHEMAS) {
            add(s);
        }
        this.onUnknownId = onUnknownId;
    }

    /** {@code record} without the named top-level fields (nested types shared). */
    private static Schema withoutFields(Schema record, Set<String> names) {
        Schema copy = Schema.createRecord(record.getName(), record.getDoc(), record.getNamespace(), record.isError());
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : record.getFields()) {
            if (!names.contains(f.name())) {
                fields.add(new Schema.Field(f, f.schema()));
            }
        }
        if (fields.size() != record.getFields().size() - names.size()) {
            throw new IllegalStateException(record.getFullName() + " lacks one of " + names);
        }
        copy.setFields(fields);
        return copy;
    }

    /**
     * The id of {@code schema}: 31 bits of its Parsing-Canonical-Form fingerprint, never 0.
     *
     * @param schema any schema
     * @return a positive id that depends only on the schema's canonical form
     */
    public static int idOf(Schema schema) {
        long fp = SchemaNormalization.parsingFingerprint64(Objects.requireNonNull(schema, "schema"));
        int id = (int) (fp ^ (fp >>> 32)) & 0x7fffffff;
        return id == 0 ? 1 : id;
    }

    /**
     * Adds {@code schema} (if new) and returns its id; the subject plays no part in the id.
     *
     * @throws SerializationException if another schema already has the same id (a fingerprint collision)
     */
    @Override
    public int register(String subject, Schema schema) {
        Objects.requireNonNull(subject, "subject");
        return add(schema);
    }

    /**
     * {@inheritDoc} An id not known yet is first looked for among the schemas published since
     * ({@link SchemaSource#catchUp}), when the resolver has a source.
     *
     * @throws SchemaRegistryException if the source cannot be read (the record may be fine)
     */
    @Override
    public Schema byId(int id) {
        Schema s = known(id);
        if (s == null && onUnknownId != null) {
            onUnknownId.catchUp(this);
            s = known(id);
        }
        if (s == null) {
            throw new UnknownSchemaIdException(id, "not shipped with this application and not loaded from the "
                    + "schemas topic");
        }
        return s;
    }

    private synchronized Schema known(int id) {
        return schemas.get(id);
    }

    /** Ids of every known schema, ascending. */
    public synchronized List<Integer> knownIds() {
        return List.copyOf(schemas.keySet());
    }

    /**
     * Writes every known schema to {@code topic} (compacted; key = id, value = schema JSON) and waits until
     * the broker has them.
     *
     * @param producer a producer of strings; not closed
     * @param topic    the schemas topic, e.g. {@code lora.schemas}
     * @return the number of schemas written
     * @throws SerializationException if a write fails or does not finish within a minute
     */
    public int publishSchemas(Producer<String, String> producer, String topic) {
        Objects.requireNonNull(producer, "producer");
        Objects.requireNonNull(topic, "topic");
        SortedMap<Integer, Schema> snapshot;
        synchronized (this) {
            snapshot = new TreeMap<>(schemas);
        }
        List<Future<?>> sends = new ArrayList<>();
        snapshot.forEach((id, schema) ->
                sends.add(producer.send(new ProducerRecord<>(topic, Integer.toString(id), schema.toString()))));
        producer.flush();
        for (Future<?> f : sends) {
            try {
                f.get(SEND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw new SerializationException("publishing schemas to " + topic + " failed: "
                        + e.getCause().getMessage(), e.getCause());
            } catch (TimeoutException e) {
                throw new SerializationException("publishing schemas to " + topic + " did not finish within "
                        + SEND_TIMEOUT_SECONDS + " s", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SerializationException("interrupted while publishing schemas to " + topic, e);
            }
        }
        return snapshot.size();
    }

    /**
     * Reads {@code topic} from the beginning up to its current end and adds every schema in it. Entries
     * whose value does not parse, or whose key is not the id of the schema in the value, are skipped with
     * a warning (their records will then fail with "unknown schema id"). Tombstones are ignored.
     *
     * @param consumer a consumer of strings without subscriptions; it is assigned the topic's partitions,
     *                 and left assigned (not closed)
     * @param topic    the schemas topic
     * @param timeout  how long to wait for the topic's metadata and records
     * @return the number of schemas that were not known before
     * @throws SerializationException if the topic does not exist or cannot be read to its end in time
     */
    public int loadFrom(Consumer<String, String> consumer, String topic, Duration timeout) {
        Objects.requireNonNull(consumer, "consumer");
        Objects.requireNonNull(topic, "topic");
        long deadline = System.nanoTime() + timeout.toNanos();
        List<TopicPartition> parts = partitionsOf(consumer, topic, timeout);
        if (parts.isEmpty()) {
            throw new SerializationException("schemas topic " + topic + " does not exist");
        }
        consumer.assign(parts);
        consumer.seekToBeginning(parts);
        return readToEnd(consumer, parts, topic, deadline, timeout);
    }

    /** The partitions of {@code topic}, none if it does not exist. */
    static List<TopicPartition> partitionsOf(Consumer<String, String> consumer, String topic, Duration timeout) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
        if (infos == null) return List.of();
        return infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
    }

    /**
     * Adds the schemas of the entries from {@code consumer}'s positions in {@code parts} up to their current end.
     *
     * @return the number of schemas that were not known before
     * @throws SerializationException if the end is not reached by {@code deadline} ({@link System#nanoTime})
     */
    int readToEnd(Consumer<String, String> consumer, List<TopicPartition> parts, String topic, long deadline,
                  Duration timeout) {
        Map<TopicPartition, Long> endOffsets = consumer.endOffsets(parts, timeout);
        int added = 0;
        while (!reachedEnd(consumer, parts, endOffsets)) {
            if (System.nanoTime() > deadline) {
                throw new SerializationException("reading the schemas topic " + topic + " did not reach its end"
                        + " within " + timeout.toMillis() + " ms");
            }
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                if (addPublished(r)) added++;
            }
        }
        return added;
    }

    /**
     * Adds the schema of one schemas-topic entry, unless it is known already. Tombstones are ignored; an entry whose
     * value does not parse, or whose key is not the id of the schema in its value, is skipped with a warning (a
     * schema under another schema's id must never be taken).
     *
     * @return true if the entry added a schema
     */
    public boolean addPublished(ConsumerRecord<String, String> r) {
        Schema schema;
        try {
            schema = schemaOfEntry(r.key(), r.value());
        } catch (IllegalArgumentException e) {
            LOG.warn("Skipping schemas-topic entry {} at {}-{}@{}: {}", r.key(), r.topic(), r.partition(), r.offset(),
                    e.getMessage());
            return false;
        }
        if (schema == null) {
            return false;
        }
        int id = idOf(schema);
        synchronized (this) {
            String known = canonical.get(id);
            if (known == null) {
                add(schema);
                return true;
            }
            if (!known.equals(SchemaNormalization.toParsingForm(schema))) {
                // the id is taken (shipped, or read first): a collision, or an entry written to take it; never replaced
                LOG.warn("Ignoring schemas-topic entry {} at {}-{}@{}: another schema ({}) has that id already; whoever may"
                        + " write {} should remove it", r.key(), r.topic(), r.partition(), r.offset(), schema.getFullName(),
                        r.topic());
            }
            return false;
        }
    }

    /**
     * The schema a schemas-topic entry holds: its value parsed, when the key is that schema's id; null for a
     * tombstone.
     *
     * @throws IllegalArgumentException naming why otherwise: the value is not a schema, or its id is not the key
     */
    public static Schema schemaOfEntry(String key, String value) {
        if (value == null) {
            return null;
        }
        Schema schema;
        try {
            schema = new Schema.Parser().parse(value);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("not a schema (" + e.getMessage() + ")", e);
        }
        int id = idOf(schema);
        if (!Integer.toString(id).equals(key)) {
            throw new IllegalArgumentException("the schema's id is " + id);
        }
        return schema;
    }

    private static boolean reachedEnd(Consumer<String, String> consumer, List<TopicPartition> parts,
                                      Map<TopicPartition, Long> endOffsets) {
        for (TopicPartition tp : parts) {
            if (consumer.position(tp) < endOffsets.getOrDefault(tp, 0L)) {
                return false;
            }
        }
        return true;
    }

    private synchronized int add(Schema schema) {
        Objects.requireNonNull(schema, "schema");
        int id = idOf(schema);
        String form = SchemaNormalization.toParsingForm(schema);
        String known = canonical.get(id);
        if (known == null) {
            canonical.put(id, form);
            schemas.put(id, schema);
        } else if (!known.equals(form)) {
            throw new SerializationException("schema id collision: " + schema.getFullName() + " and "
                    + schemas.get(id).getFullName() + " both map to id " + id);
        }
        return id;
    }
}
