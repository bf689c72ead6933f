package dev.loralego.cli;

import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.ops.OpsServer;
import dev.loralego.ops.ServiceLogging;
import dev.loralego.ops.ServiceMetrics;
import dev.loralego.registry.SchemaResolver;
import dev.loralego.stream.ClientSettings;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.VersionLog;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.state.HostInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code run}: the streaming merge service. */
@Command(name = "run", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs the streaming merge service (Kafka Streams).",
                "Without --bootstrap-servers it starts a real single-node Kafka broker inside this JVM."
                + " HTTP on --http-port: /health, /ready, /metrics (Prometheus), /groups/{group}/versions/latest.",
                "Example: run --k 16 --data-dir ./data"})
public final class RunCommand implements Callable<Integer> {
    @Option(names = "--bootstrap-servers", description = "Kafka bootstrap servers; omit to start the embedded broker")
    String bootstrap;

    @Option(names = "--config", description = "config file (Kafka client settings, topic.*, lora.group.<g>.<option> overrides; values may use $${env:NAME})")
    Path configFile;

    @Option(names = "--embedded-port", defaultValue = "9092", description = "port of the embedded broker (default: ${DEFAULT-VALUE}; 0 = any free port)")
    int embeddedPort;

    @Option(names = "--data-dir", defaultValue = "lora-lego-data", description = "embedded broker data and Streams state (default: ${DEFAULT-VALUE})")
    Path dataDir;

    @Option(names = "--app-id", defaultValue = "lora-lego", description = "Kafka Streams application id, shared by all instances (default: ${DEFAULT-VALUE})")
    String appId;

    @Option(names = "--partitions", defaultValue = "4", description = "partitions of the topics the service creates; "
            + "the most stream threads (over all instances) that can share the work; fixed once the topics exist (default: ${DEFAULT-VALUE})")
    int partitions;

    @Option(names = "--replication", defaultValue = "1", description = "replication factor of the topics the service creates; from 3 on they also get min.insync.replicas=2 (default: ${DEFAULT-VALUE})")
    short replication;

    @Option(names = "--threads", defaultValue = "0", description = "stream threads; 0 = one per core, at most --partitions (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--max-record-bytes", defaultValue = "67108864", description = "largest tensor record (default: ${DEFAULT-VALUE})")
    int maxRecordBytes;

    @Option(names = "--http-port", defaultValue = "8080",
            description = "port of /health, /ready, /metrics and /groups/{group}/versions/latest; 0 = off (default: ${DEFAULT-VALUE})")
    int httpPort;

    @Option(names = "--advertised-host", description = "host other instances use to reach this one's --http-port "
            + "(Kafka Streams application.server, for forwarded queries); default: this machine's host name. "
            + "An application.server entry in --config wins")
    String advertisedHost;

    @Option(names = "--quiet", description = "log only warnings and errors")
    boolean quiet;

    @Option(names = "--json", description = "log one JSON object per line (stderr)")
    boolean json;

    @Mixin
    ServiceOptionsMixin options;

    /** {@code threads}, or for 0 one per available core but no more than there are partitions to work on. */
    static int streamThreads(int threads, int partitions) {
        if (threads < 0) throw new IllegalArgumentException("--threads must be >= 0, got " + threads);
        if (threads > 0) return threads;
        return Math.max(1, Math.min(Runtime.getRuntime().availableProcessors(), partitions));
    }

    @Override
    public Integer call() throws Exception {
        if (quiet || json) ServiceLogging.configure(quiet, json);
        Map<String, String> config = new TreeMap<>(ClientSettings.load(configFile));
        if (httpPort != 0 && !config.containsKey(StreamsConfig.APPLICATION_SERVER_CONFIG)) {
            config.put(StreamsConfig.APPLICATION_SERVER_CONFIG, advertisedHost() + ":" + httpPort);
        }
        // Options and per-group overrides are checked before anything starts (a broker takes seconds, and its
        // shutdown more lines than the one that names the bad option).
        MergeParameters defaults = options.toParameters();
        int streamThreads = streamThreads(threads, partitions);
        new MergeService.Config(bootstrap == null ? "localhost:" + embeddedPort : bootstrap, appId, dataDir.resolve("streams"),
                partitions, replication, maxRecordBytes, streamThreads, defaults, config);
        if (httpPort != 0) requireFreePort(httpPort);
        EmbeddedKafkaBroker broker = null;
        String servers = bootstrap;
        if (servers == null) {
            try {
                broker = EmbeddedKafkaBroker.start(dataDir.resolve("kafka"), embeddedPort);
            } catch (java.net.BindException e) {
                throw new IllegalStateException("embedded broker: " + e.getMessage() + " (--embedded-port PORT, or"
                        + " --bootstrap-servers localhost:" + embeddedPort + ")", e);
            }
            servers = broker.bootstrapServers();
        }
        MergeService.Config cfg = new MergeService.Config(servers, appId, dataDir.resolve("streams"), partitions,
                replication, maxRecordBytes, streamThreads, defaults, config);
        ServiceMetrics metrics = new ServiceMetrics();
        VersionLog log = new VersionLog();
        MergeService service;
        try {
            service = MergeService.start(cfg, m -> {
                log.versionEmitted(m);
                metrics.versionEmitted(m);
            }, metrics, Duration.ofMinutes(2));
        } catch (Exception | Error e) {
            // e.g. existing topics that do not fit: stop the broker this command started, cleanly, before reporting
            metrics.close();
            if (broker != null) broker.close();
            throw e;
        }
        metrics.bindStreams(service.streams());
        try {
            service.latestManifests(Duration.ofSeconds(60)).values().forEach(metrics::versionRecovered);
        } catch (RuntimeException e) {
            // metrics only: the service runs on, the gauges appear with each group's next version
            org.slf4j.LoggerFactory.getLogger(RunCommand.class).warn("could not read the groups' latest versions for the metrics: {}", e.toString());
        }
        OpsServer ops = null;
        if (httpPort != 0) {
            String server = config.get(StreamsConfig.APPLICATION_SERVER_CONFIG);
            try {
                ops = OpsServer.start(new InetSocketAddress(httpPort), service.streams(), metrics,
                        MergeService.serdes(SchemaResolver.fromConfig(config)).mergedVersion().deserializer(),
                        HostInfo.buildFromEndpoint(server));
            } catch (IOException | RuntimeException e) {
                service.close();
                metrics.close();
                if (broker != null) broker.close();
                throw new IllegalStateException("could not serve HTTP on port " + httpPort + ": " + e.getMessage(), e);
            }
        }
        CountDownLatch stopped = new CountDownLatch(1);
        EmbeddedKafkaBroker finalBroker = broker;
        OpsServer finalOps = ops;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("stopping: committing, leaving the consumer group" + (finalBroker == null ? "" : ", stopping the embedded broker"));
            System.out.flush();
            if (finalOps != null) finalOps.close();
            service.close();
            metrics.close();
            if (finalBroker != null) finalBroker.close();
            System.out.println("stopped");
            System.out.flush();
            stopped.countDown();
        }, "shutdown"));
        System.out.println("ready: bootstrap=" + servers + (httpPort == 0 ? "" : " http=" + httpPort));
        System.out.flush();
        stopped.await();
        return 0;
    }

    /**
     * Refuses an HTTP port another process listens on before the broker and the service start (their start takes
     * seconds and writes a data directory); the bind at the end can still lose a race, and then fails as before.
     */
    private static void requireFreePort(int port) {
        try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
            probe.setReuseAddress(true); // as the HTTP server binds: a port in TIME_WAIT is free
            probe.bind(new InetSocketAddress(port));
        } catch (IOException e) {
            throw new IllegalStateException("could not serve HTTP on port " + port + ": " + e.getMessage()
                    + " (--http-port PORT, or 0 for none)", e);
        }
    }

    private String advertisedHost() {
        if (advertisedHost != null) return advertisedHost;
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
