package dev.loralego.client;

import dev.loralego.avro.DeadLetter;
import dev.loralego.kafka.TopicScan;
import dev.loralego.registry.UnknownSchemaIdException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Reads the service's rejected inputs back from the dead-letter topic ({@code lora.deadletter}, renamed with
 * {@code topic.deadletter}), for {@code dead-letters}: publish and withdraw return once their records are
 * committed, before the service has looked at them, so this is where a user learns that the service refused
 * one (duplicate publish, withdraw of an unknown adapter, another base model, ...).
 *
 * <p>The topic is read {@code read_committed} from the beginning of every partition to its end offsets
 * ({@link TopicScan#toEnd}, no consumer group); that backlog is handed over oldest first (by the dead letter's
 * timestamp, which is the rejected record's). With {@code follow} reading goes on from those end offsets and
 * each poll's new dead letters are handed over as they come, until {@link #stop()} or an interrupt of the
 * reading thread. Partitions added to the topic while following are not read. Records are decoded with the
 * service's own serde ({@link ClientConnection#serdes()}); one that does not decode is logged and skipped.
 * The rejected record's value is not kept (it can be a whole adapter layer): only its length.
 */
public final class DeadLetterReader {
    private static final Logger LOG = LoggerFactory.getLogger(DeadLetterReader.class);
    private static final Duration POLL = Duration.ofMillis(300);

    /** Oldest first; ties in the order of the dead-letter topic. */
    private static final Comparator<Entry> OLDEST_FIRST = Comparator.comparingLong(Entry::timestamp)
            .thenComparingInt(Entry::letterPartition).thenComparingLong(Entry::letterOffset);

    /**
     * One dead letter: the fields of the {@code DeadLetter} record but the rejected value, plus where the dead
     * letter itself is.
     *
     * @param group          merge group, or null when the service could not tell
     * @param sourceTopic    topic of the rejected record
     * @param partition      its partition (-1 if unknown)
     * @param offset         its offset (-1 if unknown)
     * @param key            its key, or null
     * @param valueBytes     its value's length in bytes, or null if it had no value
     * @param reason         why the service rejected it
     * @param field          the offending field, or null
     * @param timestamp      the rejected record's timestamp, epoch milliseconds
     * @param letterPartition partition of the dead letter on the dead-letter topic
     * @param letterOffset    offset of the dead letter there (the whole rejected record is kept there)
     */
    public record Entry(String group, String sourceTopic, int partition, long offset, byte[] key, Integer valueBytes,
                        String reason, String field, long timestamp, int letterPartition, long letterOffset) {
    }

    /** Told about dead letters, on the reading thread. */
    public interface Listener {
        /** One dead letter: the backlog's oldest first, then (following) new ones as they come. */
        void letter(Entry entry);

        /** The backlog is handed over: {@code count} dead letters matched. */
        default void caughtUp(int count) {
        }
    }

    private final ClientConnection connection;
    private volatile boolean stopped;
    private boolean schemasLoaded;
    private volatile KafkaConsumer<byte[], byte[]> consumer;

    /** A reader of {@code connection}'s dead-letter topic. */
    public DeadLetterReader(ClientConnection connection) {
        this.connection = Objects.requireNonNull(connection, "connection");
    }

    /** The dead letters on the topic now (of {@code group} only, unless null), oldest first. */
    public List<Entry> backlog(String group) {
        List<Entry> out = new ArrayList<>();
        read(group, false, out::add);
        return out;
    }

    /** Asks a following {@link #read} to return; safe from any thread (e.g. a shutdown hook). */
    public void stop() {
        stopped = true;
        KafkaConsumer<byte[], byte[]> c = consumer;
        if (c != null) c.wakeup();
    }

    /**
     * Hands the backlog to {@code listener}, then {@link Listener#caughtUp}, then with {@code follow} every
     * new dead letter until {@link #stop()} or an interrupt of this thread.
     *
     * @param group only this merge group's dead letters (null: all)
     * @return how many dead letters were handed over
     * @throws IllegalStateException if Kafka does not answer within the connection's timeout, the topic does not
     *                               exist, or reading it stalls
     */
    public int read(String group, boolean follow, Listener listener) {
        if (group != null && group.isBlank()) throw new IllegalArgumentException("merge group name must not be blank");
        Objects.requireNonNull(listener, "listener");
        String topic = connection.topics().deadLetter();
        int[] count = {0};
        boolean interrupted = false;
        try (KafkaConsumer<byte[], byte[]> c = connection.newConsumer("lora-lego-dead-letters")) {
            consumer = c;
            try {
                if (!stopped) readWith(c, topic, group, follow, listener, count);
            } catch (InterruptException e) {
                // Kafka's unchecked form of an interrupt: with follow, "until interrupted" ends here. The flag is
                // cleared while the consumer closes (else closing fails noisily) and set again below.
                if (!follow) throw e;
                Thread.interrupted();
                interrupted = true;
            }
        } catch (WakeupException e) {
            if (!stopped) throw e;
        } catch (TimeoutException e) {
            throw TopicScan.noAnswer(connection.bootstrap(), connection.timeout(), topic, e);
        } finally {
            consumer = null;
            if (interrupted) Thread.currentThread().interrupt();
        }
        return count[0];
    }

    private void readWith(KafkaConsumer<byte[], byte[]> c, String topic, String group, boolean follow, Listener listener,
                          int[] count) {
        List<Entry> backlog = new ArrayList<>();
        Map<TopicPartition, Long> end = TopicScan.toEnd(c, topic, connection.timeout(), r -> keep(r, group, backlog));
        backlog.sort(OLDEST_FIRST);
        for (Entry e : backlog) listener.letter(e);
        count[0] = backlog.size();
        listener.caughtUp(count[0]);
        if (!follow) return;
        c.assign(end.keySet());
        end.forEach(c::seek);
        while (!stopped) {
            List<Entry> batch = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) keep(r, group, batch);
            batch.sort(OLDEST_FIRST);
            for (Entry e : batch) listener.letter(e);
            count[0] += batch.size();
        }
    }

    private void keep(ConsumerRecord<byte[], byte[]> r, String group, List<Entry> into) {
        if (r.value() == null) return;
        DeadLetter dl = decode(r);
        if (dl == null) return;
        if (group != null && !group.equals(dl.getGroup())) return;
        into.add(new Entry(dl.getGroup(), dl.getSourceTopic(), dl.getPartition(), dl.getOffset(), bytes(dl.getKey()),
                dl.getValue() == null ? null : dl.getValue().remaining(), dl.getReason(), dl.getField(), dl.getTimestamp(),
                r.partition(), r.offset()));
    }

    /**
     * The service's serde; a schema id this jar does not ship (a newer service) is looked up once on the
     * schemas topic ({@link ClientConnection#loadPublishedSchemas}, only then, so an unreachable broker costs
     * one timeout, not two). Null, logged, if it does not decode.
     */
    private DeadLetter decode(ConsumerRecord<byte[], byte[]> r) {
        for (int attempt = 0; ; attempt++) {
            try {
                return connection.serdes().deadLetter().deserializer().deserialize(r.topic(), r.value());
            } catch (RuntimeException e) {
                if (attempt == 0 && !schemasLoaded && e.getCause() instanceof UnknownSchemaIdException) {
                    schemasLoaded = true;
                    connection.loadPublishedSchemas();
                    continue;
                }
                LOG.warn("{}-{}@{}: undecodable dead letter skipped: {}", r.topic(), r.partition(), r.offset(), e.getMessage());
                return null;
            }
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        if (b == null) return null;
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
