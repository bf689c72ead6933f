package dev.loralego.registry;

import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.MergedVersionManifest;
import org.apache.avro.Schema;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@link RegistrySchemaResolver} against {@link FakeSchemaRegistry}, an in-test server of the documented API. */
class RegistrySchemaResolverTest {

    private static final String SUBJECT = "lora.adapter.layers-value";
    private static final int FAST_BACKOFF_MS = 20;

    @Test
    void registersLooksUpAndCachesBothWays() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            RegistrySchemaResolver client = client(registry.url(), Map.of());
            Schema layer = AdapterLayer.getClassSchema();
            int id = client.register(SUBJECT, layer);
            assertEquals(registry.idOf(layer.toString()), id);
            assertEquals(id, client.register(SUBJECT, layer));
            assertEquals(1, registry.requests().size(), "second registration served from the cache");
            FakeSchemaRegistry.Request post = registry.requests().get(0);
            assertEquals("POST", post.method());
            assertEquals("/subjects/lora.adapter.layers-value/versions", post.path());
            assertEquals("application/vnd.schemaregistry.v1+json", post.contentType());
            assertEquals(layer.toString(), new com.fasterxml.jackson.databind.ObjectMapper().readTree(post.body())
                    .get("schema").asText());
            assertFalse(post.body().contains("schemaType"), "schemaType is omitted for Avro");

            // another subject: registered again, same global id
            assertEquals(id, client.register("lora.merged.layers-value", layer));
            int other = client.register("lora.merged.versions-value", MergedVersionManifest.getClassSchema());
            assertTrue(other != id);

            // a fresh client looks the id up once
            RegistrySchemaResolver reader = client(registry.url(), Map.of());
            int before = registry.requests().size();
            assertEquals(layer, reader.byId(id));
            assertEquals(layer, reader.byId(id));
            List<FakeSchemaRegistry.Request> after = registry.requests().subList(before, registry.requests().size());
            assertEquals(1, after.size());
            assertEquals("GET", after.get(0).method());
            assertEquals("/schemas/ids/" + id, after.get(0).path());
        }
    }

    @Test
    void serdeOverTheRegistryWritesTheRegistrysIdAndReadsBack() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            AdapterLayer layer = AvroSamples.adapterLayer(new SplittableRandom(11));
            byte[] bytes = new AvroSerde<>(AdapterLayer.class, client(registry.url(), Map.of()))
                    .serialize("lora.adapter.layers", layer);
            assertEquals(0, bytes[0]);
            assertEquals(registry.idOf(AdapterLayer.getClassSchema().toString()), ConfluentWireFormat.schemaId(bytes));
            AvroSerde<AdapterLayer> reader = new AvroSerde<>(AdapterLayer.class, client(registry.url(), Map.of()));
            assertEquals(layer, reader.deserialize("lora.adapter.layers", bytes));

            byte[] unknown = bytes.clone();
            ConfluentWireFormat.writeHeader(unknown, 4242);
            BadRecordException e = assertThrows(BadRecordException.class,
                    () -> reader.deserialize("lora.adapter.layers", unknown));
            assertTrue(e.reason().startsWith("unknown schema id 4242"), e.reason());
        }
    }

    @Test
    void sendsBasicAuthAndReportsRefusedCredentials() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            String expected = "Basic " + Base64.getEncoder().encodeToString("svc-lora:s3cret".getBytes(StandardCharsets.UTF_8));
            registry.requireAuthorization(expected);
            RegistrySchemaResolver good = client(registry.url(), Map.of("basic.auth.user.info", "svc-lora:s3cret"));
            int id = good.register(SUBJECT, AdapterLayer.getClassSchema());
            assertEquals(AdapterLayer.getClassSchema(), client(registry.url(),
                    Map.of("schema.registry.basic.auth.user.info", "svc-lora:s3cret")).byId(id));
            for (FakeSchemaRegistry.Request r : registry.requests()) {
                assertEquals(expected, r.authorization(), r.path());
            }

            int before = registry.requests().size();
            RegistrySchemaResolver bad = client(registry.url(), Map.of("basic.auth.user.info", "svc-lora:wrong"));
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class,
                    () -> bad.register("x-value", AdapterLayer.getClassSchema()));
            assertEquals(401, e.status());
            assertTrue(e.getMessage().contains("HTTP 401") && e.getMessage().contains("Unauthorized"), e.getMessage());
            assertEquals(before + 1, registry.requests().size(), "401 is not retried");
        }
    }

    @Test
    void incompatibleSchemaIsAClearErrorThatIsNotRetried() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            RegistrySchemaResolver client = client(registry.url(), Map.of());
            client.register(SUBJECT, AdapterLayer.getClassSchema());
            registry.refuseNewSchemasFor(SUBJECT);
            Schema incompatible = AvroSerdeTest.variant(AdapterLayer.getClassSchema(), Set.of(),
                    new Schema.Field("shardCount", Schema.create(Schema.Type.INT), null, null));
            int before = registry.requests().size();
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class,
                    () -> client.register(SUBJECT, incompatible));
            assertEquals(409, e.status());
            assertEquals(409, e.errorCode());
            assertTrue(e.getMessage().contains("incompatible schema")
                    && e.getMessage().contains("READER_FIELD_MISSING_DEFAULT_VALUE")
                    && e.getMessage().contains(SUBJECT), e.getMessage());
            assertEquals(before + 1, registry.requests().size(), "409 is not retried");
            // the already registered schema still resolves from the cache
            assertEquals(registry.idOf(AdapterLayer.getClassSchema().toString()),
                    client.register(SUBJECT, AdapterLayer.getClassSchema()));
        }
    }

    @Test
    void serverErrorsAreRetriedWithExponentialBackoff() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            RegistrySchemaResolver client = client(registry.url(), Map.of("schema.registry.retry.attempts", "4"));
            registry.failNextRequests(2);
            long t0 = System.nanoTime();
            int id = client.register(SUBJECT, AdapterLayer.getClassSchema());
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertEquals(3, registry.requests().size(), "two 500s, then success");
            assertEquals(registry.idOf(AdapterLayer.getClassSchema().toString()), id);
            assertTrue(millis >= FAST_BACKOFF_MS + 2 * FAST_BACKOFF_MS, "backoff base, then 2x base: " + millis + " ms");

            registry.failNextRequests(100);
            int before = registry.requests().size();
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class, () -> client.byId(77));
            assertEquals(before + 4, registry.requests().size(), "4 attempts");
            assertEquals(500, e.status());
            assertTrue(e.getMessage().contains("after 4 attempts") && e.getMessage().contains("HTTP 500")
                    && e.getMessage().contains("Error in the backend datastore"), e.getMessage());
        }
    }

    @Test
    void unknownIdIsNotRetried() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            UnknownSchemaIdException e = assertThrows(UnknownSchemaIdException.class,
                    () -> client(registry.url(), Map.of()).byId(42));
            assertTrue(e.getMessage().startsWith("unknown schema id 42") && e.getMessage().contains("Schema 42 not found"),
                    e.getMessage());
            assertEquals(1, registry.requests().size());
        }
    }

    /**
     * A corrupt header can carry an id with the top bit set (bytes 1-4 = ff ff ff ff is id -1). The registry answers
     * 404 for it as for any id it does not know: the record is bad, so it must become a dead letter
     * (BadRecordException), not an outage (SchemaRegistryException, which the service retries for ever).
     */
    @Test
    void headerWithTheTopBitOfTheIdSetIsABadRecordNotAnOutage() throws Exception {
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            AdapterLayer layer = AvroSamples.adapterLayer(new SplittableRandom(12));
            byte[] bytes = new AvroSerde<>(AdapterLayer.class, client(registry.url(), Map.of()))
                    .serialize("lora.adapter.layers", layer);
            byte[] corrupt = bytes.clone();
            corrupt[1] = (byte) 0xff;
            corrupt[2] = (byte) 0xff;
            corrupt[3] = (byte) 0xff;
            corrupt[4] = (byte) 0xff;
            AvroSerde<AdapterLayer> reader = new AvroSerde<>(AdapterLayer.class, client(registry.url(), Map.of()));
            BadRecordException e = assertThrows(BadRecordException.class,
                    () -> reader.deserialize("lora.adapter.layers", corrupt));
            assertTrue(e.reason().startsWith("unknown schema id -1"), e.reason());
            assertEquals(-1, e.schemaId());
            assertInstanceOf(UnknownSchemaIdException.class,
                    assertThrows(RuntimeException.class, () -> client(registry.url(), Map.of()).byId(Integer.MIN_VALUE)));
        }
    }

    @Test
    void unreachableRegistryFailsAfterTheConfiguredAttempts() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        RegistrySchemaResolver client = client("http://localhost:" + port, Map.of("schema.registry.retry.attempts", "3"));
        long t0 = System.nanoTime();
        SchemaRegistryException e = assertThrows(SchemaRegistryException.class,
                () -> client.register(SUBJECT, AdapterLayer.getClassSchema()));
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(e.getMessage().contains("localhost:" + port) && e.getMessage().contains("after 3 attempts"),
                e.getMessage());
        assertEquals(-1, e.status());
        assertInstanceOf(ConnectException.class, e.getCause());
        assertTrue(millis >= 3 * FAST_BACKOFF_MS, "two backoffs: " + millis + " ms");
    }

    @Test
    void failsOverToTheNextUrl() throws Exception {
        int deadPort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            deadPort = s.getLocalPort();
        }
        try (FakeSchemaRegistry registry = FakeSchemaRegistry.http()) {
            RegistrySchemaResolver client = client("http://localhost:" + deadPort + "," + registry.url() + "/",
                    Map.of("schema.registry.retry.attempts", "2"));
            int id = client.register(SUBJECT, AdapterLayer.getClassSchema());
            assertEquals(registry.idOf(AdapterLayer.getClassSchema().toString()), id);
            assertEquals(1, registry.requests().size(), "first URL refused the connection, the second answered");
        }
    }

    @Test
    void trustStoreSettingsEnableAPrivateCaRegistry(@TempDir Path tmp) throws Exception {
        Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
        assumeTrue(Files.isExecutable(keytool), "keytool not available");
        Path server = tmp.resolve("server.p12");
        Path cert = tmp.resolve("server.crt");
        Path trust = tmp.resolve("trust.p12");
        run(keytool.toString(), "-genkeypair", "-alias", "registry", "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=localhost", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-validity", "2",
                "-keystore", server.toString(), "-storetype", "PKCS12", "-storepass", "serverpass");
        run(keytool.toString(), "-exportcert", "-alias", "registry", "-keystore", server.toString(),
                "-storepass", "serverpass", "-file", cert.toString());
        run(keytool.toString(), "-importcert", "-noprompt", "-alias", "registry", "-file", cert.toString(),
                "-keystore", trust.toString(), "-storetype", "PKCS12", "-storepass", "trustpass");

        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(server)) {
            ks.load(in, "serverpass".toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, "serverpass".toCharArray());
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), null, null);

        try (FakeSchemaRegistry registry = FakeSchemaRegistry.https(ssl)) {
            assertTrue(registry.url().startsWith("https://"));
            RegistrySchemaResolver trusting = client(registry.url(), Map.of(
                    "schema.registry.ssl.truststore.location", trust.toString(),
                    "schema.registry.ssl.truststore.password", "trustpass",
                    "schema.registry.ssl.truststore.type", "PKCS12"));
            int id = trusting.register(SUBJECT, AdapterLayer.getClassSchema());
            assertEquals(registry.idOf(AdapterLayer.getClassSchema().toString()), id);

            RegistrySchemaResolver jvmTrustOnly = client(registry.url(), Map.of("schema.registry.retry.attempts", "1"));
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class,
                    () -> jvmTrustOnly.register(SUBJECT, AdapterLayer.getClassSchema()));
            assertTrue(e.getMessage().contains("SSLHandshakeException"), e.getMessage());
        }

        org.apache.kafka.common.errors.SerializationException badStore = assertThrows(
                org.apache.kafka.common.errors.SerializationException.class,
                () -> client("https://localhost:1", Map.of("schema.registry.ssl.truststore.location",
                        tmp.resolve("missing.p12").toString())));
        assertTrue(badStore.getMessage().contains("missing.p12"), badStore.getMessage());
    }

    @Test
    void configurationIsValidatedAndPicksTheResolver() {
        assertInstanceOf(EmbeddedSchemaResolver.class, SchemaResolver.fromConfig(Map.of()));
        assertInstanceOf(RegistrySchemaResolver.class,
                SchemaResolver.fromConfig(Map.of("schema.registry.url", "http://registry:8081")));
        IllegalArgumentException noUrl = assertThrows(IllegalArgumentException.class,
                () -> RegistrySchemaResolver.fromConfig(Map.of()));
        assertTrue(noUrl.getMessage().contains("schema.registry.url"), noUrl.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> RegistrySchemaResolver.fromConfig(Map.of("schema.registry.url", "ftp://x")));
        assertThrows(IllegalArgumentException.class, () -> RegistrySchemaResolver.fromConfig(
                Map.of("schema.registry.url", "http://x", "schema.registry.retry.attempts", "0")));
        assertThrows(IllegalArgumentException.class, () -> RegistrySchemaResolver.fromConfig(
                Map.of("schema.registry.url", "http://x", "basic.auth.user.info", "no-colon")));
        RegistrySchemaResolver.Settings s = RegistrySchemaResolver.Settings.from(Map.of(
                "schema.registry.url", "http://a:8081/, http://b:8081", "schema.registry.retry.backoff.ms", "7"));
        assertEquals(List.of(java.net.URI.create("http://a:8081"), java.net.URI.create("http://b:8081")), s.urls());
        assertEquals(7, s.backoff().toMillis());
        assertEquals(5, s.attempts());
    }

    // ---------------------------------------------------------------------------------------------

    private static RegistrySchemaResolver client(String url, Map<String, String> extra) {
        Map<String, String> config = new HashMap<>();
        config.put("schema.registry.url", url);
        config.put("schema.registry.retry.backoff.ms", Integer.toString(FAST_BACKOFF_MS));
        config.put("schema.registry.request.timeout.ms", "5000");
        config.putAll(extra);
        return RegistrySchemaResolver.fromConfig(config);
    }

    private static void run(String... command) throws Exception {
        Process p = new ProcessBuilder(new ArrayList<>(List.of(command))).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "keytool timed out");
        assertEquals(0, p.exitValue(), "keytool failed: " + out);
    }
}
