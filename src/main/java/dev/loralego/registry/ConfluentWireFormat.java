package dev.loralego.registry;

/**
 * Confluent's wire format of a record value: byte 0 is the magic byte {@code 0}, bytes 1–4 the schema id
 * (big-endian int), the rest the Avro binary encoding (Confluent Schema Registry documentation, "Wire
 * format").
 */
public final class ConfluentWireFormat {

    /** The only magic byte defined. */
    public static final byte MAGIC_BYTE = 0;
    /** Magic byte plus schema id. */
    public static final int HEADER_SIZE = 5;

    private ConfluentWireFormat() {
    }

    /** Writes the 5-byte header for {@code schemaId} at the start of {@code out}. */
    public static void writeHeader(byte[] out, int schemaId) {
        if (out.length < HEADER_SIZE) {
            throw new IllegalArgumentException("buffer of " + out.length + " bytes cannot hold the 5-byte header");
        }
        out[0] = MAGIC_BYTE;
        out[1] = (byte) (schemaId >>> 24);
        out[2] = (byte) (schemaId >>> 16);
        out[3] = (byte) (schemaId >>> 8);
        out[4] = (byte) schemaId;
    }

    /**
     * The schema id of a record in this format (no check of the magic byte).
     *
     * @param record at least {@link #HEADER_SIZE} bytes
     * @return the id
     */
    public static int schemaId(byte[] record) {
        if (record.length < HEADER_SIZE) {
            throw new IllegalArgumentException("record of " + record.length + " bytes has no 5-byte header");
        }
        return ((record[1] & 0xff) << 24) | ((record[2] & 0xff) << 16) | ((record[3] & 0xff) << 8) | (record[4] & 0xff);
    }
}
