package dev.loralego.stream;

import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.SchemaResolver;
import dev.loralego.registry.SchemasTopicFollower;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * The schema source of a process that decodes the input log as the service does ({@code run}, {@code audit}): the
 * schema registry when {@code schema.registry.url} is set; otherwise the embedded resolver, which also looks up ids it
 * does not ship on the schemas topic ({@link SchemasTopicFollower}), so records of a newer publisher decode. Close it
 * after the last lookup.
 *
 * @param resolver the resolver to build serdes with
 * @param follower the schemas-topic follower, or null with a registry
 */
record FollowedSchemas(SchemaResolver resolver, SchemasTopicFollower follower) implements AutoCloseable {

    /**
     * @param config       the service's or auditor's config entries (Kafka client settings pass to the consumer)
     * @param bootstrap    bootstrap servers
     * @param schemasTopic the schemas topic
     * @param timeout      how long one look-up on the topic may wait
     */
    static FollowedSchemas of(Map<String, String> config, String bootstrap, String schemasTopic, Duration timeout) {
        SchemaResolver configured = SchemaResolver.fromConfig(config);
        if (!(configured instanceof EmbeddedSchemaResolver)) return new FollowedSchemas(configured, null);
        Map<String, Object> p = new HashMap<>(ClientSettings.kafkaClientEntries(config));
        // assigned, not subscribed: no group, nothing committed
        p.remove(ConsumerConfig.GROUP_ID_CONFIG);
        p.remove(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "lora-lego-schemas");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        // a position lost to deleted records (or a recreated topic) restarts from the first entry, never skips any
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        SchemasTopicFollower follower = new SchemasTopicFollower(
                () -> new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer()), schemasTopic, timeout);
        return new FollowedSchemas(new EmbeddedSchemaResolver(follower), follower);
    }

    /**
     * With the embedded resolver, reads the schemas topic now, so that a process that may not read it fails at start
     * rather than at the first record whose id it does not ship: a stream thread could only fail on that record, again
     * and again, holding its partition.
     *
     * @throws dev.loralego.registry.SchemaRegistryException if the topic cannot be read
     */
    void readNow() {
        if (follower != null) follower.catchUp((EmbeddedSchemaResolver) resolver);
    }

    @Override
    public void close() {
        if (follower != null) follower.close();
    }
}
