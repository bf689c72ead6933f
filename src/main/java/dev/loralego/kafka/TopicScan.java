package dev.loralego.kafka;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads whole topics with a consumer that has no group: every partition from its beginning up to the end
 * offsets taken when the scan starts (for a {@code read_committed} consumer, the last stable offsets, so
 * open transactions are not waited for). Records appended after the start are not visited. Used by the
 * clients (export, watch, publish, dead-letters) and by the audit.
 */
public final class TopicScan {
    private static final Duration POLL = Duration.ofMillis(200);

    /** Called for each record of a scan, in offset order within a partition. */
    @FunctionalInterface
    public interface Visitor {
        void visit(ConsumerRecord<byte[], byte[]> record);
    }

    private TopicScan() {
    }

    /** The partitions of {@code topic}; fails clearly if it does not exist. */
    public static List<TopicPartition> partitions(Consumer<byte[], byte[]> consumer, String topic, Duration timeout) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
        if (infos == null || infos.isEmpty()) {
            throw new IllegalStateException("topic " + topic + " does not exist (has the merge service created its topics?"
                    + " check --bootstrap-servers and topic.* in --config)");
        }
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo i : infos) parts.add(new TopicPartition(topic, i.partition()));
        return parts;
    }

    /**
     * The error for a scan of {@code topic} that Kafka at {@code bootstrap} did not answer within {@code timeout}:
     * Kafka's own text ("Timeout expired while fetching topic metadata") says neither where it looked nor what to check.
     */
    public static IllegalStateException noAnswer(String bootstrap, Duration timeout, String topic,
                                                 org.apache.kafka.common.errors.TimeoutException e) {
        return new IllegalStateException("Kafka at " + bootstrap + " did not answer within " + timeout.toSeconds()
                + " s reading " + topic + " (" + e.getMessage() + "); check --bootstrap-servers and --config", e);
    }

    /**
     * Visits every record of {@code topic} up to its current end.
     *
     * @param timeout the longest time without progress before the scan fails
     * @return the end offset of each partition the scan read up to: every record below it was visited, none
     *         at or above it, so a caller that goes on reading (e.g. {@code dead-letters --follow}) seeks there
     * @throws IllegalStateException if the topic does not exist or the scan stalls for {@code timeout}
     */
    public static Map<TopicPartition, Long> toEnd(Consumer<byte[], byte[]> consumer, String topic, Duration timeout, Visitor visitor) {
        List<TopicPartition> parts = partitions(consumer, topic, timeout);
        consumer.assign(parts);
        consumer.seekToBeginning(parts);
        Map<TopicPartition, Long> end = consumer.endOffsets(parts, timeout);
        Set<TopicPartition> open = new HashSet<>();
        for (TopicPartition p : parts) {
            if (consumer.position(p, timeout) < end.get(p)) open.add(p);
        }
        long stallLimit = timeout.toNanos();
        long lastProgress = System.nanoTime();
        while (!open.isEmpty()) {
            boolean progress = false;
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(POLL)) {
                TopicPartition p = new TopicPartition(r.topic(), r.partition());
                if (r.offset() < end.get(p)) {
                    visitor.visit(r);
                    progress = true;
                }
            }
            for (TopicPartition p : new ArrayList<>(open)) {
                if (consumer.position(p, timeout) >= end.get(p)) {
                    open.remove(p);
                    consumer.pause(List.of(p));
                    progress = true;
                }
            }
            if (progress) {
                lastProgress = System.nanoTime();
            } else if (System.nanoTime() - lastProgress > stallLimit) {
                throw new IllegalStateException("reading topic " + topic + " made no progress for " + timeout.toSeconds()
                        + " s (partitions not at their end: " + open + ")");
            }
        }
        consumer.unsubscribe();
        return Map.copyOf(end);
    }
}
