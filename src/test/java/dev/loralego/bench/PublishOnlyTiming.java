package dev.loralego.bench;

import com.sun.management.OperatingSystemMXBean;
import dev.loralego.client.AdapterPublisher;
import dev.loralego.client.ClientConnection;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;

/**
 * What getting the adapters into the embedded broker costs, with no service running: the floor under the streaming
 * benchmark's per-adapter budget. Publishes the adapters of a {@code bench stream --dir} (its {@code warmup/}
 * adapters first, unmeasured, then {@code adapters/}) back to back with {@link AdapterPublisher}, into an embedded
 * broker with the service's topics, and reports wall time and the whole JVM's CPU time (publisher, producer, broker)
 * over the measured publishes.
 *
 * <pre>
 * java -Xmx4g -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.bench.PublishOnlyTiming lora-lego-bench
 * </pre>
 */
public final class PublishOnlyTiming {

    private PublishOnlyTiming() {
    }

    /** @param args a {@code bench stream --dir} holding {@code adapters/} (and optionally {@code warmup/}) */
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        List<Path> adapters = children(dir.resolve("adapters"));
        List<Path> warmup = Files.isDirectory(dir.resolve("warmup")) ? children(dir.resolve("warmup")) : List.of();
        Path kafkaDir = Files.createTempDirectory("publish-only-kafka");
        int maxBytes = 64 << 20;
        OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(kafkaDir, 0)) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            try (Admin admin = Admin.create(p)) {
                TopicAdmin.ensureTopics(admin, TopicNames.defaults(), 4, (short) 1, maxBytes);
            }
            AdapterPublisher publisher = new AdapterPublisher(
                    ClientConnection.of(broker.bootstrapServers(), Map.of(), maxBytes, Duration.ofMinutes(2)));
            for (Path a : warmup) {
                publisher.publish(new AdapterPublisher.PublishRequest("warmup", null, 1L, 1.0, null, a));
            }
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            long bytes = 0;
            for (Path a : adapters) {
                bytes += publisher.publish(new AdapterPublisher.PublishRequest("bench", null, 1L, 1.0, null, a)).bytes();
            }
            double wall = (System.nanoTime() - t0) / 1e9;
            double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
            System.out.printf(Locale.ROOT, "%d adapters (%.0f MB of records) published in %.1f s: %.2f adapters/s, %.2f s per"
                            + " adapter; whole JVM %.1f core-s, %.2f core-s per adapter (%d cores)%n", adapters.size(),
                    bytes / 1e6, wall, adapters.size() / wall, wall / adapters.size(), cpu, cpu / adapters.size(),
                    Runtime.getRuntime().availableProcessors());
        } finally {
            try (Stream<Path> s = Files.walk(kafkaDir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static List<Path> children(Path d) throws java.io.IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(Files::isDirectory).sorted().toList();
        }
    }
}
