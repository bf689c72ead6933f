package dev.loralego.stream;

import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

import java.util.Map;
import java.util.Objects;

/**
 * Builds the service's Kafka Streams topology (ARCHITECTURE.md §3), a pure function of its settings:
 *
 * <pre>
 * lora.adapter.events ─► group-sequencer ─┬─► &lt;app&gt;.module-tasks ─┐
 *   (key group)          [group-state]     │                       ▼
 *                                          │   lora.adapter.layers ─► module-merger ─► lora.merged.layers
 *                                          │   (key group|module)     [layer-buffer, module-state]
 *                                          ▼                               │
 *                          &lt;app&gt;.version-assembly ◄─────────────────────────┘
 *                                  ▼
 *                          version-assembler ─► lora.merged.versions (key group, group@seq)
 *                          [version-assembly]
 * every processor ─► lora.deadletter
 * </pre>
 * The module tasks topic and the layers topic are co-partitioned (same partition count, same String key
 * bytes, default partitioner), so a task and its layer meet in the same stream task.
 */
public final class MergeTopology {
    public static final String GROUP_STATE_STORE = "group-state-store";
    public static final String LAYER_BUFFER_STORE = "layer-buffer-store";
    public static final String MODULE_STATE_STORE = "module-state-store";
    public static final String ASSEMBLY_STORE = "version-assembly-store";
    /** Key group → latest {@code MergedVersionManifest} (Confluent wire format bytes), for interactive queries. */
    public static final String LATEST_VERSION_STORE = "latest-version-store";

    static final String EVENTS_SOURCE = "adapter-events";
    static final String LAYERS_SOURCE = "adapter-layers";
    static final String TASKS_SOURCE = "module-tasks";
    static final String ASSEMBLY_SOURCE = "version-assembly";
    static final String SEQUENCER = "group-sequencer";
    static final String MERGER = "module-merger";
    static final String ASSEMBLER = "version-assembler";
    static final String TASKS_SINK = "module-tasks-sink";
    static final String ASSEMBLY_SINK = "version-assembly-sink";
    static final String MERGED_LAYERS_SINK = "merged-layers-sink";
    static final String VERSIONS_SINK = "merged-versions-sink";
    static final String DEAD_LETTER_SINK = "dead-letter-sink";

    /**
     * What the topology needs.
     *
     * @param topics          topic names, the internal ones included
     * @param serdes          serdes of the boundary records
     * @param parametersOf    the algorithm parameters of each group, for the version an event would become
     * @param maxStoredRecordBytes {@code max.message.bytes} of the changelogs of stores that hold tensors
     * @param serviceVersion  recorded in every manifest
     * @param listener        told about every emitted version (may be null)
     * @param deadLetterListener told about every dead-lettered record (may be null)
     * @param replay          a replay of the log ({@code audit}): rejections are not logged, since the service logged
     *                        them when it processed the records, and a replay's record locations are not the log's
     */
    public record Settings(ServiceTopics topics, TopologySerdes serdes, VersionParameters parametersOf,
                           int maxStoredRecordBytes, String serviceVersion, VersionAssembler.VersionListener listener,
                           DeadLetterListener deadLetterListener, boolean replay) {
        public Settings {
            Objects.requireNonNull(topics, "topics");
            Objects.requireNonNull(serdes, "serdes");
            Objects.requireNonNull(parametersOf, "parametersOf");
            Objects.requireNonNull(serviceVersion, "serviceVersion");
        }

        /** Settings of the service (not a replay). */
        public Settings(ServiceTopics topics, TopologySerdes serdes, VersionParameters parametersOf,
                        int maxStoredRecordBytes, String serviceVersion, VersionAssembler.VersionListener listener,
                        DeadLetterListener deadLetterListener) {
            this(topics, serdes, parametersOf, maxStoredRecordBytes, serviceVersion, listener, deadLetterListener, false);
        }

        /** Settings of the service without a dead-letter listener. */
        public Settings(ServiceTopics topics, TopologySerdes serdes, VersionParameters parametersOf,
                        int maxStoredRecordBytes, String serviceVersion, VersionAssembler.VersionListener listener) {
            this(topics, serdes, parametersOf, maxStoredRecordBytes, serviceVersion, listener, null);
        }
    }

    private MergeTopology() {
    }

    /** The topology for {@code settings}; the caller runs it with {@link StreamsSettings}. */
    public static Topology build(Settings settings) {
        ServiceTopics t = settings.topics();
        TopologySerdes s = settings.serdes();
        ByteArrayDeserializer bytesIn = new ByteArrayDeserializer();
        StringSerializer keysOut = new StringSerializer();
        ByteArraySerializer bytesOut = new ByteArraySerializer();
        Map<String, String> tensorChangelog = Map.of("max.message.bytes", Integer.toString(settings.maxStoredRecordBytes()));

        Topology topology = new Topology();
        topology.addSource(EVENTS_SOURCE, bytesIn, bytesIn, t.adapterEvents());
        topology.addSource(LAYERS_SOURCE, bytesIn, bytesIn, t.adapterLayers());
        topology.addSource(TASKS_SOURCE, bytesIn, bytesIn, t.moduleTasks());
        topology.addSource(ASSEMBLY_SOURCE, bytesIn, bytesIn, t.versionAssembly());

        // Each processor gets its own DeadLetters handle; they share one sink.
        topology.addProcessor(SEQUENCER, () -> new GroupSequencer(GROUP_STATE_STORE, t.adapterEvents(),
                s.adapterEvent().deserializer(), settings.parametersOf(), TASKS_SINK, ASSEMBLY_SINK,
                deadLetters(settings)), EVENTS_SOURCE);
        topology.addProcessor(MERGER, () -> new ModuleMerger(LAYER_BUFFER_STORE, MODULE_STATE_STORE, t.adapterLayers(),
                s.adapterLayer().deserializer(), t.mergedLayers(), s.mergedLayer().serializer(),
                MERGED_LAYERS_SINK, ASSEMBLY_SINK, deadLetters(settings)), LAYERS_SOURCE, TASKS_SOURCE);
        topology.addProcessor(ASSEMBLER, () -> new VersionAssembler(ASSEMBLY_STORE, LATEST_VERSION_STORE, t.mergedVersions(),
                s.mergedVersion().serializer(), VERSIONS_SINK, settings.serviceVersion(), settings.listener()),
                ASSEMBLY_SOURCE);

        topology.addStateStore(store(GROUP_STATE_STORE, Map.of()), SEQUENCER);
        topology.addStateStore(store(LAYER_BUFFER_STORE, tensorChangelog), MERGER);
        topology.addStateStore(store(MODULE_STATE_STORE, tensorChangelog), MERGER);
        // rewritten on every module result (224 per llama-7b version): the record cache sends only the state as of
        // each commit to the changelog instead of every intermediate copy (≈ 23 MB per such version before)
        topology.addStateStore(store(ASSEMBLY_STORE, Map.of()).withCachingEnabled(), ASSEMBLER);
        topology.addStateStore(store(LATEST_VERSION_STORE, Map.of()), ASSEMBLER);

        topology.addSink(TASKS_SINK, t.moduleTasks(), keysOut, bytesOut, SEQUENCER);
        topology.addSink(ASSEMBLY_SINK, t.versionAssembly(), keysOut, bytesOut, SEQUENCER, MERGER);
        topology.addSink(MERGED_LAYERS_SINK, t.mergedLayers(), keysOut, bytesOut, MERGER);
        topology.addSink(VERSIONS_SINK, t.mergedVersions(), keysOut, bytesOut, ASSEMBLER);
        topology.addSink(DEAD_LETTER_SINK, t.deadLetter(), keysOut, bytesOut, SEQUENCER, MERGER, ASSEMBLER);
        return topology;
    }

    private static DeadLetters deadLetters(Settings settings) {
        return new DeadLetters(DEAD_LETTER_SINK, settings.topics().deadLetter(), settings.serdes().deadLetter().serializer(),
                settings.deadLetterListener(), !settings.replay());
    }

    private static StoreBuilder<KeyValueStore<String, byte[]>> store(String name, Map<String, String> changelogConfig) {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), Serdes.String(), Serdes.ByteArray())
                .withLoggingEnabled(changelogConfig)
                .withCachingDisabled();
    }
}
