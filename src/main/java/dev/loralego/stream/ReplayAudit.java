package dev.loralego.stream;

import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.kafka.TopicScan;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The audit: replays a group's input topics from the start through a fresh, private copy of the topology
 * (in-process, its own temporary state) and compares every version it produces with the manifests recorded
 * in {@code lora.merged.versions}, digest for digest.
 *
 * <p>Why a replay reproduces the service: a version's content depends only on the order of the group's
 * events (one partition) and on the layers' bytes, never on how the two input topics interleave — a task
 * waits for its layer. The replay pipes the group's layers first, then its events in log order, each with its
 * original timestamp. The algorithm parameters are taken from the recorded manifests (they travel in them), each
 * version's from its own, so a configuration that changed along the history replays as it was.
 */
public final class ReplayAudit {
    /** A disagreement between the log and the replay. */
    public record Difference(long sequence, String what) {
        @Override
        public String toString() {
            return "version " + sequence + ": " + what;
        }
    }

    /**
     * @param group       the audited group
     * @param compared    versions compared
     * @param differences every disagreement, in sequence order (empty when the log is right)
     * @param recordedBy  the builds that recorded the compared versions (their manifests' {@code serviceVersion})
     */
    public record Report(String group, int compared, List<Difference> differences, SortedSet<String> recordedBy) {
        public boolean ok() {
            return differences.isEmpty() && compared > 0;
        }
    }

    private final String bootstrap;
    private final Map<String, String> config;
    private final ServiceTopics topics;
    private final int maxRecordBytes;
    private final Duration timeout;

    /** An audit that waits up to 120 s for Kafka (metadata, or progress while reading a topic). */
    public ReplayAudit(String bootstrap, Map<String, String> config, ServiceTopics topics, int maxRecordBytes) {
        this(bootstrap, config, topics, maxRecordBytes, Duration.ofSeconds(120));
    }

    /**
     * @param timeout the longest wait for Kafka: topic metadata, or progress while reading a topic; past it the audit
     *                fails with a message that names the bootstrap servers
     */
    public ReplayAudit(String bootstrap, Map<String, String> config, ServiceTopics topics, int maxRecordBytes, Duration timeout) {
        this.bootstrap = Objects.requireNonNull(bootstrap);
        this.config = Map.copyOf(config);
        this.topics = Objects.requireNonNull(topics);
        this.maxRecordBytes = maxRecordBytes;
        this.timeout = Objects.requireNonNull(timeout);
    }

    /** Audits {@code group} from version {@code fromVersion} on. */
    public Report audit(String group, long fromVersion) {
        try (FollowedSchemas schemas = FollowedSchemas.of(config, bootstrap, topics.boundary().schemas(), timeout)) {
            return audit(group, fromVersion, MergeService.serdes(schemas.resolver()));
        }
    }

    private Report audit(String group, long fromVersion, TopologySerdes serdes) {
        TreeMap<Long, MergedVersionManifest> recorded = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topics.mergedVersions(), keyStartsWith(group + "@"))) {
            String key = new String(r.key(), StandardCharsets.UTF_8);
            if (r.value() == null) {
                // a tombstone deletes that version from the log (compaction would drop it): it is not recorded
                try {
                    recorded.remove(Long.parseLong(key.substring(group.length() + 1)));
                } catch (NumberFormatException e) {
                    // not a history key of this group
                }
                continue;
            }
            MergedVersionManifest m = serdes.mergedVersion().deserializer().deserialize(topics.mergedVersions(), r.value());
            recorded.put(m.getSequence(), m);
        }
        List<Difference> differences = new ArrayList<>();
        if (recorded.isEmpty()) {
            differences.add(new Difference(0, "no version of group '" + group + "' in " + topics.mergedVersions()));
            return new Report(group, 0, differences, new TreeSet<>());
        }
        TreeMap<Long, MergedVersionManifest> replayed = replay(group, recordedParameters(recorded), serdes);
        if (recorded.tailMap(fromVersion).isEmpty() && replayed.tailMap(fromVersion).isEmpty()) {
            differences.add(new Difference(fromVersion, "no version of group '" + group + "' from version " + fromVersion
                    + " on in " + topics.mergedVersions() + " (it has versions " + recorded.firstKey() + ".."
                    + recorded.lastKey() + ")"));
            return new Report(group, 0, differences, new TreeSet<>());
        }
        int compared = 0;
        SortedSet<String> recordedBy = new TreeSet<>();
        for (Map.Entry<Long, MergedVersionManifest> e : recorded.tailMap(fromVersion).entrySet()) {
            MergedVersionManifest mine = replayed.get(e.getKey());
            compared++;
            recordedBy.add(e.getValue().getServiceVersion());
            if (mine == null) {
                differences.add(new Difference(e.getKey(), "recorded, but the replay produced no such version (replay has "
                        + (replayed.isEmpty() ? "none" : replayed.firstKey() + ".." + replayed.lastKey()) + ")"));
                continue;
            }
            String d = compare(e.getValue(), mine);
            if (d != null) differences.add(new Difference(e.getKey(), d));
        }
        for (Long s : replayed.tailMap(fromVersion).keySet()) {
            if (recorded.containsKey(s)) continue;
            // past the last recorded version, a running service may not have merged it yet (the inputs are read after
            // the versions): say so, instead of only what a lost version would look like
            differences.add(new Difference(s, "the replay produced this version, the log has none" + (s > recorded.lastKey()
                    ? " (yet? a running service may still be merging it: audit again once `versions` shows it)" : "")));
        }
        differences.sort(Comparator.comparingLong(Difference::sequence));
        return new Report(group, compared, differences, recordedBy);
    }

    /** Null when equal in content; otherwise the first field that differs. */
    static String compare(MergedVersionManifest recorded, MergedVersionManifest replayed) {
        if (!recorded.getDigest().equals(replayed.getDigest())) {
            for (int i = 0; i < Math.max(recorded.getModules().size(), replayed.getModules().size()); i++) {
                var a = i < recorded.getModules().size() ? recorded.getModules().get(i) : null;
                var b = i < replayed.getModules().size() ? replayed.getModules().get(i) : null;
                if (!Objects.equals(a, b)) {
                    return "digest " + recorded.getDigest() + " recorded, " + replayed.getDigest() + " replayed; first module differing: "
                            + (a == null ? "(none)" : a.getModule() + " " + a.getDigest()) + " vs "
                            + (b == null ? "(none)" : b.getModule() + " " + b.getDigest());
                }
            }
            return "digest " + recorded.getDigest() + " recorded, " + replayed.getDigest() + " replayed";
        }
        if (!recorded.getModules().equals(replayed.getModules())) return "module list differs";
        if (!recorded.getAdapters().equals(replayed.getAdapters())) {
            return "adapters " + recorded.getAdapters() + " recorded, " + replayed.getAdapters() + " replayed";
        }
        if (!sameTrigger(recorded.getTrigger(), replayed.getTrigger())) {
            return "trigger differs: " + recorded.getTrigger() + " vs " + replayed.getTrigger();
        }
        if (!new TreeMap<>(recorded.getParameters()).equals(new TreeMap<>(replayed.getParameters()))) {
            return "parameters " + recorded.getParameters() + " recorded, " + replayed.getParameters() + " replayed";
        }
        if (recorded.getEventTimestamp() != replayed.getEventTimestamp()) return "event timestamp differs";
        if (!recorded.getWarnings().equals(replayed.getWarnings())) return "warnings differ: " + recorded.getWarnings() + " vs " + replayed.getWarnings();
        if (Double.compare(recorded.getMeanInertia(), replayed.getMeanInertia()) != 0) {
            return "mean inertia " + recorded.getMeanInertia() + " recorded, " + replayed.getMeanInertia() + " replayed";
        }
        return null;
    }

    /**
     * Whether two triggers name the same event. A withdrawal recorded by a build before 0.4.0 says version -1 where the
     * event did ("the live one"); a replay names the version withdrawn.
     */
    static boolean sameTrigger(VersionTrigger recorded, VersionTrigger replayed) {
        if (recorded.equals(replayed)) return true;
        return recorded.getType() == AdapterEventType.WITHDRAW && recorded.getAdapterVersion() == -1
                && replayed.getAdapterVersion() >= 0
                && recorded.equals(new VersionTrigger(replayed.getEventId(), replayed.getType(), replayed.getAdapterId(), -1L));
    }

    /**
     * Each version's parameters as its manifest records them; a version missing from the log (compacted away, or
     * past its end) takes those of the nearest recorded version before it, or else of the first.
     */
    static VersionParameters recordedParameters(TreeMap<Long, MergedVersionManifest> recorded) {
        TreeMap<Long, MergeParameters> bySequence = new TreeMap<>();
        recorded.forEach((s, m) -> bySequence.put(s, MergeParameters.fromMap(m.getParameters())));
        return (group, sequence) -> {
            Map.Entry<Long, MergeParameters> e = bySequence.floorEntry(sequence);
            return (e != null ? e : bySequence.firstEntry()).getValue();
        };
    }

    private TreeMap<Long, MergedVersionManifest> replay(String group, VersionParameters params, TopologySerdes serdes) {
        Path stateDir;
        try {
            stateDir = Files.createTempDirectory("lora-lego-audit");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        TreeMap<Long, MergedVersionManifest> out = new TreeMap<>();
        MergeTopology.Settings settings = new MergeTopology.Settings(topics, serdes, params, maxRecordBytes,
                ServiceVersion.get(), null, null, true);
        try (TopologyTestDriver driver = privateTopology(settings, "lora-lego-audit", stateDir)) {
            ByteArraySerializer bytes = new ByteArraySerializer();
            TestInputTopic<byte[], byte[]> layers = driver.createInputTopic(topics.adapterLayers(), bytes, bytes);
            TestInputTopic<byte[], byte[]> events = driver.createInputTopic(topics.adapterEvents(), bytes, bytes);
            TestOutputTopic<String, byte[]> versions = driver.createOutputTopic(topics.mergedVersions(), new StringDeserializer(), new ByteArrayDeserializer());
            TestOutputTopic<String, byte[]> mergedLayers = driver.createOutputTopic(topics.mergedLayers(), new StringDeserializer(), new ByteArrayDeserializer());
            TestOutputTopic<String, byte[]> deadLetters = driver.createOutputTopic(topics.deadLetter(), new StringDeserializer(), new ByteArrayDeserializer());
            // Piped as they are read, not collected: the group's layers can be gigabytes. The order across partitions
            // does not matter (every record of one group|module key is in one partition, in offset order).
            scan(topics.adapterLayers(), keyStartsWith(group + "|"), r -> {
                layers.pipeInput(r.key(), r.value(), Instant.ofEpochMilli(r.timestamp()));
                mergedLayers.readRecordsToList();
            });
            byte[] groupKey = group.getBytes(StandardCharsets.UTF_8);
            for (ConsumerRecord<byte[], byte[]> r : readAll(topics.adapterEvents(), k -> java.util.Arrays.equals(k, groupKey))) {
                events.pipeInput(r.key(), r.value(), Instant.ofEpochMilli(r.timestamp()));
                mergedLayers.readRecordsToList();
                deadLetters.readRecordsToList();
                for (TestRecord<String, byte[]> v : versions.readRecordsToList()) {
                    if (!v.key().startsWith(group + "@")) continue;
                    MergedVersionManifest m = serdes.mergedVersion().deserializer().deserialize(topics.mergedVersions(), v.value());
                    out.put(m.getSequence(), m);
                }
            }
        } finally {
            deleteRecursively(stateDir);
        }
        return out;
    }

    /**
     * The topology of {@code settings} running in this thread, on no broker, with its stores under {@code stateDir}:
     * what a replay (and a test of the topology) feeds records through.
     */
    static TopologyTestDriver privateTopology(MergeTopology.Settings settings, String applicationId, Path stateDir) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        return new TopologyTestDriver(MergeTopology.build(settings), props);
    }

    /** A filter on record keys (a record without a key never passes). */
    private static Predicate<byte[]> keyStartsWith(String prefix) {
        byte[] p = prefix.getBytes(StandardCharsets.UTF_8);
        return k -> k.length >= p.length && java.util.Arrays.equals(k, 0, p.length, p, 0, p.length);
    }

    /**
     * Every committed record of {@code topic} whose key passes {@code keys}, partition by partition in offset order;
     * the others are dropped as they are read (the topics hold every group's records).
     */
    private List<ConsumerRecord<byte[], byte[]>> readAll(String topic, Predicate<byte[]> keys) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        scan(topic, keys, out::add);
        out.sort(Comparator.<ConsumerRecord<byte[], byte[]>>comparingInt(ConsumerRecord::partition).thenComparingLong(ConsumerRecord::offset));
        return out;
    }

    /** Visits every committed record of {@code topic} whose key passes {@code keys}, in offset order within a partition. */
    private void scan(String topic, Predicate<byte[]> keys, TopicScan.Visitor visitor) {
        Map<String, Object> p = new HashMap<>(ClientSettings.kafkaClientEntries(config));
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, maxRecordBytes);
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Math.max(maxRecordBytes, 64 << 20));
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicScan.toEnd(c, topic, timeout, r -> {
                if (r.key() != null && keys.test(r.key())) visitor.visit(r);
            });
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            throw TopicScan.noAnswer(bootstrap, timeout, topic, e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // temporary directory; nothing to do
        }
    }
}
