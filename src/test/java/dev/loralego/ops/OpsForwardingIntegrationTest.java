package dev.loralego.ops;

import dev.loralego.stream.ServiceTestSupport;
import dev.loralego.stream.StreamFixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.LegoOptions;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.MergeTopology;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.StreamsMetadata;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Two service instances with one application id on the in-JVM broker (2 partitions): a query sent to the
 * instance that does not hold the group's partition is forwarded to the one that does, and relayed; a
 * request that was already forwarded is not forwarded again.
 */
class OpsForwardingIntegrationTest {
    static final String APP_ID = "ops-fwd";
    static final Duration AWAIT = Duration.ofSeconds(90);
    static final MergeParameters PARAMS = new MergeParameters(LegoOptions.defaults().withK(2), 1, "recluster", 1.0, "F32", 64);
    static final TopologySerdes SERDES = MergeService.serdes(new EmbeddedSchemaResolver());
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static final Instance[] instances = new Instance[2];

    record Instance(MergeService service, ServiceMetrics metrics, OpsServer ops, HostInfo host) {
        void close() {
            ops.close();
            service.close();
            metrics.close();
        }
    }

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        for (int i = 0; i < 2; i++) {
            int port;
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            HostInfo host = new HostInfo("localhost", port);
            MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), APP_ID, dir.resolve("state-" + i),
                    2, (short) 1, 16 << 20, 1, PARAMS, Map.of(StreamsConfig.APPLICATION_SERVER_CONFIG, "localhost:" + port));
            ServiceMetrics metrics = new ServiceMetrics();
            MergeService service = MergeService.start(cfg, metrics, metrics, AWAIT);
            OpsServer ops = OpsServer.start(new InetSocketAddress("localhost", port), service.streams(), metrics,
                    SERDES.mergedVersion().deserializer(), host);
            instances[i] = new Instance(service, metrics, ops, host);
        }
        awaitBothActiveForTheStore();
    }

    @AfterAll
    static void stop() {
        for (int i = instances.length - 1; i >= 0; i--) if (instances[i] != null) instances[i].close();
        if (broker != null) broker.close();
    }

    /** Waits until both instances run and each is active for one partition of the latest-version store. */
    static void awaitBothActiveForTheStore() throws InterruptedException {
        long deadline = System.nanoTime() + AWAIT.toNanos();
        while (System.nanoTime() < deadline) {
            boolean running = instances[0].service().streams().state() == KafkaStreams.State.RUNNING
                    && instances[1].service().streams().state() == KafkaStreams.State.RUNNING;
            if (running) {
                Collection<StreamsMetadata> md = instances[0].service().streams().streamsMetadataForStore(MergeTopology.LATEST_VERSION_STORE);
                long holders = md.stream().filter(m -> !m.topicPartitions().isEmpty()).count();
                if (holders == 2) return;
            }
            Thread.sleep(200);
        }
        fail("the two instances did not each become active for a partition of " + MergeTopology.LATEST_VERSION_STORE);
    }

    /** A group name whose partition is active on instance {@code owner}. */
    static String groupOwnedBy(int owner) {
        for (int i = 0; i < 1000; i++) {
            String g = "fwd-" + i;
            KeyQueryMetadata md = instances[0].service().streams().queryMetadataForKey(MergeTopology.LATEST_VERSION_STORE, g,
                    Serdes.String().serializer());
            if (md.activeHost().equals(instances[owner].host())) return g;
        }
        throw new AssertionError("no group name maps to instance " + owner);
    }

    static void publish(StreamFixtures.Adapter a) {
        ServiceTestSupport.publish(broker.bootstrapServers(), instances[0].service().topics(), a);
    }

    static HttpResponse<String> get(Instance at, String path, String forwardedBy) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://localhost:" + at.ops().port() + path))
                .timeout(Duration.ofSeconds(20)).GET();
        if (forwardedBy != null) b.header(InstanceForwarding.FORWARDED_HEADER, forwardedBy);
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> awaitOk(Instance at, String path) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + AWAIT.toNanos();
        HttpResponse<String> r = get(at, path, null);
        while (r.statusCode() != 200 && System.nanoTime() < deadline) {
            Thread.sleep(100);
            r = get(at, path, null);
        }
        return r;
    }

    @Test
    void queryToTheOtherInstanceIsForwardedAndRelayed() throws Exception {
        Instance a = instances[0], b = instances[1];
        String onB = groupOwnedBy(1);
        publish(StreamFixtures.adapter(onB, "adapter-x", 1, 2, 31));
        String path = "/groups/" + onB + "/versions/latest";
        HttpResponse<String> direct = awaitOk(b, path);
        assertEquals(200, direct.statusCode(), direct.body());
        assertEquals(1, JSON.readTree(direct.body()).get("sequence").asLong());

        LatestVersionQuery.Answer fromA = new LatestVersionQuery(a.service().streams(), a.host()).lookup(onB);
        assertEquals(b.host(), assertInstanceOf(LatestVersionQuery.Remote.class, fromA).host());
        HttpResponse<String> viaA = get(a, path, null);
        assertEquals(200, viaA.statusCode(), viaA.body());
        assertEquals(direct.body(), viaA.body());
        assertTrue(viaA.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));

        // Unknown group held by B, asked at A: B's 404 is relayed.
        String otherOnB = "fwd-unpublished";
        KeyQueryMetadata md = a.service().streams().queryMetadataForKey(MergeTopology.LATEST_VERSION_STORE, otherOnB,
                Serdes.String().serializer());
        Instance askAt = md.activeHost().equals(b.host()) ? a : b;
        assertEquals(404, get(askAt, "/groups/" + otherOnB + "/versions/latest", null).statusCode());

        // Already forwarded once: A does not bounce it on.
        HttpResponse<String> loop = get(a, path, "localhost:1");
        assertEquals(503, loop.statusCode(), loop.body());
        assertTrue(loop.body().contains(b.host().host() + ":" + b.host().port()), loop.body());
    }

    @Test
    void groupHeldLocallyIsAnsweredWithoutForwarding() throws Exception {
        Instance a = instances[0];
        String onA = groupOwnedBy(0);
        publish(StreamFixtures.adapter(onA, "adapter-y", 1, 2, 32));
        HttpResponse<String> r = awaitOk(a, "/groups/" + onA + "/versions/latest");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(onA, JSON.readTree(r.body()).get("group").asText());
        assertInstanceOf(LatestVersionQuery.Found.class, new LatestVersionQuery(a.service().streams(), a.host()).lookup(onA));
    }
}
