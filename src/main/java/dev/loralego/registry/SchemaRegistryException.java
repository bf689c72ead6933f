package dev.loralego.registry;

import org.apache.kafka.common.errors.SerializationException;

/**
 * The schema registry refused a request (e.g. HTTP 409: the schema is incompatible with the subject's
 * earlier versions) or could not be reached after all retries. Not a {@link BadRecordException}: it says
 * nothing about any record.
 */
public class SchemaRegistryException extends SerializationException {
    private static final long serialVersionUID = 1L;
    private final int status;
    private final int errorCode;

    /**
     * @param message   what failed, including the registry's own message if it sent one
     * @param status    HTTP status, or {@code -1} if no response came
     * @param errorCode the registry's {@code error_code}, or {@code -1}
     * @param cause     underlying I/O error (may be null)
     */
    public SchemaRegistryException(String message, int status, int errorCode, Throwable cause) {
        super(message, cause);
        this.status = status;
        this.errorCode = errorCode;
    }

    /** HTTP status of the failed response, or {@code -1} if the registry did not answer. */
    public int status() {
        return status;
    }

    /** The registry's {@code error_code} (e.g. 409, 42201, 40403), or {@code -1}. */
    public int errorCode() {
        return errorCode;
    }
}
