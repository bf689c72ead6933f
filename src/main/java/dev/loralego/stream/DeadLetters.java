package dev.loralego.stream;

import dev.loralego.avro.DeadLetter;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Sends a rejected input record, verbatim, with its reason to the dead-letter topic. The pipeline never
 * stops on bad input: every processor routes what it cannot use here and carries on.
 */
final class DeadLetters {
    private static final Logger LOG = LoggerFactory.getLogger(DeadLetters.class);
    private final String sinkName;
    private final String topic;
    private final Serializer<DeadLetter> serializer;
    private final DeadLetterListener listener;
    private final boolean log;

    /**
     * {@code listener} (may be null) is told about every rejection after it is forwarded; with {@code log}, each is
     * also logged as a warning.
     */
    DeadLetters(String sinkName, String topic, Serializer<DeadLetter> serializer, DeadLetterListener listener, boolean log) {
        this.sinkName = sinkName;
        this.topic = topic;
        this.serializer = serializer;
        this.listener = listener == null ? dl -> { } : listener;
        this.log = log;
    }

    /**
     * Dead-letters {@code input}.
     *
     * @param field the offending field, or null
     * @param group the merge group, when known
     */
    void reject(ProcessorContext<String, byte[]> context, Record<?, byte[]> input, byte[] rawKey,
                String reason, String field, String group) {
        RecordMetadata md = context.recordMetadata().orElse(null);
        DeadLetter dl = DeadLetter.newBuilder()
                .setSourceTopic(md == null ? "?" : md.topic())
                .setPartition(md == null ? -1 : md.partition())
                .setOffset(md == null ? -1 : md.offset())
                .setKey(rawKey == null ? null : ByteBuffer.wrap(rawKey))
                .setValue(input.value() == null ? null : ByteBuffer.wrap(input.value()))
                .setReason(reason)
                .setField(field)
                .setGroup(group)
                .setTimestamp(input.timestamp())
                .build();
        if (log) LOG.warn("dead-lettered record from {}-{}@{} (group {}): {}{}", dl.getSourceTopic(), dl.getPartition(),
                dl.getOffset(), group, reason, field == null ? "" : " [field " + field + "]");
        String key = group != null ? group : rawKey == null ? null : new String(rawKey, StandardCharsets.UTF_8);
        context.forward(new Record<>(key, serializer.serialize(topic, dl), input.timestamp()), sinkName);
        listener.deadLettered(dl);
    }
}
