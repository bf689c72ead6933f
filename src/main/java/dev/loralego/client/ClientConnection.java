package dev.loralego.client;

import dev.loralego.kafka.TopicAdmin;
import dev.loralego.kafka.TopicNames;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.SchemaResolver;
import dev.loralego.stream.ClientSettings;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * How a client process reaches the service's topics: bootstrap servers, the {@code --config} file (Kafka
 * client settings such as {@code security.protocol} pass to every client, {@code topic.*} names and
 * {@code schema.registry.*} settings are read as in the service), the schema resolver and serdes, the
 * largest record it must move, and how long to wait for Kafka. Immutable; clients are created per use.
 *
 * <p>Bootstrap servers: the explicit value, else {@code bootstrap.servers} from the config file, else
 * {@value #DEFAULT_BOOTSTRAP}. Settings precedence for every client: our defaults &lt; the config file &lt;
 * what the client cannot work without (bootstrap, serializers, transactional id, read_committed).
 */
public final class ClientConnection {
    /** Bootstrap servers when neither the option nor the config file gives any. */
    public static final String DEFAULT_BOOTSTRAP = "localhost:9092";
    /** Largest record by default: the service's default, 64 MiB. */
    public static final int DEFAULT_MAX_RECORD_BYTES = 64 << 20;
    /** How long to wait for Kafka by default. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    private static final Logger LOG = LoggerFactory.getLogger(ClientConnection.class);

    private final String bootstrap;
    private final Map<String, String> config;
    private final Map<String, String> clientEntries;
    private final TopicNames topics;
    private final SchemaResolver resolver;
    private final TopologySerdes serdes;
    private final int maxRecordBytes;
    private final Duration timeout;

    private ClientConnection(String bootstrap, Map<String, String> config, int maxRecordBytes, Duration timeout) {
        this.config = Map.copyOf(config);
        this.clientEntries = ClientSettings.kafkaClientEntries(this.config);
        String fromFile = clientEntries.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG);
        this.bootstrap = bootstrap != null && !bootstrap.isBlank() ? bootstrap
                : fromFile != null && !fromFile.isBlank() ? fromFile : DEFAULT_BOOTSTRAP;
        this.topics = TopicNames.from(this.config);
        this.resolver = SchemaResolver.fromConfig(this.config);
        this.serdes = MergeService.serdes(resolver);
        if (maxRecordBytes < 1024) {
            throw new IllegalArgumentException("max record bytes must be >= 1024, got " + maxRecordBytes);
        }
        this.maxRecordBytes = maxRecordBytes;
        this.timeout = Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("timeout must be > 0, got " + timeout);
    }

    /**
     * A connection from already loaded config entries.
     *
     * @param bootstrap      bootstrap servers, or null for the config file's / the default
     * @param config         the config file's entries (may be empty)
     * @param maxRecordBytes largest record (producer {@code max.request.size}, consumer fetch sizes)
     * @param timeout        how long to wait for Kafka (metadata, reading a topic to its end)
     */
    public static ClientConnection of(String bootstrap, Map<String, String> config, int maxRecordBytes, Duration timeout) {
        return new ClientConnection(bootstrap, Objects.requireNonNull(config, "config"), maxRecordBytes, timeout);
    }

    /** As {@link #of}, reading {@code configFile} (null: none) with {@link ClientSettings#load}. */
    public static ClientConnection fromConfigFile(String bootstrap, Path configFile, int maxRecordBytes, Duration timeout)
            throws IOException {
        return of(bootstrap, ClientSettings.load(configFile), maxRecordBytes, timeout);
    }

    /** The bootstrap servers in use. */
    public String bootstrap() {
        return bootstrap;
    }

    /** The topic names ({@code topic.*} entries of the config, defaults otherwise). */
    public TopicNames topics() {
        return topics;
    }

    /** The serdes of the boundary records (same wire format as the service). */
    public TopologySerdes serdes() {
        return serdes;
    }

    /** The schema source the serdes use. */
    SchemaResolver resolver() {
        return resolver;
    }

    /** The largest record this client writes or reads. */
    public int maxRecordBytes() {
        return maxRecordBytes;
    }

    /** How long to wait for Kafka. */
    public Duration timeout() {
        return timeout;
    }

    /**
     * Producer settings: acks=all with idempotence (transactions need it), the big-record settings of
     * {@link TopicAdmin#bigRecordProducerProps}, then the config file, then bootstrap, serializers and
     * {@code transactionalId} (null: not transactional).
     */
    public Map<String, Object> producerProps(String clientId, String transactionalId) {
        Map<String, Object> p = new HashMap<>();
        p.putAll(TopicAdmin.bigRecordProducerProps(maxRecordBytes));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        // Uploading a large adapter inside one transaction can take minutes; most brokers allow up to 15.
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "300000");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.putAll(clientEntries);
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (transactionalId != null) p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        return p;
    }

    /**
     * Consumer settings: no consumer group (partitions are assigned, nothing is committed), big-record fetch
     * sizes, no topic auto-creation (a typo must not create a badly configured topic), then the config
     * file, then bootstrap, deserializers and {@code isolation.level=read_committed} (the service writes in
     * transactions; a publish interrupted half-way must stay invisible).
     */
    public Map<String, Object> consumerProps(String clientId) {
        Map<String, Object> p = new HashMap<>();
        p.putAll(TopicAdmin.bigRecordConsumerProps(maxRecordBytes));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // Records are big: a few per poll keep memory bounded.
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.putAll(clientEntries);
        p.remove(ConsumerConfig.GROUP_ID_CONFIG);
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        return p;
    }

    /** A new producer of raw bytes; the caller closes it. */
    public KafkaProducer<byte[], byte[]> newProducer(String clientId, String transactionalId) {
        return new KafkaProducer<>(producerProps(clientId, transactionalId));
    }

    /** A new read_committed consumer of raw bytes without a group; the caller closes it. */
    public KafkaConsumer<byte[], byte[]> newConsumer(String clientId) {
        return new KafkaConsumer<>(consumerProps(clientId));
    }

    /**
     * With the embedded schema source (no {@code schema.registry.url}), loads the schemas published on the
     * schemas topic, so records written by a newer service with a schema this client does not ship still
     * decode. Best effort: a missing or unreadable schemas topic is logged and ignored (records written
     * with shipped schemas decode anyway).
     */
    public void loadPublishedSchemas() {
        if (!(resolver instanceof EmbeddedSchemaResolver embedded)) return;
        Map<String, Object> p = consumerProps("lora-lego-schemas");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            int added = embedded.loadFrom(c, topics.schemas(), timeout);
            if (added > 0) LOG.info("loaded {} schema(s) from {}", added, topics.schemas());
        } catch (KafkaException e) {
            LOG.debug("schemas topic {} not read: {}", topics.schemas(), e.getMessage());
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "ClientConnection[%s, max record %d bytes]", bootstrap, maxRecordBytes);
    }
}
