package dev.loralego.registry;

import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.ModuleRef;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Ids, lookups and the schemas topic of {@link EmbeddedSchemaResolver}. */
class EmbeddedSchemaResolverTest {

    @Test
    void knowsEveryShippedSchemaUnderItsFingerprintId() {
        EmbeddedSchemaResolver r = new EmbeddedSchemaResolver();
        Set<Integer> ids = new HashSet<>();
        for (Schema s : EmbeddedSchemaResolver.SHIPPED_SCHEMAS) {
            int id = AvroSerdeTest.expectedId(s);
            assertEquals(id, EmbeddedSchemaResolver.idOf(s), s.getFullName());
            assertEquals(s, r.byId(id), s.getFullName());
            ids.add(id);
        }
        assertEquals(11, ids.size(), "distinct ids");
        for (Schema s : EmbeddedSchemaResolver.EARLIER_SCHEMAS) {
            ids.add(EmbeddedSchemaResolver.idOf(s));
        }
        assertEquals(11 + EmbeddedSchemaResolver.EARLIER_SCHEMAS.size(), ids.size(), "distinct ids, earlier ones included");
        assertEquals(ids, new HashSet<>(r.knownIds()));
    }

    @Test
    void unknownIdIsAClearError() {
        UnknownSchemaIdException e = assertThrows(UnknownSchemaIdException.class,
                () -> new EmbeddedSchemaResolver().byId(5));
        assertTrue(e.getMessage().startsWith("unknown schema id 5"), e.getMessage());
        assertEquals(5, e.id());
    }

    @Test
    void registrationIsIdempotentIndependentOfSubjectAndIgnoresDocs() {
        EmbeddedSchemaResolver r = new EmbeddedSchemaResolver();
        Schema s = ModuleRef.getClassSchema();
        int id = r.register("a-value", s);
        assertEquals(id, r.register("b-value", s));
        assertEquals(EmbeddedSchemaResolver.idOf(s), id);
        Schema undocumented = new Schema.Parser().parse(SchemaNormalization.toParsingForm(s));
        assertEquals(id, r.register("c-value", undocumented), "docs do not change the encoding or the id");
        Schema other = AvroSerdeTest.variant(s, Set.of("digest"), null);
        int otherId = r.register("a-value", other);
        assertNotEquals(id, otherId);
        assertEquals(other, r.byId(otherId));
        assertEquals(12 + EmbeddedSchemaResolver.EARLIER_SCHEMAS.size(), r.knownIds().size());
    }

    @Test
    void aReaderWithOnlyTheLogDecodesSchemasItDoesNotShip(@TempDir Path tmp) throws Exception {
        String topic = "lora.schemas";
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(tmp.resolve("kafka"), 0)) {
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            try (Admin admin = Admin.create(ap)) {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                        .configs(Map.of("cleanup.policy", "compact")))).all().get(30, TimeUnit.SECONDS);
            }

            // The writer knows a newer DeadLetter with an extra field and publishes everything it knows.
            EmbeddedSchemaResolver writer = new EmbeddedSchemaResolver();
            Schema newer = AvroSerdeTest.variant(DeadLetter.getClassSchema(), Set.of(),
                    new Schema.Field("attempts", Schema.create(Schema.Type.INT), null, null));
            int newerId = writer.register("lora.deadletter-value", newer);
            DeadLetter letter = AvroSamples.deadLetter(new SplittableRandom(3));
            byte[] record = NewerSchemas.encode(newer, letter, 4);

            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            try (KafkaProducer<String, String> producer =
                         new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                assertEquals(12 + EmbeddedSchemaResolver.EARLIER_SCHEMAS.size(), writer.publishSchemas(producer, topic));
                // entries a reader must skip: not a schema; a schema under a key that is not its id
                producer.send(new ProducerRecord<>(topic, "123", "not json")).get(30, TimeUnit.SECONDS);
                producer.send(new ProducerRecord<>(topic, "999", ModuleRef.getClassSchema().toString()))
                        .get(30, TimeUnit.SECONDS);
                producer.send(new ProducerRecord<>(topic, "77", null)).get(30, TimeUnit.SECONDS);
            }

            EmbeddedSchemaResolver reader = new EmbeddedSchemaResolver();
            AvroSerde<DeadLetter> serde = new AvroSerde<>(DeadLetter.class, reader);
            BadRecordException before = assertThrows(BadRecordException.class,
                    () -> serde.deserialize("lora.deadletter", record));
            assertTrue(before.reason().startsWith("unknown schema id " + newerId), before.reason());

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            try (KafkaConsumer<String, String> consumer =
                         new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                assertEquals(1, reader.loadFrom(consumer, topic, Duration.ofSeconds(30)), "only the newer schema is new");
            }
            assertEquals(letter, serde.deserialize("lora.deadletter", record));
            assertThrows(UnknownSchemaIdException.class, () -> reader.byId(999));
            assertThrows(UnknownSchemaIdException.class, () -> reader.byId(123));

            try (KafkaConsumer<String, String> consumer =
                         new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
                SerializationException missing = assertThrows(SerializationException.class,
                        () -> reader.loadFrom(consumer, "no.such.topic", Duration.ofSeconds(3)));
                assertTrue(missing.getMessage().contains("no.such.topic"), missing.getMessage());
            }
        }
    }

    @Test
    void aFollowingResolverLooksUnknownIdsUpOnTheSchemasTopicAsTheyArePublished(@TempDir Path tmp) throws Exception {
        String topic = "lora.schemas";
        Schema newer = NewerSchemas.withExtraIntField(DeadLetter.getClassSchema(), "attempts");
        int newerId = EmbeddedSchemaResolver.idOf(newer);
        Schema later = NewerSchemas.withExtraIntField(DeadLetter.getClassSchema(), "shard");
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(tmp.resolve("kafka"), 0)) {
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            cp.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
            int[] consumers = {0};
            try (SchemasTopicFollower follower = new SchemasTopicFollower(() -> {
                consumers[0]++;
                return new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
            }, topic, Duration.ofSeconds(5))) {
                EmbeddedSchemaResolver resolver = new EmbeddedSchemaResolver(follower);
                assertEquals(DeadLetter.getClassSchema(), resolver.byId(EmbeddedSchemaResolver.idOf(DeadLetter.getClassSchema())));
                assertEquals(0, consumers[0], "a shipped id needs no look-up");
                // no schemas topic yet: the id is unknown, not a failure
                assertThrows(UnknownSchemaIdException.class, () -> resolver.byId(newerId));

                Properties ap = new Properties();
                ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
                try (Admin admin = Admin.create(ap)) {
                    admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                            .configs(Map.of("cleanup.policy", "compact")))).all().get(30, TimeUnit.SECONDS);
                }
                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                    producer.send(new ProducerRecord<>(topic, Integer.toString(newerId), newer.toString())).get(30, TimeUnit.SECONDS);
                    assertEquals(newer, resolver.byId(newerId), "published after the resolver was made, found at the look-up");
                    int laterId = EmbeddedSchemaResolver.idOf(later);
                    assertThrows(UnknownSchemaIdException.class, () -> resolver.byId(laterId));
                    // a schema under another schema's id is never taken
                    producer.send(new ProducerRecord<>(topic, Integer.toString(laterId), newer.toString())).get(30, TimeUnit.SECONDS);
                    assertThrows(UnknownSchemaIdException.class, () -> resolver.byId(laterId));
                    producer.send(new ProducerRecord<>(topic, Integer.toString(laterId), later.toString())).get(30, TimeUnit.SECONDS);
                    assertEquals(later, resolver.byId(laterId), "each look-up reads what was written since the last");
                }
                assertEquals(1, consumers[0], "one consumer for the resolver's life");
            }
        }
    }

    /**
     * {@code MergeService.close} closes the follower once {@code KafkaStreams.close} returns, which it does after 30 s
     * even if a stream thread is still processing: a lookup of that thread must fail (the record is retried after the
     * restart), not find the id unknown (the record would be dead-lettered, and the audit would decode it).
     */
    @Test
    void aLookupAfterTheFollowerIsClosedIsARegistryFailureNotAnUnknownId() {
        int[] consumers = {0};
        SchemasTopicFollower follower = new SchemasTopicFollower(() -> {
            consumers[0]++;
            throw new AssertionError("no consumer after close");
        }, "lora.schemas", Duration.ofSeconds(2));
        EmbeddedSchemaResolver resolver = new EmbeddedSchemaResolver(follower);
        follower.close();
        int shipped = EmbeddedSchemaResolver.idOf(DeadLetter.getClassSchema());
        assertEquals(DeadLetter.getClassSchema(), resolver.byId(shipped), "a shipped id needs no look-up");
        SchemaRegistryException e = assertThrows(SchemaRegistryException.class, () -> resolver.byId(5));
        assertTrue(e.getMessage().contains("lora.schemas is no longer followed"), e.getMessage());
        assertEquals(0, consumers[0]);
    }

    @Test
    void aSchemasTopicThatCannotBeReadIsARegistryFailureNotAnUnknownId() {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:1"); // nothing listens there
        try (SchemasTopicFollower follower = new SchemasTopicFollower(
                () -> new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer()), "lora.schemas",
                Duration.ofSeconds(2))) {
            EmbeddedSchemaResolver resolver = new EmbeddedSchemaResolver(follower);
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class, () -> resolver.byId(5));
            assertTrue(e.getMessage().startsWith("reading the schemas topic lora.schemas failed"), e.getMessage());
        }
    }
}
