package dev.loralego.cli;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.client.AdapterPublisher;
import dev.loralego.client.ClientConnection;
import dev.loralego.client.MergedVersionReader;
import dev.loralego.client.PeftExport;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.BaselineOptions;
import dev.loralego.merge.AdapterMerge;
import dev.loralego.merge.MergeSpec;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.SafetensorsFile;
import dev.loralego.peft.SyntheticAdapters;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * {@code demo}: the whole system on one machine with no setup. Starts a real Kafka broker inside the JVM and
 * the service, writes synthetic adapters, publishes them one by one (then withdraws one), shows each merged
 * version as it appears, exports the last one and checks it against the offline merge of the same adapters.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs the service end to end on an embedded broker with synthetic adapters, with a live view.",
                "Example: demo --adapters 6 --shape tiny --rank 4 --k 4"})
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--dir", defaultValue = "lora-lego-demo", description = "working directory, recreated; an existing one must be empty or made by lora-lego (default: ${DEFAULT-VALUE})")
    Path dir;

    @Option(names = "--adapters", defaultValue = "6", description = "adapters to publish (default: ${DEFAULT-VALUE})")
    int adapters;

    @Option(names = "--shape", defaultValue = "tiny", description = "base model shape for the synthetic adapters (default: ${DEFAULT-VALUE})")
    String shape;

    @Option(names = "--rank", defaultValue = "4", description = "rank of the synthetic adapters (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--k", defaultValue = "4", description = "merged rank (default: ${DEFAULT-VALUE})")
    int k;

    @Option(names = "--seed", defaultValue = "42", description = "seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--embedded-port", defaultValue = "0", description = "broker port (default: any free port)")
    int port;

    @Override
    public Integer call() throws Exception {
        // checked before the directory is recreated and the broker started: the demo withdraws its second adapter
        if (adapters < 2) throw new IllegalArgumentException("--adapters must be >= 2 (the demo withdraws one), got " + adapters);
        if (rank < 1) throw new IllegalArgumentException("--rank must be >= 1, got " + rank);
        if (k < 1) throw new IllegalArgumentException("--k must be >= 1, got " + k);
        BaseModelShape.byName(shape);
        PrintStream out = System.out;
        long t0 = System.nanoTime();
        // The live view below is the demo's output; the components' own INFO lines would bury it.
        org.apache.logging.log4j.core.config.Configurator.setLevel("dev.loralego", org.apache.logging.log4j.Level.WARN);
        String group = "demo";
        dev.loralego.bench.WorkDirs.recreate(dir);
        out.printf("1. starting a Kafka broker inside this JVM (data in %s) ...%n", dir.resolve("kafka"));
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), port)) {
            out.printf("   broker up at %s in %.1f s%n", broker.bootstrapServers(), broker.startupMillis() / 1e3);
            // recluster after every update: each version equals the offline merge of its live set, checked at the end.
            MergeParameters params = new MergeParameters(
                    new dev.loralego.lego.LegoOptions(k, Map.of(), seed, 4, 300, dev.loralego.lego.CanonicalForm.SVD,
                            dev.loralego.lego.FeatureNorm.NONE, dev.loralego.lego.ParameterReweighting.L2, true),
                    1, "recluster", 1.0, "F32", 256);
            BlockingQueue<MergedVersionManifest> versions = new LinkedBlockingQueue<>();
            MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), "lora-lego-demo", dir.resolve("streams"),
                    1, (short) 1, 64 << 20, 1, params, Map.of());
            out.println("2. starting the merge service (Kafka Streams, exactly-once) ...");
            try (MergeService service = MergeService.start(cfg, versions::add, Duration.ofMinutes(1))) {
                out.printf("   ready: bootstrap=%s%n", broker.bootstrapServers());
                Path adapterDir = dir.resolve("adapters");
                List<Path> dirs = SyntheticAdapters.generate(adapterDir, adapters, rank, BaseModelShape.byName(shape), seed, DType.F32);
                out.printf("3. wrote %d synthetic %s adapters of rank %d to %s%n", dirs.size(), shape, rank, adapterDir);
                ClientConnection connection = ClientConnection.of(broker.bootstrapServers(), Map.of(), 64 << 20, Duration.ofSeconds(60));
                AdapterPublisher publisher = new AdapterPublisher(connection);
                out.println("4. publishing them one by one; every publish becomes a merged version:");
                out.println("   version  event                        adapters  modules  ranks(k:modules)  latency   digest");
                List<Path> live = new ArrayList<>();
                for (int i = 0; i < dirs.size(); i++) {
                    Path d = dirs.get(i);
                    long sent = System.nanoTime();
                    publisher.publish(new AdapterPublisher.PublishRequest(group, d.getFileName().toString(), 1L, 1.0, "team-" + i, d));
                    live.add(d);
                    show(out, versions.poll(2, TimeUnit.MINUTES), sent);
                }
                Path withdrawn = live.remove(1);
                long sent = System.nanoTime();
                publisher.withdraw(group, withdrawn.getFileName().toString(), -1);
                show(out, versions.poll(2, TimeUnit.MINUTES), sent);

                MergedVersionReader reader = new MergedVersionReader(connection);
                // The listener hears of a version as it is produced; readers see it once its transaction commits.
                long expected = dirs.size() + 1L;
                MergedVersionManifest latest = reader.manifest(group, null);
                for (int tries = 0; latest.getSequence() < expected && tries < 100; tries++) {
                    Thread.sleep(100);
                    latest = reader.manifest(group, null);
                }
                Path exported = dir.resolve("merged");
                PeftExport.write(exported, latest, reader.layers(latest));
                out.printf("5. exported version %d to %s (PEFT adapter + manifest.json, digests verified)%n",
                        latest.getSequence(), exported);
                Path offline = dir.resolve("offline-merge");
                new AdapterMerge(new MergeSpec(MergeMethod.LEGO, params.lego(), BaselineOptions.defaults()), 2)
                        .mergeTo(live, null, DType.F32, offline, null);
                boolean same = sameTensors(exported, offline);
                out.printf("6. offline `merge` of the same %d live adapters: tensors %s the service's export%n",
                        live.size(), same ? "bit-identical to" : "DIFFERENT from");
                out.printf("done in %.1f s. Try: java -jar target/lora-lego.jar merge --help%n", (System.nanoTime() - t0) / 1e9);
                return same ? 0 : 1;
            }
        }
    }

    private static void show(PrintStream out, MergedVersionManifest m, long sentNanos) {
        if (m == null) throw new IllegalStateException("no merged version appeared within 2 minutes");
        TreeMap<Integer, Integer> ranks = new TreeMap<>();
        for (ModuleRef r : m.getModules()) ranks.merge(r.getRank(), 1, Integer::sum);
        String event = m.getTrigger().getType().name().toLowerCase(Locale.ROOT) + " " + m.getTrigger().getAdapterId();
        out.printf(Locale.ROOT, "   %7d  %-27s  %8d  %7d  %-16s  %5d ms  %s…%n", m.getSequence(), event, m.getAdapters().size(),
                m.getModules().size(), ranks.toString(), (System.nanoTime() - sentNanos) / 1_000_000, m.getDigest().substring(0, 12));
    }

    private static boolean sameTensors(Path a, Path b) throws IOException {
        try (SafetensorsFile fa = SafetensorsFile.open(a.resolve("adapter_model.safetensors"));
             SafetensorsFile fb = SafetensorsFile.open(b.resolve("adapter_model.safetensors"))) {
            if (!fa.tensors().keySet().equals(fb.tensors().keySet())) return false;
            for (String name : fa.tensors().keySet()) {
                if (!java.util.Arrays.equals(fa.readRawBytes(name), fb.readRawBytes(name))) return false;
            }
            return true;
        }
    }
}
