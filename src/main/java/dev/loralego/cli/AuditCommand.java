package dev.loralego.cli;

import dev.loralego.stream.ClientSettings;
import dev.loralego.stream.ReplayAudit;
import dev.loralego.stream.ServiceTopics;
import dev.loralego.stream.ServiceVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/** {@code audit}: replays a group's inputs through a private topology and compares every version. */
@Command(name = "audit", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Recomputes a group's merged versions from its inputs and compares them with the published ones.",
                "Replays the group's input topics from the start into a fresh, private topology and compares every"
                + " version manifest and digest with lora.merged.versions. Exit code 0 only when all match.",
                "Example: audit --group llama-team --from-version 1"})
public final class AuditCommand implements Callable<Integer> {
    @Option(names = "--group", required = true, description = "merge group")
    String group;

    @Option(names = "--from-version", defaultValue = "1", description = "first version compared (default: ${DEFAULT-VALUE})")
    long fromVersion;

    @Option(names = "--bootstrap-servers", defaultValue = "localhost:9092", description = "Kafka bootstrap servers (default: ${DEFAULT-VALUE})")
    String bootstrap;

    @Option(names = "--config", description = "config file (Kafka client settings, topic.* names)")
    Path configFile;

    @Option(names = "--app-id", defaultValue = "lora-lego", description = "the service's application id (default: ${DEFAULT-VALUE})")
    String appId;

    @Option(names = "--max-record-bytes", defaultValue = "67108864", description = "largest record (default: ${DEFAULT-VALUE})")
    int maxRecordBytes;

    @Option(names = "--timeout", defaultValue = "60", paramLabel = "SECONDS",
            description = "how long to wait for Kafka: metadata, or progress while reading a topic (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        if (timeoutSeconds < 1) throw new IllegalArgumentException("--timeout must be >= 1 second, got " + timeoutSeconds);
        Map<String, String> config = ClientSettings.load(configFile);
        ReplayAudit.Report report = new ReplayAudit(bootstrap, config, ServiceTopics.from(config, appId), maxRecordBytes,
                java.time.Duration.ofSeconds(timeoutSeconds)).audit(group, fromVersion);
        if (report.ok()) {
            System.out.printf("audit of group %s: %d version(s) from %d replayed, all manifests and digests match%n",
                    group, report.compared(), fromVersion);
            return 0;
        }
        if (report.compared() == 0) {
            System.out.printf("audit of group %s: nothing to compare: %s%n", group, report.differences().get(0).what());
            return 1;
        }
        System.out.printf("audit of group %s: %d difference(s) in %d version(s) compared; first: %s%n", group,
                report.differences().size(), report.compared(), report.differences().get(0));
        String hint = otherBuildsHint(report.recordedBy(), ServiceVersion.get());
        if (hint != null) System.out.println(hint);
        return 1;
    }

    /**
     * When some compared versions were recorded by another build than {@code current}: a line saying so, since a
     * build's behaviour can change between releases (README, Upgrades); null otherwise.
     */
    static String otherBuildsHint(SortedSet<String> recordedBy, String current) {
        SortedSet<String> others = new TreeSet<>(recordedBy);
        others.remove(current);
        if (others.isEmpty()) return null;
        return "note: versions compared were recorded by " + String.join(", ", others) + ", and this is " + current
                + "; a replay by another build can differ where the builds behave differently (README, Upgrades):"
                + " audit with the build that recorded them";
    }
}
