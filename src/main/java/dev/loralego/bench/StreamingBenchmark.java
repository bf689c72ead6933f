package dev.loralego.bench;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.client.AdapterPublisher;
import dev.loralego.client.ClientConnection;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.SyntheticAdapters;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import dev.loralego.stream.ClusterCacheStatistics;
import java.lang.management.MemoryMXBean;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The streaming benchmark of the service (issue "streaming merge service", performance): an embedded broker
 * and the service in this JVM, {@code n} synthetic adapters published back to back (or on a fixed schedule), and for every version
 * the time from its publish event (the event record's timestamp) until its manifest is visible to a
 * read_committed consumer of {@code lora.merged.versions}. Reports p50/p95/max latency, sustained
 * throughput and the JVM's peak heap (broker, service and publisher together: an upper bound for the
 * service alone).
 */
public final class StreamingBenchmark {
    /**
     * @param shape      base model shape of the synthetic adapters
     * @param adapters   adapters published
     * @param rank       their rank
     * @param dtype      their dtype
     * @param params     the service's merge parameters
     * @param dir        working directory (recreated)
     * @param partitions partitions of the service's topics (modules spread over them)
     * @param threads    stream threads of the service
     * @param warmup     adapters of the same shape published first to another group and then withdrawn, their
     *                   versions awaited, before the measured run starts: the JIT has compiled the broker's, the clients' and the service's hot
     *                   paths, as in a service that has been running; 0 measures a cold JVM
     * @param config     the service's settings as `run --config` takes them (Kafka Streams and client settings,
     *                   per-group overrides); empty for the defaults
     * @param interval   seconds between the starts of successive publishes (a fixed schedule: publish {@code i} starts
     *                   {@code i · interval} after the first, or at once when the previous one took longer); 0 =
     *                   back to back. A rate the service sustains shows its latency without a queue
     */
    public record Setup(String shape, int adapters, int rank, DType dtype, MergeParameters params, Path dir,
                        int partitions, int threads, int warmup, Map<String, String> config, double interval) {
        public Setup {
            config = Map.copyOf(config);
            if (adapters < 1) throw new IllegalArgumentException("adapters must be >= 1, got " + adapters);
            if (warmup < 0) throw new IllegalArgumentException("warmup must be >= 0, got " + warmup);
            if (!(interval >= 0) || Double.isInfinite(interval)) {
                throw new IllegalArgumentException("interval must be a finite number of seconds >= 0, got " + interval);
            }
        }

        public Setup(String shape, int adapters, int rank, DType dtype, MergeParameters params, Path dir,
                     int partitions, int threads, int warmup, Map<String, String> config) {
            this(shape, adapters, rank, dtype, params, dir, partitions, threads, warmup, config, 0);
        }

        public Setup(String shape, int adapters, int rank, DType dtype, MergeParameters params, Path dir) {
            this(shape, adapters, rank, dtype, params, dir, 1, 1, 0, Map.of());
        }
    }

    /** What was measured. */
    /**
     * @param peakHeapBytes       largest heap use seen (sampled every 100 ms; includes garbage not yet collected)
     * @param retainedBytes       heap in use after a full collection once every version is out (broker, service and
     *                            publisher: what they retain, the cluster cache included)
     * @param cacheHits           module steps whose clusters were in the in-memory cache
     * @param cacheMisses         module steps that rebuilt them from the store
     */
    public record Result(Setup setup, double[] latenciesMs, double seconds, long peakHeapBytes, long maxHeapBytes,
                         long retainedBytes, long cacheHits, long cacheMisses, int versionsAfterPublish,
                         double secondsAfterPublish) {
        public double percentile(double p) {
            double[] s = latenciesMs.clone();
            Arrays.sort(s);
            int i = (int) Math.ceil(p / 100.0 * s.length) - 1;
            return s[Math.max(0, Math.min(s.length - 1, i))];
        }

        public double throughput() {
            return setup.adapters() / seconds;
        }

        public String summary() {
            return String.format(Locale.ROOT,
                    "%d x %s r%d %s (merged into %s), k=%s, %d partitions x %d stream threads, %s, %s: latency p50 %.0f ms, p95 %.0f ms, max %.0f ms; throughput %.2f adapters/s over %.1f s; "
                            + "peak heap %.0f MiB of %.0f MiB (%.0f MiB retained at the end); cluster cache %d hits, %d misses; "
                            + "after the last publish the service alone emitted %d versions in %.1f s",
                    setup.adapters(), setup.shape(), setup.rank(), setup.dtype(),
                    setup.params().outputDTypeFollowsInputs() ? setup.dtype().name() : setup.params().outputDType(),
                    setup.params().lego().k() == 0 ? "max rank" : setup.params().lego().k(),
                    setup.partitions(), setup.threads(),
                    setup.interval() == 0 ? "published back to back" : String.format(Locale.ROOT, "published every %.2f s", setup.interval()),
                    setup.warmup() == 0 ? "cold JVM" : "after a warm-up of " + setup.warmup() + " adapters", percentile(50), percentile(95), percentile(100), throughput(), seconds, peakHeapBytes / 1048576.0,
                    maxHeapBytes / 1048576.0, retainedBytes / 1048576.0, cacheHits, cacheMisses, versionsAfterPublish,
                    secondsAfterPublish);
        }
    }

    private StreamingBenchmark() {
    }

    public static Result run(Setup setup, PrintStream progress) throws Exception {
        WorkDirs.recreate(setup.dir());
        List<Path> dirs = SyntheticAdapters.generate(setup.dir().resolve("adapters"), setup.adapters(), setup.rank(),
                BaseModelShape.byName(setup.shape()), 7, setup.dtype());
        List<Path> warmupDirs = setup.warmup() == 0 ? List.of() : SyntheticAdapters.generate(setup.dir().resolve("warmup"),
                setup.warmup(), setup.rank(), BaseModelShape.byName(setup.shape()), 8, setup.dtype());
        progress.printf("wrote %d adapters (and %d for the warm-up); starting broker and service%n", dirs.size(), warmupDirs.size());
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        AtomicLong peakHeap = new AtomicLong();
        AtomicBoolean sampling = new AtomicBoolean(true);
        Thread sampler = new Thread(() -> {
            while (sampling.get()) {
                peakHeap.accumulateAndGet(memory.getHeapMemoryUsage().getUsed(), Math::max);
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "heap-sampler");
        sampler.setDaemon(true);
        long hitsBefore = ClusterCacheStatistics.hits(), missesBefore = ClusterCacheStatistics.misses();
        String group = "bench";
        int maxBytes = 64 << 20;
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(setup.dir().resolve("kafka"), 0);
             MergeService service = MergeService.start(new MergeService.Config(broker.bootstrapServers(), "lora-lego-bench",
                     setup.dir().resolve("streams"), setup.partitions(), (short) 1, maxBytes, setup.threads(), setup.params(), setup.config()),
                     null, Duration.ofMinutes(2))) {
            AdapterPublisher publisher = new AdapterPublisher(ClientConnection.of(broker.bootstrapServers(), Map.of(), maxBytes, Duration.ofMinutes(2)));
            if (!warmupDirs.isEmpty()) {
                long t0 = System.nanoTime();
                warmUp(broker.bootstrapServers(), service, publisher, warmupDirs);
                progress.printf("warm-up: %d adapters merged and withdrawn in %.1f s; measuring%n", warmupDirs.size(), (System.nanoTime() - t0) / 1e9);
                hitsBefore = ClusterCacheStatistics.hits();
                missesBefore = ClusterCacheStatistics.misses();
            }
            Map<Long, Double> latency = new ConcurrentHashMap<>();
            Map<Long, Long> emittedAt = new ConcurrentHashMap<>();
            AtomicLong lastSeen = new AtomicLong();
            Thread watcher = new Thread(() -> watch(broker.bootstrapServers(), service, group, setup.adapters(), latency, emittedAt, lastSeen), "version-watcher");
            watcher.start();
            sampler.start();
            long start = System.nanoTime();
            publishAll(publisher, group, dirs, setup.interval());
            long publishedAt = System.nanoTime();
            progress.printf("published %d adapters in %.1f s; waiting for the versions%n", dirs.size(), (publishedAt - start) / 1e9);
            watcher.join(Duration.ofMinutes(30).toMillis());
            long end = lastSeen.get();
            sampling.set(false);
            double[] l = latency.values().stream().mapToDouble(Double::doubleValue).toArray();
            if (l.length < setup.adapters()) throw new IllegalStateException("only " + l.length + " of " + setup.adapters() + " versions appeared");
            // what the service still holds once every version is out (cluster cache, stores' Java side, broker)
            System.gc();
            long retained = memory.getHeapMemoryUsage().getUsed();
            int after = (int) emittedAt.values().stream().filter(t -> t > publishedAt).count();
            return new Result(setup, l, (end - start) / 1e9, peakHeap.get(), memory.getHeapMemoryUsage().getMax(),
                    retained, ClusterCacheStatistics.hits() - hitsBefore, ClusterCacheStatistics.misses() - missesBefore,
                    after, Math.max(0, end - publishedAt) / 1e9);
        } finally {
            sampling.set(false);
        }
    }

    /**
     * Publishes the warm-up adapters to their own group, then withdraws them all, and waits until all those versions
     * are visible: the hot paths (first fill, mini-batch steps, refinements, retractions) have run, and the group's
     * clusters no longer occupy the cluster cache.
     */
    private static void warmUp(String bootstrap, MergeService service, AdapterPublisher publisher, List<Path> dirs)
            throws Exception {
        String group = "warmup";
        Map<Long, Double> seen = new ConcurrentHashMap<>();
        Thread watcher = new Thread(() -> watch(bootstrap, service, group, 2 * dirs.size(), seen, new ConcurrentHashMap<>(),
                new AtomicLong()), "warmup-watcher");
        watcher.start();
        publishAll(publisher, group, dirs, 0);
        for (Path d : dirs) publisher.withdraw(group, d.getFileName().toString(), 1L);
        watcher.join(Duration.ofMinutes(30).toMillis());
        if (seen.size() < 2 * dirs.size()) {
            throw new IllegalStateException("warm-up: only " + seen.size() + " of " + 2 * dirs.size() + " versions appeared");
        }
    }

    /**
     * Publishes each adapter directory as version 1 of an adapter named after it, weight 1: back to back, or publish
     * {@code i} starting {@code i · interval} seconds after the first (at once if the schedule has slipped).
     */
    private static void publishAll(AdapterPublisher publisher, String group, List<Path> dirs, double interval) throws Exception {
        long first = System.nanoTime();
        for (int i = 0; i < dirs.size(); i++) {
            long due = first + Math.round(i * interval * 1e9);
            long wait = due - System.nanoTime();
            if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            Path d = dirs.get(i);
            publisher.publish(new AdapterPublisher.PublishRequest(group, d.getFileName().toString(), 1L, 1.0, null, d));
        }
    }

    private static void watch(String bootstrap, MergeService service, String group, int versions, Map<Long, Double> latency,
                              Map<Long, Long> emittedAt, AtomicLong lastSeen) {
        TopologySerdes serdes = MergeService.serdes(new EmbeddedSchemaResolver());
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        String topic = service.topics().mergedVersions();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(pi -> new TopicPartition(pi.topic(), pi.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            long deadline = System.currentTimeMillis() + Duration.ofMinutes(30).toMillis();
            while (latency.size() < versions && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(50))) {
                    if (!group.equals(r.key())) continue;
                    long now = System.currentTimeMillis();
                    MergedVersionManifest m = serdes.mergedVersion().deserializer().deserialize(topic, r.value());
                    latency.put(m.getSequence(), (double) (now - m.getEventTimestamp()));
                    long seen = System.nanoTime();
                    emittedAt.put(m.getSequence(), seen);
                    lastSeen.set(seen);
                }
            }
        }
    }
}
