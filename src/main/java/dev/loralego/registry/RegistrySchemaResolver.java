package dev.loralego.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.avro.Schema;
import org.apache.kafka.common.errors.SerializationException;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A client of the Confluent Schema Registry REST API (v1), enough for serdes: register a schema under a
 * subject ({@code POST /subjects/{subject}/versions} with {@code {"schema": "..."}} → {@code {"id": N}})
 * and fetch a schema by id ({@code GET /schemas/ids/{id}} → {@code {"schema": "..."}}). Works with
 * Confluent Schema Registry and the compatible APIs of Apicurio ({@code /apis/ccompat/v7}), Karapace and
 * Redpanda. Thread-safe.
 *
 * <p>Both directions are cached: a (subject, schema) pair is registered once, an id fetched once.
 * Failures:
 * <ul>
 *   <li>HTTP 5xx, 429 and I/O errors (connection refused, timeouts) are retried with exponential backoff
 *       ({@code base, 2·base, 4·base, ...}), rotating over the configured URLs, then raise a
 *       {@link SchemaRegistryException} naming the registry and the number of attempts;</li>
 *   <li>HTTP 409 (incompatible schema) and other 4xx raise a {@link SchemaRegistryException} at once, with
 *       the registry's message;</li>
 *   <li>HTTP 404 when fetching an id raises {@link UnknownSchemaIdException} (the record is bad, not the
 *       registry).</li>
 * </ul>
 *
 * <p>Configuration keys (Confluent's names): {@link #URL_CONFIG} (comma-separated URLs),
 * {@link #USER_INFO_CONFIG} ({@code user:password}, HTTP basic auth), {@link #TRUSTSTORE_LOCATION_CONFIG},
 * {@link #TRUSTSTORE_PASSWORD_CONFIG}, {@link #TRUSTSTORE_TYPE_CONFIG}, and ours: {@link #RETRY_ATTEMPTS_CONFIG},
 * {@link #RETRY_BACKOFF_MS_CONFIG}, {@link #REQUEST_TIMEOUT_MS_CONFIG}.
 */
public final class RegistrySchemaResolver implements SchemaResolver {

    /** Comma-separated base URLs of the registry. */
    public static final String URL_CONFIG = "schema.registry.url";
    /** {@code user:password} for HTTP basic authentication. */
    public static final String USER_INFO_CONFIG = "basic.auth.user.info";
    /** Same as {@link #USER_INFO_CONFIG}, with the registry prefix some deployments use. */
    public static final String PREFIXED_USER_INFO_CONFIG = "schema.registry.basic.auth.user.info";
    /** Trust store for HTTPS registries (default: the JVM's trust store). */
    public static final String TRUSTSTORE_LOCATION_CONFIG = "schema.registry.ssl.truststore.location";
    /** Password of the trust store. */
    public static final String TRUSTSTORE_PASSWORD_CONFIG = "schema.registry.ssl.truststore.password";
    /** Type of the trust store (default: the JVM's default, PKCS12). */
    public static final String TRUSTSTORE_TYPE_CONFIG = "schema.registry.ssl.truststore.type";
    /** Attempts per request before giving up on 5xx / I/O errors (default 5). */
    public static final String RETRY_ATTEMPTS_CONFIG = "schema.registry.retry.attempts";
    /** Base delay of the exponential backoff in ms (default 200). */
    public static final String RETRY_BACKOFF_MS_CONFIG = "schema.registry.retry.backoff.ms";
    /** Timeout of one HTTP request in ms, connect included (default 10000). */
    public static final String REQUEST_TIMEOUT_MS_CONFIG = "schema.registry.request.timeout.ms";

    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
    private static final String ACCEPT = "application/vnd.schemaregistry.v1+json, "
            + "application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Validated settings of the client.
     *
     * @param urls               base URLs, tried in turn
     * @param userInfo           {@code user:password} for basic auth, or null
     * @param truststore         trust store file, or null for the JVM's
     * @param truststorePassword its password, or null
     * @param truststoreType     its type, e.g. {@code PKCS12} or {@code JKS}
     * @param attempts           attempts per request (at least 1)
     * @param backoff            base delay of the exponential backoff
     * @param requestTimeout     timeout of one HTTP request
     */
    public record Settings(List<URI> urls, String userInfo, Path truststore, String truststorePassword,
                           String truststoreType, int attempts, Duration backoff, Duration requestTimeout) {
        /** Validates. */
        public Settings {
            urls = List.copyOf(urls);
            if (urls.isEmpty()) {
                throw new IllegalArgumentException(URL_CONFIG + " names no URL");
            }
            for (URI u : urls) {
                if (!"http".equals(u.getScheme()) && !"https".equals(u.getScheme())) {
                    throw new IllegalArgumentException(URL_CONFIG + " must be http(s) URLs, got " + u);
                }
            }
            if (userInfo != null && !userInfo.contains(":")) {
                throw new IllegalArgumentException(USER_INFO_CONFIG + " must be user:password");
            }
            if (attempts < 1) {
                throw new IllegalArgumentException(RETRY_ATTEMPTS_CONFIG + " must be >= 1, got " + attempts);
            }
            Objects.requireNonNull(truststoreType, "truststoreType");
            if (backoff.isNegative() || requestTimeout.isNegative() || requestTimeout.isZero()) {
                throw new IllegalArgumentException("retry backoff must be >= 0 and request timeout > 0");
            }
        }

        /**
         * Settings from a configuration map (values turned into strings).
         *
         * @throws IllegalArgumentException if {@link #URL_CONFIG} is missing or a value is invalid
         */
        public static Settings from(Map<String, ?> config) {
            String url = string(config, URL_CONFIG);
            if (url == null) {
                throw new IllegalArgumentException(URL_CONFIG + " is not set");
            }
            List<URI> urls = new ArrayList<>();
            for (String u : url.split(",")) {
                if (!u.isBlank()) {
                    String trimmed = u.trim();
                    urls.add(URI.create(trimmed.endsWith("/") ? trimmed.substring(0, trimmed.length() - 1) : trimmed));
                }
            }
            String userInfo = Optional.ofNullable(string(config, USER_INFO_CONFIG))
                    .orElse(string(config, PREFIXED_USER_INFO_CONFIG));
            String ts = string(config, TRUSTSTORE_LOCATION_CONFIG);
            return new Settings(urls, userInfo, ts == null ? null : Path.of(ts),
                    string(config, TRUSTSTORE_PASSWORD_CONFIG),
                    Optional.ofNullable(string(config, TRUSTSTORE_TYPE_CONFIG)).orElse(KeyStore.getDefaultType()),
                    integer(config, RETRY_ATTEMPTS_CONFIG, 5),
                    Duration.ofMillis(integer(config, RETRY_BACKOFF_MS_CONFIG, 200)),
                    Duration.ofMillis(integer(config, REQUEST_TIMEOUT_MS_CONFIG, 10_000)));
        }

        private static String string(Map<String, ?> config, String key) {
            Object v = config.get(key);
            return v == null || v.toString().isBlank() ? null : v.toString().trim();
        }

        private static int integer(Map<String, ?> config, String key, int fallback) {
            String v = string(config, key);
            if (v == null) {
                return fallback;
            }
            try {
                return Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(key + " must be an integer, got '" + v + "'", e);
            }
        }
    }

    private final Settings settings;
    private final HttpClient http;
    private final String authorization;
    /** subject -> (schema JSON -> id). */
    private final Map<String, Map<String, Integer>> registered = new ConcurrentHashMap<>();
    private final Map<Integer, Schema> byId = new ConcurrentHashMap<>();

    /**
     * @param settings client settings
     * @throws SerializationException if the trust store cannot be loaded
     */
    public RegistrySchemaResolver(Settings settings) {
        this.settings = Objects.requireNonNull(settings, "settings");
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(settings.requestTimeout())
                .followRedirects(HttpClient.Redirect.NORMAL);
        if (settings.truststore() != null) {
            b.sslContext(sslContext(settings));
        }
        this.http = b.build();
        this.authorization = settings.userInfo() == null ? null
                : "Basic " + Base64.getEncoder().encodeToString(settings.userInfo().getBytes(StandardCharsets.UTF_8));
    }

    /** A client configured from {@code config}; see the class comment for the keys. */
    public static RegistrySchemaResolver fromConfig(Map<String, ?> config) {
        return new RegistrySchemaResolver(Settings.from(config));
    }

    /** The settings in use. */
    public Settings settings() {
        return settings;
    }

    /**
     * Registers {@code schema} under {@code subject} (a no-op for the registry if it is already there) and
     * returns its global id.
     *
     * @throws SchemaRegistryException if the registry refuses (409 incompatible, 422 invalid, 401/403) or
     *         cannot be reached after all attempts
     */
    @Override
    public int register(String subject, Schema schema) {
        Objects.requireNonNull(subject, "subject");
        String json = Objects.requireNonNull(schema, "schema").toString();
        Map<String, Integer> ids = registered.computeIfAbsent(subject, s -> new ConcurrentHashMap<>());
        Integer cached = ids.get(json);
        if (cached != null) {
            return cached;
        }
        ObjectNode body = JSON.createObjectNode();
        body.put("schema", json);
        String path = "/subjects/" + encode(subject) + "/versions";
        JsonNode answer = call("POST", path, body.toString(), "registering a schema under subject " + subject, null);
        JsonNode id = answer.get("id");
        if (id == null || !id.canConvertToInt()) {
            throw new SchemaRegistryException("registry answered " + path + " without an id: " + answer, 200, -1, null);
        }
        int value = id.asInt();
        ids.put(json, value);
        byId.putIfAbsent(value, schema);
        return value;
    }

    /**
     * The schema with global id {@code id}.
     *
     * @throws UnknownSchemaIdException if the registry does not know the id (HTTP 404) or it is not Avro
     * @throws SchemaRegistryException if the registry cannot be reached after all attempts
     */
    @Override
    public Schema byId(int id) {
        Schema cached = byId.get(id);
        if (cached != null) {
            return cached;
        }
        JsonNode answer = call("GET", "/schemas/ids/" + id, null, "fetching schema id " + id, id);
        JsonNode type = answer.get("schemaType");
        if (type != null && !type.isNull() && !"AVRO".equals(type.asText())) {
            throw new UnknownSchemaIdException(id, "the registry has it as a " + type.asText() + " schema, not Avro");
        }
        JsonNode text = answer.get("schema");
        if (text == null || !text.isTextual()) {
            throw new SchemaRegistryException("registry answered /schemas/ids/" + id + " without a schema", 200, -1,
                    null);
        }
        Schema schema;
        try {
            schema = new Schema.Parser().parse(text.asText());
        } catch (RuntimeException e) {
            throw new UnknownSchemaIdException(id, "the registry's schema does not parse as Avro: " + e.getMessage());
        }
        Schema previous = byId.putIfAbsent(id, schema);
        return previous == null ? schema : previous;
    }

    // ---------------------------------------------------------------------------------------------

    /**
     * One request with retries. A non-null {@code lookupId} marks an id lookup, whose 404 is an unknown id (any int,
     * negative ones included: a corrupt header can carry an id with the top bit set).
     */
    private JsonNode call(String method, String path, String body, String what, Integer lookupId) {
        List<URI> urls = settings.urls();
        Throwable lastCause = null;
        String lastProblem = null;
        int lastStatus = -1;
        for (int attempt = 1; attempt <= settings.attempts(); attempt++) {
            URI base = urls.get((attempt - 1) % urls.size());
            URI uri = URI.create(base + path);
            HttpRequest.Builder rb = HttpRequest.newBuilder(uri).timeout(settings.requestTimeout())
                    .header("Accept", ACCEPT);
            if (authorization != null) {
                rb.header("Authorization", authorization);
            }
            if (body != null) {
                rb.header("Content-Type", CONTENT_TYPE);
                rb.method(method, HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
            } else {
                rb.method(method, HttpRequest.BodyPublishers.noBody());
            }
            HttpResponse<String> response;
            try {
                response = http.send(rb.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            } catch (IOException e) {
                lastCause = e;
                lastStatus = -1;
                lastProblem = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
                backoff(attempt, what);
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SchemaRegistryException("interrupted while " + what, -1, -1, e);
            }
            int status = response.statusCode();
            if (status >= 200 && status < 300) {
                try {
                    return JSON.readTree(response.body());
                } catch (IOException e) {
                    throw new SchemaRegistryException("registry at " + base + " answered " + what
                            + " with invalid JSON: " + abbreviate(response.body()), status, -1, e);
                }
            }
            int errorCode = -1;
            String message = abbreviate(response.body());
            try {
                JsonNode err = JSON.readTree(response.body());
                if (err != null && err.has("message")) {
                    message = err.get("message").asText();
                }
                if (err != null && err.has("error_code")) {
                    errorCode = err.get("error_code").asInt();
                }
            } catch (IOException ignored) {
                // not JSON: keep the raw body as the message
            }
            if (lookupId != null && status == 404) {
                throw new UnknownSchemaIdException(lookupId, "schema registry " + base + ": " + message);
            }
            if (status >= 500 || status == 429) {
                lastCause = null;
                lastStatus = status;
                lastProblem = "HTTP " + status + (errorCode >= 0 ? " (error " + errorCode + ")" : "") + ": " + message;
                backoff(attempt, what);
                continue;
            }
            String kind = status == 409 ? "incompatible schema: " : "";
            throw new SchemaRegistryException("schema registry at " + base + " refused " + what + ": HTTP " + status
                    + (errorCode >= 0 ? " (error " + errorCode + ")" : "") + ", " + kind + message,
                    status, errorCode, null);
        }
        throw new SchemaRegistryException("schema registry " + urls + " failed " + what + " after "
                + settings.attempts() + " attempts; last: " + lastProblem, lastStatus, -1, lastCause);
    }

    private void backoff(int attempt, String what) {
        if (attempt >= settings.attempts()) {
            return;
        }
        long delay = settings.backoff().toMillis() << Math.min(attempt - 1, 20);
        try {
            Thread.sleep(delay);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SchemaRegistryException("interrupted while " + what, -1, -1, e);
        }
    }

    private static SSLContext sslContext(Settings s) {
        try (InputStream in = Files.newInputStream(s.truststore())) {
            KeyStore ks = KeyStore.getInstance(s.truststoreType());
            ks.load(in, s.truststorePassword() == null ? null : s.truststorePassword().toCharArray());
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (IOException | GeneralSecurityException e) {
            throw new SerializationException("cannot load the schema registry trust store " + s.truststore()
                    + " (" + TRUSTSTORE_LOCATION_CONFIG + "): " + e.getMessage(), e);
        }
    }

    private static String encode(String segment) {
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String abbreviate(String s) {
        if (s == null) {
            return "";
        }
        return s.length() <= 500 ? s : s.substring(0, 500) + "...";
    }
}
