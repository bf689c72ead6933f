package dev.loralego.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.cli.RunCommand;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Static checks of Dockerfile, docker-compose.yml and deploy/*.yaml (no Docker engine or cluster here): they
 * parse, the services and resources that matter exist, health checks and probes hit the endpoints the
 * service serves on the port it is told to use, and every {@code run} command line parses with the real
 * {@link RunCommand} options.
 */
class DeploymentFilesTest {
    static final Path ROOT = Path.of("").toAbsolutePath();
    static final YAMLMapper YAML = new YAMLMapper();
    static final ObjectMapper JSON = new ObjectMapper();

    static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    /** A {@code run ...} command line parsed by the real CLI ({@link LoraLegoCommand#commandLine()}); the run part. */
    static CommandLine.ParseResult parseRun(List<String> command) {
        assertEquals("run", command.get(0), "command " + command);
        CommandLine.ParseResult root = LoraLegoCommand.commandLine().parseArgs(command.toArray(String[]::new));
        CommandLine.ParseResult run = root.subcommand();
        assertEquals(RunCommand.class, run.commandSpec().userObject().getClass());
        return run;
    }

    static String dockerfile() throws IOException {
        return Files.readString(ROOT.resolve("Dockerfile"));
    }

    @Test
    void dockerfileBuildsTheJarWithMavenAndRunsItOnAJre() throws IOException {
        List<String> lines = dockerfile().lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
        List<String> froms = lines.stream().filter(l -> l.startsWith("FROM ")).toList();
        assertEquals(List.of("FROM maven:3.9-eclipse-temurin-17 AS build", "FROM eclipse-temurin:17-jre"), froms);
        int runtimeStart = lines.indexOf(froms.get(1));
        List<String> buildStage = lines.subList(0, runtimeStart);
        assertTrue(buildStage.stream().anyMatch(l -> l.startsWith("RUN mvn ") && l.contains(" package")), "mvn package in the build stage");
        for (String needed : List.of("pom.xml", "schemas", "src")) {
            assertTrue(buildStage.stream().anyMatch(l -> l.startsWith("COPY " + needed + " ")), "build stage copies " + needed);
        }
        // The jar the shade plugin writes is the one copied into the runtime stage and run.
        String pom = Files.readString(ROOT.resolve("pom.xml"));
        assertTrue(pom.contains("<finalName>lora-lego</finalName>"), "shaded jar name in the pom");
        List<String> runtime = lines.subList(runtimeStart, lines.size());
        assertTrue(runtime.contains("COPY --from=build /build/target/lora-lego.jar /app/lora-lego.jar"), runtime.toString());
        assertTrue(runtime.contains("EXPOSE 8080"));
        List<String> entry = runtime.stream().filter(l -> l.startsWith("ENTRYPOINT ")).toList();
        assertEquals(1, entry.size());
        assertEquals(List.of("java", "-jar", "/app/lora-lego.jar"),
                strings(readJson(entry.get(0).substring("ENTRYPOINT ".length()))));
        String ignore = Files.readString(ROOT.resolve(".dockerignore"));
        assertTrue(ignore.lines().anyMatch(l -> l.strip().equals("target/")), "target/ is not sent to the build");
    }

    static JsonNode readJson(String s) {
        try {
            return JSON.readTree(s);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + s, e);
        }
    }

    @Test
    void composeHasKraftKafkaRegistryServiceAndWatcherWithHealthChecks() throws IOException {
        JsonNode compose = YAML.readTree(ROOT.resolve("docker-compose.yml").toFile());
        JsonNode services = compose.get("services");
        for (String name : List.of("kafka", "schema-registry", "service", "watch")) assertNotNull(services.get(name), "service " + name);

        JsonNode kafka = services.get("kafka");
        assertTrue(kafka.get("image").asText().startsWith("apache/kafka:"), "official Kafka image");
        JsonNode env = kafka.get("environment");
        assertEquals("broker,controller", env.get("KAFKA_PROCESS_ROLES").asText());
        assertEquals(env.get("KAFKA_NODE_ID").asText() + "@kafka:9093", env.get("KAFKA_CONTROLLER_QUORUM_VOTERS").asText());
        assertTrue(env.get("KAFKA_LISTENERS").asText().contains("CONTROLLER://:9093"));
        assertEquals("CONTROLLER", env.get("KAFKA_CONTROLLER_LISTENER_NAMES").asText());
        for (String one : List.of("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR")) {
            assertEquals(1, env.get(one).asInt(), one);
        }
        assertTrue(env.get("KAFKA_ADVERTISED_LISTENERS").asText().contains("PLAINTEXT://kafka:9092"));
        assertTrue(env.get("KAFKA_MESSAGE_MAX_BYTES").asLong() >= 64L << 20, "room for tensor records");

        JsonNode registry = services.get("schema-registry");
        assertTrue(registry.get("image").asText().startsWith("confluentinc/cp-schema-registry:"));
        assertEquals("PLAINTEXT://kafka:9092", registry.get("environment").get("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS").asText());

        for (String name : List.of("kafka", "schema-registry", "service", "watch")) {
            JsonNode hc = services.get(name).get("healthcheck");
            assertNotNull(hc, "health check of " + name);
            assertTrue(hc.get("test").isArray() && hc.get("test").size() >= 2, name);
        }

        JsonNode service = services.get("service");
        assertEquals(".", service.get("build").asText());
        List<String> command = strings(service.get("command"));
        CommandLine.ParseResult runOptions = parseRun(command);
        assertEquals("kafka:9092", runOptions.matchedOptionValue("--bootstrap-servers", (String) null));
        int httpPort = runOptions.matchedOptionValue("--http-port", 8080);
        String healthTest = String.join(" ", strings(service.get("healthcheck").get("test")));
        assertTrue(healthTest.contains("/dev/tcp/localhost/" + httpPort) && healthTest.contains("GET /ready "), healthTest);
        assertTrue(strings(service.get("ports")).contains(httpPort + ":" + httpPort));
        assertEquals("service_healthy", service.get("depends_on").get("kafka").get("condition").asText());
        assertEquals("service_healthy", service.get("depends_on").get("schema-registry").get("condition").asText());

        // The mounted config file is in the repository and takes the registry URL from the environment.
        String configPath = runOptions.matchedOptionValue("--config", (Path) null).toString();
        Map<String, String> mounts = mounts(service);
        assertTrue(mounts.containsKey(configPath), "config file mounted at " + configPath + ": " + mounts);
        Path hostConfig = ROOT.resolve(mounts.get(configPath));
        assertTrue(Files.isRegularFile(hostConfig), hostConfig.toString());
        Properties props = new Properties();
        props.load(new StringReader(Files.readString(hostConfig)));
        assertEquals("${env:SCHEMA_REGISTRY_URL}", props.getProperty("schema.registry.url"));
        assertTrue(service.get("environment").get("SCHEMA_REGISTRY_URL").asText().startsWith("http://schema-registry:8081"));
        String dataDir = runOptions.matchedOptionValue("--data-dir", (Path) null).toString();
        assertTrue(mounts.containsKey(dataDir), "state dir on a volume");

        JsonNode watch = services.get("watch");
        List<String> watchCommand = strings(watch.get("command"));
        assertEquals("watch", watchCommand.get(0));
        String out = watchCommand.get(watchCommand.indexOf("--out") + 1);
        assertTrue(mounts(watch).containsKey(out), "watch output on a volume");
        assertTrue(watchCommand.contains("--group"));
        assertEquals("kafka:9092", watchCommand.get(watchCommand.indexOf("--bootstrap-servers") + 1));
        assertTrue(watch.get("environment").has("SCHEMA_REGISTRY_URL"));

        // Every named volume used is declared.
        for (String name : List.of("kafka", "service", "watch")) {
            for (String source : mounts(services.get(name)).values()) {
                if (!source.startsWith(".")) assertTrue(compose.get("volumes").has(source), "volume " + source + " declared");
            }
        }
    }

    @Test
    void composeWatchCommandParsesWithTheRealCli() throws IOException {
        CommandLine cli = LoraLegoCommand.commandLine();
        assumeTrue(cli.getSubcommands().containsKey("watch"), "this build has no watch subcommand");
        JsonNode watch = YAML.readTree(ROOT.resolve("docker-compose.yml").toFile()).get("services").get("watch");
        List<String> command = strings(watch.get("command")).stream()
                .map(a -> a.replace("${LORA_GROUP:-demo}", "demo")).toList(); // compose interpolation
        CommandLine.ParseResult parsed = cli.parseArgs(command.toArray(String[]::new)).subcommand();
        assertEquals("watch", parsed.commandSpec().name());
        assertEquals("demo", parsed.matchedOptionValue("--group", (String) null));
        assertEquals("kafka:9092", parsed.matchedOptionValue("--bootstrap-servers", (String) null));
    }

    /** Container path → source (named volume or host path) of a compose service's short-syntax volumes. */
    static Map<String, String> mounts(JsonNode service) {
        Map<String, String> out = new HashMap<>();
        for (String v : strings(service.get("volumes"))) {
            String[] parts = v.split(":");
            out.put(parts[1], parts[0]);
        }
        return out;
    }

    static List<JsonNode> kubernetesDocuments() throws IOException {
        List<JsonNode> docs = new ArrayList<>();
        try (Stream<Path> files = Files.list(ROOT.resolve("deploy"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                try (var it = YAML.readerFor(JsonNode.class).<JsonNode>readValues(f.toFile())) {
                    while (it.hasNext()) {
                        JsonNode doc = it.next();
                        if (doc != null && !doc.isNull() && !doc.isEmpty()) docs.add(doc);
                    }
                }
            }
        }
        return docs;
    }

    static JsonNode only(List<JsonNode> docs, String kind) {
        List<JsonNode> of = docs.stream().filter(d -> kind.equals(d.path("kind").asText())).toList();
        assertEquals(1, of.size(), "one " + kind);
        return of.get(0);
    }

    static boolean selects(JsonNode selector, JsonNode labels) {
        for (Map.Entry<String, JsonNode> e : selector.properties()) {
            if (!e.getValue().asText().equals(labels.path(e.getKey()).asText(null))) return false;
        }
        return selector.size() > 0;
    }

    @Test
    void kubernetesManifestsAreConsistent() throws IOException {
        List<JsonNode> docs = kubernetesDocuments();
        Map<String, String> apiVersions = Map.of("StatefulSet", "apps/v1", "Service", "v1", "ConfigMap", "v1",
                "PodDisruptionBudget", "policy/v1", "Kustomization", "kustomize.config.k8s.io/v1beta1");
        for (JsonNode d : docs) {
            String kind = d.path("kind").asText();
            assertEquals(apiVersions.get(kind), d.path("apiVersion").asText(), "apiVersion of " + kind);
        }
        // The kustomization lists every manifest file.
        JsonNode kustomization = only(docs, "Kustomization");
        try (Stream<Path> files = Files.list(ROOT.resolve("deploy"))) {
            List<String> manifests = files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".yaml") && !n.equals("kustomization.yaml")).sorted().toList();
            assertEquals(manifests, strings(kustomization.get("resources")).stream().sorted().toList());
        }

        JsonNode sts = only(docs, "StatefulSet");
        JsonNode pod = sts.at("/spec/template");
        JsonNode podLabels = pod.at("/metadata/labels");
        assertTrue(selects(sts.at("/spec/selector/matchLabels"), podLabels), "StatefulSet selector matches its pods");
        JsonNode container = pod.at("/spec/containers/0");
        CommandLine.ParseResult run = parseRun(strings(container.get("args")));
        int httpPort = run.matchedOptionValue("--http-port", 8080);
        assertTrue(httpPort > 0, "HTTP on");
        assertTrue(run.hasMatchedOption("--bootstrap-servers"), "no embedded broker in a cluster");
        assertTrue(run.hasMatchedOption("--app-id"), "application id spelled out");
        assertTrue(run.matchedOptionValue("--partitions", 1) >= sts.at("/spec/replicas").asInt(), "partitions ≥ instances");

        JsonNode httpContainerPort = null;
        for (JsonNode p : container.get("ports")) if ("http".equals(p.path("name").asText())) httpContainerPort = p;
        assertNotNull(httpContainerPort);
        assertEquals(httpPort, httpContainerPort.get("containerPort").asInt());
        Map<String, String> probePaths = Map.of("livenessProbe", "/health", "readinessProbe", "/ready", "startupProbe", "/health");
        probePaths.forEach((probe, path) -> {
            JsonNode get = container.at("/" + probe + "/httpGet");
            assertEquals(path, get.path("path").asText(), probe);
            JsonNode port = get.get("port");
            assertTrue(port.asText().equals("http") || port.asInt() == httpPort, probe + " port " + port);
        });

        // Resources: requests 3Gi, limit 5Gi, and the heap fits under the limit.
        assertEquals("3Gi", container.at("/resources/requests/memory").asText());
        assertEquals("5Gi", container.at("/resources/limits/memory").asText());
        Map<String, String> env = new HashMap<>();
        for (JsonNode e : container.get("env")) env.put(e.get("name").asText(), e.path("value").asText(null));
        Matcher xmx = Pattern.compile("-Xmx(\\d+)g").matcher(String.valueOf(env.get("JAVA_TOOL_OPTIONS")));
        assertTrue(xmx.find(), "heap set in JAVA_TOOL_OPTIONS");
        assertTrue(Integer.parseInt(xmx.group(1)) < 5, "heap below the 5Gi limit");
        assertTrue(env.containsKey("POD_NAME") && env.containsKey("POD_NAMESPACE"), "downward API for application.server");

        // Volumes: the config map holds the --config file; the data dir is a claim template.
        Map<String, String> mountPaths = new HashMap<>();
        for (JsonNode m : container.get("volumeMounts")) mountPaths.put(m.get("name").asText(), m.get("mountPath").asText());
        String configFile = run.matchedOptionValue("--config", (Path) null).toString();
        JsonNode configMap = only(docs, "ConfigMap");
        JsonNode configVolume = null;
        for (JsonNode v : pod.at("/spec/volumes")) if (v.has("configMap")) configVolume = v;
        assertNotNull(configVolume);
        assertEquals(configMap.at("/metadata/name").asText(), configVolume.at("/configMap/name").asText());
        String configDir = mountPaths.get(configVolume.get("name").asText());
        assertTrue(configFile.startsWith(configDir + "/"), configFile + " under " + configDir);
        String fileText = configMap.at("/data").path(configFile.substring(configDir.length() + 1)).asText(null);
        assertNotNull(fileText, "ConfigMap key for " + configFile);
        String claim = sts.at("/spec/volumeClaimTemplates/0/metadata/name").asText();
        assertEquals(run.matchedOptionValue("--data-dir", (Path) null).toString(), mountPaths.get(claim));

        // application.server: this pod's name under the headless Service, on --http-port.
        Properties props = new Properties();
        props.load(new StringReader(fileText));
        String server = props.getProperty("application.server");
        assertNotNull(server);
        String headlessName = sts.at("/spec/serviceName").asText();
        assertTrue(server.startsWith("${env:POD_NAME}." + headlessName + "."), server);
        // As the pod resolves it (ClientSettings: ${env:NAME} from the environment the StatefulSet sets).
        String resolved = server.replace("${env:POD_NAME}", "lora-lego-0").replace("${env:POD_NAMESPACE}", "ml");
        HostInfo endpoint = HostInfo.buildFromEndpoint(resolved);
        assertEquals("lora-lego-0." + headlessName + ".ml.svc.cluster.local", endpoint.host());
        assertEquals(httpPort, endpoint.port());
        assertTrue(props.getProperty("num.standby.replicas") != null, "standby replicas configured");
        assertTrue(props.getProperty("schema.registry.url").startsWith("http"));

        // Services: the headless one named by the StatefulSet, and one for the HTTP port; both select the pods.
        List<JsonNode> services = docs.stream().filter(d -> "Service".equals(d.path("kind").asText())).toList();
        assertEquals(2, services.size());
        JsonNode headless = services.stream().filter(s -> headlessName.equals(s.at("/metadata/name").asText())).findFirst().orElseThrow();
        assertEquals("None", headless.at("/spec/clusterIP").asText());
        assertTrue(headless.at("/spec/publishNotReadyAddresses").asBoolean(), "forwarding works during rebalances");
        for (JsonNode s : services) {
            assertTrue(selects(s.at("/spec/selector"), podLabels), s.at("/metadata/name").asText() + " selects the pods");
            JsonNode port = s.at("/spec/ports/0");
            assertEquals(httpPort, port.get("port").asInt());
            assertTrue(port.get("targetPort").asText().equals("http") || port.get("targetPort").asInt() == httpPort);
        }
        JsonNode pdb = only(docs, "PodDisruptionBudget");
        assertTrue(selects(pdb.at("/spec/selector/matchLabels"), podLabels));
        assertFalse(Files.readString(ROOT.resolve("deploy/README.md")).isBlank());
    }
}
