package dev.loralego.kafka;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Defaults, configuration keys and validation of {@link TopicNames}. */
class TopicNamesTest {

    @Test
    void defaultsAreTheDocumentedNames() {
        TopicNames d = TopicNames.defaults();
        assertEquals(List.of("lora.adapter.layers", "lora.adapter.events", "lora.merged.layers",
                "lora.merged.versions", "lora.deadletter", "lora.schemas"), d.all());
        assertEquals(d, TopicNames.from(Map.of()));
    }

    @Test
    void keysOverrideSingleNamesAndOthersKeepDefaults() {
        Properties p = new Properties();
        p.setProperty("topic.adapter.layers", " team-a.layers ");
        p.setProperty("topic.deadletter", "team-a.dlq");
        p.setProperty("bootstrap.servers", "ignored:9092");
        TopicNames n = TopicNames.from(p);
        assertEquals("team-a.layers", n.adapterLayers());
        assertEquals("team-a.dlq", n.deadLetter());
        assertEquals("lora.adapter.events", n.adapterEvents());
        assertEquals("lora.schemas", n.schemas());

        TopicNames m = TopicNames.from(Map.of("topic.merged.layers", "x.ml", "topic.merged.versions", "x.mv",
                "topic.schemas", "x.s", "topic.adapter.events", "x.e"));
        assertEquals(List.of("lora.adapter.layers", "x.e", "x.ml", "x.mv", "lora.deadletter", "x.s"), m.all());
    }

    @Test
    void prefixIsAppliedToEveryName() {
        assertEquals("t1.lora.merged.versions", TopicNames.defaults().withPrefix("t1.").mergedVersions());
        assertTrue(TopicNames.defaults().withPrefix("p-").all().stream().allMatch(s -> s.startsWith("p-lora.")));
    }

    @Test
    void illegalNamesAreRejectedNamingTheKey() {
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> TopicNames.from(Map.of("topic.merged.layers", "has space")));
        assertTrue(bad.getMessage().contains("topic.merged.layers") && bad.getMessage().contains("has space"),
                bad.getMessage());
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> TopicNames.from(Map.of("topic.schemas", "  ")));
        assertTrue(empty.getMessage().contains("topic.schemas"), empty.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TopicNames.from(Map.of("topic.schemas", "..")));
        assertThrows(IllegalArgumentException.class, () -> TopicNames.from(Map.of("topic.schemas", "a".repeat(250))));
    }

    @Test
    void twoRolesCannotShareATopic() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TopicNames.from(Map.of("topic.deadletter", "lora.adapter.layers")));
        assertTrue(e.getMessage().contains("topic.adapter.layers") && e.getMessage().contains("topic.deadletter"),
                e.getMessage());
    }
}
