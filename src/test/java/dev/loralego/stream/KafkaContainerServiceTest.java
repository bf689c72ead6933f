package dev.loralego.stream;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.lego.LegoOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The service scenario of {@link ServiceIntegrationTest} against a real Kafka in a container (the official
 * {@code apache/kafka} image). Runs only where a Docker engine answers; skipped elsewhere.
 */
@Testcontainers(disabledWithoutDocker = true)
class KafkaContainerServiceTest {
    @Container
    static final KafkaContainer KAFKA = new KafkaContainer("apache/kafka:4.1.0")
            .withEnv("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .withEnv("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .withEnv("KAFKA_MESSAGE_MAX_BYTES", Integer.toString(64 << 20));

    @TempDir
    Path dir;

    @Test
    void versionsAppearInOrderAndTheAuditAgrees() throws Exception {
        MergeParameters params = new MergeParameters(LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 64);
        String bootstrap = KAFKA.getBootstrapServers();
        MergeService.Config cfg = new MergeService.Config(bootstrap, "container-it", dir.resolve("state"), 2, (short) 1,
                16 << 20, 1, params, Map.of());
        String group = "container";
        try (MergeService service = MergeService.start(cfg, null, Duration.ofSeconds(120))) {
            List<StreamFixtures.Adapter> adapters = new ArrayList<>();
            for (int i = 0; i < 3; i++) adapters.add(StreamFixtures.adapter(group, "adapter-" + i, 1, 2, 70 + i));
            for (StreamFixtures.Adapter a : adapters) ServiceTestSupport.publish(bootstrap, service.topics(), a);
            ServiceTestSupport.publish(bootstrap, service.topics(), group, List.of(), List.of(StreamFixtures.withdrawEvent(group, "adapter-1")));
            TreeMap<Long, List<MergedVersionManifest>> h = ServiceTestSupport.awaitHistory(bootstrap, service.topics(), group, 4, Duration.ofSeconds(120));
            assertEquals(List.of(1L, 2L, 3L, 4L), new ArrayList<>(h.keySet()));
            h.forEach((s, ms) -> assertEquals(1, ms.size()));
            assertEquals(List.of("adapter-0", "adapter-2"), h.get(4L).get(0).getAdapters().stream().map(r -> r.getAdapterId()).toList());
            ReplayAudit.Report report = new ReplayAudit(bootstrap, Map.of(), service.topics(), 16 << 20).audit(group, 1);
            assertTrue(report.ok(), () -> "audit: " + report.differences());
        }
    }
}
