package dev.loralego.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link TopicAdmin} against the embedded broker. Each test uses its own topic-name prefix. */
class TopicAdminTest {

    private static final int PARTITIONS = 3;
    private static final int MAX_BYTES = 16 * 1024 * 1024;
    private static final short RF = 1;

    @TempDir
    static Path dir;
    private static EmbeddedKafkaBroker broker;
    private static Admin admin;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        admin = EmbeddedKafkaBrokerTest.admin(broker);
    }

    @AfterAll
    static void stop() {
        if (admin != null) {
            admin.close();
        }
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void createsEveryTopicWithItsSettingsAndSecondCallIsNoOp() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("create.");
        List<String> created = TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES);
        assertEquals(names.all(), created);

        Map<String, TopicDescription> d = admin.describeTopics(names.all()).allTopicNames().get(30, TimeUnit.SECONDS);
        assertEquals(PARTITIONS, d.get(names.adapterLayers()).partitions().size());
        assertEquals(PARTITIONS, d.get(names.adapterEvents()).partitions().size());
        assertEquals(PARTITIONS, d.get(names.mergedLayers()).partitions().size());
        assertEquals(1, d.get(names.schemas()).partitions().size());

        Map<String, Config> c = configs(names.all());
        String big = Integer.toString(MAX_BYTES);
        assertEquals(big, c.get(names.adapterLayers()).get("max.message.bytes").value());
        assertEquals(big, c.get(names.mergedLayers()).get("max.message.bytes").value());
        assertEquals(big, c.get(names.deadLetter()).get("max.message.bytes").value());
        for (String compacted : List.of(names.mergedLayers(), names.mergedVersions(), names.schemas())) {
            assertEquals("compact", c.get(compacted).get("cleanup.policy").value(), compacted);
        }
        for (String deleted : List.of(names.adapterLayers(), names.adapterEvents(), names.deadLetter())) {
            assertEquals("delete", c.get(deleted).get("cleanup.policy").value(), deleted);
        }
        for (String t : names.all()) {
            assertEquals("producer", c.get(t).get("compression.type").value(), t);
        }
        assertEquals("-1", c.get(names.adapterLayers()).get("retention.ms").value());
        assertEquals("-1", c.get(names.adapterEvents()).get("retention.ms").value());

        assertEquals(List.of(), TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES));
    }

    /**
     * From three replicas on, every topic the service creates requires two in-sync replicas for an acknowledged write
     * (producers use acks=all); with one or two it keeps the broker's default, since two of two would stop every write
     * while one broker is down. (A single test broker cannot create a topic with three replicas: the plan is checked.)
     */
    @Test
    void topicsWithThreeReplicasOrMoreNeedTwoInSyncReplicas() {
        for (short rf : new short[]{1, 2, 3, 5}) {
            for (TopicAdmin.TopicSpec t : TopicAdmin.plan(TopicNames.defaults(), 4, rf, MAX_BYTES)) {
                assertEquals(rf >= 3 ? "2" : null, t.configs().get("min.insync.replicas"), t.name() + " with " + rf + " replicas");
                assertEquals(rf >= 3 ? "2" : null, t.newTopic().configs().get("min.insync.replicas"), t.name());
                assertEquals(rf, t.replication());
            }
        }
    }

    @Test
    void createsOnlyTheMissingTopics() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("partial.");
        admin.createTopics(List.of(new NewTopic(names.adapterEvents(), 1, RF))).all().get(30, TimeUnit.SECONDS);
        List<String> created = TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES);
        List<String> expected = new ArrayList<>(names.all());
        expected.remove(names.adapterEvents());
        assertEquals(expected, created);
    }

    @Test
    void wrongPartitionCountOfCoPartitionedTopicIsAClearError() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("copart.");
        admin.createTopics(List.of(new NewTopic(names.adapterLayers(), 2, RF)
                .configs(Map.of("max.message.bytes", Integer.toString(MAX_BYTES))))).all().get(30, TimeUnit.SECONDS);
        TopicAdmin.TopicLayoutException e = assertThrows(TopicAdmin.TopicLayoutException.class,
                () -> TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES));
        assertEquals(1, e.problems().size(), e.getMessage());
        String p = e.problems().get(0);
        assertTrue(p.contains(names.adapterLayers()) && p.contains("has 2 partitions") && p.contains("must have 3"), p);
    }

    @Test
    void existingTopicsWithoutCompactionOrWithSmallMessagesAreReported() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("badcfg.");
        admin.createTopics(List.of(
                new NewTopic(names.mergedVersions(), PARTITIONS, RF).configs(Map.of("cleanup.policy", "delete")),
                new NewTopic(names.mergedLayers(), PARTITIONS, RF).configs(Map.of("cleanup.policy", "compact",
                        "max.message.bytes", Integer.toString(2 * 1024 * 1024))))).all().get(30, TimeUnit.SECONDS);
        TopicAdmin.TopicLayoutException e = assertThrows(TopicAdmin.TopicLayoutException.class,
                () -> TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES));
        assertEquals(2, e.problems().size(), e.getMessage());
        assertTrue(e.getMessage().contains(names.mergedVersions() + " has cleanup.policy=delete"), e.getMessage());
        assertTrue(e.getMessage().contains(names.mergedLayers() + " has max.message.bytes=2097152"), e.getMessage());
    }

    /**
     * {@code cleanup.policy=compact,delete} (common in managed clusters' topic templates) deletes whole segments after
     * {@code retention.ms}, the latest value of each key included: a group that has not changed for a week would lose
     * its latest manifest and merged layers, which subscribers ({@code watch}, {@code export}) read. Only with
     * {@code retention.ms=-1} does such a topic keep the latest value per key.
     */
    @Test
    void compactAndDeleteWithATimeRetentionIsReportedButNotWithoutOne() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("compactdelete.");
        admin.createTopics(List.of(
                new NewTopic(names.mergedVersions(), PARTITIONS, RF).configs(Map.of("cleanup.policy", "compact,delete",
                        "retention.ms", "604800000")),
                new NewTopic(names.mergedLayers(), PARTITIONS, RF).configs(Map.of("cleanup.policy", "delete,compact",
                        "retention.ms", "-1", "max.message.bytes", Integer.toString(MAX_BYTES))))).all().get(30, TimeUnit.SECONDS);
        TopicAdmin.TopicLayoutException e = assertThrows(TopicAdmin.TopicLayoutException.class,
                () -> TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES));
        assertEquals(1, e.problems().size(), e.getMessage());
        assertTrue(e.problems().get(0).startsWith("topic " + names.mergedVersions()
                + " has cleanup.policy=compact,delete with retention.ms=604800000"), e.getMessage());
    }

    @Test
    void concurrentCallsBothSucceedAndCreateEachTopicOnce() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("race.");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Callable<List<String>> call = () -> TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES);
            Future<List<String>> a = pool.submit(call);
            Future<List<String>> b = pool.submit(call);
            List<String> all = new ArrayList<>(a.get(60, TimeUnit.SECONDS));
            all.addAll(b.get(60, TimeUnit.SECONDS));
            all.sort(String::compareTo);
            List<String> expected = new ArrayList<>(names.all());
            expected.sort(String::compareTo);
            assertEquals(expected, all, "every topic created exactly once across both calls");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void invalidArgumentsAreRejected() {
        TopicNames names = TopicNames.defaults();
        assertThrows(IllegalArgumentException.class, () -> TopicAdmin.ensureTopics(admin, names, 0, RF, MAX_BYTES));
        assertThrows(IllegalArgumentException.class, () -> TopicAdmin.ensureTopics(admin, names, 1, (short) 0, MAX_BYTES));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TopicAdmin.ensureTopics(admin, names, 1, RF, 1000));
        assertTrue(e.getMessage().contains("maxMessageBytes"), e.getMessage());
    }

    @Test
    void bigRecordClientSettingsCarryAFiveMegabyteTensorRecord() throws Exception {
        TopicNames names = TopicNames.defaults().withPrefix("bigrec.");
        TopicAdmin.ensureTopics(admin, names, PARTITIONS, RF, MAX_BYTES);
        byte[] tensor = new byte[5 * 1024 * 1024];
        SplittableRandom rnd = new SplittableRandom(7L);
        for (int i = 0; i < tensor.length; i++) {
            tensor[i] = (byte) rnd.nextInt(256);
        }
        Map<String, String> pp = TopicAdmin.bigRecordProducerProps(MAX_BYTES);
        assertEquals("zstd", pp.get(ProducerConfig.COMPRESSION_TYPE_CONFIG));
        assertEquals("1", pp.get(ProducerConfig.COMPRESSION_ZSTD_LEVEL_CONFIG), "level 1: same ratio on tensors, faster");
        assertEquals(Integer.toString(MAX_BYTES), pp.get(ProducerConfig.MAX_REQUEST_SIZE_CONFIG));
        assertTrue(Long.parseLong(pp.get(ProducerConfig.BUFFER_MEMORY_CONFIG)) >= 2L * MAX_BYTES);

        Properties producerConfig = new Properties();
        producerConfig.putAll(pp);
        producerConfig.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        byte[] key = "g|transformer.h.0.attn.c_attn".getBytes(StandardCharsets.UTF_8);
        int partition;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(producerConfig, new ByteArraySerializer(), new ByteArraySerializer())) {
            partition = producer.send(new ProducerRecord<>(names.adapterLayers(), key, tensor))
                    .get(60, TimeUnit.SECONDS).partition();
        }

        Properties consumerConfig = new Properties();
        consumerConfig.putAll(TopicAdmin.bigRecordConsumerProps(MAX_BYTES));
        consumerConfig.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(consumerConfig, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(names.adapterLayers(), partition);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (got.isEmpty() && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(1, got.size());
            assertArrayEquals(key, got.get(0).key());
            assertArrayEquals(tensor, got.get(0).value());
        }
    }

    @Test
    void clientSettingsHaveSaneFloors() {
        Map<String, String> c = TopicAdmin.bigRecordConsumerProps(1024);
        assertEquals("1024", c.get(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG));
        assertEquals(Integer.toString(50 * 1024 * 1024), c.get(ConsumerConfig.FETCH_MAX_BYTES_CONFIG));
        Map<String, String> p = TopicAdmin.bigRecordProducerProps(1024);
        assertEquals(Long.toString(32L * 1024 * 1024), p.get(ProducerConfig.BUFFER_MEMORY_CONFIG));
        assertEquals("1024", p.get(ProducerConfig.BATCH_SIZE_CONFIG));
        assertEquals(Integer.toString(MAX_BYTES), TopicAdmin.tensorChangelogConfig(MAX_BYTES).get("max.message.bytes"));
        assertThrows(IllegalArgumentException.class, () -> TopicAdmin.bigRecordProducerProps(0));
    }

    private static Map<String, Config> configs(List<String> topics) throws Exception {
        List<ConfigResource> resources = topics.stream()
                .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
        Map<ConfigResource, Config> raw = admin.describeConfigs(resources).all().get(30, TimeUnit.SECONDS);
        Map<String, Config> out = new java.util.TreeMap<>();
        raw.forEach((r, c) -> out.put(r.name(), c));
        return out;
    }
}
