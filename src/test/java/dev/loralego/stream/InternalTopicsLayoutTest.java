package dev.loralego.stream;

import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two internal topics the service creates itself ({@code <app>.module-tasks}, {@code <app>.version-assembly}):
 * the module tasks meet the layers in one processor, so an existing tasks topic with another partition count than
 * the layers topic breaks co-partitioning (a task and its layer land in different stream tasks and the version waits
 * for ever). That must be refused at start, as it is for the layers topic.
 */
class InternalTopicsLayoutTest {
    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static Admin admin;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()));
    }

    @AfterAll
    static void stop() {
        if (admin != null) admin.close();
        if (broker != null) broker.close();
    }

    private static MergeService.Config config(String app, int partitions) {
        TopicNames names = TopicNames.defaults().withPrefix(app + ".");
        Map<String, String> topics = Map.of(TopicNames.ADAPTER_LAYERS_KEY, names.adapterLayers(),
                TopicNames.ADAPTER_EVENTS_KEY, names.adapterEvents(), TopicNames.MERGED_LAYERS_KEY, names.mergedLayers(),
                TopicNames.MERGED_VERSIONS_KEY, names.mergedVersions(), TopicNames.DEAD_LETTER_KEY, names.deadLetter(),
                TopicNames.SCHEMAS_KEY, names.schemas());
        return new MergeService.Config(broker.bootstrapServers(), app, dir.resolve("state-" + app), partitions, (short) 1,
                16 << 20, 1, MergeParameters.defaults(), topics);
    }

    /**
     * E.g. the layers topic was given more partitions ({@code kafka-topics --alter}) and the service restarted with the
     * new {@code --partitions}: the layers topic passes the check, the tasks topic keeps its old count.
     */
    @Test
    void aModuleTasksTopicWithAnotherPartitionCountThanTheLayersIsRefusedAtStart() throws Exception {
        String app = "layout-tasks";
        admin.createTopics(List.of(new NewTopic(app + ".module-tasks", 2, (short) 1))).all().get();
        MergeService.Config cfg = config(app, 4);
        TopicAdmin.TopicLayoutException e = assertThrows(TopicAdmin.TopicLayoutException.class, () -> {
            MergeService s = MergeService.start(cfg, null, Duration.ofSeconds(30));
            s.close();
        });
        assertEquals(1, e.problems().size(), e.getMessage());
        String problem = e.problems().get(0);
        assertTrue(problem.contains("topic " + app + ".module-tasks has 2 partitions but must have 4"), problem);
    }

    @Test
    void internalTopicsWithTheLayersPartitionCountAreAccepted() throws Exception {
        String app = "layout-ok";
        admin.createTopics(List.of(new NewTopic(app + ".module-tasks", 2, (short) 1),
                new NewTopic(app + ".version-assembly", 2, (short) 1))).all().get();
        MergeService s = MergeService.start(config(app, 2), null, Duration.ofSeconds(60));
        try {
            assertEquals(org.apache.kafka.streams.KafkaStreams.State.RUNNING, s.streams().state());
        } finally {
            s.close();
        }
    }
}
