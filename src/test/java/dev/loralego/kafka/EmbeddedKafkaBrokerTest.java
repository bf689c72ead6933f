package dev.loralego.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Integration tests of {@link EmbeddedKafkaBroker} with the real Kafka clients. */
class EmbeddedKafkaBrokerTest {

    private static final Duration POLL_BUDGET = Duration.ofSeconds(30);
    private static final int BIG_TOPIC_MAX_BYTES = 16 * 1024 * 1024;
    private static final int BIG_RECORD_BYTES = 5 * 1024 * 1024;

    @TempDir
    static Path sharedDir;
    private static EmbeddedKafkaBroker shared;

    @BeforeAll
    static void startShared() throws Exception {
        shared = EmbeddedKafkaBroker.start(sharedDir.resolve("kafka"), 0);
    }

    @AfterAll
    static void stopShared() {
        if (shared != null) {
            shared.close();
        }
    }

    @Test
    void restartOnSameDirectoryKeepsTopicsRecordsAndClusterId(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("broker-data");
        String firstClusterId;
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(dir, 0)) {
            assertTrue(broker.port() > 0, "real bound port reported");
            assertEquals("localhost:" + broker.port(), broker.bootstrapServers());
            assertEquals(dir.toAbsolutePath(), broker.dataDir());
            assertTrue(Files.exists(dir.resolve("meta.properties")), "directory formatted");
            try (Admin admin = admin(broker)) {
                firstClusterId = admin.describeCluster().clusterId().get(10, TimeUnit.SECONDS);
                admin.createTopics(List.of(new NewTopic("persist", 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            }
            try (KafkaProducer<String, String> producer = stringProducer(broker, new Properties())) {
                producer.send(new ProducerRecord<>("persist", "k1", "v1")).get(30, TimeUnit.SECONDS);
            }
            assertEquals(List.of("k1=v1"), readAll(broker, "persist", 1, "read_uncommitted"));
        }

        int raised = 32 * 1024 * 1024;
        try (EmbeddedKafkaBroker again = EmbeddedKafkaBroker.start(dir, 0,
                Map.of("message.max.bytes", Integer.toString(raised)))) {
            try (Admin admin = admin(again)) {
                ConfigResource node = new ConfigResource(ConfigResource.Type.BROKER,
                        Integer.toString(EmbeddedKafkaBroker.NODE_ID));
                Config config = admin.describeConfigs(List.of(node)).all().get(10, TimeUnit.SECONDS).get(node);
                assertEquals(Integer.toString(raised), config.get("message.max.bytes").value(), "extra props override");
                assertEquals("false", config.get("auto.create.topics.enable").value());
                assertEquals(firstClusterId, admin.describeCluster().clusterId().get(10, TimeUnit.SECONDS),
                        "restart must not re-format the directory");
                assertTrue(admin.listTopics().names().get(10, TimeUnit.SECONDS).contains("persist"));
            }
            assertEquals(List.of("k1=v1"), readAll(again, "persist", 1, "read_uncommitted"));
        }
    }

    @Test
    void transactionalProducerCommitsAndAbortsOnSingleNode() throws Exception {
        try (Admin admin = admin(shared)) {
            admin.createTopics(List.of(new NewTopic("txn", 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        Properties tx = new Properties();
        tx.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "embedded-broker-test");
        try (KafkaProducer<String, String> producer = stringProducer(shared, tx)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("txn", "a", "committed"));
            producer.commitTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("txn", "b", "aborted"));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("txn", "c", "committed-too"));
            producer.commitTransaction();
        }
        assertEquals(List.of("a=committed", "c=committed-too"), readAll(shared, "txn", 2, "read_committed"));
    }

    @Test
    void fiveMegabyteRecordPassesWithRaisedLimits() throws Exception {
        try (Admin admin = admin(shared)) {
            NewTopic big = new NewTopic("big", 1, (short) 1)
                    .configs(Map.of("max.message.bytes", Integer.toString(BIG_TOPIC_MAX_BYTES)));
            admin.createTopics(List.of(big)).all().get(30, TimeUnit.SECONDS);
        }
        byte[] payload = new byte[BIG_RECORD_BYTES];
        new Random(20240607L).nextBytes(payload); // incompressible: the full 5 MB reaches the broker
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, shared.bootstrapServers());
        pp.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(BIG_TOPIC_MAX_BYTES));
        pp.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Integer.toString(4 * BIG_TOPIC_MAX_BYTES));
        RecordMetadata meta;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            meta = producer.send(new ProducerRecord<>("big", "k".getBytes(), payload)).get(60, TimeUnit.SECONDS);
        }
        assertEquals(BIG_RECORD_BYTES, meta.serializedValueSize());

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, shared.bootstrapServers());
        cp.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(BIG_TOPIC_MAX_BYTES));
        cp.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Integer.toString(BIG_TOPIC_MAX_BYTES));
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition("big", 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<byte[]> values = new ArrayList<>();
            long deadline = System.nanoTime() + POLL_BUDGET.toNanos();
            while (values.isEmpty() && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    values.add(r.value());
                }
            }
            assertEquals(1, values.size());
            assertArrayEquals(payload, values.get(0));
        }
    }

    @Test
    void topicsAreNotAutoCreated() throws Exception {
        Properties quick = new Properties();
        quick.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "1500");
        try (KafkaProducer<String, String> producer = stringProducer(shared, quick)) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>("never-created", "k", "v")).get(10, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof org.apache.kafka.common.errors.TimeoutException, e.toString());
        }
        try (Admin admin = admin(shared)) {
            Set<String> names = admin.listTopics().names().get(10, TimeUnit.SECONDS);
            assertFalse(names.contains("never-created"), names.toString());
        }
    }

    @Test
    void sharedBrokerHasTheSingleNodeDefaults() throws Exception {
        try (Admin admin = admin(shared)) {
            ConfigResource node = new ConfigResource(ConfigResource.Type.BROKER,
                    Integer.toString(EmbeddedKafkaBroker.NODE_ID));
            Config c = admin.describeConfigs(List.of(node)).all().get(10, TimeUnit.SECONDS).get(node);
            assertEquals(Integer.toString(EmbeddedKafkaBroker.DEFAULT_MAX_MESSAGE_BYTES), c.get("message.max.bytes").value());
            assertEquals("1", c.get("transaction.state.log.replication.factor").value());
            assertEquals("1", c.get("transaction.state.log.min.isr").value());
            assertEquals("1", c.get("offsets.topic.replication.factor").value());
            assertEquals("0", c.get("group.initial.rebalance.delay.ms").value());
        }
    }

    @Test
    void startupTimeIsRecorded() {
        assertTrue(shared.startupMillis() > 0 && shared.startupMillis() < 120_000,
                "startup took " + shared.startupMillis() + " ms");
    }

    /** A taken port fails at once with one clear line, before the broker starts and logs pages of stack traces. */
    @Test
    void aTakenPortFailsWithOneClearMessageBeforeTheBrokerStarts(@TempDir Path tmp) throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("localhost"))) {
            java.net.BindException e = assertThrows(java.net.BindException.class,
                    () -> EmbeddedKafkaBroker.start(tmp.resolve("taken"), taken.getLocalPort()));
            assertEquals("port " + taken.getLocalPort() + " on localhost is already in use (another Kafka broker, or a"
                    + " service started earlier?): choose a free port, or connect to the broker that runs there", e.getMessage());
        }
        // The port of the shared broker is taken too, by a broker: same answer.
        assertThrows(java.net.BindException.class, () -> EmbeddedKafkaBroker.start(tmp.resolve("taken2"), shared.port()));
    }

    /**
     * A second broker on a data directory in use (a second {@code run} or {@code demo} with the same {@code --data-dir})
     * fails with one clear line before it starts; Kafka's own start fails on the directory lock with a fatal error that
     * exits the JVM, which in-process takes the running broker (and service) down with it.
     */
    @Test
    void aDataDirectoryInUseFailsWithOneClearMessageAndLeavesItsBrokerRunning() throws Exception {
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> EmbeddedKafkaBroker.start(shared.dataDir(), 0).close());
        assertEquals("data directory " + shared.dataDir() + " is in use by another Kafka broker (another run or demo with"
                + " the same --data-dir?): stop it, or choose another data directory", e.getMessage());
        try (Admin admin = admin(shared)) {
            assertEquals(1, admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
        }
    }

    @Test
    void rejectsInvalidPort(@TempDir Path tmp) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EmbeddedKafkaBroker.start(tmp, 70000));
        assertTrue(e.getMessage().contains("70000"), e.getMessage());
    }

    // ---------------------------------------------------------------------------------------------

    static Admin admin(EmbeddedKafkaBroker broker) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        return Admin.create(p);
    }

    private static KafkaProducer<String, String> stringProducer(EmbeddedKafkaBroker broker, Properties extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.putAll(extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    /** Reads the single partition 0 of {@code topic} from the start until {@code expected} records or the budget. */
    private static List<String> readAll(EmbeddedKafkaBroker broker, String topic, int expected, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                     new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + POLL_BUDGET.toNanos();
            while (out.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(r.key() + "=" + r.value());
                }
            }
            // One more short poll: nothing beyond the expected records may show up.
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(300))) {
                out.add(r.key() + "=" + r.value());
            }
        }
        return out;
    }
}
