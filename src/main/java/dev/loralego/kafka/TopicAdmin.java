package dev.loralego.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Creates the service's topics with the settings ARCHITECTURE.md asks for, and gives the client settings
 * that records carrying tensors need.
 *
 * <p>Topic settings made by {@link #ensureTopics}:
 * <ul>
 *   <li>every topic: {@code compression.type=producer} (the broker keeps the producer's zstd batches);</li>
 *   <li>topics where tensors travel (adapter layers, merged layers, dead letter): raised
 *       {@code max.message.bytes};</li>
 *   <li>merged layers, merged versions, schemas: {@code cleanup.policy=compact} (latest value per key);</li>
 *   <li>adapter layers and adapter events: {@code retention.ms=-1}, because a replay (audit) must see
 *       every input again to reproduce every merged version;</li>
 *   <li>adapter layers: exactly {@code partitions} partitions, the count of the Streams repartition topic
 *       the per-module tasks travel on; the two are co-partitioned (ARCHITECTURE.md, Known pitfalls), so an
 *       existing topic with another count is an error;</li>
 *   <li>schemas: one partition (a small log read whole by every reader).</li>
 * </ul>
 * Existing topics are never altered; a setting that would break the service (partition count of the
 * co-partitioned topic, missing compaction, too small {@code max.message.bytes}) is reported in one
 * {@link TopicLayoutException} that names every problem.
 */
public final class TopicAdmin {
    /**
     * zstd level of every producer: tensor bytes compress as well at 1 as at Kafka's default 3 (BF16 layers 1.28×,
     * F32 merged layers 1.08×) and 1.2–1.4× faster (docs/results/perf.md).
     */
    public static final int ZSTD_LEVEL = 1;


    /** Kafka's {@code max.message.bytes} lower bound we accept for topics where tensors travel. */
    private static final int MIN_TENSOR_MESSAGE_BYTES = 1024 * 1024;
    private static final long ADMIN_TIMEOUT_SECONDS = 60;
    private static final int DESCRIBE_ATTEMPTS = 20;
    private static final long DESCRIBE_BACKOFF_MS = 100;
    /** Producer batch size: several small records per batch; a big record always gets its own batch. */
    private static final int BIG_RECORD_BATCH_BYTES = 1024 * 1024;
    /** Kafka's default {@code buffer.memory} and {@code fetch.max.bytes}, kept as floors. */
    private static final long DEFAULT_BUFFER_MEMORY = 32L * 1024 * 1024;
    private static final int DEFAULT_FETCH_MAX_BYTES = 50 * 1024 * 1024;

    private static final Logger LOG = LoggerFactory.getLogger(TopicAdmin.class);

    private TopicAdmin() {
    }

    /**
     * What one topic must look like.
     *
     * @param name          topic name
     * @param partitions    partition count for creation
     * @param replication   replication factor for creation
     * @param configs       topic configs for creation
     * @param coPartitioned whether an existing topic with another partition count is an error
     * @param compacted     whether the topic must be compacted
     * @param tensors       whether tensors travel on it (raised {@code max.message.bytes})
     */
    public record TopicSpec(String name, int partitions, short replication, Map<String, String> configs,
                            boolean coPartitioned, boolean compacted, boolean tensors) {
        /** Copies {@code configs} (keeping its order). */
        public TopicSpec {
            Objects.requireNonNull(name, "name");
            configs = Collections.unmodifiableMap(new LinkedHashMap<>(configs));
        }

        /** The {@link NewTopic} that creates this topic. */
        public NewTopic newTopic() {
            return new NewTopic(name, partitions, replication).configs(configs);
        }
    }

    /**
     * The topics of the service and their settings, in {@link TopicNames#all()} order; see the class
     * comment for the rules.
     *
     * @param names           topic names
     * @param partitions      partitions of every topic but the schemas topic (which has one)
     * @param replication     replication factor of every topic
     * @param maxMessageBytes {@code max.message.bytes} of the topics where tensors travel
     * @return one spec per topic
     */
    public static List<TopicSpec> plan(TopicNames names, int partitions, short replication, int maxMessageBytes) {
        Objects.requireNonNull(names, "names");
        if (partitions < 1) {
            throw new IllegalArgumentException("partitions must be >= 1, got " + partitions);
        }
        if (replication < 1) {
            throw new IllegalArgumentException("replication factor must be >= 1, got " + replication);
        }
        if (maxMessageBytes < MIN_TENSOR_MESSAGE_BYTES) {
            throw new IllegalArgumentException("maxMessageBytes must be >= " + MIN_TENSOR_MESSAGE_BYTES
                    + " (tensor records are large), got " + maxMessageBytes);
        }
        String maxBytes = Integer.toString(maxMessageBytes);
        List<TopicSpec> specs = new ArrayList<>();
        specs.add(new TopicSpec(names.adapterLayers(), partitions, replication,
                configs(TopicConfig.CLEANUP_POLICY_DELETE, maxBytes, true, replication), true, false, true));
        specs.add(new TopicSpec(names.adapterEvents(), partitions, replication,
                configs(TopicConfig.CLEANUP_POLICY_DELETE, null, true, replication), false, false, false));
        specs.add(new TopicSpec(names.mergedLayers(), partitions, replication,
                configs(TopicConfig.CLEANUP_POLICY_COMPACT, maxBytes, false, replication), false, true, true));
        specs.add(new TopicSpec(names.mergedVersions(), partitions, replication,
                configs(TopicConfig.CLEANUP_POLICY_COMPACT, null, false, replication), false, true, false));
        specs.add(new TopicSpec(names.deadLetter(), partitions, replication,
                configs(TopicConfig.CLEANUP_POLICY_DELETE, maxBytes, false, replication), false, false, true));
        specs.add(new TopicSpec(names.schemas(), 1, replication,
                configs(TopicConfig.CLEANUP_POLICY_COMPACT, null, false, replication), false, true, false));
        return specs;
    }

    /**
     * The configs a topic created with {@code replication} replicas gets for durability: {@code min.insync.replicas=2}
     * from 3 replicas on, so that an {@code acks=all} write (every producer here, exactly-once included) is on two
     * brokers before it is acknowledged, and one broker may be down without stopping writes. Fewer replicas keep the
     * broker's default (1): with 2, a second in-sync replica would stop every write while one broker is down.
     */
    public static Map<String, String> durability(short replication) {
        return replication >= 3 ? Map.of(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, "2") : Map.of();
    }

    /**
     * Creates the missing topics of {@link #plan} and checks the existing ones. Idempotent: a second call
     * creates nothing; a topic created concurrently by another instance ({@link TopicExistsException}) is
     * treated as existing.
     *
     * @param admin           admin client of the cluster
     * @param names           topic names
     * @param partitions      partitions (the adapter layers topic must have exactly this many)
     * @param replication     replication factor of created topics
     * @param maxMessageBytes {@code max.message.bytes} of the topics where tensors travel
     * @return the names of the topics this call created, in {@link TopicNames#all()} order
     * @throws TopicLayoutException if existing topics have settings that break the service
     * @throws org.apache.kafka.common.KafkaException if the cluster refuses or does not answer
     */
    public static List<String> ensureTopics(Admin admin, TopicNames names, int partitions, short replication,
                                            int maxMessageBytes) {
        Objects.requireNonNull(admin, "admin");
        List<TopicSpec> specs = plan(names, partitions, replication, maxMessageBytes);
        Set<String> existing = await(admin.listTopics().names(), "listing topics");

        List<NewTopic> toCreate = new ArrayList<>();
        for (TopicSpec spec : specs) {
            if (!existing.contains(spec.name())) {
                toCreate.add(spec.newTopic());
            }
        }
        List<String> created = new ArrayList<>();
        if (!toCreate.isEmpty()) {
            CreateTopicsResult result = admin.createTopics(toCreate);
            for (NewTopic topic : toCreate) {
                try {
                    result.values().get(topic.name()).get(ADMIN_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    created.add(topic.name());
                    LOG.info("Created topic {} ({} partitions, replication {}, {})", topic.name(),
                            topic.numPartitions(), topic.replicationFactor(), topic.configs());
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new KafkaException("creating topic " + topic.name()
                                + " failed: " + e.getCause().getMessage(), e.getCause());
                    }
                    LOG.debug("Topic {} was created concurrently by someone else", topic.name());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptException(e);
                } catch (TimeoutException e) {
                    throw new org.apache.kafka.common.errors.TimeoutException("creating topic " + topic.name()
                            + " did not finish within " + ADMIN_TIMEOUT_SECONDS + " s", e);
                }
            }
        }

        List<TopicSpec> toCheck = new ArrayList<>();
        for (TopicSpec spec : specs) {
            if (!created.contains(spec.name())) {
                toCheck.add(spec);
            }
        }
        List<String> problems = check(admin, toCheck);
        if (!problems.isEmpty()) {
            throw new TopicLayoutException(problems);
        }
        return List.copyOf(created);
    }

    /**
     * Producer settings for records up to {@code maxBytes}: {@code max.request.size}, {@code buffer.memory}
     * at least twice that, zstd compression at level {@value #ZSTD_LEVEL}, a short linger and 1 MiB batches.
     *
     * @param maxBytes largest serialized record the producer must send
     * @return the settings, to merge into a producer (or Streams producer) configuration
     */
    public static Map<String, String> bigRecordProducerProps(int maxBytes) {
        positive(maxBytes);
        Map<String, String> p = new LinkedHashMap<>();
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(maxBytes));
        // The producer refuses a record larger than its whole buffer.
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(Math.max(DEFAULT_BUFFER_MEMORY, 2L * maxBytes)));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd");
        p.put(ProducerConfig.COMPRESSION_ZSTD_LEVEL_CONFIG, Integer.toString(ZSTD_LEVEL));
        p.put(ProducerConfig.LINGER_MS_CONFIG, "10");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(Math.min(BIG_RECORD_BATCH_BYTES, maxBytes)));
        return p;
    }

    /**
     * Consumer settings for records up to {@code maxBytes}: {@code max.partition.fetch.bytes} and
     * {@code fetch.max.bytes} (never below Kafka's default of 50 MiB).
     *
     * @param maxBytes largest serialized record (batch) the consumer must read
     * @return the settings, to merge into a consumer (or Streams consumer) configuration
     */
    public static Map<String, String> bigRecordConsumerProps(int maxBytes) {
        positive(maxBytes);
        Map<String, String> p = new LinkedHashMap<>();
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(maxBytes));
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Integer.toString(Math.max(DEFAULT_FETCH_MAX_BYTES, maxBytes)));
        return p;
    }

    /**
     * Topic configs for the changelog of a state store that holds tensors (pass to
     * {@code Materialized.withLoggingEnabled} / {@code StoreBuilder.withLoggingEnabled}); Kafka Streams
     * would otherwise create it with the broker's default {@code max.message.bytes}.
     *
     * @param maxBytes {@code max.message.bytes} of the changelog
     * @return the configs
     */
    public static Map<String, String> tensorChangelogConfig(int maxBytes) {
        positive(maxBytes);
        Map<String, String> c = new LinkedHashMap<>();
        c.put(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, Integer.toString(maxBytes));
        c.put(TopicConfig.COMPRESSION_TYPE_CONFIG, "producer");
        return c;
    }

    // ---------------------------------------------------------------------------------------------

    private static Map<String, String> configs(String cleanupPolicy, String maxMessageBytes, boolean keepForever,
                                               short replication) {
        Map<String, String> c = new LinkedHashMap<>();
        c.put(TopicConfig.CLEANUP_POLICY_CONFIG, cleanupPolicy);
        c.put(TopicConfig.COMPRESSION_TYPE_CONFIG, "producer");
        if (maxMessageBytes != null) {
            c.put(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, maxMessageBytes);
        }
        if (keepForever) {
            c.put(TopicConfig.RETENTION_MS_CONFIG, "-1");
        }
        c.putAll(durability(replication));
        return c;
    }

    /** Problems of existing topics, one line each; retries while a just-created topic is not yet visible. */
    private static List<String> check(Admin admin, List<TopicSpec> specs) {
        if (specs.isEmpty()) {
            return List.of();
        }
        List<String> names = specs.stream().map(TopicSpec::name).toList();
        Map<String, TopicDescription> descriptions = null;
        Map<ConfigResource, Config> configs = null;
        for (int attempt = 1; descriptions == null; attempt++) {
            try {
                descriptions = admin.describeTopics(names).allTopicNames().get(ADMIN_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                List<ConfigResource> resources = names.stream()
                        .map(n -> new ConfigResource(ConfigResource.Type.TOPIC, n)).toList();
                configs = admin.describeConfigs(resources).all().get(ADMIN_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                descriptions = null;
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException) || attempt >= DESCRIBE_ATTEMPTS) {
                    throw new KafkaException("describing topics " + names + " failed: "
                            + e.getCause().getMessage(), e.getCause());
                }
                sleep(DESCRIBE_BACKOFF_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptException(e);
            } catch (TimeoutException e) {
                throw new org.apache.kafka.common.errors.TimeoutException("describing topics " + names
                        + " did not finish within " + ADMIN_TIMEOUT_SECONDS + " s", e);
            }
        }
        List<String> problems = new ArrayList<>();
        for (TopicSpec spec : specs) {
            int actual = descriptions.get(spec.name()).partitions().size();
            if (actual != spec.partitions()) {
                if (spec.coPartitioned()) {
                    problems.add("topic " + spec.name() + " has " + actual + " partitions but must have "
                            + spec.partitions() + ": it is co-partitioned with the Streams repartition topic of"
                            + " the per-module tasks (set the service's partition count to " + actual
                            + ", or recreate the topic)");
                } else {
                    LOG.warn("Topic {} has {} partitions (a new one would get {}); keeping it", spec.name(),
                            actual, spec.partitions());
                }
            }
            Config config = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, spec.name()));
            if (spec.compacted()) {
                String policy = value(config, TopicConfig.CLEANUP_POLICY_CONFIG);
                List<String> policies = policy == null ? List.of() : List.of(policy.replace(" ", "").split(","));
                if (!policies.contains("compact")) {
                    problems.add("topic " + spec.name() + " has cleanup.policy=" + policy
                            + " but must be compacted (cleanup.policy=compact): it keeps the latest value per key");
                } else if (policies.contains("delete")) {
                    // compact,delete also deletes whole segments by age or size, the latest value of a key included
                    String ms = value(config, TopicConfig.RETENTION_MS_CONFIG);
                    String bytes = value(config, TopicConfig.RETENTION_BYTES_CONFIG);
                    if ((ms != null && Long.parseLong(ms) >= 0) || (bytes != null && Long.parseLong(bytes) >= 0)) {
                        problems.add("topic " + spec.name() + " has cleanup.policy=" + policy + " with retention.ms=" + ms
                                + ", retention.bytes=" + bytes + ": older records are deleted, the latest value of a key"
                                + " included, but it must keep the latest value per key (cleanup.policy=compact, or"
                                + " retention.ms=-1 and retention.bytes=-1)");
                    }
                }
            }
            if (spec.configs().containsKey(TopicConfig.RETENTION_MS_CONFIG)) {
                String ms = value(config, TopicConfig.RETENTION_MS_CONFIG);
                if (ms != null && Long.parseLong(ms) >= 0) {
                    LOG.warn("Topic {} has retention.ms={}: an audit (replay) needs every input record and will report"
                            + " differences once older ones are deleted; set retention.ms=-1", spec.name(), ms);
                }
            }
            if (spec.tensors()) {
                String v = value(config, TopicConfig.MAX_MESSAGE_BYTES_CONFIG);
                int required = Integer.parseInt(spec.configs().get(TopicConfig.MAX_MESSAGE_BYTES_CONFIG));
                if (v == null || Long.parseLong(v) < required) {
                    problems.add("topic " + spec.name() + " has max.message.bytes=" + v + " but tensor records need "
                            + required + " (kafka-configs --alter --entity-type topics --entity-name " + spec.name()
                            + " --add-config max.message.bytes=" + required + ")");
                }
            }
        }
        return problems;
    }

    private static String value(Config config, String key) {
        if (config == null) {
            return null;
        }
        ConfigEntry entry = config.get(key);
        return entry == null ? null : entry.value();
    }

    private static <T> T await(KafkaFuture<T> future, String what) {
        try {
            return future.get(ADMIN_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new KafkaException(what + " failed: " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptException(e);
        } catch (TimeoutException e) {
            throw new org.apache.kafka.common.errors.TimeoutException(what + " did not finish within "
                    + ADMIN_TIMEOUT_SECONDS + " s", e);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptException(e);
        }
    }

    private static void positive(int maxBytes) {
        if (maxBytes < 1) {
            throw new IllegalArgumentException("maxBytes must be >= 1, got " + maxBytes);
        }
    }

    /** Raised by {@link #ensureTopics} when existing topics have settings that would break the service. */
    public static final class TopicLayoutException extends IllegalStateException {
        private static final long serialVersionUID = 1L;
        private final List<String> problems;

        /** @param problems one line per problem, each naming its topic */
        public TopicLayoutException(Collection<String> problems) {
            super("existing topics do not fit the service: " + String.join("; ", problems));
            this.problems = List.copyOf(problems);
        }

        /** One line per problem, each naming its topic. */
        public List<String> problems() {
            return problems;
        }
    }
}
