package dev.loralego.client;

import dev.loralego.kafka.TopicScan;

import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.HashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Reads merged versions back from the service's compacted output topics (ARCHITECTURE.md, Data flow 4-5):
 * version manifests from {@code lora.merged.versions} (key {@code group} = latest, {@code group@sequence} =
 * that version) and merged layers from {@code lora.merged.layers} (key {@code group|module}).
 *
 * <p>A version's layers are found by digest: the layers topic keeps the latest layer per module (plus
 * whatever compaction has not yet removed), so the layer of an old version's module is available only
 * while no later version changed that module. Every read opens a short-lived {@code read_committed}
 * consumer without a group and scans the topic from its beginning to its current end.
 */
public final class MergedVersionReader {
    private static final Logger LOG = LoggerFactory.getLogger(MergedVersionReader.class);

    private final ClientConnection connection;
    private final PublishedSchemas schemas;

    /** A reader over {@code connection}'s topics. */
    public MergedVersionReader(ClientConnection connection) {
        this.connection = Objects.requireNonNull(connection, "connection");
        this.schemas = new PublishedSchemas(connection);
    }

    /** The latest manifest of {@code group} (key {@code group}), if the service has emitted one. */
    public Optional<MergedVersionManifest> latest(String group) {
        return manifestByKey(MergeGroups.check(group));
    }

    /** The manifest of version {@code sequence} of {@code group} (key {@code group@sequence}), if still on the topic. */
    public Optional<MergedVersionManifest> version(String group, long sequence) {
        return manifestByKey(MergeGroups.check(group) + "@" + sequence);
    }

    /**
     * The manifest of version {@code sequence} ({@code null}: the latest).
     *
     * @throws IllegalStateException naming the group and the latest available version if there is none
     */
    public MergedVersionManifest manifest(String group, Long sequence) {
        if (sequence == null) {
            return latest(group).orElseThrow(() -> new IllegalStateException("merge group '" + group
                    + "' has no merged version on " + connection.topics().mergedVersions()
                    + " yet (nothing published, or the service is not running)"));
        }
        if (sequence < 1) throw new IllegalArgumentException("version sequence numbers start at 1, got " + sequence);
        Optional<MergedVersionManifest> m = version(group, sequence);
        if (m.isPresent()) return m.get();
        Optional<MergedVersionManifest> latest = latest(group);
        throw new IllegalStateException("merge group '" + group + "' has no version " + sequence + " on "
                + connection.topics().mergedVersions() + latestHint(latest));
    }

    /**
     * The versions of {@code group} still on the versions topic (keys {@code group@sequence}; a tombstone removes
     * one), by sequence. Compaction keeps every version: each has a key of its own.
     */
    public SortedMap<Long, MergedVersionManifest> history(String group) {
        String prefix = MergeGroups.check(group) + "@";
        Map<String, byte[]> lastByKey = new TreeMap<>();
        String topic = connection.topics().mergedVersions();
        scanVersions(r -> {
            String key = new String(r.key(), StandardCharsets.UTF_8);
            if (!key.startsWith(prefix)) return;
            if (r.value() == null) lastByKey.remove(key);
            else lastByKey.put(key, r.value());
        });
        SortedMap<Long, MergedVersionManifest> out = new TreeMap<>();
        for (Map.Entry<String, byte[]> e : lastByKey.entrySet()) {
            MergedVersionManifest m = manifest(topic, e.getValue());
            if (!e.getKey().equals(m.getGroup() + "@" + m.getSequence())) {
                LOG.warn("{}: key '{}' does not match its manifest (group {}, sequence {}); ignored", topic, e.getKey(),
                        m.getGroup(), m.getSequence());
                continue;
            }
            out.put(m.getSequence(), m);
        }
        return out;
    }

    /**
     * A merge group as the versions topic describes it.
     *
     * @param latest   its latest manifest (key {@code group})
     * @param versions how many of its versions are on the topic (keys {@code group@sequence})
     */
    public record GroupSummary(MergedVersionManifest latest, int versions) {
    }

    /**
     * Every merge group with a latest version on the versions topic, by name. Only the latest manifests are decoded
     * and kept, so this stays small however long the histories are.
     */
    public SortedMap<String, GroupSummary> groups() {
        Map<String, byte[]> latest = new TreeMap<>();
        Map<String, Set<String>> versionKeys = new TreeMap<>();
        String topic = connection.topics().mergedVersions();
        scanVersions(r -> {
            String key = new String(r.key(), StandardCharsets.UTF_8);
            int at = key.lastIndexOf('@');
            if (at < 0) {
                if (r.value() == null) latest.remove(key);
                else latest.put(key, r.value());
            } else if (r.value() == null) {
                Set<String> keys = versionKeys.get(key.substring(0, at));
                if (keys != null) keys.remove(key);
            } else {
                versionKeys.computeIfAbsent(key.substring(0, at), g -> new HashSet<>()).add(key);
            }
        });
        SortedMap<String, GroupSummary> out = new TreeMap<>();
        for (Map.Entry<String, byte[]> e : latest.entrySet()) {
            MergedVersionManifest m = manifest(topic, e.getValue());
            if (!e.getKey().equals(m.getGroup())) {
                LOG.warn("{}: key '{}' does not match its manifest's group {}; ignored", topic, e.getKey(), m.getGroup());
                continue;
            }
            out.put(m.getGroup(), new GroupSummary(m, versionKeys.getOrDefault(m.getGroup(), Set.of()).size()));
        }
        return out;
    }

    /** Visits every keyed record of the versions topic up to its current end. */
    private void scanVersions(TopicScan.Visitor visitor) {
        try (KafkaConsumer<byte[], byte[]> consumer = connection.newConsumer("lora-lego-versions")) {
            TopicScan.toEnd(consumer, connection.topics().mergedVersions(), connection.timeout(), r -> {
                if (r.key() != null) visitor.visit(r);
            });
        }
    }

    /**
     * The merged layers of {@code manifest}'s modules, by module name: for each module, a layer record of
     * the group whose digest is the manifest's module digest.
     *
     * @throws IllegalStateException naming the first module (in name order) whose layer is no longer on the
     *                               topic, and the latest version available instead
     */
    public SortedMap<String, MergedLayer> layers(MergedVersionManifest manifest) {
        String group = manifest.getGroup();
        String prefix = group + "|";
        Map<String, String> wanted = new TreeMap<>();
        for (ModuleRef m : manifest.getModules()) wanted.put(m.getModule(), m.getDigest());
        SortedMap<String, MergedLayer> found = new TreeMap<>();
        String topic = connection.topics().mergedLayers();
        try (KafkaConsumer<byte[], byte[]> consumer = connection.newConsumer("lora-lego-export-layers")) {
            TopicScan.toEnd(consumer, topic, connection.timeout(), r -> {
                if (r.key() == null || r.value() == null) return;
                String key = new String(r.key(), StandardCharsets.UTF_8);
                if (!key.startsWith(prefix)) return;
                String module = key.substring(prefix.length());
                String digest = wanted.get(module);
                if (digest == null || found.containsKey(module)) return;
                MergedLayer layer = schemas.decode(() -> connection.serdes().mergedLayer().deserializer().deserialize(topic, r.value()));
                if (!module.equals(layer.getModule()) || !group.equals(layer.getGroup())) {
                    LOG.warn("{}-{}@{}: key '{}' does not match the layer's group|module '{}|{}'; ignored", r.topic(),
                            r.partition(), r.offset(), key, layer.getGroup(), layer.getModule());
                    return;
                }
                if (digest.equals(layer.getDigest())) found.put(module, layer);
            });
        }
        for (Map.Entry<String, String> w : wanted.entrySet()) {
            if (!found.containsKey(w.getKey())) {
                Optional<MergedVersionManifest> latest = latest(group);
                throw new IllegalStateException("version " + manifest.getSequence() + " of merge group '" + group
                        + "': the merged layer of module " + w.getKey() + " with digest " + w.getValue()
                        + " is no longer on " + topic + " (a later version changed the module and compaction removed"
                        + " the old layer)" + latestHint(latest));
            }
        }
        return Collections.unmodifiableSortedMap(found);
    }

    private static String latestHint(Optional<MergedVersionManifest> latest) {
        return latest.map(l -> "; the latest available version is " + l.getSequence()
                        + " (export it with --version " + l.getSequence() + " or without --version)")
                .orElse("; the group has no version at all yet");
    }

    /** A manifest record's value, decoded (a newer service's schema is looked up on the schemas topic). */
    private MergedVersionManifest manifest(String topic, byte[] value) {
        return schemas.decode(() -> connection.serdes().mergedVersion().deserializer().deserialize(topic, value));
    }

    private Optional<MergedVersionManifest> manifestByKey(String wantedKey) {
        byte[][] last = new byte[1][];
        String topic = connection.topics().mergedVersions();
        scanVersions(r -> {
            if (wantedKey.equals(new String(r.key(), StandardCharsets.UTF_8))) {
                last[0] = r.value(); // a tombstone (null) deletes the key
            }
        });
        if (last[0] == null) return Optional.empty();
        return Optional.of(manifest(topic, last[0]));
    }
}
