package dev.loralego.ops;

import dev.loralego.client.ManifestJson;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.stream.MergeTopology;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.state.HostInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The service's HTTP endpoint ({@code run --http-port}, JDK {@link HttpServer}, GET and HEAD only; a HEAD gets
 * the status and headers a GET would, {@code Content-Length} included, without the body):
 * <ul>
 *   <li>{@code /health} — 200 while the process is up (liveness);</li>
 *   <li>{@code /ready} — 200 when Kafka Streams is {@code RUNNING}, else 503; the body names the state
 *       (readiness);</li>
 *   <li>{@code /metrics} — Prometheus text format ({@link ServiceMetrics});</li>
 *   <li>{@code /groups/{group}/versions/latest} — the group's latest merged version manifest as JSON
 *       ({@link ManifestJson}) from the {@link MergeTopology#LATEST_VERSION_STORE} store; forwarded to the
 *       active instance when the group's partition lives elsewhere ({@link InstanceForwarding}); 404 when
 *       the group has no version, 503 while the store cannot be queried (rebalancing, restoring), 502 when
 *       the active instance cannot be reached.</li>
 * </ul>
 * Error bodies are JSON objects {@code {"error": "..."}}.
 */
public final class OpsServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpsServer.class);
    /** Content type of the Prometheus text exposition format. */
    public static final String PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
    private static final String JSON = "application/json";
    private static final Duration FORWARD_TIMEOUT = Duration.ofSeconds(10);
    private static final int HANDLER_THREADS = 4;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final HttpServer server;
    private final ExecutorService executor;
    private final KafkaStreams streams;
    private final ServiceMetrics metrics;
    private final Deserializer<MergedVersionManifest> manifests;
    private final LatestVersionQuery query;
    private final InstanceForwarding forwarding;

    private OpsServer(HttpServer server, ExecutorService executor, KafkaStreams streams, ServiceMetrics metrics,
                      Deserializer<MergedVersionManifest> manifests, HostInfo self) {
        this.server = server;
        this.executor = executor;
        this.streams = streams;
        this.metrics = metrics;
        this.manifests = manifests;
        this.query = new LatestVersionQuery(streams, self);
        this.forwarding = new InstanceForwarding(FORWARD_TIMEOUT, self);
    }

    /**
     * Binds {@code address} (port 0: any free port) and starts serving.
     *
     * @param streams   the running service's Kafka Streams (state and interactive queries)
     * @param metrics   what {@code /metrics} exposes
     * @param manifests decoder of the stored manifests (the service's {@code mergedVersion} serde)
     * @param self      this instance's {@code application.server} endpoint, or null (no forwarding)
     * @throws IOException if the address cannot be bound
     */
    public static OpsServer start(InetSocketAddress address, KafkaStreams streams, ServiceMetrics metrics,
                                  Deserializer<MergedVersionManifest> manifests, HostInfo self) throws IOException {
        Objects.requireNonNull(streams, "streams");
        Objects.requireNonNull(metrics, "metrics");
        Objects.requireNonNull(manifests, "manifests");
        HttpServer server = HttpServer.create(address, 0);
        AtomicInteger threadNo = new AtomicInteger();
        ExecutorService executor = Executors.newFixedThreadPool(HANDLER_THREADS, r -> {
            Thread t = new Thread(r, "ops-http-" + threadNo.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        OpsServer ops = new OpsServer(server, executor, streams, metrics, manifests, self);
        server.createContext("/health", ops.getOnly(ops::health));
        server.createContext("/ready", ops.getOnly(ops::ready));
        server.createContext("/metrics", ops.getOnly(ops::metrics));
        server.createContext("/groups/", ops.getOnly(ops::groups));
        server.createContext("/", ops.getOnly(ex -> ops.error(ex, 404, "no such endpoint: " + ex.getRequestURI().getRawPath())));
        server.setExecutor(executor);
        server.start();
        LOG.info("ops endpoint on port {} (/health /ready /metrics /groups/{group}/versions/latest){}",
                ops.port(), self == null ? "" : ", application.server " + self.host() + ":" + self.port());
        return ops;
    }

    /** The bound port. */
    public int port() {
        return server.getAddress().getPort();
    }

    private HttpHandler getOnly(HttpHandler handler) {
        return ex -> {
            try {
                if (!"GET".equals(ex.getRequestMethod()) && !isHead(ex)) {
                    ex.getResponseHeaders().set("Allow", "GET, HEAD");
                    error(ex, 405, "method " + ex.getRequestMethod() + " not allowed; use GET or HEAD");
                    return;
                }
                handler.handle(ex);
            } catch (IOException | RuntimeException e) {
                LOG.warn("ops request {} failed: {}", ex.getRequestURI(), e.toString());
                throw e;
            } finally {
                ex.close();
            }
        };
    }

    private void health(HttpExchange ex) throws IOException {
        if (!exactPath(ex, "/health")) return;
        ObjectNode body = MAPPER.createObjectNode().put("status", "UP");
        send(ex, 200, JSON, MAPPER.writeValueAsBytes(body));
    }

    private void ready(HttpExchange ex) throws IOException {
        if (!exactPath(ex, "/ready")) return;
        KafkaStreams.State state = streams.state();
        boolean running = state == KafkaStreams.State.RUNNING;
        ObjectNode body = MAPPER.createObjectNode().put("ready", running).put("state", state.name());
        send(ex, running ? 200 : 503, JSON, MAPPER.writeValueAsBytes(body));
    }

    private void metrics(HttpExchange ex) throws IOException {
        if (!exactPath(ex, "/metrics")) return;
        send(ex, 200, PROMETHEUS_CONTENT_TYPE, metrics.scrape().getBytes(StandardCharsets.UTF_8));
    }

    private void groups(HttpExchange ex) throws IOException {
        String raw = ex.getRequestURI().getRawPath();
        String[] parts = raw.split("/", -1);
        // "", "groups", group, "versions", "latest"
        if (parts.length != 5 || parts[2].isEmpty() || !"versions".equals(parts[3]) || !"latest".equals(parts[4])) {
            error(ex, 404, "no such endpoint: " + raw + " (expected /groups/{group}/versions/latest)");
            return;
        }
        String group;
        try {
            group = decodeSegment(parts[2]);
        } catch (IllegalArgumentException e) {
            error(ex, 400, "bad group in path: " + e.getMessage());
            return;
        }
        LatestVersionQuery.Answer answer = query.lookup(group);
        if (answer instanceof LatestVersionQuery.Found found) {
            MergedVersionManifest m;
            try {
                m = manifests.deserialize(MergeTopology.LATEST_VERSION_STORE, found.manifest());
            } catch (SerializationException e) {
                error(ex, 500, "stored manifest of group '" + group + "' cannot be decoded: " + e.getMessage());
                return;
            }
            send(ex, 200, JSON, ManifestJson.toJson(m).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } else if (answer instanceof LatestVersionQuery.Missing) {
            error(ex, 404, "group '" + group + "' has no merged version");
        } else if (answer instanceof LatestVersionQuery.Unavailable u) {
            error(ex, 503, u.reason());
        } else if (answer instanceof LatestVersionQuery.Remote remote) {
            String forwardedBy = ex.getRequestHeaders().getFirst(InstanceForwarding.FORWARDED_HEADER);
            if (forwardedBy != null) {
                error(ex, 503, "group '" + group + "' is active on " + endpoint(remote.host()) + ", not here (request forwarded by "
                        + forwardedBy + "; the assignment is changing, retry)");
                return;
            }
            String target = raw + (ex.getRequestURI().getRawQuery() == null ? "" : "?" + ex.getRequestURI().getRawQuery());
            InstanceForwarding.Relayed relayed;
            try {
                relayed = forwarding.forward(remote.host(), target);
            } catch (IOException e) {
                error(ex, 502, "group '" + group + "' is active on " + endpoint(remote.host()) + ", which did not answer: " + e);
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                error(ex, 503, "interrupted while forwarding to " + endpoint(remote.host()));
                return;
            }
            send(ex, relayed.status(), relayed.contentType(), relayed.body());
        }
    }

    private static String endpoint(HostInfo h) {
        return h.host() + ":" + h.port();
    }

    private boolean exactPath(HttpExchange ex, String path) throws IOException {
        if (path.equals(ex.getRequestURI().getRawPath())) return true;
        error(ex, 404, "no such endpoint: " + ex.getRequestURI().getRawPath());
        return false;
    }

    private void error(HttpExchange ex, int status, String message) throws IOException {
        send(ex, status, JSON, MAPPER.writeValueAsBytes(MAPPER.createObjectNode().put("error", message)));
    }

    private static boolean isHead(HttpExchange ex) {
        return "HEAD".equals(ex.getRequestMethod());
    }

    private static void send(HttpExchange ex, int status, String contentType, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", contentType);
        if (isHead(ex)) {
            // the JDK server sends no body for HEAD and wants the length as a header, not as an argument
            ex.getResponseHeaders().set("Content-Length", Integer.toString(body.length));
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }

    @Override
    public void close() {
        server.stop(1);
        executor.shutdownNow();
    }

    /** Percent-decoding of one URL path segment ('+' stays '+', unlike form decoding). */
    static String decodeSegment(String segment) {
        return URLDecoder.decode(segment.replace("+", "%2B"), StandardCharsets.UTF_8);
    }
}
