package dev.loralego.registry;

import org.apache.kafka.common.errors.SerializationException;

/** No schema is known under the id a record carries ({@link SchemaResolver#byId}). */
public class UnknownSchemaIdException extends SerializationException {
    private static final long serialVersionUID = 1L;
    private final int id;

    /**
     * @param id     the unknown id
     * @param detail where it was looked up (may be empty)
     */
    public UnknownSchemaIdException(int id, String detail) {
        super("unknown schema id " + id + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"));
        this.id = id;
    }

    /** The id that was not found. */
    public int id() {
        return id;
    }
}
