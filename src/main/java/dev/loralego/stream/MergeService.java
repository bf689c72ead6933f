package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.kafka.TopicAdmin;
import dev.loralego.registry.AvroSerde;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.SchemaResolver;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.Topology;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The running merge service: creates its topics, builds the topology and runs it with Kafka Streams until
 * closed. One instance per process; several processes with the same application id share the partitions.
 */
public final class MergeService implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MergeService.class);

    /**
     * Everything the service is configured with.
     *
     * @param bootstrap      Kafka bootstrap servers
     * @param appId          Kafka Streams application id
     * @param stateDir       local state directory (RocksDB)
     * @param partitions     partitions of created topics (layers, tasks and assembly topics share it)
     * @param replication    replication factor of created topics
     * @param maxRecordBytes largest tensor record
     * @param threads        stream threads
     * @param defaults       algorithm parameters of every group
     * @param config         the config file's entries: client settings (security...), {@code topic.*} names,
     *                       {@code group.<name>.<parameter>} overrides
     */
    public record Config(String bootstrap, String appId, Path stateDir, int partitions, short replication,
                         int maxRecordBytes, int threads, MergeParameters defaults, Map<String, String> config) {
        public Config {
            Objects.requireNonNull(bootstrap, "bootstrap");
            Objects.requireNonNull(appId, "appId");
            Objects.requireNonNull(stateDir, "stateDir");
            Objects.requireNonNull(defaults, "defaults");
            config = Map.copyOf(config);
            // Fail at start, not in a stream thread, on a bad per-group override.
            for (Map.Entry<String, String> entry : config.entrySet()) {
                String key = entry.getKey();
                if (!key.startsWith(GROUP_OVERRIDE_PREFIX)) continue;
                String rest = key.substring(GROUP_OVERRIDE_PREFIX.length());
                int dot = rest.lastIndexOf('.');
                if (dot <= 0) throw new IllegalArgumentException("config entry '" + key + "' should be " + GROUP_OVERRIDE_PREFIX + "<group>.<option>");
                // Group names and module names (k.<module>) both may hold dots: the group ends at the first dot
                // after which an option name follows.
                String group = null;
                for (int i = rest.indexOf('.'); i > 0 && group == null; i = rest.indexOf('.', i + 1)) {
                    if (isOptionName(rest.substring(i + 1))) group = rest.substring(0, i);
                }
                try {
                    if (group == null) requireKnownOption(rest.substring(dot + 1));
                    if (group.isEmpty()) throw new IllegalArgumentException("the group name is empty");
                    if (rest.substring(group.length() + 1).equals("method") && !entry.getValue().trim().equals("lego")) {
                        throw new IllegalArgumentException("the service merges with method lego only, got '" + entry.getValue() + "'");
                    }
                    parametersOf(group, defaults, config);
                } catch (RuntimeException e) {
                    throw new IllegalArgumentException("config entry '" + key + "': " + e.getMessage(), e);
                }
            }
        }

        /** Client settings from the config file (everything that is not ours) for Kafka clients. */
        public Map<String, String> clientOverrides() {
            return ClientSettings.kafkaClientEntries(config);
        }

        /** Config entries {@code lora.group.<group>.<parameter>=value} override the defaults for one group. */
        public static final String GROUP_OVERRIDE_PREFIX = "lora.group.";

        /** The parameters of {@code group}: defaults overridden by {@code lora.group.<group>.<name>} entries. */
        public MergeParameters parametersOf(String group) {
            return parametersOf(group, defaults, config);
        }

        private static MergeParameters parametersOf(String group, MergeParameters defaults, Map<String, String> config) {
            String prefix = GROUP_OVERRIDE_PREFIX + group + ".";
            Map<String, String> m = new TreeMap<>(defaults.toMap());
            boolean overridden = false;
            for (Map.Entry<String, String> e : config.entrySet()) {
                if (e.getKey().startsWith(prefix)) {
                    m.put(e.getKey().substring(prefix.length()), e.getValue());
                    overridden = true;
                }
            }
            return overridden ? MergeParameters.fromMap(m) : defaults;
        }

        /** An option of {@link MergeParameters#toMap()}, or {@code k.<module>}. */
        private static boolean isOptionName(String option) {
            return MergeParameters.defaults().toMap().containsKey(option) || (option.startsWith("k.") && option.length() > 2);
        }

        /** A misspelt override would otherwise be ignored without a word (the group keeps the default). */
        private static void requireKnownOption(String option) {
            java.util.Set<String> known = new java.util.TreeSet<>(MergeParameters.defaults().toMap().keySet());
            StringBuilder camel = new StringBuilder();
            boolean up = false;
            for (char c : option.toCharArray()) {
                if (c == '-') {
                    up = true;
                } else {
                    camel.append(up ? Character.toUpperCase(c) : c);
                    up = false;
                }
            }
            String hint = known.contains(camel.toString()) ? " (did you mean " + camel + "?)" : "";
            known.add("k.<module>");
            throw new IllegalArgumentException("unknown option '" + option + "'" + hint + "; the options are " + known);
        }
    }

    private final Config config;
    private final KafkaStreams streams;
    private final ServiceTopics topics;
    /** The stream threads' schema source; closed after them. */
    private final FollowedSchemas schemas;
    private final CountDownLatch running = new CountDownLatch(1);

    private MergeService(Config config, KafkaStreams streams, ServiceTopics topics, FollowedSchemas schemas) {
        this.config = config;
        this.schemas = schemas;
        this.streams = streams;
        this.topics = topics;
    }

    /**
     * Creates the topics, starts the topology and waits until it is processing (or {@code timeout} passes).
     *
     * @throws dev.loralego.registry.SchemaRegistryException if the schemas topic cannot be read (embedded schema source)
     */
    public static MergeService start(Config config, VersionAssembler.VersionListener listener, Duration timeout)
            throws InterruptedException {
        return start(config, listener, null, timeout);
    }

    /**
     * As {@link #start(Config, VersionAssembler.VersionListener, Duration)}, with {@code deadLetters} (may be null)
     * told about every record sent to the dead-letter topic.
     */
    public static MergeService start(Config config, VersionAssembler.VersionListener listener, DeadLetterListener deadLetters,
                                     Duration timeout) throws InterruptedException {
        ServiceTopics topics = ServiceTopics.from(config.config(), config.appId());
        Map<String, Object> adminProps = new HashMap<>(config.clientOverrides());
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        try (Admin admin = Admin.create(adminProps)) {
            List<String> created = new ArrayList<>(TopicAdmin.ensureTopics(admin, topics.boundary(), config.partitions(),
                    config.replication(), config.maxRecordBytes()));
            created.addAll(ensureInternalTopics(admin, topics, config));
            if (!created.isEmpty()) LOG.info("created topics {}", created);
        }
        FollowedSchemas schemas = FollowedSchemas.of(config.config(), config.bootstrap(), topics.boundary().schemas(),
                Duration.ofSeconds(60));
        if (schemas.resolver() instanceof EmbeddedSchemaResolver embedded) publishSchemas(embedded, config, topics);
        try {
            schemas.readNow();
        } catch (RuntimeException e) {
            schemas.close();
            throw e;
        }
        TopologySerdes serdes = serdes(schemas.resolver());
        CachedParameters parametersOf = new CachedParameters(config);
        Topology topology = MergeTopology.build(new MergeTopology.Settings(topics, serdes, (group, sequence) -> parametersOf.apply(group),
                config.maxRecordBytes(), ServiceVersion.get(), listener, deadLetters));
        Properties props = StreamsSettings.streamsConfig(config.appId(), config.bootstrap(), config.stateDir(),
                config.maxRecordBytes(), config.threads(), config.clientOverrides());
        KafkaStreams streams = new KafkaStreams(topology, props);
        MergeService service = new MergeService(config, streams, topics, schemas);
        streams.setStateListener((now, before) -> {
            LOG.debug("streams state {} -> {}", before, now);
            if (now == KafkaStreams.State.RUNNING) service.running.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            LOG.error("stream thread failed; replacing it (input is never skipped: the task restarts from its last commit)", e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.start();
        if (!service.running.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            LOG.warn("service not RUNNING after {} (state {}); it keeps trying", timeout, streams.state());
        }
        return service;
    }

    /** The serdes of the boundary records, resolved through {@code resolver}. */
    public static TopologySerdes serdes(SchemaResolver resolver) {
        return new TopologySerdes(new AvroSerde<>(AdapterEvent.class, resolver), new AvroSerde<>(AdapterLayer.class, resolver),
                new AvroSerde<>(MergedLayer.class, resolver), new AvroSerde<>(MergedVersionManifest.class, resolver),
                new AvroSerde<>(DeadLetter.class, resolver));
    }

    /**
     * Creates the two internal topics when missing. An existing module-tasks topic must have the layers topic's
     * partition count ({@code config.partitions()}, which {@link TopicAdmin#ensureTopics} has just checked the layers
     * topic against): the tasks and the layers are co-partitioned, and Kafka Streams does not check it for two sources
     * of one processor (a task and its layer would land in different stream tasks, and the version wait for ever).
     */
    private static List<String> ensureInternalTopics(Admin admin, ServiceTopics topics, Config config) {
        List<String> created = new ArrayList<>();
        try {
            Set<String> existing = admin.listTopics().names().get();
            for (String name : List.of(topics.moduleTasks(), topics.versionAssembly())) {
                if (existing.contains(name)) continue;
                try {
                    Map<String, String> configs = new HashMap<>(TopicAdmin.durability(config.replication()));
                    configs.put("retention.ms", "-1");
                    admin.createTopics(List.of(new NewTopic(name, config.partitions(), config.replication())
                            .configs(configs))).all().get();
                    created.add(name);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
            if (!created.contains(topics.moduleTasks())) {
                int actual = admin.describeTopics(List.of(topics.moduleTasks())).allTopicNames().get()
                        .get(topics.moduleTasks()).partitions().size();
                if (actual != config.partitions()) {
                    throw new TopicAdmin.TopicLayoutException(List.of("topic " + topics.moduleTasks() + " has " + actual
                            + " partitions but must have " + config.partitions() + ", as " + topics.adapterLayers()
                            + " has: the per-module tasks are co-partitioned with the layers (recreate the topic while"
                            + " no version is in flight: it is internal to the service)"));
                }
            }
        } catch (ExecutionException e) {
            throw new IllegalStateException("could not create internal topics: " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topics", e);
        }
        return created;
    }

    private static void publishSchemas(EmbeddedSchemaResolver resolver, Config config, ServiceTopics topics) {
        Map<String, Object> p = new HashMap<>(config.clientOverrides());
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            resolver.publishSchemas(producer, topics.boundary().schemas());
        }
    }

    /**
     * The latest manifest of each group whose versions this instance emits, from its local latest-version store (the
     * one {@code /groups/{g}/versions/latest} answers from): what per-group gauges start from after a restart. Other
     * instances report their own groups, as they do for the versions they emit.
     *
     * @throws IllegalStateException if the store cannot be queried within {@code timeout} (a rebalance that lasts)
     */
    public Map<String, MergedVersionManifest> latestManifests(Duration timeout) {
        var deserializer = serdes(SchemaResolver.fromConfig(config.config())).mergedVersion().deserializer();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                Map<String, MergedVersionManifest> latest = new java.util.TreeMap<>();
                org.apache.kafka.streams.state.ReadOnlyKeyValueStore<String, byte[]> store = streams.store(
                        org.apache.kafka.streams.StoreQueryParameters.fromNameAndType(MergeTopology.LATEST_VERSION_STORE,
                                org.apache.kafka.streams.state.QueryableStoreTypes.<String, byte[]>keyValueStore()));
                try (var it = store.all()) {
                    it.forEachRemaining(kv -> latest.put(kv.key,
                            deserializer.deserialize(MergeTopology.LATEST_VERSION_STORE, kv.value)));
                }
                return latest;
            } catch (org.apache.kafka.streams.errors.InvalidStateStoreException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the latest-version store could not be queried within " + timeout.toSeconds() + " s", e);
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the latest-version store", ie);
                }
            }
        }
    }

    /** The topics this service uses. */
    public ServiceTopics topics() {
        return topics;
    }

    /** The Kafka Streams instance (state, metrics, interactive queries). */
    public KafkaStreams streams() {
        return streams;
    }

    /** The configuration it runs with. */
    public Config config() {
        return config;
    }

    /**
     * Stops the stream threads, committing what they processed. The instance leaves the consumer group, so an instance
     * that starts next (a restart on the same state directory, or another instance) gets the partitions at once
     * instead of after the old member's session times out (45 s by default; Kafka Streams otherwise stays in the
     * group on close, expecting to come back). With static membership ({@code group.instance.id} in the config
     * file) it stays, as static membership intends: a restart within the session timeout then needs no rebalance.
     */
    @Override
    public void close() {
        boolean staticMember = config.clientOverrides().keySet().stream()
                .anyMatch(key -> key.endsWith(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG));
        streams.close(CloseOptions.groupMembershipOperation(staticMember
                        ? CloseOptions.GroupMembershipOperation.REMAIN_IN_GROUP
                        : CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                .withTimeout(Duration.ofSeconds(30)));
        schemas.close();
    }

    /** Parameters per group, resolved once per group (the config does not change while running). */
    private static final class CachedParameters implements Function<String, MergeParameters> {
        private final Config config;
        private final Map<String, MergeParameters> cache = new java.util.concurrent.ConcurrentHashMap<>();

        CachedParameters(Config config) {
            this.config = config;
        }

        @Override
        public MergeParameters apply(String group) {
            return cache.computeIfAbsent(group, config::parametersOf);
        }
    }
}
