/**
 * Avro encoding of the service's records in Confluent's wire format (magic byte {@code 0}, 4-byte
 * big-endian schema id, Avro binary; see Confluent's "Wire format" documentation), so any Kafka tool that
 * speaks a schema registry can read the topics (ARCHITECTURE.md, Encoding).
 *
 * <p>{@link dev.loralego.registry.AvroSerde} encodes and decodes the generated classes of
 * {@code dev.loralego.avro}; schema ids come from a {@link dev.loralego.registry.SchemaResolver}:
 * {@link dev.loralego.registry.EmbeddedSchemaResolver} (no server: ids from schema fingerprints, schemas
 * also kept in a compacted topic) or {@link dev.loralego.registry.RegistrySchemaResolver} (a client of the
 * Confluent Schema Registry REST API). Records that cannot be decoded raise
 * {@link dev.loralego.registry.BadRecordException} with the reason, for the dead-letter topic.
 */
package dev.loralego.registry;
