package dev.loralego.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.peft.AdapterConfig;
import dev.loralego.peft.DType;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.SafetensorsWriter;
import dev.loralego.peft.TensorData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code export} and {@code watch} ({@link MergedVersionReader}, {@link PeftExport}, {@link VersionWatcher})
 * against a real in-JVM broker holding hand-made merged layers and manifests, written as the service writes
 * them (its serdes, keys {@code group|module}, {@code group} and {@code group@sequence}). Each test has its own
 * merge group.
 */
class MergedVersionClientsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    static Path dir;
    private static ClientTestKafka kafka;

    @BeforeAll
    static void start() throws IOException {
        kafka = ClientTestKafka.start(dir);
    }

    @AfterAll
    static void stop() {
        if (kafka != null) kafka.close();
    }

    // ------------------------------------------------------------------------------------ export

    @Test
    void exportLatestAndEarlierVersionsAsVerifiedPeftDirectories() throws Exception {
        String group = "exp";
        SplittableRandom rnd = new SplittableRandom(1);
        PlantedLayer a1 = PlantedLayer.of(group, "model.layers.0.q_proj", 2, 4, 3, 1, TensorDType.F32, rnd);
        PlantedLayer b1 = PlantedLayer.of(group, "model.layers.0.v_proj", 3, 5, 2, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(a1, b1), List.of(new AdapterRef("alpha", 1L, 1.0, "team-x", "da")));
        kafka.plant(v1, List.of(a1, b1));
        // Version 2: q_proj re-merged in BF16, v_proj unchanged (its layer stays the sequence-1 one), o_proj new.
        PlantedLayer a2 = PlantedLayer.of(group, "model.layers.0.q_proj", 4, 4, 3, 2, TensorDType.BF16, rnd);
        PlantedLayer c2 = PlantedLayer.of(group, "model.layers.0.o_proj", 2, 6, 6, 2, TensorDType.BF16, rnd);
        MergedVersionManifest v2 = PlantedLayer.manifest(group, 2, List.of(a2, b1, c2), List.of(new AdapterRef("alpha", 1L, 1.0, "team-x", "da"),
                new AdapterRef("beta", 2L, 0.5, null, "db")));
        kafka.plant(v2, List.of(a2, c2));

        // Latest through the command line.
        Path latest = dir.resolve("export-latest");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = cli(out, err);
        assertEquals(0, cl.execute("export", "--group", group, "--out", latest.toString(),
                "--bootstrap-servers", kafka.broker.bootstrapServers()), err.toString());
        assertTrue(out.toString().contains("exported version 2 of group exp"), out.toString());
        assertTrue(out.toString().contains(v2.getDigest()), out.toString());
        assertAdapterHolds(latest, List.of(a2, b1, c2));
        // Mixed dtypes (BF16 and F32 layers) are written as F32, which holds both exactly.
        assertEquals("F32", NaiveReference.dtype(latest.resolve(PeftAdapter.WEIGHTS_FILE), "base_model.model.model.layers.0.o_proj.lora_A.weight"));
        try (PeftAdapter adapter = PeftAdapter.open(latest)) {
            AdapterConfig c = adapter.config();
            assertTrue(c.fanInFanOut());
            assertEquals("tiny-base", c.baseModel());
            assertEquals("CAUSAL_LM", c.taskType());
            for (PlantedLayer p : List.of(a2, b1, c2)) assertEquals(1.0, c.scalingFor(p.module), 0.0, "merged layers have scaling 1");
        }
        assertManifestJson(latest.resolve(ManifestJson.FILE_NAME), v2);

        // Version 1: its q_proj layer was superseded by version 2 but is still in the log (not compacted yet).
        Path first = dir.resolve("export-v1");
        assertEquals(0, cli(out, err).execute("export", "--group", group, "--version", "1", "--out", first.toString(),
                "--bootstrap-servers", kafka.broker.bootstrapServers()), err.toString());
        assertAdapterHolds(first, List.of(a1, b1));
        Path weights = first.resolve(PeftAdapter.WEIGHTS_FILE);
        for (PlantedLayer p : List.of(a1, b1)) {
            // Uniform F32: the file holds exactly the bytes that travelled, so the digest is reproduced.
            byte[] a = NaiveReference.rawTensor(weights, "base_model.model." + p.module + ".lora_A.weight");
            byte[] b = NaiveReference.rawTensor(weights, "base_model.model." + p.module + ".lora_B.weight");
            assertArrayEquals(p.aBytes, a);
            assertArrayEquals(p.bBytes, b);
            assertEquals(p.digest, NaiveReference.sha256(a, b));
        }
        assertManifestJson(first.resolve(ManifestJson.FILE_NAME), v1);

        // A version that is not on the topic.
        StringWriter err2 = new StringWriter();
        assertEquals(1, cli(new StringWriter(), err2).execute("export", "--group", group, "--version", "9", "--out",
                dir.resolve("export-v9").toString(), "--bootstrap-servers", kafka.broker.bootstrapServers()));
        assertTrue(err2.toString().contains("has no version 9") && err2.toString().contains("latest available version is 2"), err2.toString());
        assertFalse(Files.exists(dir.resolve("export-v9")));
    }

    @Test
    void exportOfHalfPrecisionVersionKeepsTheStoredBytes() throws Exception {
        String group = "exp-half";
        SplittableRandom rnd = new SplittableRandom(2);
        PlantedLayer a = PlantedLayer.of(group, "h.0.attn.c_attn", 3, 8, 24, 1, TensorDType.F16, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(a), List.of(new AdapterRef("h", 1L, 1.0, null, "d")));
        kafka.plant(v1, List.of(a));
        MergedVersionReader reader = new MergedVersionReader(kafka.connection());
        MergedVersionManifest read = reader.manifest(group, null);
        assertEquals(v1, read);
        Path out = dir.resolve("export-half");
        PeftExport.Result r = PeftExport.write(out, read, reader.layers(read));
        assertEquals(DType.F16, r.dtype());
        assertEquals(a.aBytes.length + a.bBytes.length, r.tensorBytes());
        Path weights = out.resolve(PeftAdapter.WEIGHTS_FILE);
        assertEquals("F16", NaiveReference.dtype(weights, "base_model.model.h.0.attn.c_attn.lora_A.weight"));
        assertArrayEquals(a.aBytes, NaiveReference.rawTensor(weights, "base_model.model.h.0.attn.c_attn.lora_A.weight"));
        assertArrayEquals(a.bBytes, NaiveReference.rawTensor(weights, "base_model.model.h.0.attn.c_attn.lora_B.weight"));
        assertAdapterHolds(out, List.of(a));
    }

    @Test
    void exportFailsWhenTheLayerOfAModuleIsGone() throws Exception {
        String group = "exp-gone";
        SplittableRandom rnd = new SplittableRandom(3);
        PlantedLayer kept = PlantedLayer.of(group, "m.keep", 2, 3, 3, 1, TensorDType.F32, rnd);
        PlantedLayer gone = PlantedLayer.of(group, "m.gone", 2, 3, 3, 1, TensorDType.F32, rnd);
        PlantedLayer later = PlantedLayer.of(group, "m.gone", 2, 3, 3, 2, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(kept, gone), List.of(new AdapterRef("x", 1L, 1.0, null, "d")));
        MergedVersionManifest v2 = PlantedLayer.manifest(group, 2, List.of(kept, later), List.of(new AdapterRef("x", 2L, 1.0, null, "d")));
        // As after compaction: only the latest layer of m.gone is left, both manifests are.
        kafka.plant(v1, List.of(kept));
        kafka.plant(v2, List.of(later));
        StringWriter err = new StringWriter();
        int code = cli(new StringWriter(), err).execute("export", "--group", group, "--version", "1", "--out",
                dir.resolve("export-gone").toString(), "--bootstrap-servers", kafka.broker.bootstrapServers());
        assertEquals(1, code);
        String message = err.toString();
        assertTrue(message.contains("module m.gone") && message.contains(gone.digest), message);
        assertTrue(message.contains("latest available version is 2"), message);
        assertFalse(message.contains("module m.keep"), message);
        // The latest version exports.
        assertEquals(0, cli(new StringWriter(), err).execute("export", "--group", group, "--out",
                dir.resolve("export-gone-latest").toString(), "--bootstrap-servers", kafka.broker.bootstrapServers()), err.toString());
        assertAdapterHolds(dir.resolve("export-gone-latest"), List.of(kept, later));
    }

    @Test
    void exportRefusesALayerWhoseBytesDoNotMatchItsDigest() throws Exception {
        String group = "exp-planted";
        SplittableRandom rnd = new SplittableRandom(4);
        PlantedLayer honest = PlantedLayer.of(group, "m.one", 2, 3, 4, 1, TensorDType.F32, rnd);
        PlantedLayer other = PlantedLayer.of(group, "m.one", 2, 3, 4, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(honest), List.of(new AdapterRef("x", 1L, 1.0, null, "d")));
        // A layer that claims the manifest's digest but carries other bytes.
        MergedLayer lying = other.record();
        lying.setDigest(honest.digest);
        kafka.produce(kafka.topics.mergedLayers(), List.of(Map.entry(group + "|m.one",
                kafka.serdes.mergedLayer().serializer().serialize(kafka.topics.mergedLayers(), lying))));
        kafka.plant(v1, List.of());
        MergedVersionReader reader = new MergedVersionReader(kafka.connection());
        Map<String, MergedLayer> layers = reader.layers(v1);
        Path out = dir.resolve("export-planted");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> PeftExport.write(out, v1, layers));
        assertTrue(e.getMessage().contains("module m.one") && e.getMessage().contains("has bytes with digest " + other.digest),
                e.getMessage());
        assertFalse(Files.exists(out.resolve(PeftAdapter.WEIGHTS_FILE)), "nothing written");
    }

    @Test
    void verificationCatchesATamperedFile() throws Exception {
        SplittableRandom rnd = new SplittableRandom(5);
        PlantedLayer a = PlantedLayer.of("tamper", "m.x", 2, 3, 4, 1, TensorDType.F32, rnd);
        PlantedLayer b = PlantedLayer.of("tamper", "m.y", 2, 4, 3, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest("tamper", 1, List.of(a, b), List.of(new AdapterRef("x", 1L, 1.0, null, "d")));
        Path out = dir.resolve("tampered");
        PeftExport.write(out, v1, Map.of(a.module, a.record(), b.module, b.record()));
        PeftExport.verify(out, v1, null);
        // Rewrite the weights with one element of m.y's B changed by one ulp.
        float[] bChanged = b.b.clone();
        bChanged[5] = Math.nextUp(bChanged[5]);
        List<TensorData> tensors = new ArrayList<>();
        tensors.add(TensorData.ofFloats("base_model.model.m.x.lora_A.weight", DType.F32, new long[]{2, 3}, a.a));
        tensors.add(TensorData.ofFloats("base_model.model.m.x.lora_B.weight", DType.F32, new long[]{4, 2}, a.b));
        tensors.add(TensorData.ofFloats("base_model.model.m.y.lora_A.weight", DType.F32, new long[]{2, 4}, b.a));
        tensors.add(TensorData.ofFloats("base_model.model.m.y.lora_B.weight", DType.F32, new long[]{3, 2}, bChanged));
        SafetensorsWriter.write(out.resolve(PeftAdapter.WEIGHTS_FILE), null, tensors);
        PeftExport.VerificationException e = assertThrows(PeftExport.VerificationException.class,
                () -> PeftExport.verify(out, v1, null));
        assertTrue(e.getMessage().contains("module m.y reads back with digest"), e.getMessage());
        assertTrue(e.getMessage().contains(b.digest), e.getMessage());
    }

    // ------------------------------------------------------------------------------------ versions

    @Test
    void versionsListsEveryGroupsLatestAndOneGroupsHistory() throws Exception {
        SplittableRandom rnd = new SplittableRandom(11);
        PlantedLayer q1 = PlantedLayer.of("hist-a", "model.layers.0.q_proj", 2, 4, 3, 1, TensorDType.F32, rnd);
        PlantedLayer q2 = PlantedLayer.of("hist-a", "model.layers.0.q_proj", 3, 4, 3, 2, TensorDType.F32, rnd);
        PlantedLayer v2 = PlantedLayer.of("hist-a", "model.layers.0.v_proj", 2, 4, 3, 2, TensorDType.F32, rnd);
        AdapterRef alpha = new AdapterRef("alpha", 1L, 1.0, null, "da"), beta = new AdapterRef("beta", 4L, 1.0, null, "db");
        List<MergedVersionManifest> a = List.of(
                PlantedLayer.manifest("hist-a", 1, List.of(q1), List.of(alpha)),
                PlantedLayer.manifest("hist-a", 2, List.of(q2, v2), List.of(alpha, beta)),
                MergedVersionManifest.newBuilder(PlantedLayer.manifest("hist-a", 3, List.of(v2), List.of(beta)))
                        .setTrigger(new VersionTrigger("event-w", AdapterEventType.WITHDRAW, "alpha", 1L)).build());
        kafka.plant(a.get(0), List.of(q1));
        kafka.plant(a.get(1), List.of(q2, v2));
        kafka.plant(a.get(2), List.of());
        PlantedLayer b1 = PlantedLayer.of("hist-b", "model.layers.0.q_proj", 2, 4, 3, 1, TensorDType.F32, rnd);
        MergedVersionManifest b = PlantedLayer.manifest("hist-b", 1, List.of(b1), List.of(alpha));
        kafka.plant(b, List.of(b1));
        String bootstrap = kafka.broker.bootstrapServers();

        StringWriter out = new StringWriter(), err = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--group", "hist-a", "--bootstrap-servers", bootstrap), err.toString());
        List<String> lines = out.toString().lines().toList();
        assertEquals(4, lines.size(), out.toString());
        assertTrue(lines.get(0).startsWith("version "), lines.get(0));
        String[] triggers = {"publish a v1", "publish a v2", "withdraw alpha v1"};
        int[] adapters = {1, 2, 1}, modules = {1, 2, 1};
        for (int i = 0; i < 3; i++) {
            List<String> cells = List.of(lines.get(i + 1).trim().split(" {2,}"));
            String time = Instant.ofEpochSecond((1_700_000_000_000L + i + 1) / 1000).toString();
            assertEquals(List.of(Integer.toString(i + 1), time, triggers[i], Integer.toString(adapters[i]),
                    Integer.toString(modules[i]), a.get(i).getDigest().substring(0, 12)), cells, lines.get(i + 1));
        }

        out = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--bootstrap-servers", bootstrap), err.toString());
        Map<String, List<String>> byGroup = new TreeMap<>();
        for (String line : out.toString().lines().skip(1).toList()) {
            List<String> cells = List.of(line.trim().split(" {2,}"));
            byGroup.put(cells.get(0), cells);
        }
        assertEquals(List.of("withdraw alpha v1", "1", "1", a.get(2).getDigest().substring(0, 12), "3"),
                byGroup.get("hist-a v3").subList(2, 7), out.toString());
        assertEquals(List.of("publish a v1", "1", "1", b.getDigest().substring(0, 12), "1"),
                byGroup.get("hist-b v1").subList(2, 7), out.toString());

        out = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--group", "hist-a", "--json", "--bootstrap-servers", bootstrap), err.toString());
        List<MergedVersionManifest> parsed = out.toString().lines().map(ManifestJson::parse).toList();
        assertEquals(a, parsed, "one manifest per line, oldest first");

        // A deleted version (tombstone on its history key) is gone from the history and the count.
        PlantedLayer c1 = PlantedLayer.of("hist-c", "model.layers.0.q_proj", 2, 4, 3, 1, TensorDType.F32, rnd);
        PlantedLayer c2 = PlantedLayer.of("hist-c", "model.layers.0.q_proj", 2, 4, 3, 2, TensorDType.F32, rnd);
        kafka.plant(PlantedLayer.manifest("hist-c", 1, List.of(c1), List.of(alpha)), List.of(c1));
        MergedVersionManifest cLatest = PlantedLayer.manifest("hist-c", 2, List.of(c2), List.of(alpha));
        kafka.plant(cLatest, List.of(c2));
        kafka.produce(kafka.topics.mergedVersions(), List.of(new java.util.AbstractMap.SimpleEntry<>("hist-c@1", null)));
        out = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--group", "hist-c", "--json", "--bootstrap-servers", bootstrap), err.toString());
        assertEquals(List.of(cLatest), out.toString().lines().map(ManifestJson::parse).toList());
        out = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--bootstrap-servers", bootstrap), err.toString());
        assertTrue(out.toString().lines().anyMatch(l -> l.startsWith("hist-c v2 ") && l.endsWith("  1")), out.toString());

        out = new StringWriter();
        err = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--group", "nobody", "--json", "--bootstrap-servers", bootstrap));
        assertEquals("", out.toString(), "stdout stays JSON lines");
        assertEquals("no merged versions of group nobody on " + kafka.topics.mergedVersions(), err.toString().trim());
    }

    // ------------------------------------------------------------------------------------ watch

    @Test
    void watchOnceSwapsAtomicallyResumesAfterRestartAndCleansOldVersions() throws Exception {
        String group = "w";
        Path root = dir.resolve("serving");
        Path envFile = dir.resolve("watch-env.txt");
        String exec = "printf '%s %s %s %s %s\\n' \"$LORA_GROUP\" \"$LORA_SEQUENCE\" \"$LORA_DIR\" \"$LORA_DIGEST\" \"$LORA_MODULES\" >> '" + envFile + "'";
        SplittableRandom rnd = new SplittableRandom(6);
        PlantedLayer q1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        PlantedLayer v1l = PlantedLayer.of(group, "l.v", 2, 4, 4, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(q1, v1l), List.of(new AdapterRef("a", 1L, 1.0, null, "d")));
        kafka.plant(v1, List.of(q1, v1l));

        Path link = root.resolve(group);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, watchOnce(group, root, exec, out, err), err.toString());
        assertEquals(Path.of(".versions", "w-1"), Files.readSymbolicLink(link));
        assertAdapterHolds(link, List.of(q1, v1l));
        assertManifestJson(link.resolve(ManifestJson.FILE_NAME), v1);
        assertTrue(out.toString().contains("version 1 in place"), out.toString());

        // Restart after version 2 appeared.
        PlantedLayer q2 = PlantedLayer.of(group, "l.q", 3, 4, 4, 2, TensorDType.F32, rnd);
        MergedVersionManifest v2 = PlantedLayer.manifest(group, 2, List.of(q2, v1l), List.of(new AdapterRef("a", 2L, 1.0, null, "d")));
        kafka.plant(v2, List.of(q2));
        assertEquals(0, watchOnce(group, root, exec, out, err), err.toString());
        assertEquals(Path.of(".versions", "w-2"), Files.readSymbolicLink(link));
        assertAdapterHolds(link, List.of(q2, v1l));
        assertEquals(new TreeSet<>(List.of("w-1", "w-2")), versionDirs(root), "the previous version is kept");

        // Restart with nothing new: returns at once, nothing rewritten, the command does not run.
        assertEquals(0, watchOnce(group, root, exec, out, err), err.toString());
        assertEquals(Path.of(".versions", "w-2"), Files.readSymbolicLink(link));
        assertEquals(2, Files.readAllLines(envFile).size());

        PlantedLayer v3l = PlantedLayer.of(group, "l.v", 2, 4, 4, 3, TensorDType.F32, rnd);
        MergedVersionManifest v3 = PlantedLayer.manifest(group, 3, List.of(q2, v3l), List.of(new AdapterRef("a", 2L, 1.0, null, "d"),
                new AdapterRef("b", 1L, 2.0, null, "e")));
        kafka.plant(v3, List.of(v3l));
        assertEquals(0, watchOnce(group, root, exec, out, err), err.toString());
        assertEquals(Path.of(".versions", "w-3"), Files.readSymbolicLink(link));
        assertAdapterHolds(link, List.of(q2, v3l));
        assertEquals(new TreeSet<>(List.of("w-2", "w-3")), versionDirs(root), "versions older than the previous one are deleted");

        // Every adapter withdrawn: a version without modules. The link moves to a directory that holds only
        // manifest.json (no adapter files: there is no adapter), and the command learns it from LORA_MODULES=0.
        MergedVersionManifest v4 = PlantedLayer.manifest(group, 4, List.of(), List.of());
        kafka.plant(v4, List.of());
        assertEquals(0, watchOnce(group, root, exec, out, err), err.toString());
        assertEquals(Path.of(".versions", "w-4"), Files.readSymbolicLink(link));
        try (var files = Files.list(link)) {
            assertEquals(List.of(ManifestJson.FILE_NAME), files.map(f -> f.getFileName().toString()).toList());
        }
        assertManifestJson(link.resolve(ManifestJson.FILE_NAME), v4);
        assertTrue(out.toString().contains("version 4 has no module"), out.toString());

        List<String> env = Files.readAllLines(envFile);
        List<MergedVersionManifest> versions = List.of(v1, v2, v3, v4);
        assertEquals(4, env.size());
        for (int i = 0; i < 4; i++) {
            // LORA_DIR is the resolved version directory (w-1 has been deleted since, so resolve its parent).
            Path versionDir = root.resolve(".versions").toRealPath().resolve("w-" + (i + 1));
            assertEquals("w " + (i + 1) + " " + versionDir + " " + versions.get(i).getDigest() + " "
                    + versions.get(i).getModules().size(), env.get(i));
        }
    }

    @Test
    void watcherWaitsForLayersSurvivesAFailingCommandAndStopsCleanly() throws Exception {
        String group = "wb";
        Path root = dir.resolve("serving-bg");
        SplittableRandom rnd = new SplittableRandom(7);
        PlantedLayer m1 = PlantedLayer.of(group, "k.proj", 2, 5, 3, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = PlantedLayer.manifest(group, 1, List.of(m1), List.of(new AdapterRef("a", 1L, 1.0, null, "d")));
        BlockingQueue<VersionWatcher.Swap> swaps = new LinkedBlockingQueue<>();
        VersionWatcher watcher = new VersionWatcher(kafka.connection(),
                new VersionWatcher.Settings(group, root, "exit 3", Duration.ofSeconds(30)), swaps::add);
        AtomicLong returned = new AtomicLong(Long.MIN_VALUE);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                returned.set(watcher.run(false, null));
            } catch (Throwable e) {
                failure.set(e);
            }
        }, "watcher-under-test");
        t.start();
        try {
            // The manifest arrives before its layer: nothing may be swapped in yet.
            kafka.plant(v1, List.of());
            assertNull(swaps.poll(3, TimeUnit.SECONDS), "no swap without the layer");
            assertFalse(Files.exists(root.resolve(group), java.nio.file.LinkOption.NOFOLLOW_LINKS));
            kafka.plant(null, List.of(m1));
            VersionWatcher.Swap s1 = swaps.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertNotNull(s1, "version 1 swapped in once its layer arrived");
            assertEquals(1, s1.sequence());
            assertEquals(3, s1.execExit(), "the failing command ran and was reported");
            assertAdapterHolds(root.resolve(group), List.of(m1));

            // Version 2's layer carries bytes that do not give its digest: it must never be linked.
            PlantedLayer honest = PlantedLayer.of(group, "k.proj", 2, 5, 3, 2, TensorDType.F32, rnd);
            PlantedLayer other = PlantedLayer.of(group, "k.proj", 2, 5, 3, 2, TensorDType.F32, rnd);
            MergedLayer lying = other.record();
            lying.setDigest(honest.digest);
            kafka.produce(kafka.topics.mergedLayers(), List.of(Map.entry(group + "|k.proj",
                    kafka.serdes.mergedLayer().serializer().serialize(kafka.topics.mergedLayers(), lying))));
            kafka.plant(PlantedLayer.manifest(group, 2, List.of(honest), List.of(new AdapterRef("a", 2L, 1.0, null, "d"))), List.of());
            assertNull(swaps.poll(3, TimeUnit.SECONDS), "the bad version is skipped");
            assertEquals(Path.of(".versions", "wb-1"), Files.readSymbolicLink(root.resolve(group)));

            // Every adapter withdrawn: a version without modules, written as manifest.json alone.
            MergedVersionManifest v3 = PlantedLayer.manifest(group, 3, List.of(), List.of());
            kafka.plant(v3, List.of());
            VersionWatcher.Swap s3 = swaps.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertNotNull(s3, "watching went on after the failing command and the bad version");
            assertEquals(3, s3.sequence());
            assertEquals(0, s3.modules());
            try (Stream<Path> files = Files.list(root.resolve(group))) {
                assertEquals(List.of(ManifestJson.FILE_NAME), files.map(p -> p.getFileName().toString()).toList());
            }
            assertManifestJson(root.resolve(group).resolve(ManifestJson.FILE_NAME), v3);
        } finally {
            watcher.stop();
            t.join(TimeUnit.SECONDS.toMillis(30));
        }
        assertFalse(t.isAlive(), "stop() ends run()");
        assertNull(failure.get());
        assertEquals(3, returned.get());

        // Two versions arrive while nobody watches: a restart converges to the latest.
        PlantedLayer m4 = PlantedLayer.of(group, "k.proj", 2, 5, 3, 4, TensorDType.F32, rnd);
        PlantedLayer m5 = PlantedLayer.of(group, "k.proj", 4, 5, 3, 5, TensorDType.F32, rnd);
        kafka.plant(PlantedLayer.manifest(group, 4, List.of(m4), List.of(new AdapterRef("a", 3L, 1.0, null, "d"))), List.of(m4));
        kafka.plant(PlantedLayer.manifest(group, 5, List.of(m5), List.of(new AdapterRef("a", 4L, 1.0, null, "d"))), List.of(m5));
        VersionWatcher again = new VersionWatcher(kafka.connection(),
                new VersionWatcher.Settings(group, root, null, Duration.ofSeconds(30)), null);
        assertEquals(3, again.installedSequence());
        assertEquals(5, again.run(true, WAIT));
        assertAdapterHolds(root.resolve(group), List.of(m5));
        assertEquals(Path.of(".versions", "wb-5"), Files.readSymbolicLink(root.resolve(group)));
    }

    @Test
    void watchRefusesARealDirectoryWhereItsLinkGoes() throws Exception {
        Path root = dir.resolve("serving-dir");
        Files.createDirectories(root.resolve("wd"));
        StringWriter err = new StringWriter();
        assertEquals(1, watchOnce("wd", root, null, new StringWriter(), err));
        assertTrue(err.toString().contains("is not a symbolic link"), err.toString());
    }

    @Test
    void watchCommandStopsCleanlyOnSigterm() throws Exception {
        Path root = dir.resolve("serving-sigterm");
        Path stderr = dir.resolve("sigterm-err.txt");
        Path stdout = dir.resolve("sigterm-out.txt");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                "-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"), LoraLegoCommand.class.getName(),
                "watch", "--group", "sig", "--out", root.toString(), "--bootstrap-servers", kafka.broker.bootstrapServers())
                .redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
        try {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!Files.readString(stderr).contains("group sig: watching")) {
                assertTrue(p.isAlive(), "watch ended early: " + Files.readString(stderr));
                assertTrue(System.nanoTime() < deadline, "watch did not start polling");
                Thread.sleep(100);
            }
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "watch did not stop on SIGTERM");
        } finally {
            p.destroyForcibly();
        }
        assertTrue(Files.readString(stdout).contains("group sig: no version installed"),
                "run() returned and the command finished its output: " + Files.readString(stdout) + Files.readString(stderr));
        assertFalse(Files.readString(stderr).contains("error:"), Files.readString(stderr));
    }

    /**
     * A watch killed between a swap and its command (the server was never told) leaves the link on the new version
     * and the command owed ({@code ROOT/.<group>.exec-pending} holds its sequence, written before the swap). The next
     * start runs the command for the installed version, once; a mark naming a version that was never linked (a kill
     * before the swap) is dropped, since that version is applied again, command included.
     */
    @Test
    void aWatchStoppedBetweenASwapAndItsCommandRunsTheCommandAtItsNextStart() throws Exception {
        String group = "owed";
        Path root = dir.resolve("serving-owed");
        Path envFile = dir.resolve("owed-env.txt");
        String exec = "printf '%s %s\\n' \"$LORA_SEQUENCE\" \"$LORA_DIR\" >> '" + envFile + "'";
        SplittableRandom rnd = new SplittableRandom(8);
        PlantedLayer q1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        kafka.plant(PlantedLayer.manifest(group, 1, List.of(q1), List.of(new AdapterRef("a", 1L, 1.0, null, "d"))), List.of(q1));
        StringWriter err = new StringWriter();
        assertEquals(0, watchOnce(group, root, exec, new StringWriter(), err), err.toString());
        Path pending = root.resolve("." + group + ".exec-pending");
        assertFalse(Files.exists(pending), "the command ran: nothing is owed");
        String ran = root.resolve(".versions").resolve(group + "-1").toRealPath().toString();
        assertEquals(List.of("1 " + ran), Files.readAllLines(envFile));

        // the state a kill after the swap and before the command leaves
        Files.writeString(pending, "1");
        assertEquals(0, watchOnce(group, root, exec, new StringWriter(), err), err.toString());
        assertEquals(List.of("1 " + ran, "1 " + ran), Files.readAllLines(envFile), "the owed command ran at the next start");
        assertFalse(Files.exists(pending));
        assertEquals(0, watchOnce(group, root, exec, new StringWriter(), err), err.toString());
        assertEquals(2, Files.readAllLines(envFile).size(), "once");

        // a kill before the swap: the mark names a version that was never linked
        Files.writeString(pending, "2");
        assertEquals(0, watchOnce(group, root, exec, new StringWriter(), err), err.toString());
        assertEquals(2, Files.readAllLines(envFile).size(), "version 1's command is not owed");
        assertFalse(Files.exists(pending));
    }

    // ------------------------------------------------------------------------------------ helpers

    private static int watchOnce(String group, Path root, String exec, StringWriter out, StringWriter err) {
        List<String> args = new ArrayList<>(List.of("watch", "--group", group, "--out", root.toString(), "--once",
                "--max-wait", Long.toString(WAIT.toSeconds()), "--bootstrap-servers", kafka.broker.bootstrapServers()));
        if (exec != null) {
            args.add("--exec");
            args.add(exec);
        }
        return cli(out, err).execute(args.toArray(String[]::new));
    }

    private static CommandLine cli(StringWriter out, StringWriter err) {
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl;
    }

    private static TreeSet<String> versionDirs(Path root) throws IOException {
        try (Stream<Path> s = Files.list(root.resolve(VersionWatcher.VERSIONS_DIR))) {
            return s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toCollection(TreeSet::new));
        }
    }

    /** Writes the layers (key group|module), then the manifest under group@sequence and group, as the service does. */
    /** The written directory is a PEFT adapter with exactly these modules, shapes and values. */
    private static void assertAdapterHolds(Path adapterDir, List<PlantedLayer> modules) throws IOException {
        try (PeftAdapter adapter = PeftAdapter.open(adapterDir)) {
            assertEquals(new TreeSet<>(modules.stream().map(p -> p.module).toList()), adapter.modules().keySet());
            for (PlantedLayer p : modules) {
                assertEquals(p.rank, adapter.module(p.module).rank(), p.module);
                assertEquals(p.dIn, adapter.module(p.module).dIn(), p.module);
                assertEquals(p.dOut, adapter.module(p.module).dOut(), p.module);
                assertArrayEquals(toDoubles(p.a), adapter.readA(p.module), 0.0, p.module);
                assertArrayEquals(toDoubles(p.b), adapter.readB(p.module), 0.0, p.module);
            }
        }
    }

    /** manifest.json has the documented key order and the manifest's values. */
    private static void assertManifestJson(Path file, MergedVersionManifest m) throws IOException {
        JsonNode root = JSON.readTree(file.toFile());
        List<String> keys = new ArrayList<>();
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) keys.add(it.next());
        assertEquals(List.of("manifestFormat", "group", "sequence", "baseModel", "trigger", "adapters", "modules", "digest",
                "fanInFanOut", "taskType", "parameters", "eventTimestamp", "serviceVersion", "warnings", "meanInertia"), keys);
        assertEquals(1, root.get("manifestFormat").asInt());
        assertEquals(m.getGroup(), root.get("group").asText());
        assertEquals(m.getSequence(), root.get("sequence").asLong());
        assertEquals("tiny-base", root.get("baseModel").asText());
        assertEquals(m.getDigest(), root.get("digest").asText());
        assertEquals(m.getTrigger().getEventId(), root.get("trigger").get("eventId").asText());
        assertEquals("PUBLISH", root.get("trigger").get("type").asText());
        assertEquals(m.getAdapters().size(), root.get("adapters").size());
        for (int i = 0; i < m.getAdapters().size(); i++) {
            JsonNode a = root.get("adapters").get(i);
            assertEquals(m.getAdapters().get(i).getAdapterId(), a.get("adapterId").asText());
            assertEquals(m.getAdapters().get(i).getAdapterVersion(), a.get("adapterVersion").asLong());
            assertEquals(m.getAdapters().get(i).getWeight(), a.get("weight").asDouble(), 0.0);
            assertEquals(m.getAdapters().get(i).getDigest(), a.get("digest").asText());
        }
        assertEquals(m.getModules().size(), root.get("modules").size());
        for (int i = 0; i < m.getModules().size(); i++) {
            JsonNode r = root.get("modules").get(i);
            ModuleRef ref = m.getModules().get(i);
            assertEquals(List.of("module", "rank", "dIn", "dOut", "digest"), fieldNames(r));
            assertEquals(ref.getModule(), r.get("module").asText());
            assertEquals(ref.getRank(), r.get("rank").asInt());
            assertEquals(ref.getDigest(), r.get("digest").asText());
        }
        assertEquals(List.of("canonical", "k", "seed"), fieldNames(root.get("parameters")), "parameters sorted");
        assertEquals(m.getEventTimestamp(), root.get("eventTimestamp").asLong());
        assertEquals("lora-lego test", root.get("serviceVersion").asText());
        assertEquals(m, ManifestJson.read(file), "reads back as the same manifest");
    }

    private static List<String> fieldNames(JsonNode n) {
        List<String> out = new ArrayList<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) out.add(it.next());
        return out;
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
