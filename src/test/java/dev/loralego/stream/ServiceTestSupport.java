package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.registry.EmbeddedSchemaResolver;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;

/** Producing inputs and reading outputs of the service on a real broker, for the integration tests. */
public final class ServiceTestSupport {
    static final TopologySerdes SERDES = MergeService.serdes(new EmbeddedSchemaResolver());

    private ServiceTestSupport() {
    }

    /** Writes the layers then the events in one transaction, as {@code publish} does. */
    static void publish(String bootstrap, ServiceTopics t, String group, List<StreamFixtures.Adapter> adapters, List<AdapterEvent> events) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "test-publisher-" + UUID.randomUUID());
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 16 << 20);
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            for (StreamFixtures.Adapter a : adapters) {
                a.layers().forEach((m, l) -> producer.send(new ProducerRecord<>(t.adapterLayers(), group + "|" + m,
                        SERDES.adapterLayer().serializer().serialize(t.adapterLayers(), l))));
            }
            for (AdapterEvent e : events) {
                producer.send(new ProducerRecord<>(t.adapterEvents(), group, SERDES.adapterEvent().serializer().serialize(t.adapterEvents(), e)));
            }
            producer.commitTransaction();
        }
    }

    /** One adapter version published as {@code publish} does: its layers, then its event, in one transaction. */
    public static void publish(String bootstrap, ServiceTopics t, StreamFixtures.Adapter a) {
        publish(bootstrap, t, a.group(), List.of(a), List.of(a.publishEvent()));
    }

    /** Every committed record of {@code topic} now. */
    static List<ConsumerRecord<String, byte[]>> readAll(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 16 << 20);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(pi -> new TopicPartition(pi.topic(), pi.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            long deadline = System.currentTimeMillis() + 60_000;
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    /** History manifests ({@code group@s} keys) of {@code group}, each sequence with the number of times it appears. */
    static TreeMap<Long, List<MergedVersionManifest>> history(String bootstrap, ServiceTopics t, String group) {
        TreeMap<Long, List<MergedVersionManifest>> out = new TreeMap<>();
        for (ConsumerRecord<String, byte[]> r : readAll(bootstrap, t.mergedVersions())) {
            if (r.key() == null || !r.key().startsWith(group + "@")) continue;
            MergedVersionManifest m = SERDES.mergedVersion().deserializer().deserialize(r.topic(), r.value());
            out.computeIfAbsent(m.getSequence(), s -> new ArrayList<>()).add(m);
        }
        return out;
    }

    /** Polls until {@code group} has a history manifest for every sequence 1..n (or the timeout passes). */
    static TreeMap<Long, List<MergedVersionManifest>> awaitHistory(String bootstrap, ServiceTopics t, String group, int n, Duration timeout)
            throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeout.toMillis();
        TreeMap<Long, List<MergedVersionManifest>> h = history(bootstrap, t, group);
        while (h.size() < n && System.currentTimeMillis() < deadline) {
            Thread.sleep(500);
            h = history(bootstrap, t, group);
        }
        return h;
    }

    /** A separate JVM running {@code lora-lego run} against {@code bootstrap}. */
    static Process startServiceProcess(String bootstrap, Path dataDir, String appId, Path log, Path config, String... jvmProps)
            throws IOException {
        return startServiceProcess(bootstrap, dataDir, appId, 1, log, config, jvmProps);
    }

    static Process startServiceProcess(String bootstrap, Path dataDir, String appId, int partitions, Path log, Path config,
                                       String... jvmProps) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx512m");
        cmd.add("-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"));
        cmd.addAll(List.of(jvmProps));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.loralego.cli.LoraLegoCommand", "run",
                "--bootstrap-servers", bootstrap, "--data-dir", dataDir.toString(), "--app-id", appId,
                "--config", config.toString(), "--k", "3", "--refine-every", "1", "--refine-mode", "recluster",
                "--max-rank", "64", "--partitions", Integer.toString(partitions), "--http-port", "0"));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    }

    /** A config file that makes a dead instance's partitions move quickly. */
    static Path fastFailoverConfig(Path dir) throws IOException {
        Path f = dir.resolve("service.properties");
        Files.writeString(f, "session.timeout.ms=6000\nheartbeat.interval.ms=1000\n");
        return f;
    }
}
