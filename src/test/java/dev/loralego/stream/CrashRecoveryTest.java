package dev.loralego.stream;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Faults the service must survive with no version lost, none duplicated, and every digest equal to an
 * undisturbed run (checked by the replay audit, which recomputes every version from the inputs):
 * a service JVM halted (like SIGKILL) in the middle of versions, at several points, then restarted; the
 * broker stopped and restarted under a running service.
 */
class CrashRecoveryTest {
    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static ServiceTopics topics;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) broker.close();
    }

    private static void assertExactlyOnceAndAudited(String bootstrap, ServiceTopics t, String group, int versions) {
        TreeMap<Long, List<MergedVersionManifest>> h = ServiceTestSupport.history(bootstrap, t, group);
        assertEquals(versions, h.size(), "versions 1.." + versions + " present: " + h.keySet());
        assertEquals(1L, h.firstKey());
        assertEquals((long) versions, h.lastKey());
        h.forEach((s, ms) -> assertEquals(1, ms.size(), "version " + s + " written exactly once"));
        ReplayAudit.Report report = new ReplayAudit(bootstrap, Map.of(), t, 16 << 20).audit(group, 1);
        assertTrue(report.ok(), () -> "digests equal to an undisturbed replay: " + report.differences());
    }

    @Test
    void aServiceHaltedMidVersionAtSeveralPointsFinishesWithTheSameVersions() throws Exception {
        String appId = "crash-app";
        topics = ServiceTopics.defaults(appId);
        Path config = ServiceTestSupport.fastFailoverConfig(dir);
        Path data = dir.resolve("service-data");
        Path log = dir.resolve("service.log");
        String group = "crash";
        List<StreamFixtures.Adapter> adapters = new ArrayList<>();
        for (int i = 0; i < 6; i++) adapters.add(StreamFixtures.adapter(group, "adapter-" + i, 1, 2, 300 + i));

        // Kill points: after the 3rd, 4th and 5th module step of each incarnation (2 modules per version, so
        // the odd ones fall between the two modules of a version). Each incarnation restarts from the last commit.
        boolean topicsCreated = false;
        for (int haltAfter : new int[]{3, 4, 5}) {
            Process p = ServiceTestSupport.startServiceProcess(broker.bootstrapServers(), data, appId, log, config,
                    "-Dloralego.fault.haltAfterModuleSteps=" + haltAfter);
            if (!topicsCreated) {
                awaitLine(log, "ready:", Duration.ofSeconds(90));
                for (StreamFixtures.Adapter a : adapters) ServiceTestSupport.publish(broker.bootstrapServers(), topics, a);
                topicsCreated = true;
            }
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the incarnation halting after step " + haltAfter + " halted");
            assertEquals(137, p.exitValue(), "halted by fault injection");
        }
        Process last = ServiceTestSupport.startServiceProcess(broker.bootstrapServers(), data, appId, log, config);
        try {
            TreeMap<Long, List<MergedVersionManifest>> h = ServiceTestSupport.awaitHistory(broker.bootstrapServers(), topics, group, 6, Duration.ofSeconds(120));
            assertEquals(6, h.size(), () -> "all versions after the crashes; log:\n" + tail(log));
        } finally {
            last.destroy();
            last.waitFor(30, TimeUnit.SECONDS);
        }
        assertExactlyOnceAndAudited(broker.bootstrapServers(), topics, group, 6);
    }

    @Test
    void aBrokerRestartUnderARunningServiceLosesNothing() throws Exception {
        Path brokerDir = dir.resolve("kafka-restart");
        EmbeddedKafkaBroker own = EmbeddedKafkaBroker.start(brokerDir, 0);
        int port = own.port();
        String appId = "restart-app";
        ServiceTopics t = ServiceTopics.defaults(appId);
        MergeParameters params = new MergeParameters(dev.loralego.lego.LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 64);
        MergeService.Config cfg = new MergeService.Config(own.bootstrapServers(), appId, dir.resolve("restart-state"), 1,
                (short) 1, 16 << 20, 1, params, Map.of("session.timeout.ms", "6000"));
        String group = "restart";
        try (MergeService service = MergeService.start(cfg, null, Duration.ofSeconds(60))) {
            for (int i = 0; i < 3; i++) ServiceTestSupport.publish(own.bootstrapServers(), t, StreamFixtures.adapter(group, "a" + i, 1, 2, 500 + i));
            assertEquals(3, ServiceTestSupport.awaitHistory(own.bootstrapServers(), t, group, 3, Duration.ofSeconds(60)).size());
            own.close();
            Thread.sleep(2000);
            own = EmbeddedKafkaBroker.start(brokerDir, port);
            for (int i = 3; i < 6; i++) ServiceTestSupport.publish(own.bootstrapServers(), t, StreamFixtures.adapter(group, "a" + i, 1, 2, 500 + i));
            assertEquals(6, ServiceTestSupport.awaitHistory(own.bootstrapServers(), t, group, 6, Duration.ofSeconds(120)).size());
            assertEquals(service.streams().state(), org.apache.kafka.streams.KafkaStreams.State.RUNNING);
        } finally {
            assertExactlyOnceAndAudited(own.bootstrapServers(), t, group, 6);
            own.close();
        }
    }

    /**
     * A clean stop leaves the consumer group, so a restart gets its partitions at once: Kafka Streams otherwise stays
     * in the group on close, and the next instance waited for the old member's session to time out (45 s by default;
     * a user saw `run` take 50 s to be ready after Ctrl-C). A static member (group.instance.id) stays, as intended.
     */
    @Test
    void aCleanlyClosedServiceLeavesItsConsumerGroupUnlessItIsAStaticMember() throws Exception {
        // A broker of its own: the shared one's topics are created by the other tests with other record limits.
        try (EmbeddedKafkaBroker own = EmbeddedKafkaBroker.start(dir.resolve("kafka-close"), 0)) {
            leavesItsGroupUnlessStatic(own);
        }
    }

    private void leavesItsGroupUnlessStatic(EmbeddedKafkaBroker broker) throws Exception {
        for (boolean staticMember : new boolean[]{false, true}) {
            String appId = staticMember ? "close-static-app" : "close-app";
            ServiceTopics t = ServiceTopics.defaults(appId);
            MergeParameters params = new MergeParameters(dev.loralego.lego.LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 64);
            Map<String, String> settings = staticMember ? Map.of("group.instance.id", "instance-a") : Map.of();
            MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), appId, dir.resolve(appId + "-state"), 1,
                    (short) 1, 16 << 20, 1, params, settings);
            try (MergeService service = MergeService.start(cfg, null, Duration.ofSeconds(60))) {
                ServiceTestSupport.publish(broker.bootstrapServers(), t, StreamFixtures.adapter(appId, "a0", 1, 2, 7));
                assertEquals(1, ServiceTestSupport.awaitHistory(broker.bootstrapServers(), t, appId, 1, Duration.ofSeconds(60)).size());
                assertEquals(1, membersOf(broker, appId), "the running service is a member of its group");
            }
            assertEquals(staticMember ? 1 : 0, membersOf(broker, appId), staticMember
                    ? "a static member stays in the group after a clean stop"
                    : "a clean stop leaves the group, so a restart does not wait for the session timeout");
        }
    }

    private static int membersOf(EmbeddedKafkaBroker broker, String groupId) throws Exception {
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                Map.of("bootstrap.servers", broker.bootstrapServers()))) {
            return admin.describeConsumerGroups(List.of(groupId)).describedGroups().get(groupId)
                    .get(30, TimeUnit.SECONDS).members().size();
        }
    }

    @Test
    void twoInstancesShareThePartitionsAndOneTakesOverWhenTheOtherIsKilled() throws Exception {
        // A broker of its own: this test's topics have two partitions.
        try (EmbeddedKafkaBroker own = EmbeddedKafkaBroker.start(dir.resolve("kafka-pair"), 0)) {
            failover(own);
        }
    }

    private void failover(EmbeddedKafkaBroker broker) throws Exception {
        String appId = "pair-app";
        ServiceTopics t = ServiceTopics.defaults(appId);
        Path config = ServiceTestSupport.fastFailoverConfig(dir);
        Path logA = dir.resolve("pair-a.log"), logB = dir.resolve("pair-b.log");
        Process a = ServiceTestSupport.startServiceProcess(broker.bootstrapServers(), dir.resolve("pair-a"), appId, 2, logA, config);
        awaitLine(logA, "ready:", Duration.ofSeconds(90));
        Process b = ServiceTestSupport.startServiceProcess(broker.bootstrapServers(), dir.resolve("pair-b"), appId, 2, logB, config);
        List<String> groups = List.of("pair-x", "pair-y", "pair-z");
        try {
            awaitLine(logB, "ready:", Duration.ofSeconds(90));
            for (int i = 0; i < 2; i++) {
                for (String g : groups) ServiceTestSupport.publish(broker.bootstrapServers(), t, StreamFixtures.adapter(g, "a" + i, 1, 2, g.hashCode() + i));
            }
            for (String g : groups) assertEquals(2, ServiceTestSupport.awaitHistory(broker.bootstrapServers(), t, g, 2, Duration.ofSeconds(120)).size());
            a.destroyForcibly();   // SIGKILL: no clean leave, no commit
            a.waitFor(30, TimeUnit.SECONDS);
            for (int i = 2; i < 4; i++) {
                for (String g : groups) ServiceTestSupport.publish(broker.bootstrapServers(), t, StreamFixtures.adapter(g, "a" + i, 1, 2, g.hashCode() + i));
            }
            for (String g : groups) {
                assertEquals(4, ServiceTestSupport.awaitHistory(broker.bootstrapServers(), t, g, 4, Duration.ofSeconds(180)).size(),
                        () -> "the survivor took over; its log:\n" + tail(logB));
            }
        } finally {
            a.destroyForcibly();
            b.destroy();
            b.waitFor(30, TimeUnit.SECONDS);
        }
        for (String g : groups) assertExactlyOnceAndAudited(broker.bootstrapServers(), t, g, 4);
    }

    static void awaitLine(Path log, String text, Duration timeout) throws Exception {
        long deadline = System.currentTimeMillis() + timeout.toMillis();
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(log) && Files.readString(log).contains(text)) return;
            Thread.sleep(200);
        }
        throw new AssertionError("'" + text + "' not in the service log after " + timeout + ":\n" + tail(log));
    }

    static String tail(Path log) {
        try {
            String s = Files.readString(log);
            return s.length() > 4000 ? s.substring(s.length() - 4000) : s;
        } catch (Exception e) {
            return "(no log)";
        }
    }
}
