package dev.loralego.client;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * One embedded broker with the service's topics (3 partitions, so scans cross partitions), plus the
 * independent producer and consumer the tests use to plant and inspect records.
 */
final class ClientTestKafka implements AutoCloseable {
    static final int PARTITIONS = 3;
    static final Duration TIMEOUT = Duration.ofSeconds(30);

    final EmbeddedKafkaBroker broker;
    final TopicNames topics = TopicNames.defaults();
    /** The service's serdes with the embedded schema source, as the service would write. */
    final TopologySerdes serdes = MergeService.serdes(new EmbeddedSchemaResolver());

    private ClientTestKafka(EmbeddedKafkaBroker broker) {
        this.broker = broker;
    }

    static ClientTestKafka start(Path dir) throws IOException {
        EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (Admin admin = Admin.create(p)) {
            TopicAdmin.ensureTopics(admin, TopicNames.defaults(), PARTITIONS, (short) 1, 64 << 20);
        }
        return new ClientTestKafka(broker);
    }

    /** A client connection with the default settings and no config file. */
    ClientConnection connection() {
        return connection(ClientConnection.DEFAULT_MAX_RECORD_BYTES);
    }

    ClientConnection connection(int maxRecordBytes) {
        return ClientConnection.of(broker.bootstrapServers(), Map.of(), maxRecordBytes, TIMEOUT);
    }

    /** Writes records as the service would (plain producer, acks=all), waiting for each. */
    void produce(String topic, List<Map.Entry<String, byte[]>> records) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 64 << 20);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (Map.Entry<String, byte[]> e : records) {
                producer.send(new ProducerRecord<>(topic, e.getKey().getBytes(StandardCharsets.UTF_8), e.getValue()))
                        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
    }

    /** Writes {@code layers} to the merged-layers topic, keyed {@code group|module}, as the service does. */
    void plantLayers(List<PlantedLayer> layers) throws Exception {
        List<Map.Entry<String, byte[]>> records = new ArrayList<>();
        for (PlantedLayer p : layers) {
            records.add(Map.entry(p.group + "|" + p.module, serdes.mergedLayer().serializer().serialize(topics.mergedLayers(), p.record())));
        }
        if (!records.isEmpty()) produce(topics.mergedLayers(), records);
    }

    /** Writes a manifest's encoded {@code value} under its history key {@code group@sequence} and its latest key {@code group}. */
    void plantManifest(MergedVersionManifest m, byte[] value) throws Exception {
        produce(topics.mergedVersions(), List.of(Map.entry(m.getGroup() + "@" + m.getSequence(), value), Map.entry(m.getGroup(), value)));
    }

    /** Writes {@code layers}, then {@code m} (may be null: layers only) with the service's serde. */
    void plant(MergedVersionManifest m, List<PlantedLayer> layers) throws Exception {
        plantLayers(layers);
        if (m != null) plantManifest(m, serdes.mergedVersion().serializer().serialize(topics.mergedVersions(), m));
    }

    /** Creates {@code topic} (one partition) with {@code configs}. */
    void createTopic(String topic, Map<String, String> configs) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1).configs(configs)))
                    .all().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    /** How many records {@code topic} holds (log end less log start, over its partitions). */
    long count(String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo i : c.partitionsFor(topic)) parts.add(new TopicPartition(topic, i.partition()));
            Map<TopicPartition, Long> start = c.beginningOffsets(parts);
            return c.endOffsets(parts).entrySet().stream().mapToLong(e -> e.getValue() - start.get(e.getKey())).sum();
        }
    }

    /**
     * Every record of {@code topic} whose key equals {@code key} or starts with {@code key + "|"}, read from
     * the beginning to the end offsets with the given isolation level.
     */
    List<ConsumerRecord<byte[], byte[]>> read(String topic, String key, boolean readCommitted) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 64 << 20);
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 64 << 20);
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo i : c.partitionsFor(topic)) parts.add(new TopicPartition(topic, i.partition()));
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = readCommitted ? settledEnd(c, parts, c.endOffsets(parts)) : c.endOffsets(parts);
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("could not read " + topic + " to its end");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String k = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))
                            && (k.equals(key) || k.startsWith(key + "|"))) {
                        out.add(r);
                    }
                }
            }
        }
        return out;
    }

    /**
     * A committed transaction's markers reach the partitions just after {@code commitTransaction} returns, so
     * the last stable offset can trail for a moment: wait (bounded) until it reaches the log end.
     */
    private Map<TopicPartition, Long> settledEnd(KafkaConsumer<byte[], byte[]> committed, List<TopicPartition> parts,
                                                 Map<TopicPartition, Long> end) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted");
        try (KafkaConsumer<byte[], byte[]> raw = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (System.nanoTime() < deadline) {
                Map<TopicPartition, Long> logEnd = raw.endOffsets(parts);
                Map<TopicPartition, Long> stable = end;
                if (parts.stream().allMatch(tp -> stable.get(tp) >= logEnd.get(tp) - 1)) return end;
                try {
                    Thread.sleep(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return end;
                }
                end = committed.endOffsets(parts);
            }
            return end;
        }
    }

    @Override
    public void close() {
        broker.close();
    }
}
