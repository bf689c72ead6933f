package dev.loralego.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;

import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An in-test server following the documented Confluent Schema Registry API v1 for the two calls the
 * client makes: {@code POST /subjects/{subject}/versions} and {@code GET /schemas/ids/{id}}, with error
 * bodies {@code {"error_code": N, "message": "..."}}. Ids are global: the same schema text gets the same
 * id under every subject. Hooks: required basic-auth header, subjects that refuse new schemas (409),
 * a number of upcoming requests answered with HTTP 500.
 */
final class FakeSchemaRegistry implements AutoCloseable {

    /** One received request. */
    record Request(String method, String path, String authorization, String contentType, String body) {
    }

    private static final Pattern REGISTER = Pattern.compile("/subjects/([^/]+)/versions");
    private static final Pattern BY_ID = Pattern.compile("/schemas/ids/(-?\\d+)");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    private final Map<String, Integer> idBySchema = new LinkedHashMap<>();
    private final Map<Integer, String> schemaById = new LinkedHashMap<>();
    private final Map<String, List<Integer>> versions = new LinkedHashMap<>();
    private final Set<String> incompatibleSubjects = new HashSet<>();
    private final List<Request> requests = new ArrayList<>();
    private final AtomicInteger failNext = new AtomicInteger();
    private volatile String requiredAuthorization;
    private int nextId = 1;

    private FakeSchemaRegistry(HttpServer server) {
        this.server = server;
        server.createContext("/", this::handle);
        server.start();
    }

    static FakeSchemaRegistry http() throws IOException {
        return new FakeSchemaRegistry(HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0));
    }

    static FakeSchemaRegistry https(SSLContext ssl) throws IOException {
        HttpsServer s = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        s.setHttpsConfigurator(new HttpsConfigurator(ssl));
        return new FakeSchemaRegistry(s);
    }

    String url() {
        String scheme = server instanceof HttpsServer ? "https" : "http";
        return scheme + "://localhost:" + server.getAddress().getPort();
    }

    void requireAuthorization(String header) {
        this.requiredAuthorization = header;
    }

    synchronized void refuseNewSchemasFor(String subject) {
        incompatibleSubjects.add(subject);
    }

    void failNextRequests(int n) {
        failNext.set(n);
    }

    synchronized List<Request> requests() {
        return List.copyOf(requests);
    }

    synchronized int idOf(String schemaJson) {
        return idBySchema.getOrDefault(schemaJson, -1);
    }

    private void handle(HttpExchange ex) throws IOException {
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        String path = ex.getRequestURI().getRawPath();
        synchronized (this) {
            requests.add(new Request(ex.getRequestMethod(), path, ex.getRequestHeaders().getFirst("Authorization"),
                    ex.getRequestHeaders().getFirst("Content-Type"), body));
        }
        if (failNext.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            error(ex, 500, 50001, "Error in the backend datastore");
            return;
        }
        String auth = requiredAuthorization;
        if (auth != null && !auth.equals(ex.getRequestHeaders().getFirst("Authorization"))) {
            error(ex, 401, 401, "Unauthorized");
            return;
        }
        Matcher reg = REGISTER.matcher(path);
        Matcher get = BY_ID.matcher(path);
        if ("POST".equals(ex.getRequestMethod()) && reg.matches()) {
            String subject = URLDecoder.decode(reg.group(1), StandardCharsets.UTF_8);
            JsonNode req = JSON.readTree(body);
            if (req == null || !req.has("schema")) {
                error(ex, 422, 42201, "Invalid schema");
                return;
            }
            String schema = req.get("schema").asText();
            int id;
            synchronized (this) {
                Integer existing = idBySchema.get(schema);
                boolean known = existing != null && versions.getOrDefault(subject, List.of()).contains(existing);
                if (!known && incompatibleSubjects.contains(subject)) {
                    error(ex, 409, 409, "Schema being registered is incompatible with an earlier schema for subject \""
                            + subject + "\", details: [READER_FIELD_MISSING_DEFAULT_VALUE]");
                    return;
                }
                id = idBySchema.computeIfAbsent(schema, s -> nextId++);
                schemaById.put(id, schema);
                List<Integer> v = versions.computeIfAbsent(subject, s -> new ArrayList<>());
                if (!v.contains(id)) {
                    v.add(id);
                }
            }
            ObjectNode out = JSON.createObjectNode();
            out.put("id", id);
            respond(ex, 200, out.toString());
        } else if ("GET".equals(ex.getRequestMethod()) && get.matches()) {
            int id = Integer.parseInt(get.group(1));
            String schema;
            synchronized (this) {
                schema = schemaById.get(id);
            }
            if (schema == null) {
                error(ex, 404, 40403, "Schema " + id + " not found");
                return;
            }
            ObjectNode out = JSON.createObjectNode();
            out.put("schema", schema);
            respond(ex, 200, out.toString());
        } else {
            error(ex, 404, 404, "HTTP 404 Not Found");
        }
    }

    private static void error(HttpExchange ex, int status, int code, String message) throws IOException {
        ObjectNode out = JSON.createObjectNode();
        out.put("error_code", code);
        out.put("message", message);
        respond(ex, status, out.toString());
    }

    private static void respond(HttpExchange ex, int status, String json) throws IOException {
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/vnd.schemaregistry.v1+json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
        ex.close();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
