package dev.loralego.client;

import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.TensorDType;
import dev.loralego.cli.LoraLegoCommand;
import dev.loralego.registry.EmbeddedSchemaResolver;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What clients meet in operation: a service upgraded under a running {@code watch} (records with a newer schema), a
 * watch that starts behind, two watches on one directory, {@code --exec-timeout 0}, an unreachable broker. One in-JVM
 * broker, one merge group per test.
 */
class ClientOperationsTest {
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

    // ------------------------------------------------------------------------------------ watch: catching up

    /**
     * A watch that starts (or restarts after downtime) while the topic already holds many versions must go straight
     * to the latest: installing every stale intermediate version makes the server reload each one (the --exec hook
     * runs per swap) and writes every version to disk.
     */
    @Test
    void watchStartingBehindInstallsOnlyTheLatestVersion() throws Exception {
        String group = "catchup";
        SplittableRandom rnd = new SplittableRandom(11);
        int versions = 80;
        for (int s = 1; s <= versions; s++) {
            // Two modules, both re-merged by every version: 2 layer records + 2 manifest records per version.
            PlantedLayer q = PlantedLayer.of(group, "l.q", 2, 8, 8, s, TensorDType.F32, rnd);
            PlantedLayer v = PlantedLayer.of(group, "l.v", 2, 8, 8, s, TensorDType.F32, rnd);
            kafka.plant(manifest(group, s, List.of(q, v)), List.of(q, v));
        }
        Path root = dir.resolve("serving-catchup");
        Path envFile = dir.resolve("catchup-env.txt");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, cli(out, err).execute("watch", "--group", group, "--out", root.toString(), "--once",
                "--max-wait", "60", "--bootstrap-servers", kafka.broker.bootstrapServers(),
                "--exec", "echo \"$LORA_SEQUENCE\" >> '" + envFile + "'"), err.toString());
        assertEquals(Path.of(".versions", group + "-" + versions), Files.readSymbolicLink(root.resolve(group)));
        assertEquals(List.of(Integer.toString(versions)), Files.readAllLines(envFile),
                "the hook ran for the latest version only; output: " + out);
    }

    // ------------------------------------------------------------------------------------ schemas of a newer service

    /** The manifest schema with one more optional field, as a newer service build would write it. */
    static Schema evolvedManifestSchema(String extraField) {
        Schema base = MergedVersionManifest.getClassSchema();
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : base.getFields()) fields.add(new Schema.Field(f, f.schema()));
        fields.add(new Schema.Field(extraField, Schema.create(Schema.Type.STRING), "added by a newer build", "x"));
        return Schema.createRecord(base.getName(), base.getDoc(), base.getNamespace(), false, fields);
    }

    /** {@code m} in the Confluent wire format under {@code schema} (id: the schema's fingerprint id). */
    static byte[] encodeWith(Schema schema, MergedVersionManifest m, String extraField) throws IOException {
        GenericData.Record r = new GenericData.Record(schema);
        for (Schema.Field f : MergedVersionManifest.getClassSchema().getFields()) r.put(f.name(), m.get(f.name()));
        r.put(extraField, "something new");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int id = EmbeddedSchemaResolver.idOf(schema);
        bytes.write(new byte[]{0, (byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
        new GenericDatumWriter<GenericRecord>(schema, SpecificData.get()).write(r, enc);
        enc.flush();
        return bytes.toByteArray();
    }

    static void publishSchema(Schema schema) throws Exception {
        kafka.produce(kafka.topics.schemas(), List.of(Map.entry(Integer.toString(EmbeddedSchemaResolver.idOf(schema)),
                schema.toString().getBytes(StandardCharsets.UTF_8))));
    }

    /**
     * The service is upgraded while watch keeps running: its manifests now use a schema this client does not ship,
     * and the service publishes that schema on the schemas topic ("so the log alone decodes"). A long-running watch
     * must pick it up, not skip every new version forever.
     */
    @Test
    void runningWatchFollowsVersionsWrittenWithANewerSchema() throws Exception {
        String group = "upgrade-watch";
        SplittableRandom rnd = new SplittableRandom(12);
        PlantedLayer l1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        kafka.plant(manifest(group, 1, List.of(l1)), List.of(l1));
        try (BackgroundWatch watch = BackgroundWatch.start(group, dir.resolve("serving-upgrade"))) {
            VersionWatcher.Swap s1 = watch.swaps.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertNotNull(s1, "version 1 installed");
            // The upgraded service: publishes its schemas, then writes version 2 with the new one.
            Schema evolved = evolvedManifestSchema("newFieldWatch");
            publishSchema(evolved);
            PlantedLayer l2 = PlantedLayer.of(group, "l.q", 2, 4, 4, 2, TensorDType.F32, rnd);
            MergedVersionManifest v2 = manifest(group, 2, List.of(l2));
            kafka.plantLayers(List.of(l2));
            kafka.plantManifest(v2, encodeWith(evolved, v2, "newFieldWatch"));
            VersionWatcher.Swap s2 = watch.swaps.poll(30, TimeUnit.SECONDS);
            assertNotNull(s2, "version 2 (newer schema, published on the schemas topic) was never installed");
            assertEquals(2, s2.sequence());
            assertEquals(v2.getDigest(), s2.digest());
        }
    }

    /** versions (and publish's default version, which reads the latest manifest) decode a newer service's manifests. */
    @Test
    void versionsAndLatestReadManifestsWrittenWithANewerSchema() throws Exception {
        String group = "upgrade-versions";
        SplittableRandom rnd = new SplittableRandom(13);
        Schema evolved = evolvedManifestSchema("newFieldVersions");
        publishSchema(evolved);
        PlantedLayer l1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        MergedVersionManifest v1 = manifest(group, 1, List.of(l1));
        kafka.plantLayers(List.of(l1));
        kafka.plantManifest(v1, encodeWith(evolved, v1, "newFieldVersions"));

        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, cli(out, err).execute("versions", "--group", group, "--bootstrap-servers",
                kafka.broker.bootstrapServers()), err.toString());
        assertTrue(out.toString().lines().anyMatch(l -> l.startsWith("1 ") && l.contains(v1.getDigest().substring(0, 12))),
                out.toString());

        MergedVersionReader reader = new MergedVersionReader(kafka.connection());
        assertEquals(v1.getDigest(), reader.latest(group).orElseThrow().getDigest());
        assertEquals(2, AdapterPublisher.nextVersion(new MergedVersionReader(kafka.connection()).latest(group), "a"));
    }

    // ------------------------------------------------------------------------------------ --exec-timeout

    /** --exec-timeout 0 (as --max-wait 0 means no limit) must not kill every hook the moment it starts. */
    @Test
    void execTimeoutZeroDoesNotKillTheHookAtOnce() throws Exception {
        String group = "exec-zero";
        SplittableRandom rnd = new SplittableRandom(15);
        PlantedLayer l1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        kafka.plant(manifest(group, 1, List.of(l1)), List.of(l1));
        Path root = dir.resolve("serving-exec-zero");
        Path marker = dir.resolve("exec-zero-ran.txt");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = cli(out, err).execute("watch", "--group", group, "--out", root.toString(), "--once", "--max-wait", "60",
                "--exec", "sleep 1; echo done > '" + marker + "'", "--exec-timeout", "0",
                "--bootstrap-servers", kafka.broker.bootstrapServers());
        if (code == 0) {
            // Accepted: then it must have let the hook finish.
            assertTrue(Files.exists(marker), "the hook was killed at once: " + out);
        } else {
            assertEquals(CommandLine.ExitCode.USAGE, code, err.toString());
            assertTrue(err.toString().contains("--exec-timeout"), err.toString());
        }
    }

    // ------------------------------------------------------------------------------------ unreachable broker

    /** A broker that does not answer is one --timeout, then a one-line error (as dead-letters promises), not two. */
    @Test
    void exportAndWatchGiveUpOnAnUnreachableBrokerAfterOneTimeout() throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort(); // closed again: nothing listens there
        }
        String bootstrap = "127.0.0.1:" + port;
        int timeout = 8; // one timeout ≈ 8 s, two ≈ 16 s: the bound below leaves 4 s either side for a loaded machine
        for (List<String> args : List.of(
                List.of("export", "--group", "g", "--out", dir.resolve("export-unreachable").toString()),
                List.of("watch", "--group", "g", "--out", dir.resolve("serving-unreachable").toString(), "--once"))) {
            List<String> all = new ArrayList<>(args);
            all.addAll(List.of("--bootstrap-servers", bootstrap, "--timeout", Integer.toString(timeout)));
            StringWriter err = new StringWriter();
            long start = System.nanoTime();
            assertEquals(1, cli(new StringWriter(), err).execute(all.toArray(String[]::new)), err.toString());
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(err.toString().contains("error:"), err.toString());
            assertTrue(seconds < 1.5 * timeout, args.get(0) + " took " + seconds + " s with --timeout " + timeout + ": " + err);
        }
    }

    // ------------------------------------------------------------------------------------ two watchers, one DIR

    /**
     * A second watch on the same DIR and group (an overlapping restart, a second replica on a shared volume) would
     * delete the first one's version being written as a "stale temporary" and, applying the same version, delete the
     * directory the link serves before replacing it. It must be refused while the first one runs.
     */
    @Test
    void secondWatchOnTheSameDirectoryAndGroupIsRefused() throws Exception {
        String group = "twin";
        SplittableRandom rnd = new SplittableRandom(16);
        PlantedLayer l1 = PlantedLayer.of(group, "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
        kafka.plant(manifest(group, 1, List.of(l1)), List.of(l1));
        Path root = dir.resolve("serving-twin");
        try (BackgroundWatch first = BackgroundWatch.start(group, root)) {
            assertNotNull(first.swaps.poll(WAIT.toSeconds(), TimeUnit.SECONDS), "version 1 installed by the first watch");
            StringWriter err = new StringWriter();
            assertEquals(1, cli(new StringWriter(), err).execute("watch", "--group", group, "--out", root.toString(), "--once",
                    "--max-wait", "30", "--bootstrap-servers", kafka.broker.bootstrapServers()), err.toString());
            assertTrue(err.toString().contains("another watch"), err.toString());
            // Another group on the same DIR is independent.
            PlantedLayer o1 = PlantedLayer.of("twin-other", "l.q", 2, 4, 4, 1, TensorDType.F32, rnd);
            kafka.plant(manifest("twin-other", 1, List.of(o1)), List.of(o1));
            StringWriter err2 = new StringWriter();
            assertEquals(0, cli(new StringWriter(), err2).execute("watch", "--group", "twin-other", "--out", root.toString(),
                    "--once", "--max-wait", "30", "--bootstrap-servers", kafka.broker.bootstrapServers()), err2.toString());
        }
        // Once the first has stopped, a new watch may start.
        StringWriter err3 = new StringWriter();
        assertEquals(0, cli(new StringWriter(), err3).execute("watch", "--group", group, "--out", root.toString(), "--once",
                "--max-wait", "30", "--bootstrap-servers", kafka.broker.bootstrapServers()), err3.toString());
    }

    // ------------------------------------------------------------------------------------ helpers

    /** A watcher running in a thread of its own; closing it stops it and asserts that it ended without failing. */
    private record BackgroundWatch(VersionWatcher watcher, Thread thread, BlockingQueue<VersionWatcher.Swap> swaps,
                                   AtomicReference<Throwable> failure) implements AutoCloseable {
        static BackgroundWatch start(String group, Path root) {
            BlockingQueue<VersionWatcher.Swap> swaps = new LinkedBlockingQueue<>();
            VersionWatcher watcher = new VersionWatcher(kafka.connection(),
                    new VersionWatcher.Settings(group, root, null, Duration.ofSeconds(30)), swaps::add);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    watcher.run(false, null);
                } catch (Throwable e) {
                    failure.set(e);
                }
            }, "watcher-" + group);
            t.start();
            return new BackgroundWatch(watcher, t, swaps, failure);
        }

        @Override
        public void close() throws InterruptedException {
            watcher.stop();
            thread.join(TimeUnit.SECONDS.toMillis(30));
            assertNull(failure.get());
        }
    }

    /** Version {@code sequence} of {@code group} over {@code modules}, triggered by a publish of adapter "a". */
    static MergedVersionManifest manifest(String group, long sequence, List<PlantedLayer> modules) {
        return PlantedLayer.manifest(group, sequence, modules, List.of(new AdapterRef("a", sequence, 1.0, null, "d" + sequence)));
    }

    static CommandLine cli(StringWriter out, StringWriter err) {
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl;
    }
}
