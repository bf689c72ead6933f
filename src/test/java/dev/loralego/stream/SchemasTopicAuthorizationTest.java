package dev.loralego.stream;

import dev.loralego.client.AdapterPublisher;
import dev.loralego.client.ClientConnection;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import dev.loralego.kafka.TopicPrefixAuthorizer;
import dev.loralego.registry.SchemaRegistryException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Principals that may not read the schemas topic (a broker whose {@link TopicPrefixAuthorizer} denies READ on topics
 * named {@code no-read.*}, everything on {@code no-access.*}). The service fails at start, naming the ACL, instead of
 * failing its stream thread again and again at the first record whose schema id it does not ship; {@code publish} and
 * {@code withdraw} fail with the ACL to grant and write nothing.
 */
class SchemasTopicAuthorizationTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0, TopicPrefixAuthorizer.brokerProps());
    }

    @AfterAll
    static void stop() {
        if (broker != null) broker.close();
    }

    @Test
    void aServiceThatMayNotReadTheSchemasTopicDoesNotStart() {
        String topic = TopicPrefixAuthorizer.NO_READ + "service-schemas";
        MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), "acl-service", dir.resolve("state"),
                1, (short) 1, 16 << 20, 1, MergeParameters.defaults(), Map.of("topic.schemas", topic));
        SchemaRegistryException e = assertThrows(SchemaRegistryException.class,
                () -> MergeService.start(cfg, null, Duration.ofSeconds(60)).close());
        assertTrue(e.getMessage().startsWith("reading the schemas topic " + topic + " failed: "), e.getMessage());
        assertTrue(e.getMessage().endsWith("(grant this principal READ on " + topic + ")"), e.getMessage());
    }

    @Test
    void aPublisherThatMayNotReadTheSchemasTopicWritesNothing() throws Exception {
        String noRead = TopicPrefixAuthorizer.NO_READ + "client-schemas";
        try (Admin admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
            TopicAdmin.ensureTopics(admin, TopicNames.from(Map.of("topic.schemas", noRead)), 1, (short) 1, 64 << 20);
        }
        // something to read (a service writes its schemas there at start)
        try (KafkaProducer<String, String> p = new KafkaProducer<>(Map.<String, Object>of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()), new StringSerializer(), new StringSerializer())) {
            p.send(new ProducerRecord<>(noRead, "1", "\"int\"")).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
        String group = "acl-group";
        for (String topic : List.of(noRead, TopicPrefixAuthorizer.NO_ACCESS + "client-schemas")) {
            ClientConnection c = ClientConnection.of(broker.bootstrapServers(), Map.of("topic.schemas", topic),
                    ClientConnection.DEFAULT_MAX_RECORD_BYTES, TIMEOUT);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> new AdapterPublisher(c).withdraw(group, "a", -1));
            assertTrue(e.getMessage().startsWith("reading the schemas topic " + topic + " failed ("), e.getMessage());
            assertTrue(e.getMessage().endsWith("): grant this principal READ and DESCRIBE on " + topic + "; nothing was written"),
                    e.getMessage());
        }
        assertEquals(0, records(TopicNames.defaults().adapterEvents()), "no withdrawal was written");
    }

    private static long records(String topic) {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(Map.<String, Object>of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(i -> new TopicPartition(topic, i.partition())).toList();
            return c.endOffsets(parts).values().stream().mapToLong(Long::longValue).sum();
        }
    }
}
