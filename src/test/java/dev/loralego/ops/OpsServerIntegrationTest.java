package dev.loralego.ops;

import dev.loralego.stream.ServiceTestSupport;
import dev.loralego.stream.StreamFixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.avro.ModuleRef;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.LegoOptions;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ops endpoint of a real service on the in-JVM broker: probes, Prometheus metrics with the Kafka Streams
 * binder and our meters after a publish and a rejected record (then {@code dead-letters} showing a refused
 * {@code withdraw}), and the latest version answered from the state store, equal to the manifest on the
 * versions topic.
 */
class OpsServerIntegrationTest {
    static final String APP_ID = "ops-it";
    static final Duration AWAIT = Duration.ofSeconds(60);
    static final MergeParameters PARAMS = new MergeParameters(LegoOptions.defaults().withK(2), 1, "recluster", 1.0, "F32", 64);
    static final TopologySerdes SERDES = MergeService.serdes(new EmbeddedSchemaResolver());
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static MergeService service;
    static ServiceMetrics metrics;
    static OpsServer ops;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        int port = freePort();
        HostInfo self = new HostInfo("localhost", port);
        MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), APP_ID, dir.resolve("state"),
                2, (short) 1, 16 << 20, 1, PARAMS, Map.of(StreamsConfig.APPLICATION_SERVER_CONFIG, "localhost:" + port));
        metrics = new ServiceMetrics();
        service = MergeService.start(cfg, metrics, metrics, AWAIT);
        metrics.bindStreams(service.streams());
        ops = OpsServer.start(new InetSocketAddress("localhost", port), service.streams(), metrics,
                SERDES.mergedVersion().deserializer(), self);
    }

    @AfterAll
    static void stop() {
        if (ops != null) ops.close();
        if (service != null) service.close();
        if (metrics != null) metrics.close();
        if (broker != null) broker.close();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static HttpResponse<String> get(int port, String path) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).timeout(Duration.ofSeconds(20))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return get(ops.port(), path);
    }

    /** GETs {@code path} until {@code status} comes back (or the deadline passes; then the last answer). */
    static HttpResponse<String> awaitStatus(String path, int status) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + AWAIT.toNanos();
        HttpResponse<String> r = get(path);
        while (r.statusCode() != status && System.nanoTime() < deadline) {
            Thread.sleep(100);
            r = get(path);
        }
        return r;
    }

    static void publish(StreamFixtures.Adapter a) {
        ServiceTestSupport.publish(broker.bootstrapServers(), service.topics(), a);
    }

    /** The latest-key manifests of {@code group} on the versions topic, waiting until {@code count} are there. */
    static List<MergedVersionManifest> versionsOnTopic(String group, int count) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<MergedVersionManifest> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(service.topics().mergedVersions()).stream()
                    .map(pi -> new TopicPartition(pi.topic(), pi.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (out.size() < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (r.key().equals(group)) out.add(SERDES.mergedVersion().deserializer().deserialize(r.topic(), r.value()));
                }
            }
        }
        return out;
    }

    /** The value of the Prometheus sample {@code name{labels}} (labels exactly as written), or NaN. */
    static double sample(String scrape, String nameAndLabels) {
        Matcher m = Pattern.compile("^" + Pattern.quote(nameAndLabels) + " (\\S+)$", Pattern.MULTILINE).matcher(scrape);
        return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
    }

    @Test
    void healthIsUp() throws Exception {
        HttpResponse<String> r = get("/health");
        assertEquals(200, r.statusCode());
        assertEquals("UP", JSON.readTree(r.body()).get("status").asText());
    }

    @Test
    void readyOnceRunning() throws Exception {
        HttpResponse<String> r = awaitStatus("/ready", 200);
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("RUNNING", JSON.readTree(r.body()).get("state").asText());
        assertEquals(KafkaStreams.State.RUNNING, service.streams().state());
    }

    @Test
    void latestVersionIsTheManifestOnTheTopicAndUnknownGroupIs404() throws Exception {
        String group = "ops-latest";
        publish(StreamFixtures.adapter(group, "adapter-a", 1, 2, 11));
        HttpResponse<String> first = awaitStatus("/groups/" + group + "/versions/latest", 200);
        assertEquals(200, first.statusCode(), first.body());
        assertEquals(1, JSON.readTree(first.body()).get("sequence").asLong());

        publish(StreamFixtures.adapter(group, "adapter-b", 1, 2, 12));
        List<MergedVersionManifest> onTopic = versionsOnTopic(group, 2);
        assertEquals(2, onTopic.size());
        MergedVersionManifest v2 = onTopic.get(1);
        HttpResponse<String> r = get("/groups/" + group + "/versions/latest");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode json = JSON.readTree(r.body());
        assertEquals(2, json.get("sequence").asLong());
        assertEquals(group, json.get("group").asText());
        assertEquals(v2.getDigest(), json.get("digest").asText());
        List<String> adapters = new ArrayList<>();
        json.get("adapters").forEach(a -> adapters.add(a.get("adapterId").asText()));
        assertEquals(List.of("adapter-a", "adapter-b"), adapters);
        List<String> moduleDigests = new ArrayList<>();
        json.get("modules").forEach(m -> moduleDigests.add(m.get("module").asText() + "=" + m.get("digest").asText()));
        assertEquals(v2.getModules().stream().map(m -> m.getModule() + "=" + m.getDigest()).toList(), moduleDigests);
        assertEquals(new ArrayList<>(StreamFixtures.MODULES.keySet()), v2.getModules().stream().map(ModuleRef::getModule).toList());
        // The whole body is exactly the JSON view of the manifest the topic carries.
        assertEquals(dev.loralego.client.ManifestJson.toJson(v2), r.body());

        HttpResponse<String> missing = get("/groups/no-such-group/versions/latest");
        assertEquals(404, missing.statusCode());
        assertTrue(JSON.readTree(missing.body()).get("error").asText().contains("no-such-group"), missing.body());
        assertEquals(404, get("/groups/" + group + "/versions/first").statusCode());
        assertEquals(404, get("/nothing-here").statusCode());
    }

    @Test
    void metricsHaveKafkaStreamsAndServiceMeters() throws Exception {
        String group = "ops-metrics";
        publish(StreamFixtures.adapter(group, "adapter-m", 1, 2, 21));
        assertEquals(200, awaitStatus("/groups/" + group + "/versions/latest", 200).statusCode());
        // A record that is not Avro: the sequencer dead-letters it.
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(service.topics().adapterEvents(), "ops-bad", new byte[]{1, 2, 3})).get();
        }
        long deadline = System.nanoTime() + AWAIT.toNanos();
        String scrape = get("/metrics").body();
        while (!(sample(scrape, "lora_dead_letters_total") >= 1) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            scrape = get("/metrics").body();
        }
        HttpResponse<String> r = get("/metrics");
        assertEquals(200, r.statusCode());
        assertEquals(OpsServer.PROMETHEUS_CONTENT_TYPE, r.headers().firstValue("Content-Type").orElse(null));
        scrape = r.body();
        assertEquals(1.0, sample(scrape, "lora_versions_emitted_total{group=\"" + group + "\"}"), scrape);
        assertEquals(1.0, sample(scrape, "lora_group_latest_sequence{group=\"" + group + "\"}"), scrape);
        // What a restarted service starts its group gauges from: its latest-version store.
        Map<String, MergedVersionManifest> latest = service.latestManifests(AWAIT);
        assertEquals(1L, latest.get(group).getSequence(), latest::toString);
        assertEquals(1.0, sample(scrape, "lora_dead_letters_total"), scrape);
        double latencyCount = sample(scrape, "lora_merge_latency_seconds_count");
        assertTrue(latencyCount >= 1, "latency samples " + latencyCount);
        assertTrue(scrape.contains("lora_merge_latency_seconds_bucket{le="), "histogram buckets");
        // Kafka Streams client metrics through Micrometer's binder (thread, consumer and producer levels).
        assertTrue(scrape.contains("kafka_stream_thread_process_total"), "stream thread metrics");
        assertTrue(scrape.contains("kafka_consumer_"), "consumer metrics");
        assertTrue(scrape.contains("jvm_memory_used_bytes"), "JVM metrics");
        assertNotNull(metrics.registry().find(ServiceMetrics.MERGE_LATENCY).timer());

        // What a user sees: withdraw exits 0 and points at dead-letters, which shows the service's refusal.
        String[] withdraw = {"withdraw", "--group", group, "--adapter-id", "nobody", "--bootstrap-servers", broker.bootstrapServers()};
        StringWriter out = new StringWriter();
        assertEquals(0, cli(out).execute(withdraw));
        assertTrue(out.toString().contains("dead-letters --group " + group), out.toString());
        String[] deadLetters = {"dead-letters", "--group", group, "--bootstrap-servers", broker.bootstrapServers()};
        out = new StringWriter();
        assertEquals(0, cli(out).execute(deadLetters));
        long rejectedBy = System.nanoTime() + AWAIT.toNanos();
        while (out.toString().startsWith("no dead letters") && System.nanoTime() < rejectedBy) {
            Thread.sleep(200);
            out = new StringWriter();
            assertEquals(0, cli(out).execute(deadLetters));
        }
        List<String> lines = out.toString().lines().toList();
        assertEquals(1, lines.size(), out.toString());
        assertTrue(lines.get(0).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z " + group + " "
                + Pattern.quote(service.topics().adapterEvents()) + "/\\d+@\\d+: withdraw of adapter 'nobody', which is not live in group "
                + group + " \\[field adapterId\\]"), lines.get(0));
        // The non-Avro record above has group "ops-bad" (its key): not this group's, but on the topic.
        out = new StringWriter();
        assertEquals(0, cli(out).execute("dead-letters", "--group", "ops-bad", "--json", "--bootstrap-servers", broker.bootstrapServers()));
        JsonNode bad = JSON.readTree(out.toString());
        assertTrue(bad.get("reason").asText().startsWith("undecodable adapter event"), out.toString());
        assertEquals(3, bad.get("valueBytes").asInt(), out.toString());
    }

    private static CommandLine cli(StringWriter out) {
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(out, true));
        return cl;
    }

    @Test
    void notRunningStreamsIsNotReadyAndCannotAnswerQueries() throws Exception {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("ops-unused-topic");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "ops-not-started");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(StreamsConfig.STATE_DIR_CONFIG, dir.resolve("unused-state").toString());
        try (KafkaStreams idle = new KafkaStreams(b.build(), p);
             ServiceMetrics m = new ServiceMetrics();
             OpsServer s = OpsServer.start(new InetSocketAddress("localhost", 0), idle, m,
                     SERDES.mergedVersion().deserializer(), null)) {
            HttpResponse<String> ready = get(s.port(), "/ready");
            assertEquals(503, ready.statusCode());
            assertEquals("CREATED", JSON.readTree(ready.body()).get("state").asText());
            assertEquals(200, get(s.port(), "/health").statusCode());
            HttpResponse<String> query = get(s.port(), "/groups/any/versions/latest");
            assertEquals(503, query.statusCode(), query.body());
            HttpResponse<String> post = HTTP.send(HttpRequest.newBuilder(URI.create("http://localhost:" + s.port() + "/health"))
                    .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(405, post.statusCode());
            assertEquals("GET, HEAD", post.headers().firstValue("Allow").orElse(null));
            for (String path : List.of("/health", "/ready", "/groups/any/versions/latest", "/nowhere")) {
                HttpResponse<String> got = get(s.port(), path);
                HttpResponse<String> head = HTTP.send(HttpRequest.newBuilder(URI.create("http://localhost:" + s.port() + path))
                        .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(got.statusCode(), head.statusCode(), path);
                assertEquals("", head.body(), path);
                assertEquals(String.valueOf(got.body().getBytes(StandardCharsets.UTF_8).length),
                        head.headers().firstValue("Content-Length").orElse(null), path);
                assertEquals(got.headers().firstValue("Content-Type"), head.headers().firstValue("Content-Type"), path);
            }
        }
    }
}
