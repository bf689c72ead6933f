package dev.loralego.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.avro.DeadLetter;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.kafka.TopicNames;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code dead-letters} ({@link DeadLetterReader}) against the in-JVM broker, with dead letters written as the
 * service writes them (its serde, key = group). The default topic holds the backlog test's letters only; the
 * other tests name their own topic through {@code topic.deadletter} in a {@code --config} file.
 */
class DeadLettersCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** 2023-11-14T22:13:20.000Z */
    private static final long T0 = 1_700_000_000_000L;

    @TempDir
    static Path dir;
    private static ClientTestKafka kafka;

    @BeforeAll
    static void start() throws Exception {
        kafka = ClientTestKafka.start(dir);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.broker.bootstrapServers());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic("dl.empty", 2, (short) 1), new NewTopic("dl.follow", 2, (short) 1)))
                    .all().get();
        }
    }

    @AfterAll
    static void stop() {
        if (kafka != null) kafka.close();
    }

    @Test
    void printsEveryDeadLetterOldestFirstFilteredByGroupAndAsJson() throws Exception {
        String topic = kafka.topics.deadLetter();
        // Written out of time order, two groups (so, by key, more than one partition), a letter without group.
        byte[] layerValue = new byte[1234];
        kafka.produce(topic, List.of(
                letter(topic, "dl-a", "lora.adapter.events", 0, 7, T0 + 3000, "withdraw of adapter 'x', which is not live in group dl-a",
                        "adapterId", "dl-a".getBytes(StandardCharsets.UTF_8), new byte[40]),
                letter(topic, "dl-b", "lora.adapter.layers", 2, 11, T0 + 2000, "digest mismatch: record says 00, bytes give 11",
                        "digest", "dl-b|model.layers.0.q_proj".getBytes(StandardCharsets.UTF_8), layerValue),
                letter(topic, "dl-a", "lora.adapter.events", 1, 3, T0 + 1000, "base model 'gpt2' differs from the group's 'llama'",
                        "baseModel", "dl-a".getBytes(StandardCharsets.UTF_8), new byte[60]),
                letter(topic, null, "lora.adapter.events", 0, 9, T0 + 4000, "event record has no value", "value", null, null),
                Map.entry("garbage", new byte[]{1, 2, 3})));

        CommandResult all = run("dead-letters", "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(0, all.exit, all::toString);
        assertEquals(List.of(
                "2023-11-14T22:13:21.000Z dl-a lora.adapter.events/1@3: base model 'gpt2' differs from the group's 'llama' [field baseModel]",
                "2023-11-14T22:13:22.000Z dl-b lora.adapter.layers/2@11: digest mismatch: record says 00, bytes give 11 [field digest]",
                "2023-11-14T22:13:23.000Z dl-a lora.adapter.events/0@7: withdraw of adapter 'x', which is not live in group dl-a [field adapterId]",
                "2023-11-14T22:13:24.000Z - lora.adapter.events/0@9: event record has no value [field value]"),
                all.lines(), all::toString);

        CommandResult a = run("dead-letters", "--group", "dl-a", "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(0, a.exit, a::toString);
        assertEquals(List.of(all.lines().get(0), all.lines().get(2)), a.lines(), a::toString);

        CommandResult none = run("dead-letters", "--group", "dl-c", "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(0, none.exit, none::toString);
        assertEquals(List.of("no dead letters for group dl-c"), none.lines(), none::toString);

        CommandResult js = run("dead-letters", "--json", "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(0, js.exit, js::toString);
        List<String> jsonLines = js.lines();
        assertEquals(4, jsonLines.size(), js::toString);
        List<JsonNode> nodes = new ArrayList<>();
        for (String l : jsonLines) nodes.add(JSON.readTree(l));
        JsonNode b = nodes.get(1);
        assertEquals("dl-b", b.get("group").asText());
        assertEquals("lora.adapter.layers", b.get("sourceTopic").asText());
        assertEquals(2, b.get("partition").asInt());
        assertEquals(11, b.get("offset").asLong());
        assertEquals(T0 + 2000, b.get("timestamp").asLong());
        assertEquals("2023-11-14T22:13:22.000Z", b.get("time").asText());
        assertEquals("digest mismatch: record says 00, bytes give 11", b.get("reason").asText());
        assertEquals("digest", b.get("field").asText());
        assertEquals("dl-b|model.layers.0.q_proj", new String(Base64.getDecoder().decode(b.get("key").asText()), StandardCharsets.UTF_8));
        assertEquals(layerValue.length, b.get("valueBytes").asInt());
        assertFalse(b.has("value"), "the rejected value is left out");
        assertTrue(b.get("deadLetterOffset").asLong() >= 0);
        JsonNode noGroup = nodes.get(3);
        assertTrue(noGroup.get("group").isNull());
        assertTrue(noGroup.get("key").isNull());
        assertTrue(noGroup.get("valueBytes").isNull());
        assertEquals(List.of("dl-a", "dl-b", "dl-a"), nodes.subList(0, 3).stream().map(n -> n.get("group").asText()).toList());
        // Same dead letters in the same order as the text lines.
        assertEquals(List.of(3L, 11L, 7L, 9L), nodes.stream().map(n -> n.get("offset").asLong()).toList());

        // With --json, "none" goes to stderr: stdout holds JSON lines only.
        CommandResult jsNone = run("dead-letters", "--json", "--group", "dl-c", "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(0, jsNone.exit, jsNone::toString);
        assertEquals("", jsNone.out);
        assertTrue(jsNone.err.contains("no dead letters for group dl-c"), jsNone::toString);
    }

    @Test
    void anEmptyTopicNamedInTheConfigFileHasNoDeadLetters() throws Exception {
        Path config = dir.resolve("empty.properties");
        Files.writeString(config, "bootstrap.servers=" + kafka.broker.bootstrapServers() + "\n"
                + TopicNames.DEAD_LETTER_KEY + "=dl.empty\n");
        CommandResult r = run("dead-letters", "--config", config.toString());
        assertEquals(0, r.exit, r::toString);
        assertEquals(List.of("no dead letters on dl.empty"), r.lines(), r::toString);
    }

    @Test
    void followPrintsNewDeadLettersOfTheGroupUntilInterrupted() throws Exception {
        String topic = "dl.follow";
        Path config = dir.resolve("follow.properties");
        Files.writeString(config, TopicNames.DEAD_LETTER_KEY + "=" + topic + "\n");
        kafka.produce(topic, List.of(letter(topic, "dl-f", "lora.adapter.events", 0, 1, T0, "old one", null, null, null)));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        AtomicInteger exit = new AtomicInteger(-1);
        Thread t = new Thread(() -> exit.set(cli(out, err).execute("dead-letters", "--follow", "--group", "dl-f", "--config",
                config.toString(), "--bootstrap-servers", kafka.broker.bootstrapServers())), "dead-letters-follow");
        t.start();
        try {
            awaitOut(out, err, "following " + topic);
            assertTrue(out.toString().contains("2023-11-14T22:13:20.000Z dl-f lora.adapter.events/0@1: old one"), out.toString());
            kafka.produce(topic, List.of(
                    letter(topic, "dl-other", "lora.adapter.events", 0, 2, T0 + 1, "someone else's", null, null, null),
                    letter(topic, "dl-f", "lora.adapter.events", 0, 3, T0 + 2, "new one", "adapterId", null, null)));
            awaitOut(out, err, "new one");
            t.interrupt();
            t.join(30_000);
            assertFalse(t.isAlive(), "--follow did not stop on interrupt");
        } finally {
            t.interrupt();
        }
        assertEquals(0, exit.get(), err::toString);
        List<String> letters = out.toString().lines().filter(l -> l.startsWith("2023")).toList();
        assertEquals(List.of("2023-11-14T22:13:20.000Z dl-f lora.adapter.events/0@1: old one",
                "2023-11-14T22:13:20.002Z dl-f lora.adapter.events/0@3: new one [field adapterId]"), letters, out::toString);
    }

    @Test
    void anUnreachableBrokerIsAOneLineErrorWithinTheTimeout() {
        long start = System.nanoTime();
        CommandResult r = run("dead-letters", "--bootstrap-servers", "localhost:1", "--timeout", "2");
        double seconds = (System.nanoTime() - start) / 1e9;
        assertEquals(1, r.exit, r::toString);
        assertEquals("", r.out);
        assertEquals(1, r.err.lines().count(), r::toString);
        assertTrue(r.err.startsWith("error: Kafka at localhost:1 did not answer within 2 s"), r::toString);
        assertTrue(seconds < 15, "took " + seconds + " s");
    }

    // ------------------------------------------------------------------------------------ helpers

    private static Map.Entry<String, byte[]> letter(String topic, String group, String sourceTopic, int partition, long offset,
                                                    long timestamp, String reason, String field, byte[] key, byte[] value) {
        DeadLetter dl = DeadLetter.newBuilder().setSourceTopic(sourceTopic).setPartition(partition).setOffset(offset)
                .setKey(key == null ? null : ByteBuffer.wrap(key)).setValue(value == null ? null : ByteBuffer.wrap(value))
                .setReason(reason).setField(field).setGroup(group).setTimestamp(timestamp).build();
        return Map.entry(group == null ? "?" : group, kafka.serdes.deadLetter().serializer().serialize(topic, dl));
    }

    private static void awaitOut(StringWriter out, StringWriter err, String text) throws InterruptedException {
        long deadline = System.nanoTime() + ClientTestKafka.TIMEOUT.toNanos();
        while (!out.toString().contains(text)) {
            assertTrue(System.nanoTime() < deadline, "no '" + text + "' in\n" + out + "\n--- err:\n" + err);
            Thread.sleep(50);
        }
    }

    private record CommandResult(int exit, String out, String err) {
        List<String> lines() {
            return out.lines().toList();
        }

        @Override
        public String toString() {
            return "exit " + exit + "\n--- out:\n" + out + "--- err:\n" + err;
        }
    }

    private static CommandResult run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = cli(out, err).execute(args);
        return new CommandResult(exit, out.toString(), err.toString());
    }

    private static CommandLine cli(StringWriter out, StringWriter err) {
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl;
    }
}
