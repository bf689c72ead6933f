package dev.loralego.ops;

import com.sun.net.httpserver.HttpServer;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Forwarding to "the other instance": a plain JDK HttpServer that records what it was asked and answers canned bodies. */
class InstanceForwardingTest {
    static final Duration TIMEOUT = Duration.ofSeconds(5);
    HttpServer other;
    final List<String> seenPaths = new CopyOnWriteArrayList<>();
    final List<String> seenForwardedBy = new CopyOnWriteArrayList<>();

    @BeforeEach
    void startOther() throws IOException {
        other = HttpServer.create(new InetSocketAddress("localhost", 0), 0);
        other.createContext("/", ex -> {
            seenPaths.add(ex.getRequestURI().getRawPath() + (ex.getRequestURI().getRawQuery() == null ? "" : "?" + ex.getRequestURI().getRawQuery()));
            seenForwardedBy.add(String.valueOf(ex.getRequestHeaders().getFirst(InstanceForwarding.FORWARDED_HEADER)));
            boolean known = ex.getRequestURI().getRawPath().startsWith("/groups/team%2Fa%20b/");
            byte[] body = (known ? "{\"sequence\":7}" : "{\"error\":\"no version\"}").getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(known ? 200 : 404, body.length);
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        });
        other.start();
    }

    @AfterEach
    void stopOther() {
        other.stop(0);
    }

    HostInfo otherHost() {
        return new HostInfo("localhost", other.getAddress().getPort());
    }

    @Test
    void relaysStatusTypeAndBodyAndKeepsTheEncodedPath() throws Exception {
        InstanceForwarding f = new InstanceForwarding(TIMEOUT, new HostInfo("me.example", 8080));
        InstanceForwarding.Relayed r = f.forward(otherHost(), "/groups/team%2Fa%20b/versions/latest?x=1");
        assertEquals(200, r.status());
        assertEquals("application/json", r.contentType());
        assertArrayEquals("{\"sequence\":7}".getBytes(StandardCharsets.UTF_8), r.body());
        assertEquals(List.of("/groups/team%2Fa%20b/versions/latest?x=1"), seenPaths);
        assertEquals(List.of("me.example:8080"), seenForwardedBy);
    }

    @Test
    void relaysNotFoundVerbatim() throws Exception {
        InstanceForwarding f = new InstanceForwarding(TIMEOUT, null);
        InstanceForwarding.Relayed r = f.forward(otherHost(), "/groups/other/versions/latest");
        assertEquals(404, r.status());
        assertEquals("{\"error\":\"no version\"}", new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(List.of("unknown"), seenForwardedBy);
    }

    @Test
    void unreachableInstanceIsAnIOException() throws Exception {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        InstanceForwarding f = new InstanceForwarding(TIMEOUT, null);
        assertThrows(IOException.class, () -> f.forward(new HostInfo("localhost", closedPort), "/groups/g/versions/latest"));
    }

    @Test
    void pathMustBeAbsoluteAndIpv6HostsAreBracketed() {
        InstanceForwarding f = new InstanceForwarding(TIMEOUT, null);
        assertThrows(IllegalArgumentException.class, () -> f.forward(otherHost(), "groups/g/versions/latest"));
        assertEquals("http://[::1]:8080", InstanceForwarding.origin(new HostInfo("::1", 8080)));
        assertEquals("http://pod-0.svc:9000", InstanceForwarding.origin(new HostInfo("pod-0.svc", 9000)));
    }

    @Test
    void pathSegmentsDecodePercentButNotPlus() {
        assertEquals("team/a b", OpsServer.decodeSegment("team%2Fa%20b"));
        assertEquals("a+b", OpsServer.decodeSegment("a+b"));
        assertThrows(IllegalArgumentException.class, () -> OpsServer.decodeSegment("bad%2"));
    }
}
