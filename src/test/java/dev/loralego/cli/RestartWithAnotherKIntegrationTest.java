package dev.loralego.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.LegoOptions;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.stream.MergeParameters;
import dev.loralego.stream.MergeService;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An operator restarts the service with another {@code k} (same application id and state directory, a real in-JVM
 * broker). The next version, triggered by an adapter that targets one module only, merges every module with the
 * new k: its export is the bytes the offline {@code merge --k} of the same three adapters writes. Before 0.4.0 the
 * modules that adapter does not target kept the old k until a later version touched them.
 */
class RestartWithAnotherKIntegrationTest {
    private static final String GROUP = "restart-k";

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
    }

    @AfterAll
    static void stop() {
        if (broker != null) broker.close();
    }

    private static MergeService service(int k) throws Exception {
        MergeParameters params = new MergeParameters(LegoOptions.defaults().withK(k), 1, "recluster", 1.0,
                MergeParameters.AUTO_DTYPE, 64);
        MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), "restart-k-it", dir.resolve("state"),
                1, (short) 1, 16 << 20, 1, params, Map.of());
        return MergeService.start(cfg, null, null, Duration.ofSeconds(60));
    }

    private static void publish(Path adapter, String id) {
        CommandRun pub = CommandRun.of("publish", "--group", GROUP, "--adapter-id", id,
                "--bootstrap-servers", broker.bootstrapServers(), adapter.toString());
        assertEquals(0, pub.exit(), pub::toString);
    }

    private static Path export(long version) throws InterruptedException {
        Path out = dir.resolve("exported-" + version);
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        CommandRun export;
        do {
            export = CommandRun.of("export", "--group", GROUP, "--version", Long.toString(version), "--out", out.toString(),
                    "--bootstrap-servers", broker.bootstrapServers(), "--timeout", "10");
            if (export.exit() != 0) Thread.sleep(200);
        } while (export.exit() != 0 && System.nanoTime() < deadline);
        assertEquals(0, export.exit(), export::toString);
        return out;
    }

    private static Path merge(int k, String name, Path... adapters) {
        Path out = dir.resolve(name);
        String[] args = new String[4 + adapters.length];
        args[0] = "merge";
        args[1] = "--k";
        args[2] = Integer.toString(k);
        args[3] = "--out=" + out;
        for (int i = 0; i < adapters.length; i++) args[4 + i] = adapters[i].toString();
        CommandRun merge = CommandRun.of(args);
        assertEquals(0, merge.exit(), merge::toString);
        return out;
    }

    private static void assertSameTensors(Path expected, Path actual) throws Exception {
        assertArrayEquals(Files.readAllBytes(expected.resolve("adapter_model.safetensors")),
                Files.readAllBytes(actual.resolve("adapter_model.safetensors")));
    }

    @Test
    void theFirstVersionAfterTheRestartMergesEveryModuleWithTheNewK() throws Exception {
        Path wide = dir.resolve("wide"), narrow = dir.resolve("narrow");
        CommandRun synth = CommandRun.of("synth", "--shape", "tiny", "--adapters", "2", "--rank", "4", "--dtype", "bf16",
                "--seed", "7", "--out", wide.toString());
        assertEquals(0, synth.exit(), synth::toString);
        synth = CommandRun.of("synth", "--shape", "tiny", "--adapters", "1", "--rank", "4", "--dtype", "bf16",
                "--seed", "9", "--targets", "q_proj", "--out", narrow.toString());
        assertEquals(0, synth.exit(), synth::toString);
        Path a = wide.resolve("adapter-00"), b = wide.resolve("adapter-01"), c = narrow.resolve("adapter-00");

        try (MergeService first = service(4)) {
            publish(a, "a");
            publish(b, "b");
            assertSameTensors(merge(4, "merged-2", a, b), export(2));
        }
        try (MergeService second = service(2)) {
            publish(c, "c");
            Path v3 = export(3);
            Set<String> targeted = new TreeSet<>();
            try (PeftAdapter narrowAdapter = PeftAdapter.open(c); PeftAdapter exported = PeftAdapter.open(v3)) {
                targeted.addAll(narrowAdapter.modules().keySet());
                assertTrue(exported.modules().size() > targeted.size(), "c targets fewer modules than the version holds");
            }
            assertSameTensors(merge(2, "merged-3", a, b, c), v3);
            assertEquals("2", new ObjectMapper().readTree(v3.resolve("manifest.json").toFile()).get("parameters").get("k").asText(),
                    "the manifest records the new k");
        }
    }
}
