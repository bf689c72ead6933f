package dev.loralego.client;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.peft.DType;
import dev.loralego.peft.HandBuiltSafetensors;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.SafetensorsFile;
import dev.loralego.peft.SafetensorsWriter;
import dev.loralego.peft.TensorData;
import dev.loralego.peft.TensorInfo;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link AdapterPublisher} and the {@code publish} / {@code withdraw} commands against a real in-JVM broker.
 * Every test uses its own merge group, and checks the topics only for that group's keys.
 */
class AdapterPublisherTest {
    private static final String TIGRINYA = "gpt2-tigrinya-causal";
    private static final String FIXTURE_WEIGHTS = PeftAdapter.WEIGHTS_FILE;

    @TempDir
    static Path dir;
    private static ClientTestKafka kafka;

    @BeforeAll
    static void start() throws IOException {
        kafka = ClientTestKafka.start(dir);
    }

    @AfterAll
    static void stop() {
        if (kafka != null) kafka.close();
    }

    @Test
    void publishOfRealAdapterWritesEveryLayerAndTheEventCommitted() throws Exception {
        Path fixture = NaiveReference.fixture(TIGRINYA);
        String group = "pub-real";
        AdapterPublisher.Published p = new AdapterPublisher(kafka.connection()).publish(
                new AdapterPublisher.PublishRequest(group, null, null, 1.5, "nlp", fixture));

        List<ConsumerRecord<byte[], byte[]>> layerRecords = kafka.read(kafka.topics.adapterLayers(), group, true);
        List<ConsumerRecord<byte[], byte[]>> eventRecords = kafka.read(kafka.topics.adapterEvents(), group, true);
        try (PeftAdapter adapter = PeftAdapter.open(fixture)) {
            assertEquals(adapter.modules().size(), layerRecords.size(), "one layer record per module");
            assertEquals(36, layerRecords.size(), "12 layers x (attn.c_attn, attn.c_proj, mlp.c_proj)");
            TreeMap<String, String> expectedDigests = new TreeMap<>();
            for (ConsumerRecord<byte[], byte[]> r : layerRecords) {
                AdapterLayer layer = kafka.serdes.adapterLayer().deserializer().deserialize(r.topic(), r.value());
                String module = layer.getModule();
                LoraModuleInfo info = adapter.module(module);
                assertEquals(group + "|" + module, new String(r.key(), StandardCharsets.UTF_8));
                assertEquals(group, layer.getGroup());
                assertEquals(TIGRINYA, layer.getAdapterId(), "default adapter id is the directory name");
                assertEquals(1, layer.getAdapterVersion(), "no manifest yet: version 1");
                assertEquals(TensorDType.F32, layer.getDtype());
                assertEquals(8, layer.getRank());
                assertEquals(info.dIn(), layer.getDIn());
                assertEquals(info.dOut(), layer.getDOut());
                assertEquals(32.0 / 8.0, layer.getScaling(), 0.0, "lora_alpha / r");
                // Digest computed from the file's bytes with a reader written in the test.
                byte[] a = NaiveReference.rawTensor(fixture.resolve(FIXTURE_WEIGHTS), "base_model.model." + module + ".lora_A.weight");
                byte[] b = NaiveReference.rawTensor(fixture.resolve(FIXTURE_WEIGHTS), "base_model.model." + module + ".lora_B.weight");
                assertArrayEquals(a, bytes(layer.getA()), "A travels as stored: " + module);
                assertArrayEquals(b, bytes(layer.getB()), "B travels as stored: " + module);
                String digest = NaiveReference.sha256(a, b);
                assertEquals(digest, layer.getDigest(), module);
                expectedDigests.put(module, digest);
                // Decoded values are the adapter's values.
                assertArrayEquals(adapter.readA(module), toDoubles(NaiveReference.f32(bytes(layer.getA()))), 0.0, module);
                assertArrayEquals(adapter.readB(module), toDoubles(NaiveReference.f32(bytes(layer.getB()))), 0.0, module);
            }
            assertEquals(adapter.modules().keySet(), expectedDigests.keySet());

            assertEquals(1, eventRecords.size());
            assertEquals(group, new String(eventRecords.get(0).key(), StandardCharsets.UTF_8));
            AdapterEvent e = kafka.serdes.adapterEvent().deserializer().deserialize(kafka.topics.adapterEvents(),
                    eventRecords.get(0).value());
            assertEquals(AdapterEventType.PUBLISH, e.getType());
            assertEquals(p.eventId(), e.getEventId());
            assertEquals(36, e.getEventId().length(), "a UUID");
            assertEquals(TIGRINYA, e.getAdapterId());
            assertEquals(1, e.getAdapterVersion());
            assertEquals("nlp", e.getTeam());
            assertEquals("gpt2", e.getBaseModel());
            assertEquals(1.5, e.getWeight(), 0.0);
            List<String> names = new ArrayList<>(expectedDigests.keySet());
            List<String> eventNames = e.getModules().stream().map(ModuleRef::getModule).toList();
            assertEquals(names, eventNames, "modules sorted by name");
            for (ModuleRef m : e.getModules()) {
                LoraModuleInfo info = adapter.module(m.getModule());
                assertEquals(8, m.getRank());
                assertEquals(info.dIn(), m.getDIn());
                assertEquals(info.dOut(), m.getDOut());
                assertEquals(expectedDigests.get(m.getModule()), m.getDigest());
            }
            String whole = NaiveReference.wholeDigest(names, new ArrayList<>(expectedDigests.values()));
            assertEquals(whole, e.getAdapterDigest());
            assertEquals(whole, p.adapterDigest());
            assertEquals(8, e.getConfig().getR());
            assertEquals(32.0, e.getConfig().getLoraAlpha(), 0.0);
            assertTrue(e.getConfig().getFanInFanOut());
            assertEquals(List.of("c_attn", "c_proj"), e.getConfig().getTargetModules());
            assertEquals("CAUSAL_LM", e.getConfig().getTaskType());
        }
        // The layers come before the event in the transaction and every record is committed.
        long bytes = 0;
        for (ConsumerRecord<byte[], byte[]> r : layerRecords) bytes += r.key().length + r.value().length;
        bytes += eventRecords.get(0).key().length + eventRecords.get(0).value().length;
        assertEquals(bytes, p.bytes());
        assertEquals(layerRecords.size(), kafka.read(kafka.topics.adapterLayers(), group, false).size(),
                "read_uncommitted sees the same records: nothing was aborted");
    }

    /**
     * A publisher newer than every service that ran (here: a schemas topic no service wrote to) puts the schemas it
     * writes with on the schemas topic, so an older service can look them up; when they are there, it writes nothing.
     */
    @Test
    void aPublisherPutsItsSchemasOnTheSchemasTopicOnlyWhenTheTopicLacksThem() throws Exception {
        String schemasTopic = "schemas-fresh";
        kafka.createTopic(schemasTopic, Map.of("cleanup.policy", "compact"));
        ClientConnection c = ClientConnection.of(kafka.broker.bootstrapServers(), Map.of("topic.schemas", schemasTopic),
                ClientConnection.DEFAULT_MAX_RECORD_BYTES, ClientTestKafka.TIMEOUT);
        Path fixture = NaiveReference.fixture(TIGRINYA);
        String group = "pub-schemas";
        new AdapterPublisher(c).publish(new AdapterPublisher.PublishRequest(group, null, 1L, 1.0, null, fixture));
        String layerId = Integer.toString(dev.loralego.registry.EmbeddedSchemaResolver.idOf(AdapterLayer.getClassSchema()));
        String eventId = Integer.toString(dev.loralego.registry.EmbeddedSchemaResolver.idOf(AdapterEvent.getClassSchema()));
        List<ConsumerRecord<byte[], byte[]>> layerEntries = kafka.read(schemasTopic, layerId, true);
        List<ConsumerRecord<byte[], byte[]>> eventEntries = kafka.read(schemasTopic, eventId, true);
        assertEquals(1, layerEntries.size());
        assertEquals(1, eventEntries.size());
        assertEquals(AdapterLayer.getClassSchema(), new org.apache.avro.Schema.Parser()
                .parse(new String(layerEntries.get(0).value(), StandardCharsets.UTF_8)));
        assertEquals(AdapterEvent.getClassSchema(), new org.apache.avro.Schema.Parser()
                .parse(new String(eventEntries.get(0).value(), StandardCharsets.UTF_8)));

        // another publisher, and a withdrawal, find them there
        new AdapterPublisher(c).publish(new AdapterPublisher.PublishRequest(group, null, 2L, 1.0, null, fixture));
        new AdapterPublisher(c).withdraw(group, TIGRINYA, -1);
        assertEquals(2, kafka.count(schemasTopic), "nothing written twice");
    }

    @Test
    void aPublishWhoseSchemasCannotBeWrittenWritesNothing() throws Exception {
        String schemasTopic = "schemas-too-small";
        kafka.createTopic(schemasTopic, Map.of("cleanup.policy", "compact", "max.message.bytes", "200"));
        ClientConnection c = ClientConnection.of(kafka.broker.bootstrapServers(), Map.of("topic.schemas", schemasTopic),
                ClientConnection.DEFAULT_MAX_RECORD_BYTES, ClientTestKafka.TIMEOUT);
        String group = "pub-schemas-refused";
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new AdapterPublisher(c).publish(
                new AdapterPublisher.PublishRequest(group, null, 1L, 1.0, null, NaiveReference.fixture(TIGRINYA))));
        assertTrue(e.getMessage().startsWith("the schemas topic " + schemasTopic + " lacks the schemas this client writes with"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("nothing else was written"), e.getMessage());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, false));
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false));
    }

    /**
     * Without a schemas topic, a publish would write records that a service starting later, older than this client,
     * dead-letters as "unknown schema id", while an audit run once the schemas reach the topic decodes them: refused.
     */
    @Test
    void aPublishWithoutASchemasTopicWritesNothing() throws Exception {
        String schemasTopic = "schemas-missing";
        ClientConnection c = ClientConnection.of(kafka.broker.bootstrapServers(), Map.of("topic.schemas", schemasTopic),
                ClientConnection.DEFAULT_MAX_RECORD_BYTES, ClientTestKafka.TIMEOUT);
        String group = "pub-schemas-missing";
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new AdapterPublisher(c).publish(
                new AdapterPublisher.PublishRequest(group, null, 1L, 1.0, null, NaiveReference.fixture(TIGRINYA))));
        assertTrue(e.getMessage().startsWith("the schemas topic " + schemasTopic + " does not exist"), e.getMessage());
        assertTrue(e.getMessage().endsWith("nothing was written"), e.getMessage());
        IllegalStateException w = assertThrows(IllegalStateException.class, () -> new AdapterPublisher(c).withdraw(group, TIGRINYA, -1));
        assertTrue(w.getMessage().startsWith("the schemas topic " + schemasTopic + " does not exist"), w.getMessage());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, false));
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false));
    }

    /**
     * The schema id is 31 bits of a CRC, which anyone who may write the schemas topic can hit with a schema of their
     * choosing; a service takes the first entry under an id. A publisher that finds another schema under the id of
     * its own does not write records the service would decode with it.
     */
    @Test
    void aPublishWhoseSchemaIdIsTakenByAnotherSchemaWritesNothing() throws Exception {
        String schemasTopic = "schemas-taken";
        kafka.createTopic(schemasTopic, Map.of("cleanup.policy", "compact"));
        org.apache.avro.Schema crafted = dev.loralego.registry.NewerSchemas.collidingWith(AdapterEvent.getClassSchema());
        int id = dev.loralego.registry.EmbeddedSchemaResolver.idOf(AdapterEvent.getClassSchema());
        kafka.produce(schemasTopic, List.of(Map.entry(Integer.toString(id), crafted.toString().getBytes(StandardCharsets.UTF_8))));
        ClientConnection c = ClientConnection.of(kafka.broker.bootstrapServers(), Map.of("topic.schemas", schemasTopic),
                ClientConnection.DEFAULT_MAX_RECORD_BYTES, ClientTestKafka.TIMEOUT);
        String group = "pub-schemas-taken";
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new AdapterPublisher(c).publish(
                new AdapterPublisher.PublishRequest(group, null, 1L, 1.0, null, NaiveReference.fixture(TIGRINYA))));
        assertTrue(e.getMessage().startsWith("the schemas topic " + schemasTopic + " holds another schema under the id of one"
                + " this client writes with ({" + id + "=dev.loralego.avro.AdapterEvent})"), e.getMessage());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, false));
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false));
        assertEquals(1, kafka.count(schemasTopic), "not even the layer's schema was written");
    }

    @Test
    void defaultVersionFollowsTheLatestManifest() throws Exception {
        String group = "pub-version";
        MergedVersionManifest latest = manifest(group, 7, List.of(
                new AdapterRef("other", 9L, 1.0, null, "d1"), new AdapterRef("tiny", 4L, 1.0, null, "d2")));
        kafka.produce(kafka.topics.mergedVersions(), List.of(
                Map.entry(group, kafka.serdes.mergedVersion().serializer().serialize(kafka.topics.mergedVersions(), latest))));
        Path adapter = tinyAdapter(dir.resolve("tiny"), DType.F32, -1);

        AdapterPublisher.Published p = new AdapterPublisher(kafka.connection())
                .publish(new AdapterPublisher.PublishRequest(group, null, null, 1, null, adapter));
        assertEquals("tiny", p.adapterId());
        assertEquals(5, p.version(), "1 + version 4 of 'tiny' in the latest manifest");
        AdapterPublisher.Published q = new AdapterPublisher(kafka.connection())
                .publish(new AdapterPublisher.PublishRequest(group, "newcomer", null, 1, null, adapter));
        assertEquals(1, q.version(), "an adapter not in the manifest starts at 1");
        MergedVersionManifest withdrawn = manifest(group, 8, List.of(new AdapterRef("other", 9L, 1.0, null, "d1")));
        withdrawn.setWithdrawnVersions(Map.of("tiny", 4L));
        assertEquals(5, AdapterPublisher.nextVersion(java.util.Optional.of(withdrawn), "tiny"),
                "above the version last withdrawn: the service refuses a re-publish at or below it");
        assertEquals(10, AdapterPublisher.nextVersion(java.util.Optional.of(withdrawn), "other"));
        assertEquals(2, kafka.read(kafka.topics.adapterEvents(), group, true).size());
    }

    /**
     * Publishing, without a version, the content that is already live (same digest, weight and team) writes nothing:
     * a new version would make the service retract and re-add the same units and emit a version for nothing. A
     * different weight or team, or an explicit version, publishes.
     */
    @Test
    void republishingTheLiveContentWithoutAVersionWritesNothing() throws Exception {
        String group = "pub-same";
        Path adapter = tinyAdapter(dir.resolve("same"), DType.F32, -1);
        AdapterPublisher publisher = new AdapterPublisher(kafka.connection());
        AdapterPublisher.Published first = publisher.publish(new AdapterPublisher.PublishRequest(group, "same", 3L, 1.5, "nlp", adapter));
        assertFalse(first.unchanged());
        // What the service would emit once it merged version 3.
        kafka.produce(kafka.topics.mergedVersions(), List.of(Map.entry(group, kafka.serdes.mergedVersion().serializer()
                .serialize(kafka.topics.mergedVersions(), manifest(group, 1, List.of(
                        new AdapterRef("same", 3L, 1.5, "nlp", first.adapterDigest())))))));

        AdapterPublisher.Published again = publisher.publish(new AdapterPublisher.PublishRequest(group, "same", null, 1.5, "nlp", adapter));
        assertTrue(again.unchanged());
        assertEquals(3, again.version(), "the live version");
        assertEquals(1, kafka.read(kafka.topics.adapterEvents(), group, true).size(), "no second event");

        assertEquals(4, publisher.publish(new AdapterPublisher.PublishRequest(group, "same", null, 2.0, "nlp", adapter)).version(),
                "another weight is a new version");
        assertEquals(4, publisher.publish(new AdapterPublisher.PublishRequest(group, "same", null, 1.5, "cv", adapter)).version(),
                "another team is a new version (the manifest still says 3)");
        assertFalse(publisher.publish(new AdapterPublisher.PublishRequest(group, "same", 9L, 1.5, "nlp", adapter)).unchanged(),
                "an explicit version always publishes");
        assertEquals(4, kafka.read(kafka.topics.adapterEvents(), group, true).size());
    }

    @Test
    void publishAbortedHalfWayLeavesNothingCommitted() throws Exception {
        String group = "pub-abort";
        Path fixture = NaiveReference.fixture(TIGRINYA);
        AdapterPublisher publisher = new AdapterPublisher(kafka.connection());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> publisher.publish(
                new AdapterPublisher.PublishRequest(group, null, 1L, 1, null, fixture),
                (index, total, module, producer) -> {
                    if (index == 2) {
                        producer.flush(); // the three layer records reach the log inside the open transaction
                        throw new IllegalStateException("simulated crash after " + module);
                    }
                }));
        assertTrue(e.getMessage().contains("simulated crash"), e.getMessage());

        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, true), "read_committed sees no layer");
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, true), "read_committed sees no event");
        assertEquals(3, kafka.read(kafka.topics.adapterLayers(), group, false).size(),
                "the aborted records are in the log (read_uncommitted), so the abort is what hides them");
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false), "the event was never sent");

        // The same adapter publishes fine afterwards (same transactional id).
        AdapterPublisher.Published p = publisher.publish(new AdapterPublisher.PublishRequest(group, null, 1L, 1, null, fixture));
        assertEquals(36, kafka.read(kafka.topics.adapterLayers(), group, true).size());
        assertEquals(1, kafka.read(kafka.topics.adapterEvents(), group, true).size());
        assertEquals(1, p.version());
    }

    @Test
    void oversizedRecordFailsBeforeAnythingIsWritten() throws Exception {
        String group = "pub-oversized";
        Path fixture = NaiveReference.fixture(TIGRINYA);
        // attn.c_attn is 8x768 + 2304x8 F32 = 98,304 bytes of tensors; mlp.c_proj 8x3072 + 768x8 = 122,880.
        int max = 110_000;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdapterPublisher(kafka.connection(max))
                .publish(new AdapterPublisher.PublishRequest(group, null, 1L, 1, null, fixture)));
        assertTrue(e.getMessage().contains("mlp.c_proj"), e.getMessage());
        assertTrue(e.getMessage().contains("110000"), e.getMessage());
        assertTrue(e.getMessage().contains("nothing was published"), e.getMessage());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, false), "not even uncommitted layers");
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false));
    }

    @Test
    void nanInATensorFailsNamingModuleAndTensor() throws Exception {
        String group = "pub-nan";
        Path adapter = tinyAdapter(dir.resolve("nan-adapter"), DType.F32, 7);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdapterPublisher(kafka.connection())
                .publish(new AdapterPublisher.PublishRequest(group, null, 1L, 1, null, adapter)));
        assertTrue(e.getMessage().contains("module model.layers.0.q_proj"), e.getMessage());
        assertTrue(e.getMessage().contains("lora_A"), e.getMessage());
        assertTrue(e.getMessage().contains("NaN at element 7 (row 1, column 1)"), e.getMessage());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterLayers(), group, false));
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), group, false));
    }

    @Test
    void f64TensorsTravelAsF32AndBf16AsStored() throws Exception {
        String group = "pub-dtypes";
        Path f64 = tinyAdapter(dir.resolve("f64"), DType.F64, -1);
        Path bf16 = tinyAdapter(dir.resolve("bf16"), DType.BF16, -1);
        AdapterPublisher publisher = new AdapterPublisher(kafka.connection());
        publisher.publish(new AdapterPublisher.PublishRequest(group, "f64", 1L, 1, null, f64));
        publisher.publish(new AdapterPublisher.PublishRequest(group, "bf16", 1L, 1, null, bf16));
        Map<String, AdapterLayer> byAdapter = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : kafka.read(kafka.topics.adapterLayers(), group, true)) {
            AdapterLayer l = kafka.serdes.adapterLayer().deserializer().deserialize(r.topic(), r.value());
            byAdapter.put(l.getAdapterId() + "/" + l.getModule(), l);
        }
        assertEquals(4, byAdapter.size());
        try (PeftAdapter source = PeftAdapter.open(f64)) {
            for (String module : source.modules().keySet()) {
                AdapterLayer l = byAdapter.get("f64/" + module);
                assertEquals(TensorDType.F32, l.getDtype());
                double[] a = source.readA(module);
                float[] sent = NaiveReference.f32(bytes(l.getA()));
                for (int i = 0; i < a.length; i++) assertEquals((float) a[i], sent[i], 0.0f, "F64 rounded to F32");
                assertEquals(NaiveReference.sha256(bytes(l.getA()), bytes(l.getB())), l.getDigest());
            }
        }
        Path weights = bf16.resolve(PeftAdapter.WEIGHTS_FILE);
        for (String module : List.of("model.layers.0.q_proj", "model.layers.0.v_proj")) {
            AdapterLayer l = byAdapter.get("bf16/" + module);
            assertEquals(TensorDType.BF16, l.getDtype());
            assertEquals("BF16", NaiveReference.dtype(weights, "base_model.model." + module + ".lora_A.weight"));
            assertArrayEquals(NaiveReference.rawTensor(weights, "base_model.model." + module + ".lora_B.weight"), bytes(l.getB()));
        }
    }

    /**
     * A non-float extra tensor (a {@code modules_to_save} BatchNorm's I64 {@code num_batches_tracked}) is left out of
     * the publish like a float head: the layers and digests are those of the same adapter without it.
     */
    @Test
    void nonFloatExtraTensorsAreLeftOutOfThePublish() throws Exception {
        Path plain = tinyAdapter(dir.resolve("plain-for-extra"), DType.F32, -1);
        Path extra = dir.resolve("with-i64-extra");
        Files.createDirectories(extra);
        Files.copy(plain.resolve(PeftAdapter.CONFIG_FILE), extra.resolve(PeftAdapter.CONFIG_FILE));
        HandBuiltSafetensors weights = new HandBuiltSafetensors();
        try (SafetensorsFile f = SafetensorsFile.open(plain.resolve(FIXTURE_WEIGHTS))) {
            for (TensorInfo t : f.tensors().values()) weights.tensor(t.name(), "F32", t.shape(), f.readRawBytes(t.name()));
        }
        String counter = "base_model.model.classifier.bn.num_batches_tracked";
        weights.i64(counter, new long[]{}, 42).write(extra.resolve(FIXTURE_WEIGHTS));

        AdapterPublisher publisher = new AdapterPublisher(kafka.connection());
        AdapterPublisher.Published withExtra = publisher.publish(
                new AdapterPublisher.PublishRequest("pub-i64-extra", "a", 1L, 1, null, extra));
        AdapterPublisher.Published without = publisher.publish(
                new AdapterPublisher.PublishRequest("pub-i64-plain", "a", 1L, 1, null, plain));
        assertEquals(List.of(counter), withExtra.leftOut());
        assertEquals(List.of(), without.leftOut());
        assertEquals(without.modules(), withExtra.modules());
        assertEquals(without.adapterDigest(), withExtra.adapterDigest());
        assertEquals(2, kafka.read(kafka.topics.adapterLayers(), "pub-i64-extra", true).size());
    }

    @Test
    void withdrawWritesWithdrawEvents() throws Exception {
        String group = "withdraw";
        AdapterPublisher publisher = new AdapterPublisher(kafka.connection());
        AdapterEvent live = publisher.withdraw(group, "a1", -1);
        AdapterEvent v3 = publisher.withdraw(group, "a2", 3);
        List<ConsumerRecord<byte[], byte[]>> records = kafka.read(kafka.topics.adapterEvents(), group, true);
        assertEquals(2, records.size());
        Map<String, AdapterEvent> byId = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            AdapterEvent e = kafka.serdes.adapterEvent().deserializer().deserialize(r.topic(), r.value());
            byId.put(e.getAdapterId(), e);
        }
        assertEquals(AdapterEventType.WITHDRAW, byId.get("a1").getType());
        assertEquals(-1, byId.get("a1").getAdapterVersion());
        assertEquals(live.getEventId(), byId.get("a1").getEventId());
        assertEquals(3, byId.get("a2").getAdapterVersion());
        assertEquals(v3.getEventId(), byId.get("a2").getEventId());
        assertEquals(List.of(), byId.get("a2").getModules());
        assertNull(byId.get("a2").getConfig());
        assertThrows(IllegalArgumentException.class, () -> publisher.withdraw("bad|group", "a", -1));
    }

    @Test
    void publishCommandPublishesAndReportsWithConfigFileBootstrap() throws Exception {
        String group = "cli-publish";
        Path config = dir.resolve("client.properties");
        Files.writeString(config, "bootstrap.servers=" + kafka.broker.bootstrapServers() + "\n");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("publish", "--group", group, "--config", config.toString(), "--version", "3",
                "--weight", "2", "--team", "speech", "--adapter-id", "tig", NaiveReference.fixture(TIGRINYA).toString());
        assertEquals(0, code, err.toString());
        assertTrue(out.toString().contains("published tig version 3 to group " + group), out.toString());
        assertTrue(out.toString().contains("modules: 36"), out.toString());
        assertTrue(out.toString().endsWith("  the service may still reject it; check with: dead-letters --group " + group
                + System.lineSeparator()), out.toString());
        List<ConsumerRecord<byte[], byte[]>> events = kafka.read(kafka.topics.adapterEvents(), group, true);
        assertEquals(1, events.size());
        AdapterEvent e = kafka.serdes.adapterEvent().deserializer().deserialize(kafka.topics.adapterEvents(), events.get(0).value());
        assertEquals(3, e.getAdapterVersion());
        assertEquals(2.0, e.getWeight(), 0.0);
        assertEquals("speech", e.getTeam());
        assertTrue(out.toString().contains(e.getAdapterDigest()), out.toString());

        StringWriter withdrawOut = new StringWriter();
        cl.setOut(new PrintWriter(withdrawOut));
        assertEquals(0, cl.execute("withdraw", "--group", group, "--adapter-id", "tig", "--bootstrap-servers",
                kafka.broker.bootstrapServers()), err.toString());
        assertTrue(withdrawOut.toString().contains("sent the withdrawal of tig (the live version) from group " + group), withdrawOut.toString());
        assertTrue(withdrawOut.toString().contains("dead-letters --group " + group), withdrawOut.toString());
        assertEquals(2, kafka.read(kafka.topics.adapterEvents(), group, true).size());
    }

    @Test
    void publishCommandFailsWithClearMessageAndExitCode() throws Exception {
        Path adapter = tinyAdapter(dir.resolve("cli-nan"), DType.F16, 0);
        StringWriter err = new StringWriter();
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(new StringWriter()));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("publish", "--group", "cli-nan", "--bootstrap-servers", kafka.broker.bootstrapServers(),
                adapter.toString());
        assertEquals(1, code);
        assertTrue(err.toString().contains("model.layers.0.q_proj") && err.toString().contains("NaN"), err.toString());
        int missing = cl.execute("publish", "--group", "cli-nan", "--bootstrap-servers", kafka.broker.bootstrapServers(),
                dir.resolve("no-such-adapter").toString());
        assertEquals(1, missing);
        assertTrue(err.toString().contains("no-such-adapter"), err.toString());
        assertEquals(List.of(), kafka.read(kafka.topics.adapterEvents(), "cli-nan", false));
    }

    // ------------------------------------------------------------------------------------------------

    /**
     * A two-module adapter (q_proj, v_proj of layer 0; r = 2, 6 -> 4) in {@code dtype}; if
     * {@code nanAt >= 0}, element {@code nanAt} of q_proj's lora_A is NaN.
     */
    static Path tinyAdapter(Path dir, DType dtype, int nanAt) throws IOException {
        Files.createDirectories(dir);
        ObjectNode config = JsonNodeFactory.instance.objectNode();
        config.put("peft_type", "LORA");
        config.put("r", 2);
        config.put("lora_alpha", 4);
        config.put("base_model_name_or_path", "tiny-base");
        config.putArray("target_modules").add("q_proj").add("v_proj");
        config.put("task_type", "CAUSAL_LM");
        Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), config.toPrettyString());
        SplittableRandom rnd = new SplittableRandom(17);
        List<TensorData> tensors = new ArrayList<>();
        for (String m : List.of("q_proj", "v_proj")) {
            double[] a = new double[2 * 6];
            double[] b = new double[4 * 2];
            // Multiples of 1/64 in [-2, 2]: exact in every dtype, so BF16 and F16 hold them unchanged.
            for (int i = 0; i < a.length; i++) a[i] = (rnd.nextInt(257) - 128) / 64.0;
            for (int i = 0; i < b.length; i++) b[i] = (rnd.nextInt(257) - 128) / 64.0;
            if (nanAt >= 0 && m.equals("q_proj")) a[nanAt] = Double.NaN;
            String prefix = "base_model.model.model.layers.0." + m;
            tensors.add(new TensorData(prefix + ".lora_A.weight", dtype, new long[]{2, 6}, a));
            tensors.add(new TensorData(prefix + ".lora_B.weight", dtype, new long[]{4, 2}, b));
        }
        SafetensorsWriter.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), null, tensors);
        return dir;
    }

    static MergedVersionManifest manifest(String group, long sequence, List<AdapterRef> adapters) {
        return MergedVersionManifest.newBuilder().setGroup(group).setSequence(sequence).setBaseModel("tiny-base")
                .setTrigger(new VersionTrigger("e-" + sequence, AdapterEventType.PUBLISH, adapters.get(0).getAdapterId(),
                        adapters.get(0).getAdapterVersion()))
                .setAdapters(adapters).setModules(List.of()).setDigest(NaiveReference.wholeDigest(List.of(), List.of()))
                .setParameters(Map.of()).setEventTimestamp(1000L * sequence).setServiceVersion("test").build();
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer d = buffer.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
