package dev.loralego.ops;

import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.stream.LayerWaits;
import io.micrometer.core.instrument.Timer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The service meters with a fixed clock: counts per group, latency = clock − event timestamp, dead letters. */
class ServiceMetricsTest {
    static final double EXACT = 0.0;
    static final double SECONDS_TOLERANCE = 1e-9;

    static MergedVersionManifest version(String group, long sequence, long eventTimestamp) {
        return MergedVersionManifest.newBuilder().setGroup(group).setSequence(sequence)
                .setTrigger(new VersionTrigger("e" + sequence, AdapterEventType.PUBLISH, "a", 1L))
                .setAdapters(List.of()).setModules(List.of()).setDigest("d").setParameters(Map.of())
                .setEventTimestamp(eventTimestamp).setServiceVersion("test").setWarnings(List.of())
                .setMeanInertia(sequence * 0.5).build();
    }

    static DeadLetter letter() {
        return DeadLetter.newBuilder().setSourceTopic("lora.adapter.events").setPartition(0).setOffset(5)
                .setReason("bad").setTimestamp(0).build();
    }

    /** After a restart: gauges from the latest manifest found at start, the counter at 0, no latency sample. */
    @Test
    void aRecoveredVersionSetsTheGroupGaugesWithoutCountingIt() {
        try (ServiceMetrics m = new ServiceMetrics()) {
            m.versionRecovered(version("g9", 41, 0));
            assertEquals(41.0, m.registry().get(ServiceMetrics.LATEST_SEQUENCE).tag("group", "g9").gauge().value(), EXACT);
            assertEquals(20.5, m.registry().get(ServiceMetrics.CLUSTER_INERTIA).tag("group", "g9").gauge().value(), EXACT);
            assertEquals(0.0, m.registry().get(ServiceMetrics.VERSIONS_EMITTED).tag("group", "g9").counter().count(), EXACT);
            assertEquals(0, m.registry().get(ServiceMetrics.MERGE_LATENCY).timer().count());
            assertTrue(m.scrape().contains("lora_group_latest_sequence{group=\"g9\"} 41.0"), m.scrape());
        }
    }

    @Test
    void countsLatenciesAndDeadLetters() {
        AtomicLong now = new AtomicLong(10_000);
        try (ServiceMetrics m = new ServiceMetrics(now::get)) {
            m.versionEmitted(version("g1", 1, 7_500));   // 2.5 s
            now.set(20_000);
            m.versionEmitted(version("g1", 2, 19_000));  // 1.0 s
            m.versionEmitted(version("g2", 1, 21_000));  // event "after" the clock: clamped to 0
            m.deadLettered(letter());
            m.deadLettered(letter());
            m.deadLettered(letter());

            assertEquals(2.0, m.registry().get(ServiceMetrics.VERSIONS_EMITTED).tag("group", "g1").counter().count(), EXACT);
            assertEquals(1.0, m.registry().get(ServiceMetrics.VERSIONS_EMITTED).tag("group", "g2").counter().count(), EXACT);
            assertEquals(2.0, m.registry().get(ServiceMetrics.LATEST_SEQUENCE).tag("group", "g1").gauge().value(), EXACT);
            // the inertia gauge follows the latest version of each group (sequence * 0.5 in these manifests)
            assertEquals(1.0, m.registry().get(ServiceMetrics.CLUSTER_INERTIA).tag("group", "g1").gauge().value(), EXACT);
            assertEquals(0.5, m.registry().get(ServiceMetrics.CLUSTER_INERTIA).tag("group", "g2").gauge().value(), EXACT);
            assertTrue(m.scrape().contains("lora_cluster_inertia{group=\"g1\"}"), m.scrape());
            Timer t = m.registry().get(ServiceMetrics.MERGE_LATENCY).timer();
            assertEquals(3, t.count());
            assertEquals(3.5, t.totalTime(TimeUnit.SECONDS), SECONDS_TOLERANCE);
            assertEquals(2.5, t.max(TimeUnit.SECONDS), SECONDS_TOLERANCE);
            assertEquals(3.0, m.registry().get(ServiceMetrics.DEAD_LETTERS).counter().count(), EXACT);

            String scrape = m.scrape();
            assertTrue(scrape.contains("lora_versions_emitted_total{group=\"g1\"} 2.0"), scrape);
            assertTrue(scrape.contains("# HELP lora_versions_emitted_total merged versions emitted"), scrape);
            assertTrue(scrape.contains("lora_dead_letters_total 3.0"), scrape);
            assertTrue(scrape.contains("lora_merge_latency_seconds_count 3"), scrape);
            assertTrue(scrape.contains("lora_merge_latency_seconds_sum 3.5"), scrape);
            assertTrue(scrape.contains("lora_refinements_certified_total"), scrape);
            assertTrue(scrape.contains("lora_refinements_full_total"), scrape);
            assertTrue(scrape.contains("lora_module_steps_waiting_for_layer " + LayerWaits.overdue() + ".0"), scrape);
        }
    }

    @Test
    void latestSequenceNeverGoesBackAndDeadLettersStartAtZero() {
        try (ServiceMetrics m = new ServiceMetrics(() -> 0L)) {
            assertTrue(m.scrape().contains("lora_dead_letters_total 0.0"));
            m.versionEmitted(version("g", 5, 0));
            m.versionEmitted(version("g", 3, 0)); // a replay of an older version
            assertEquals(5.0, m.registry().get(ServiceMetrics.LATEST_SEQUENCE).tag("group", "g").gauge().value(), EXACT);
        }
    }
}
