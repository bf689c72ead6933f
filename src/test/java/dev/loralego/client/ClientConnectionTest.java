package dev.loralego.client;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ClientConnection} settings precedence and {@link MergeGroups} name rules (no broker). */
class ClientConnectionTest {

    @Test
    void configFileSettingsReachEveryClientButOursDoNot(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, String.join("\n",
                "security.protocol=SASL_SSL",
                "sasl.mechanism=PLAIN",
                "topic.merged.versions=team.versions",
                "lora.group.gpt2.k=16",
                "isolation.level=read_uncommitted",
                "bootstrap.servers=from-file:9092", ""));
        ClientConnection c = ClientConnection.fromConfigFile(null, file, 8 << 20, Duration.ofSeconds(5));
        assertEquals("from-file:9092", c.bootstrap(), "the file's bootstrap when the option is absent");
        assertEquals("team.versions", c.topics().mergedVersions());
        assertEquals("lora.merged.layers", c.topics().mergedLayers());

        Map<String, Object> producer = c.producerProps("p", "tx-1");
        assertEquals("SASL_SSL", producer.get("security.protocol"));
        assertEquals("PLAIN", producer.get("sasl.mechanism"));
        assertEquals("tx-1", producer.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG));
        assertEquals(Integer.toString(8 << 20), producer.get(ProducerConfig.MAX_REQUEST_SIZE_CONFIG));
        assertEquals("all", producer.get(ProducerConfig.ACKS_CONFIG));
        assertFalse(producer.containsKey("topic.merged.versions"));
        assertFalse(producer.containsKey("lora.group.gpt2.k"));

        Map<String, Object> consumer = c.consumerProps("c");
        assertEquals("SASL_SSL", consumer.get("security.protocol"));
        assertEquals("read_committed", consumer.get(ConsumerConfig.ISOLATION_LEVEL_CONFIG), "the file cannot weaken isolation");
        assertEquals("false", consumer.get(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG));
        assertNull(consumer.get(ConsumerConfig.GROUP_ID_CONFIG), "no consumer group");
        assertEquals(Integer.toString(8 << 20), consumer.get(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG));

        assertEquals("opt:1", ClientConnection.fromConfigFile("opt:1", file, 8 << 20, Duration.ofSeconds(5)).bootstrap(),
                "the option wins over the file");
        assertEquals(ClientConnection.DEFAULT_BOOTSTRAP,
                ClientConnection.of(null, Map.of(), 8 << 20, Duration.ofSeconds(5)).bootstrap());
        assertNull(ClientConnection.of(null, Map.of(), 8 << 20, Duration.ofSeconds(5)).producerProps("p", null)
                .get(ProducerConfig.TRANSACTIONAL_ID_CONFIG));
    }

    @Test
    void groupAndAdapterNamesThatWouldBreakKeysOrPathsAreRefused() {
        assertEquals("gpt2-small_v1.x", MergeGroups.check("gpt2-small_v1.x"));
        for (String bad : new String[]{"", " ", "a|b", "a@1", "a/b", "a\\b", ".hidden", "a b", "a\nb"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MergeGroups.check(bad), bad);
            assertTrue(e.getMessage().contains("merge group"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MergeGroups.check("a b")).getMessage()
                .startsWith("merge group 'a b' must not contain a space ("));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MergeGroups.check("a\nb")).getMessage()
                .contains("must not contain the character U+000A ("));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MergeGroups.check("a|b")).getMessage()
                .contains("must not contain '|' ("));
        assertEquals("id-1", MergeGroups.checkAdapterId("id-1"));
        assertThrows(IllegalArgumentException.class, () -> MergeGroups.checkAdapterId("a|b"));
        assertThrows(IllegalArgumentException.class, () -> MergeGroups.checkAdapterId(" "));
    }

    /**
     * Each (group, adapter) pair publishes under its own transactional id, and a group's prefix (what a publisher's
     * prefix ACL names) covers its own ids only: with '-' as the separator, ("llama", "team-math") and
     * ("llama-team", "math") shared an id, and the prefix of "llama" covered every id of "llama-team".
     */
    @Test
    void publishTransactionalIdsNameOnePairAndAGroupsPrefixCoversThatGroupOnly() {
        String[][] pairs = {{"llama", "team-math"}, {"llama-team", "math"}, {"llama", "team"}, {"llama-team", "x"},
                {"a.b", "c"}, {"a", "b.c"}};
        java.util.Set<String> ids = new java.util.HashSet<>();
        for (String[] p : pairs) {
            String id = MergeGroups.publishTransactionalId(p[0], p[1]);
            assertTrue(ids.add(id), "shared id " + id);
            for (String[] q : pairs) {
                assertEquals(p[0].equals(q[0]), id.startsWith(MergeGroups.publishTransactionalIdPrefix(q[0])),
                        id + " against the prefix of group " + q[0]);
            }
        }
        assertEquals("lora-lego-publish-llama|team-math", MergeGroups.publishTransactionalId("llama", "team-math"));
        assertThrows(IllegalArgumentException.class, () -> MergeGroups.publishTransactionalId("llama", "a|b"));
    }
}
