package dev.loralego.ops;

import org.apache.kafka.streams.state.HostInfo;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Objects;

/**
 * Relays an HTTP GET to the instance that is active for a key (its {@code application.server} endpoint), as
 * Kafka Streams interactive queries require: each instance only holds its own partitions' state.
 *
 * <p>The forwarded request carries {@link #FORWARDED_HEADER}; an instance that receives a forwarded request
 * for a key it does not hold answers 503 instead of forwarding again, so a stale view of the assignment
 * during a rebalance cannot bounce a request between instances.
 */
public final class InstanceForwarding {
    /** Request header marking a forwarded request; its value is the forwarding instance's endpoint. */
    public static final String FORWARDED_HEADER = "X-Lora-Lego-Forwarded-By";

    /** The other instance's answer: status, content type and body, relayed as they are. */
    public record Relayed(int status, String contentType, byte[] body) {
        public Relayed {
            Objects.requireNonNull(body, "body");
        }
    }

    private final HttpClient client;
    private final Duration timeout;
    private final String selfEndpoint;

    /**
     * @param timeout connect and response timeout of one forwarded request
     * @param self    this instance's endpoint (sent in {@link #FORWARDED_HEADER}), or null
     */
    public InstanceForwarding(Duration timeout, HostInfo self) {
        this.timeout = Objects.requireNonNull(timeout, "timeout");
        this.selfEndpoint = self == null ? "unknown" : self.host() + ":" + self.port();
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(timeout)
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /**
     * GETs {@code rawPathAndQuery} (already percent-encoded, starting with '/') from {@code target}.
     *
     * @throws IOException if the other instance cannot be reached or does not answer in time
     */
    public Relayed forward(HostInfo target, String rawPathAndQuery) throws IOException, InterruptedException {
        if (!rawPathAndQuery.startsWith("/")) {
            throw new IllegalArgumentException("path to forward must start with '/': " + rawPathAndQuery);
        }
        URI uri = URI.create(origin(target) + rawPathAndQuery);
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(timeout).header(FORWARDED_HEADER, selfEndpoint).GET().build();
        HttpResponse<byte[]> response = client.send(request, HttpResponse.BodyHandlers.ofByteArray());
        String contentType = response.headers().firstValue("Content-Type").orElse("application/octet-stream");
        return new Relayed(response.statusCode(), contentType, response.body());
    }

    /** {@code http://host:port} of {@code target} (IPv6 literals bracketed). */
    static String origin(HostInfo target) {
        try {
            return new URI("http", null, target.host(), target.port(), null, null, null).toString();
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("bad application.server endpoint " + target.host() + ":" + target.port(), e);
        }
    }
}
