package dev.loralego.registry;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The schemas topic as an {@link EmbeddedSchemaResolver.SchemaSource}: when a lookup meets an unknown id, reads the
 * entries written since its last read (one consumer kept for the resolver's life, so a catch-up costs an end-offsets
 * request when nothing is new). This is how a service decodes records of a newer publisher: the publisher writes its
 * schemas to the topic before its records ({@code AdapterPublisher}), so the catch-up that the first such record
 * triggers finds them, live and on every replay, as long as the entry stays the one under its key (only a later entry
 * under the same key, which compaction keeps instead, takes it away). The other way round, a record written before
 * its schema reached the topic (by a writer that does not put it there first) is dead-lettered when processed, and
 * decodes on a replay after the schema arrived: the audit reports the versions that then differ.
 *
 * <p>The topic's partitions are those it has at the first catch-up that finds it; partitions added later are not read.
 *
 * <p>A topic that does not exist holds no schema: the id stays unknown (the record is dead-lettered, as it would be
 * without a follower). A topic that cannot be read (broker unreachable, not authorised, no end within the timeout) is
 * a {@link SchemaRegistryException}, which says nothing about the record: the stream thread fails and retries from its
 * last commit instead of dead-lettering a record that may be fine. Thread-safe; close it after the resolver's last use.
 */
public final class SchemasTopicFollower implements EmbeddedSchemaResolver.SchemaSource, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SchemasTopicFollower.class);

    private final Supplier<? extends Consumer<String, String>> consumers;
    private final String topic;
    private final Duration timeout;
    /** Created at the first catch-up. Guarded by {@code this}. */
    private Consumer<String, String> consumer;
    /** The topic's partitions once it exists and is assigned. Guarded by {@code this}. */
    private List<TopicPartition> parts;
    private boolean closed;

    /**
     * @param consumers makes the consumer (strings, no group, read_committed), once
     * @param topic     the schemas topic, e.g. {@code lora.schemas}
     * @param timeout   how long one catch-up may wait for the topic's metadata and its end
     */
    public SchemasTopicFollower(Supplier<? extends Consumer<String, String>> consumers, String topic, Duration timeout) {
        this.consumers = Objects.requireNonNull(consumers, "consumers");
        this.topic = Objects.requireNonNull(topic, "topic");
        this.timeout = Objects.requireNonNull(timeout, "timeout");
    }

    /**
     * Adds the schemas written to the topic since the last catch-up.
     *
     * @throws SchemaRegistryException if the topic cannot be read to its end within the timeout, or the follower is
     *                                 closed
     */
    @Override
    public synchronized void catchUp(EmbeddedSchemaResolver into) {
        if (closed) {
            // A stream thread still running after KafkaStreams.close timed out: its record may well be fine, and must
            // fail (and be retried after the restart) rather than be dead-lettered because the service is stopping.
            throw new SchemaRegistryException("the schemas topic " + topic + " is no longer followed (closed)", -1, -1, null);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            if (consumer == null) consumer = consumers.get();
            if (parts == null) {
                List<TopicPartition> found = EmbeddedSchemaResolver.partitionsOf(consumer, topic, timeout);
                if (found.isEmpty()) {
                    LOG.debug("schemas topic {} does not exist: no published schema to look up", topic);
                    return;
                }
                consumer.assign(found);
                consumer.seekToBeginning(found);
                parts = found;
            }
            int added = into.readToEnd(consumer, parts, topic, deadline, timeout);
            if (added > 0) LOG.info("loaded {} schema(s) published on {}", added, topic);
        } catch (KafkaException e) {
            String advice = e instanceof AuthorizationException ? " (grant this principal READ on " + topic + ")" : "";
            throw new SchemaRegistryException("reading the schemas topic " + topic + " failed: " + e.getMessage() + advice,
                    -1, -1, e);
        }
    }

    /** Closes the consumer; a later catch-up fails ({@link SchemaRegistryException}), it never reports an id unknown. */
    @Override
    public synchronized void close() {
        closed = true;
        if (consumer != null) {
            consumer.close();
            consumer = null;
        }
    }
}
