package dev.loralego.cli;

import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.stream.ClientSettings;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.VersionLog;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code run}: the streaming merge service. */
@Command(name = "run", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs the streaming merge service (Kafka Streams).",
                "Without --bootstrap-servers it starts a real single-node Kafka broker inside this JVM.",
                "Example: run --k 16 --data-dir ./data"})
public final class RunCommand implements Callable<Integer> {
    @Option(names = "--bootstrap-servers", description = "Kafka bootstrap servers; omit to start the embedded broker")
    String bootstrap;

    @Option(names = "--config", description = "config file (Kafka client settings, topic.*, group.<g>.<option> overrides)")
    Path configFile;

    @Option(names = "--embedded-port", defaultValue = "9092", description = "port of the embedded broker (default: ${DEFAULT-VALUE}; 0 = any free port)")
    int embeddedPort;

    @Option(names = "--data-dir", defaultValue = "lora-lego-data", description = "embedded broker data and Streams state (default: ${DEFAULT-VALUE})")
    Path dataDir;

    @Option(names = "--app-id", defaultValue = "lora-lego", description = "Kafka Streams application id, shared by all instances (default: ${DEFAULT-VALUE})")
    String appId;

    @Option(names = "--partitions", defaultValue = "1", description = "partitions of the topics the service creates (default: ${DEFAULT-VALUE})")
    int partitions;

    @Option(names = "--replication", defaultValue = "1", description = "replication factor of the topics the service creates (default: ${DEFAULT-VALUE})")
    short replication;

    @Option(names = "--threads", defaultValue = "1", description = "stream threads (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--max-record-bytes", defaultValue = "67108864", description = "largest tensor record (default: ${DEFAULT-VALUE})")
    int maxRecordBytes;

    @Mixin
    ServiceOptionsMixin options;

    @Override
    public Integer call() throws Exception {
        Map<String, String> config = ClientSettings.load(configFile);
        EmbeddedKafkaBroker broker = null;
        String servers = bootstrap;
        if (servers == null) {
            broker = EmbeddedKafkaBroker.start(dataDir.resolve("kafka"), embeddedPort);
            servers = broker.bootstrapServers();
        }
        MergeService.Config cfg = new MergeService.Config(servers, appId, dataDir.resolve("streams"), partitions,
                replication, maxRecordBytes, threads, options.toParameters(), config);
        MergeService service = MergeService.start(cfg, new VersionLog(), Duration.ofMinutes(2));
        CountDownLatch stopped = new CountDownLatch(1);
        EmbeddedKafkaBroker finalBroker = broker;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            service.close();
            if (finalBroker != null) finalBroker.close();
            stopped.countDown();
        }, "shutdown"));
        System.out.println("ready: bootstrap=" + servers);
        System.out.flush();
        stopped.await();
        return 0;
    }
}
