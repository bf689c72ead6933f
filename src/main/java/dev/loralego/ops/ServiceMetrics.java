package dev.loralego.ops;

import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.stream.DeadLetterListener;
import dev.loralego.stream.VersionAssembler;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import dev.loralego.stream.ClusterCacheStatistics;
import dev.loralego.stream.LayerWaits;
import dev.loralego.stream.RefinementStatistics;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.kafka.KafkaStreamsMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.apache.kafka.streams.KafkaStreams;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * The service's Prometheus metrics (Micrometer {@link PrometheusMeterRegistry}):
 * <ul>
 *   <li>{@code lora_versions_emitted_total{group}} — merged versions emitted, per merge group;</li>
 *   <li>{@code lora_group_latest_sequence{group}} — sequence number of the group's latest emitted version;</li>
 *   <li>{@code lora_merge_latency_seconds} (histogram) — wall clock at emission minus the triggering event
 *       record's timestamp: the publish-to-version latency a subscriber sees (a replay after a restart
 *       shows up as large values);</li>
 *   <li>{@code lora_dead_letters_total} — records sent to the dead-letter topic (present from the start, at 0,
 *       so an alert on its rate has a series to look at);</li>
 *   <li>every Kafka Streams client metric ({@code kafka_stream_*}, {@code kafka_consumer_*},
 *       {@code kafka_producer_*}…) through Micrometer's {@link KafkaStreamsMetrics} binder, once
 *       {@link #bindStreams} is called; and the JVM's memory, GC, thread and CPU metrics.</li>
 * </ul>
 * It listens to the topology ({@link VersionAssembler.VersionListener}, {@link DeadLetterListener}); the
 * callbacks run on stream threads and only touch thread-safe meters. Nothing here reaches merged content.
 */
public final class ServiceMetrics implements VersionAssembler.VersionListener, DeadLetterListener, AutoCloseable {
    /** Micrometer name of the versions counter (Prometheus: {@code lora_versions_emitted_total}). */
    public static final String VERSIONS_EMITTED = "lora.versions.emitted";
    /** Micrometer name of the latency timer (Prometheus: {@code lora_merge_latency_seconds}). */
    public static final String MERGE_LATENCY = "lora.merge.latency";
    /** Micrometer name of the dead-letter counter (Prometheus: {@code lora_dead_letters_total}). */
    public static final String DEAD_LETTERS = "lora.dead.letters";
    /** Micrometer name of the inertia gauge (Prometheus: {@code lora_cluster_inertia}). */
    public static final String CLUSTER_INERTIA = "lora.cluster.inertia";
    private final java.util.Map<String, java.util.concurrent.atomic.AtomicReference<Double>> clusterInertia =
            new java.util.concurrent.ConcurrentHashMap<>();

    /** Micrometer name of the latest-sequence gauge (Prometheus: {@code lora_group_latest_sequence}). */
    public static final String LATEST_SEQUENCE = "lora.group.latest.sequence";

    private final PrometheusMeterRegistry registry;
    private final LongSupplier clockMillis;
    private final Timer latency;
    private final Counter deadLetters;
    private final Map<String, AtomicLong> latestSequence = new ConcurrentHashMap<>();
    private final JvmGcMetrics gcMetrics;
    private KafkaStreamsMetrics streamsMetrics;

    /** Metrics with the wall clock for latencies. */
    public ServiceMetrics() {
        this(System::currentTimeMillis);
    }

    /** Metrics with {@code clockMillis} for latencies (tests pass a fixed clock). */
    public ServiceMetrics(LongSupplier clockMillis) {
        this.clockMillis = clockMillis;
        this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        this.latency = Timer.builder(MERGE_LATENCY)
                .description("publish event timestamp to merged version emitted")
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(10))
                .maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry);
        this.deadLetters = Counter.builder(DEAD_LETTERS).description("records sent to the dead-letter topic")
                .register(registry);
        FunctionCounter.builder("lora_cluster_cache_hits", this, m -> ClusterCacheStatistics.hits())
                .description("module steps that found their clusters in memory").register(registry);
        FunctionCounter.builder("lora_cluster_cache_misses", this, m -> ClusterCacheStatistics.misses())
                .description("module steps that rebuilt their clusters from the store").register(registry);
        FunctionCounter.builder("lora_refinements_certified", this, m -> RefinementStatistics.certified())
                .description("Lloyd refinements that certificates showed would move no unit (module left as it was)")
                .register(registry);
        FunctionCounter.builder("lora_refinements_full", this, m -> RefinementStatistics.full())
                .description("Lloyd refinements that ran on the whole pool").register(registry);
        Gauge.builder("lora_module_steps_waiting_for_layer", LayerWaits::overdue)
                .description("module steps of this instance waiting for their layer record for over a minute (their groups"
                        + " are held: a publish event was committed without its layer)").register(registry);
        new JvmMemoryMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        this.gcMetrics = new JvmGcMetrics();
        gcMetrics.bindTo(registry);
    }

    /** Binds the Kafka Streams client metrics of {@code streams} (call once, after it started). */
    public synchronized void bindStreams(KafkaStreams streams) {
        if (streamsMetrics != null) throw new IllegalStateException("Kafka Streams metrics are already bound");
        streamsMetrics = new KafkaStreamsMetrics(streams);
        streamsMetrics.bindTo(registry);
    }

    @Override
    public void versionEmitted(MergedVersionManifest manifest) {
        versionsEmitted(manifest.getGroup()).increment();
        groupGauges(manifest);
        long millis = clockMillis.getAsLong() - manifest.getEventTimestamp();
        latency.record(Math.max(0, millis), TimeUnit.MILLISECONDS);
    }

    /**
     * A group's latest version as found at start (emitted before this process ran): its gauges start from it, and its
     * versions counter appears at 0, so a restart leaves no gap in a group's series until its next version.
     */
    public void versionRecovered(MergedVersionManifest manifest) {
        versionsEmitted(manifest.getGroup());
        groupGauges(manifest);
    }

    private Counter versionsEmitted(String group) {
        return Counter.builder(VERSIONS_EMITTED).description("merged versions emitted").tag("group", group).register(registry);
    }

    private void groupGauges(MergedVersionManifest manifest) {
        String group = manifest.getGroup();
        latestSequence.computeIfAbsent(group, g -> {
            AtomicLong holder = new AtomicLong();
            Gauge.builder(LATEST_SEQUENCE, holder, AtomicLong::doubleValue)
                    .description("sequence of the group's latest emitted version").tag("group", g).register(registry);
            return holder;
        }).accumulateAndGet(manifest.getSequence(), Math::max);
        clusterInertia.computeIfAbsent(group, g -> {
            java.util.concurrent.atomic.AtomicReference<Double> holder = new java.util.concurrent.atomic.AtomicReference<>(0.0);
            Gauge.builder(CLUSTER_INERTIA, holder, java.util.concurrent.atomic.AtomicReference::get)
                    .description("mean k-means inertia over the modules of the group's latest version").tag("group", g).register(registry);
            return holder;
        }).set(manifest.getMeanInertia());
    }

    @Override
    public void deadLettered(DeadLetter letter) {
        deadLetters.increment();
    }

    /** The registry (to add meters or read values). */
    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition of every meter. */
    public String scrape() {
        return registry.scrape();
    }

    @Override
    public synchronized void close() {
        if (streamsMetrics != null) streamsMetrics.close();
        gcMetrics.close();
        registry.close();
    }
}
