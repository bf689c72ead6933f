package dev.loralego.cli;

import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code audit} on a real (in-JVM) broker: the edges of the command rather than the replay itself. */
class AuditCommandTest {
    private static final int MAX_BYTES = 16 << 20;

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        try (Admin admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
            TopicAdmin.ensureTopics(admin, TopicNames.defaults(), 1, (short) 1, MAX_BYTES);
        }
    }

    @AfterAll
    static void stop() {
        if (broker != null) broker.close();
    }

    static MergedVersionManifest manifest(String group, long sequence) {
        return MergedVersionManifest.newBuilder().setGroup(group).setSequence(sequence)
                .setTrigger(new VersionTrigger("e" + sequence, AdapterEventType.PUBLISH, "a", 1L))
                .setAdapters(List.of()).setModules(List.of()).setDigest("d" + sequence)
                .setParameters(MergeParameters.defaults().toMap())
                .setEventTimestamp(1000L * sequence).setServiceVersion("test").setWarnings(List.of())
                .setMeanInertia(0.0).build();
    }

    /** Records a (forged) manifest of {@code group@sequence}: what the audit compares the replay with. */
    static void record(String group, long sequence) {
        String topic = TopicNames.defaults().mergedVersions();
        byte[] value = MergeService.serdes(new EmbeddedSchemaResolver()).mergedVersion().serializer()
                .serialize(topic, manifest(group, sequence));
        try (KafkaProducer<String, byte[]> p = producer()) {
            p.send(new ProducerRecord<>(topic, group + "@" + sequence, value));
            p.send(new ProducerRecord<>(topic, group, value));
        }
    }

    static KafkaProducer<String, byte[]> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, MAX_BYTES);
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 64L << 20);
        return new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    }

    /** Runs {@code audit} in this JVM; its report goes to System.out. */
    static CommandRun audit(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            List<String> all = new ArrayList<>(List.of("audit", "--bootstrap-servers", broker.bootstrapServers(),
                    "--max-record-bytes", Integer.toString(MAX_BYTES), "--timeout", "30"));
            all.addAll(List.of(args));
            CommandRun run = CommandRun.of(all.toArray(String[]::new));
            return new CommandRun(run.exit(), captured.toString(StandardCharsets.UTF_8) + run.out(), run.err());
        } finally {
            System.setOut(saved);
        }
    }

    /** {@code --from-version} past the group's last version: nothing to compare, said as such (exit 1), not a crash. */
    @Test
    void aFromVersionPastTheLastVersionSaysThereIsNothingToCompare() {
        record("past-end", 1);
        CommandRun run = audit("--group", "past-end", "--from-version", "5");
        assertEquals(1, run.exit(), run::toString);
        assertFalse(run.err().contains("out of bounds"), run::toString);
        assertTrue(run.out().contains("audit of group past-end: nothing to compare"), run::toString);
        assertTrue(run.out().contains("from version 5") && run.out().contains("1..1"), run::toString);
    }

    /**
     * The audit of one group keeps only that group's records: the layers topic of a real deployment holds every group's
     * tensors (gigabytes), far more than the audit's heap. Here 320 MiB of another group's layers and an audit JVM with
     * a 128 MiB heap: the audit must run to its report (the replay of the small group has no version 1: one difference).
     */
    @Test
    void anAuditKeepsOnlyItsGroupsRecordsNotTheWholeLayersTopic() throws Exception {
        record("small", 1);
        byte[] tensor = new byte[4 << 20];
        new SplittableRandom(7).nextBytes(tensor);
        try (KafkaProducer<String, byte[]> p = producer()) {
            for (int i = 0; i < 80; i++) {
                p.send(new ProducerRecord<>(TopicNames.defaults().adapterLayers(), "big|layers." + i + ".q_proj", tensor));
            }
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path log = dir.resolve("audit-child.log");
        Process child = new ProcessBuilder(java, "-Xmx128m", "-Djava.io.tmpdir=" + dir,
                "-cp", System.getProperty("java.class.path"), LoraLegoCommand.class.getName(), "audit",
                "--group", "small", "--bootstrap-servers", broker.bootstrapServers(),
                "--max-record-bytes", Integer.toString(MAX_BYTES), "--timeout", "60")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        boolean done = child.waitFor(180, TimeUnit.SECONDS);
        if (!done) child.destroyForcibly().waitFor();
        String out = Files.readString(log);
        assertTrue(done, () -> "audit did not finish:\n" + out);
        assertFalse(out.contains("OutOfMemoryError"), out);
        assertEquals(1, child.exitValue(), out);
        assertTrue(out.contains("audit of group small: 1 difference(s) in 1 version(s) compared; first: version 1: recorded,"
                + " but the replay produced no such version"), out);
    }
}
