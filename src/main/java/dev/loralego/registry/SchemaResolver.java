package dev.loralego.registry;

import org.apache.avro.Schema;

import java.util.Map;

/**
 * Maps Avro schemas to the integer ids of Confluent's wire format and back.
 *
 * <p>Implementations are thread-safe. Subjects follow Confluent's {@code TopicNameStrategy}
 * ({@code <topic>-value}).
 */
public interface SchemaResolver {

    /**
     * The id of {@code schema} under {@code subject}, registering it if needed.
     *
     * @param subject subject name, e.g. {@code lora.adapter.layers-value}
     * @param schema  the writer schema
     * @return the schema id (positive)
     * @throws org.apache.kafka.common.errors.SerializationException if the schema cannot be registered
     *         (e.g. the registry refuses it as incompatible)
     */
    int register(String subject, Schema schema);

    /**
     * The schema with id {@code id}.
     *
     * @param id schema id from a record's header
     * @return the schema
     * @throws UnknownSchemaIdException if no schema has this id
     * @throws org.apache.kafka.common.errors.SerializationException if the lookup itself fails
     *         (e.g. registry unreachable); such a failure says nothing about the record
     */
    Schema byId(int id);

    /**
     * The resolver a configuration asks for: a {@link RegistrySchemaResolver} when
     * {@code schema.registry.url} is set, otherwise a new {@link EmbeddedSchemaResolver}.
     *
     * @param config service or client configuration
     * @return the resolver
     */
    static SchemaResolver fromConfig(Map<String, ?> config) {
        Object url = config.get(RegistrySchemaResolver.URL_CONFIG);
        if (url == null || url.toString().isBlank()) {
            return new EmbeddedSchemaResolver();
        }
        return RegistrySchemaResolver.fromConfig(config);
    }
}
