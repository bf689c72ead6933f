package dev.loralego.registry;

import org.apache.kafka.common.errors.SerializationException;

/**
 * A record's bytes cannot be decoded: wrong magic byte, unknown schema id, schema that cannot be read as
 * the expected type, truncated or malformed Avro. The service dead-letters such records with
 * {@link #reason()}; it is never thrown for failures of the infrastructure (an unreachable registry), so
 * catching this exception alone is enough to tell bad input from outages.
 */
public class BadRecordException extends SerializationException {
    private static final long serialVersionUID = 1L;
    private final String topic;
    private final String reason;
    private final int schemaId;

    /**
     * @param topic    topic the record came from (may be null)
     * @param reason   what is wrong, for the dead-letter record
     * @param schemaId schema id from the header, or {@code -1} if none was read
     * @param cause    underlying decoder error (may be null)
     */
    public BadRecordException(String topic, String reason, int schemaId, Throwable cause) {
        super("bad record" + (topic == null ? "" : " on topic " + topic) + ": " + reason, cause);
        this.topic = topic;
        this.reason = reason;
        this.schemaId = schemaId;
    }

    /** What is wrong with the record, without the topic prefix. */
    public String reason() {
        return reason;
    }

    /** The topic the record came from, or null if unknown. */
    public String topic() {
        return topic;
    }

    /** The schema id the record's header names, or {@code -1} if the header was unreadable. */
    public int schemaId() {
        return schemaId;
    }
}
