package dev.loralego.bench;

import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.client.AdapterPublisher;
import dev.loralego.client.ClientConnection;
import dev.loralego.client.MergedVersionReader;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.LegoMerger;
import dev.loralego.lego.MergedModule;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.SyntheticAdapters;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import dev.loralego.stream.TensorCodec;
import dev.loralego.stream.TopologySerdes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The soak of the reliability issue: many small adapters across many groups, published back to back with
 * random withdrawals, into a service on the embedded broker. At the end every group's latest merged version
 * must equal, bit for bit, the offline LoRA-LEGO merge of the group's live adapters (the service runs with
 * {@code refineMode=recluster, refineEvery=1} so that equality is exact). Reports throughput, latency and the
 * heap over time.
 */
public final class SoakBenchmark {
    /**
     * @param groups       merge groups
     * @param adapters     adapters published in all
     * @param withdrawRate probability of a withdrawal after each publish
     * @param rank         rank of the tiny adapters
     * @param params       service parameters (must recluster every update for the exact final check)
     * @param dir          working directory (recreated)
     * @param seed         seed of the adapters and of the withdrawals
     */
    public record Setup(int groups, int adapters, double withdrawRate, int rank, MergeParameters params, Path dir, long seed) {
    }

    /** One heap sample: progress (events sent) and used heap. */
    public record HeapSample(double seconds, int eventsSent, long usedBytes) {
    }

    /**
     * @param events           publishes and withdrawals sent
     * @param versions         versions seen on the versions topic
     * @param mismatchedGroups groups whose final version differs from the offline merge (must be empty)
     * @param latenciesMs      event → visible manifest, per version
     * @param heap             heap samples
     */
    public record Result(Setup setup, int events, int versions, List<String> mismatchedGroups, double[] latenciesMs,
                         double seconds, List<HeapSample> heap) {
        public double percentile(double p) {
            double[] s = latenciesMs.clone();
            Arrays.sort(s);
            return s.length == 0 ? Double.NaN : s[Math.max(0, Math.min(s.length - 1, (int) Math.ceil(p / 100 * s.length) - 1))];
        }

        public String summary() {
            return String.format(Locale.ROOT,
                    "soak: %d adapters in %d groups, %d events (publishes + withdrawals), %d versions in %.1f s = %.1f events/s; "
                            + "latency p50 %.0f ms, p95 %.0f ms, max %.0f ms; final versions equal to the offline merge: %s",
                    setup.adapters(), setup.groups(), events, versions, seconds, events / seconds, percentile(50), percentile(95),
                    percentile(100), mismatchedGroups.isEmpty() ? "all " + setup.groups() + " groups" : "NOT " + mismatchedGroups);
        }

        /** The heap curve at about ten points of progress: min used heap in each tenth (≈ live set after GC). */
        public String heapCurve() {
            StringBuilder sb = new StringBuilder("| progress (events) | time (s) | used heap, min in window (MiB) |\n|---|---|---|\n");
            int n = heap.size();
            for (int part = 0; part < 10 && n > 0; part++) {
                List<HeapSample> window = heap.subList(part * n / 10, Math.max(part * n / 10 + 1, (part + 1) * n / 10));
                HeapSample min = window.stream().min(Comparator.comparingLong(HeapSample::usedBytes)).orElseThrow();
                HeapSample last = window.get(window.size() - 1);
                sb.append(String.format(Locale.ROOT, "| %d | %.0f | %.0f |%n", last.eventsSent(), last.seconds(), min.usedBytes() / 1048576.0));
            }
            return sb.toString();
        }
    }

    private SoakBenchmark() {
    }

    public static Result run(Setup s, PrintStream progress) throws Exception {
        if (!s.params().reclusters() || s.params().refineEvery() != 1) {
            throw new IllegalArgumentException("the soak's exact final check needs --refine-mode recluster --refine-every 1");
        }
        WorkDirs.recreate(s.dir());
        SplittableRandom rnd = new SplittableRandom(s.seed());
        List<List<Path>> perGroup = new ArrayList<>();
        int perGroupCount = (s.adapters() + s.groups() - 1) / s.groups();
        for (int g = 0; g < s.groups(); g++) {
            perGroup.add(SyntheticAdapters.generate(s.dir().resolve("adapters").resolve("g" + g), perGroupCount, s.rank(),
                    BaseModelShape.byName("tiny"), s.seed() * 1000 + g, DType.F32));
        }
        progress.printf("wrote %d adapters in %d groups%n", perGroupCount * s.groups(), s.groups());
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        List<HeapSample> heap = new CopyOnWriteArrayList<>();
        AtomicInteger sent = new AtomicInteger();
        AtomicBoolean running = new AtomicBoolean(true);
        int maxBytes = 16 << 20;
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(s.dir().resolve("kafka"), 0);
             MergeService service = MergeService.start(new MergeService.Config(broker.bootstrapServers(), "lora-lego-soak",
                     s.dir().resolve("streams"), 4, (short) 1, maxBytes, 1, s.params(), Map.of()), null, Duration.ofMinutes(2))) {
            long start = System.nanoTime();
            Thread sampler = new Thread(() -> {
                while (running.get()) {
                    heap.add(new HeapSample((System.nanoTime() - start) / 1e9, sent.get(), memory.getHeapMemoryUsage().getUsed()));
                    try {
                        Thread.sleep(250);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "heap-sampler");
            sampler.setDaemon(true);
            sampler.start();
            Map<Long, Double> latencies = new ConcurrentHashMap<>();
            AtomicInteger versionsSeen = new AtomicInteger();
            Thread watcher = new Thread(() -> watch(broker.bootstrapServers(), service.topics().mergedVersions(), running,
                    latencies, versionsSeen), "version-watcher");
            watcher.start();
            ClientConnection connection = ClientConnection.of(broker.bootstrapServers(), Map.of(), maxBytes, Duration.ofMinutes(2));
            AdapterPublisher publisher = new AdapterPublisher(connection);
            List<TreeMap<String, Path>> live = new ArrayList<>();
            for (int g = 0; g < s.groups(); g++) live.add(new TreeMap<>());
            int published = 0;
            for (int i = 0; i < perGroupCount && published < s.adapters(); i++) {
                for (int g = 0; g < s.groups() && published < s.adapters(); g++) {
                    Path d = perGroup.get(g).get(i);
                    String id = d.getFileName().toString();
                    publisher.publish(new AdapterPublisher.PublishRequest("soak-" + g, id, 1L, 1.0, null, d));
                    live.get(g).put(id, d);
                    sent.incrementAndGet();
                    published++;
                    if (live.get(g).size() > 1 && rnd.nextDouble() < s.withdrawRate()) {
                        List<String> ids = new ArrayList<>(live.get(g).keySet());
                        String victim = ids.get(rnd.nextInt(ids.size()));
                        publisher.withdraw("soak-" + g, victim, -1);
                        live.get(g).remove(victim);
                        sent.incrementAndGet();
                    }
                    if (published % 100 == 0) progress.printf("  %d published, %d events, %d versions seen%n", published, sent.get(), versionsSeen.get());
                }
            }
            int events = sent.get();
            long deadline = System.currentTimeMillis() + Duration.ofMinutes(20).toMillis();
            while (versionsSeen.get() < events && System.currentTimeMillis() < deadline) Thread.sleep(200);
            double seconds = (System.nanoTime() - start) / 1e9;
            running.set(false);
            watcher.join();
            progress.printf("all %d versions seen after %.1f s; checking every group against the offline merge%n", versionsSeen.get(), seconds);
            MergedVersionReader reader = new MergedVersionReader(connection);
            List<String> mismatched = new ArrayList<>();
            for (int g = 0; g < s.groups(); g++) {
                if (!equalsOffline(reader, "soak-" + g, live.get(g), s.params())) mismatched.add("soak-" + g);
            }
            return new Result(s, events, versionsSeen.get(), mismatched,
                    latencies.values().stream().mapToDouble(Double::doubleValue).toArray(), seconds, new ArrayList<>(heap));
        } finally {
            running.set(false);
        }
    }

    /** Whether the group's latest version equals the offline merge of {@code live}, tensor bytes and all. */
    static boolean equalsOffline(MergedVersionReader reader, String group, TreeMap<String, Path> live, MergeParameters params)
            throws Exception {
        MergedVersionManifest m = reader.manifest(group, null);
        Map<String, MergedLayer> layers = reader.layers(m);
        List<PeftAdapter> opened = new ArrayList<>();
        try {
            for (Map.Entry<String, Path> e : live.entrySet()) opened.add(PeftAdapter.open(e.getValue()));
            for (ModuleRef ref : m.getModules()) {
                List<AdapterModule> in = new ArrayList<>();
                int t = 0;
                for (String id : live.keySet()) {
                    PeftAdapter a = opened.get(t++);
                    LoraModuleInfo info = a.modules().get(ref.getModule());
                    if (info == null) continue;
                    in.add(new AdapterModule(id, 1.0, info.scaling(), info.rank(), info.dIn(), info.dOut(),
                            a.readA(ref.getModule()), a.readB(ref.getModule())));
                }
                MergedModule merged = LegoMerger.mergeModule(ref.getModule(), in, params.lego());
                MergedLayer layer = layers.get(ref.getModule());
                TensorDType dtype = layer.getDtype();
                if (!Arrays.equals(TensorCodec.encode(merged.a(), dtype), bytes(layer.getA()))
                        || !Arrays.equals(TensorCodec.encode(merged.b(), dtype), bytes(layer.getB()))) {
                    return false;
                }
            }
            return m.getAdapters().size() == live.size();
        } finally {
            for (PeftAdapter a : opened) a.close();
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    private static void watch(String bootstrap, String topic, AtomicBoolean running, Map<Long, Double> latencies, AtomicInteger seen) {
        TopologySerdes serdes = MergeService.serdes(new EmbeddedSchemaResolver());
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        long n = 0;
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream().map(pi -> new TopicPartition(pi.topic(), pi.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            while (running.get()) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(100))) {
                    if (r.key() == null || !r.key().contains("@")) continue;
                    MergedVersionManifest m = serdes.mergedVersion().deserializer().deserialize(topic, r.value());
                    latencies.put(n++, (double) (System.currentTimeMillis() - m.getEventTimestamp()));
                    seen.incrementAndGet();
                }
            }
        }
    }
}
