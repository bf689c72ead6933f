package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.TensorDType;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.LegoMerger;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergedModule;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.NewerSchemas;
import org.apache.avro.Schema;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The service against a real broker (in-JVM KRaft): publish several adapters, versions 1..N appear in order
 * with history keys; the merged layers equal the offline merge of the live set; a withdraw makes a new version.
 * Two partitions, so the co-partitioning of tasks and layers is exercised.
 */
class ServiceIntegrationTest {
    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static MergeService service;
    static final MergeParameters PARAMS = new MergeParameters(LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 64);
    static final TopologySerdes SERDES = ServiceTestSupport.SERDES;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), "it-service", dir.resolve("state"),
                2, (short) 1, 16 << 20, 1, PARAMS, Map.of());
        service = MergeService.start(cfg, null, Duration.ofSeconds(60));
    }

    @AfterAll
    static void stop() {
        if (service != null) service.close();
        if (broker != null) broker.close();
    }

    static void publish(String group, List<StreamFixtures.Adapter> adapters, List<AdapterEvent> events) {
        ServiceTestSupport.publish(broker.bootstrapServers(), service.topics(), group, adapters, events);
    }

    /** Reads the versions topic until {@code count} latest-key manifests of {@code group} are seen. */
    static List<MergedVersionManifest> awaitVersions(String group, int count, List<String> keysSeen) {
        List<MergedVersionManifest> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = consumer()) {
            List<TopicPartition> parts = c.partitionsFor(service.topics().mergedVersions()).stream()
                    .map(pi -> new TopicPartition(pi.topic(), pi.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            long deadline = System.currentTimeMillis() + 60_000;
            while (out.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    MergedVersionManifest m = SERDES.mergedVersion().deserializer().deserialize(r.topic(), r.value());
                    if (!m.getGroup().equals(group)) continue;
                    keysSeen.add(r.key());
                    if (r.key().equals(group)) out.add(m);
                }
            }
        }
        return out;
    }

    static Map<String, MergedLayer> latestLayers(String group) {
        Map<String, MergedLayer> out = new TreeMap<>();
        for (ConsumerRecord<String, byte[]> r : ServiceTestSupport.readAll(broker.bootstrapServers(), service.topics().mergedLayers())) {
            MergedLayer l = SERDES.mergedLayer().deserializer().deserialize(r.topic(), r.value());
            if (l.getGroup().equals(group)) out.put(l.getModule(), l);
        }
        return out;
    }

    static KafkaConsumer<String, byte[]> consumer() {
        java.util.Properties p = new java.util.Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 16 << 20);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        return new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
    }

    static void assertEqualsOffline(Map<String, MergedLayer> merged, List<StreamFixtures.Adapter> live) {
        for (String module : StreamFixtures.MODULES.keySet()) {
            List<AdapterModule> in = new ArrayList<>();
            for (StreamFixtures.Adapter a : live) in.add(a.factors().get(module));
            MergedModule m = LegoMerger.mergeModule(module, in, PARAMS.lego());
            assertArrayEquals(TensorCodec.encode(m.a(), TensorDType.F32), LayerValidation.bytes(merged.get(module).getA()), module);
            assertArrayEquals(TensorCodec.encode(m.b(), TensorDType.F32), LayerValidation.bytes(merged.get(module).getB()), module);
        }
    }

    @Test
    void versionsAppearInOrderAndEqualTheOfflineMerge() {
        String group = "it-order";
        List<StreamFixtures.Adapter> live = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            StreamFixtures.Adapter a = StreamFixtures.adapter(group, "adapter-" + i, 1, 2, 40 + i);
            live.add(a);
            publish(group, List.of(a), List.of(a.publishEvent()));
        }
        List<String> keys = new ArrayList<>();
        List<MergedVersionManifest> versions = awaitVersions(group, 4, keys);
        assertEquals(List.of(1L, 2L, 3L, 4L), versions.stream().map(MergedVersionManifest::getSequence).toList());
        for (long s = 1; s <= 4; s++) assertTrue(keys.contains(group + "@" + s), "history key " + group + "@" + s);
        assertEqualsOffline(latestLayers(group), live);

        publish(group, List.of(), List.of(StreamFixtures.withdrawEvent(group, "adapter-1")));
        List<MergedVersionManifest> after = awaitVersions(group, 5, new ArrayList<>());
        MergedVersionManifest v5 = after.get(4);
        assertEquals(5, v5.getSequence());
        assertEquals(List.of("adapter-0", "adapter-2", "adapter-3"), v5.getAdapters().stream().map(r -> r.getAdapterId()).toList());
        live.remove(1);
        assertEqualsOffline(latestLayers(group), live);

        // The audit replays the inputs and finds every version equal...
        ReplayAudit audit = new ReplayAudit(broker.bootstrapServers(), Map.of(), service.topics(), 16 << 20);
        ReplayAudit.Report report = audit.audit(group, 1);
        assertTrue(report.ok(), () -> "audit: " + report.differences());
        assertEquals(5, report.compared());
        assertEquals(java.util.Set.of(ServiceVersion.get()), report.recordedBy());
        // ...and a planted difference is found and named.
        MergedVersionManifest forged = MergedVersionManifest.newBuilder(after.get(1)).setDigest("f".repeat(64))
                .setServiceVersion("lora-lego 0.0.1").build();
        java.util.Properties p = new java.util.Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(service.topics().mergedVersions(), group + "@2",
                    SERDES.mergedVersion().serializer().serialize(service.topics().mergedVersions(), forged)));
        }
        ReplayAudit.Report planted = audit.audit(group, 1);
        assertEquals(1, planted.differences().size(), () -> "differences: " + planted.differences());
        assertEquals(2, planted.differences().get(0).sequence());
        assertTrue(planted.differences().get(0).what().contains("f".repeat(64)), planted.differences().get(0).what());
        assertEquals(new java.util.TreeSet<>(java.util.Set.of("lora-lego 0.0.1", ServiceVersion.get())), planted.recordedBy());
        assertTrue(audit.audit(group, 3).ok(), "from version 3 on, the log is right");
        // A version deleted from the log (a tombstone on its history key) is reported, not a crash.
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(service.topics().mergedVersions(), group + "@5", null));
        }
        ReplayAudit.Report deleted = audit.audit(group, 3);
        assertEquals(List.of(new ReplayAudit.Difference(5, "the replay produced this version, the log has none (yet? a"
                        + " running service may still be merging it: audit again once `versions` shows it)")),
                deleted.differences());
        // in the middle of the history, a missing version is not one the service is still merging
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(service.topics().mergedVersions(), group + "@3", null));
        }
        assertEquals(new ReplayAudit.Difference(3, "the replay produced this version, the log has none"),
                audit.audit(group, 3).differences().get(0));
        assertEquals(2, deleted.compared(), "versions 3 and 4 are still recorded");
    }

    /**
     * Rolling upgrades in either order: a publisher newer than the service, whose boundary schemas gained a field,
     * writes those schemas to the schemas topic before its records (as {@code publish} does when the topic lacks them).
     * The service looks the unknown ids up there and merges the adapter; the audit replays it the same way. A record
     * whose schema is on neither side stays a dead letter.
     */
    @Test
    void aNewerPublishersRecordsDecodeThroughTheSchemasTopic() throws Exception {
        String group = "it-newer";
        StreamFixtures.Adapter first = StreamFixtures.adapter(group, "adapter-0", 1, 2, 60);
        publish(group, List.of(first), List.of(first.publishEvent()));

        Schema newerLayer = NewerSchemas.withExtraIntField(AdapterLayer.getClassSchema(), "shard");
        Schema newerEvent = NewerSchemas.withExtraIntField(AdapterEvent.getClassSchema(), "priority");
        String schemasTopic = service.topics().boundary().schemas();
        java.util.Properties p = new java.util.Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (Schema s : List.of(newerLayer, newerEvent)) {
                producer.send(new ProducerRecord<>(schemasTopic, Integer.toString(EmbeddedSchemaResolver.idOf(s)), s.toString()))
                        .get(30, java.util.concurrent.TimeUnit.SECONDS);
            }
        }
        StreamFixtures.Adapter newer = StreamFixtures.adapter(group, "adapter-1", 1, 2, 61);
        Map<String, byte[]> layers = new TreeMap<>();
        for (Map.Entry<String, AdapterLayer> e : newer.layers().entrySet()) layers.put(e.getKey(), NewerSchemas.encode(newerLayer, e.getValue(), 7));
        publishRaw(group, layers, NewerSchemas.encode(newerEvent, newer.publishEvent(), 7));

        List<MergedVersionManifest> versions = awaitVersions(group, 2, new ArrayList<>());
        assertEquals(2, versions.size(), "the newer publisher's adapter made version 2");
        assertEquals(List.of("adapter-0", "adapter-1"), versions.get(1).getAdapters().stream().map(r -> r.getAdapterId()).toList());
        assertEqualsOffline(latestLayers(group), List.of(first, newer));

        // an event whose schema nobody published is refused, naming the id
        Schema unpublished = NewerSchemas.withExtraIntField(AdapterEvent.getClassSchema(), "colour");
        StreamFixtures.Adapter orphan = StreamFixtures.adapter(group, "adapter-2", 1, 2, 62);
        Map<String, byte[]> plain = new TreeMap<>();
        orphan.layers().forEach((m, l) -> plain.put(m, SERDES.adapterLayer().serializer().serialize(service.topics().adapterLayers(), l)));
        String eventId = UUID.randomUUID().toString();
        publishRaw(group, plain, NewerSchemas.encode(unpublished, AdapterEvent.newBuilder(orphan.publishEvent()).setEventId(eventId).build(), 7));
        String expected = "unknown schema id " + EmbeddedSchemaResolver.idOf(unpublished);
        long deadline = System.currentTimeMillis() + 60_000;
        List<String> reasons = new ArrayList<>();
        while (reasons.stream().noneMatch(r -> r.contains(expected)) && System.currentTimeMillis() < deadline) {
            reasons.clear();
            for (ConsumerRecord<String, byte[]> r : ServiceTestSupport.readAll(broker.bootstrapServers(), service.topics().deadLetter())) {
                DeadLetter d = SERDES.deadLetter().deserializer().deserialize(r.topic(), r.value());
                if (group.equals(d.getGroup())) reasons.add(d.getReason());
            }
            Thread.sleep(200);
        }
        assertTrue(reasons.stream().anyMatch(r -> r.contains(expected)), () -> "dead letters of " + group + ": " + reasons);
        assertEquals(1, reasons.size(), () -> "only the orphan's event is refused: " + reasons);

        // The audit replays the refused event too, without logging it as a new rejection: its location in the replay
        // is the test driver's, not the log's (the service logged the real one).
        List<String> logged = new java.util.concurrent.CopyOnWriteArrayList<>();
        var context = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager.getContext(false);
        var deadLetterLogger = context.getLogger(DeadLetters.class.getName());
        var capture = new org.apache.logging.log4j.core.appender.AbstractAppender("audit-capture", null, null, true,
                org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY) {
            @Override
            public void append(org.apache.logging.log4j.core.LogEvent event) {
                logged.add(event.getMessage().getFormattedMessage());
            }
        };
        capture.start();
        deadLetterLogger.addAppender(capture);
        ReplayAudit.Report report;
        try {
            report = new ReplayAudit(broker.bootstrapServers(), Map.of(), service.topics(), 16 << 20).audit(group, 1);
        } finally {
            deadLetterLogger.removeAppender(capture);
            capture.stop();
        }
        assertTrue(report.ok(), () -> "audit: " + report.differences());
        assertEquals(2, report.compared());
        assertEquals(List.of(), logged, "the replay logs no dead letter");
    }

    /** Already encoded layers (by module) then the event, in one transaction, as {@code publish} writes them. */
    private static void publishRaw(String group, Map<String, byte[]> layers, byte[] event) {
        java.util.Properties p = new java.util.Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "test-newer-publisher-" + UUID.randomUUID());
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 16 << 20);
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            layers.forEach((m, v) -> producer.send(new ProducerRecord<>(service.topics().adapterLayers(), group + "|" + m, v)));
            producer.send(new ProducerRecord<>(service.topics().adapterEvents(), group, event));
            producer.commitTransaction();
        }
    }
}
