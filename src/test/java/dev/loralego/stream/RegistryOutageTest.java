package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.lego.LegoOptions;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.SchemaRegistryException;
import dev.loralego.registry.SchemaResolver;
import org.apache.avro.Schema;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A schema registry that cannot be reached says nothing about the record being decoded: the record must not be
 * dead-lettered (it would be lost: its offset is committed with the dead letter). The stream thread fails instead
 * and, replaced, retries from its last commit (MergeService's handler).
 */
class RegistryOutageTest {

    /** The embedded resolver, except that lookups fail as {@link dev.loralego.registry.RegistrySchemaResolver}'s do after all retries. */
    private static final class FlakyResolver implements SchemaResolver {
        private final EmbeddedSchemaResolver delegate = new EmbeddedSchemaResolver();
        volatile boolean down;

        @Override
        public int register(String subject, Schema schema) {
            return delegate.register(subject, schema);
        }

        @Override
        public Schema byId(int id) {
            if (down) {
                throw new SchemaRegistryException("schema registry [http://registry:8081] failed fetching schema id " + id
                        + " after 5 attempts; last: ConnectException", -1, -1, null);
            }
            return delegate.byId(id);
        }
    }

    @TempDir
    Path stateDir;

    private final FlakyResolver resolver = new FlakyResolver();
    /** Writes the inputs as a publisher would (its own resolver). */
    private final TopologySerdes publisher = MergeService.serdes(new EmbeddedSchemaResolver());
    private final ServiceTopics topics = ServiceTopics.defaults("lora-lego-outage");
    private TopologyTestDriver driver;
    private TestInputTopic<byte[], byte[]> events;
    private TestInputTopic<byte[], byte[]> layers;
    private TestOutputTopic<String, byte[]> deadLetters;
    private long clock = 1_000;

    @BeforeEach
    void start() {
        MergeParameters params = new MergeParameters(LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 16);
        List<dev.loralego.avro.MergedVersionManifest> emitted = new ArrayList<>();
        MergeTopology.Settings settings = new MergeTopology.Settings(topics, MergeService.serdes(resolver),
                (g, s) -> params, 64 << 20, "test", emitted::add);
        driver = ReplayAudit.privateTopology(settings, "lora-lego-outage", stateDir);
        ByteArraySerializer bytes = new ByteArraySerializer();
        events = driver.createInputTopic(topics.adapterEvents(), bytes, bytes);
        layers = driver.createInputTopic(topics.adapterLayers(), bytes, bytes);
        deadLetters = driver.createOutputTopic(topics.deadLetter(), new StringDeserializer(), new ByteArrayDeserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    @Test
    void layerIsNotDeadLetteredWhileTheRegistryIsUnreachable() {
        StreamFixtures.Adapter a = StreamFixtures.adapter("g1", "a1", 1, 2, 7);
        AdapterLayer layer = a.layers().values().iterator().next();
        byte[] value = publisher.adapterLayer().serializer().serialize(topics.adapterLayers(), layer);
        resolver.down = true;
        RuntimeException e = assertThrows(RuntimeException.class, () -> layers.pipeInput(
                key("g1|" + layer.getModule()), value, Instant.ofEpochMilli(clock++)));
        assertTrue(causedBy(e, SchemaRegistryException.class), e.toString());
        assertEquals(0, deadLetters.getQueueSize(), "a valid layer was dead-lettered because the registry was down");
    }

    @Test
    void eventIsNotDeadLetteredWhileTheRegistryIsUnreachable() {
        StreamFixtures.Adapter a = StreamFixtures.adapter("g1", "a1", 1, 2, 7);
        AdapterEvent event = a.publishEvent();
        byte[] value = publisher.adapterEvent().serializer().serialize(topics.adapterEvents(), event);
        resolver.down = true;
        RuntimeException e = assertThrows(RuntimeException.class, () -> events.pipeInput(
                key("g1"), value, Instant.ofEpochMilli(clock++)));
        assertTrue(causedBy(e, SchemaRegistryException.class), e.toString());
        assertEquals(0, deadLetters.getQueueSize(), "a valid event was dead-lettered because the registry was down");
    }

    private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (type.isInstance(c)) return true;
        }
        return false;
    }

    private static byte[] key(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
