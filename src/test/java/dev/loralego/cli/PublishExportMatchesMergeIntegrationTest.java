package dev.loralego.cli;

import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.lego.LegoOptions;
import dev.loralego.peft.DType;
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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The whole user path on a real in-JVM broker: {@code synth} writes BF16 adapters, {@code publish} sends them to a
 * service with the default output dtype, {@code export} writes the merged version, and its tensors are the bytes
 * the offline {@code merge} of the same adapters writes with its defaults: BF16, as the inputs (the service used to
 * write F32 whatever the inputs, so the two disagreed). The service reclusters at every update, the mode in which
 * it equals the batch algorithm bit for bit.
 */
class PublishExportMatchesMergeIntegrationTest {
    private static final int K = 4;

    @TempDir
    static Path dir;
    static EmbeddedKafkaBroker broker;
    static MergeService service;

    @BeforeAll
    static void start() throws Exception {
        broker = EmbeddedKafkaBroker.start(dir.resolve("kafka"), 0);
        MergeParameters params = new MergeParameters(LegoOptions.defaults().withK(K), 1, "recluster", 1.0,
                MergeParameters.AUTO_DTYPE, 64);
        MergeService.Config cfg = new MergeService.Config(broker.bootstrapServers(), "publish-export-it", dir.resolve("state"),
                1, (short) 1, 16 << 20, 1, params, Map.of());
        service = MergeService.start(cfg, null, null, Duration.ofSeconds(60));
    }

    @AfterAll
    static void stop() {
        if (service != null) service.close();
        if (broker != null) broker.close();
    }

    @Test
    void theExportOfBf16AdaptersEqualsTheOfflineMergeByteForByte() throws Exception {
        Path adapters = dir.resolve("adapters");
        CommandRun synth = CommandRun.of("synth", "--shape", "tiny", "--adapters", "3", "--rank", "4", "--dtype", "bf16",
                "--seed", "7", "--out", adapters.toString());
        assertEquals(0, synth.exit(), synth::toString);
        String[] names = {"adapter-00", "adapter-01", "adapter-02"};
        for (String n : names) {
            CommandRun pub = CommandRun.of("publish", "--group", "bf", "--adapter-id", n,
                    "--bootstrap-servers", broker.bootstrapServers(), adapters.resolve(n).toString());
            assertEquals(0, pub.exit(), pub::toString);
        }
        Path exported = dir.resolve("exported");
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        CommandRun export;
        do {
            export = CommandRun.of("export", "--group", "bf", "--version", "3", "--out", exported.toString(),
                    "--bootstrap-servers", broker.bootstrapServers(), "--timeout", "10");
            if (export.exit() != 0) Thread.sleep(200);
        } while (export.exit() != 0 && System.nanoTime() < deadline);
        assertEquals(0, export.exit(), export::toString);

        Path merged = dir.resolve("merged");
        CommandRun merge = CommandRun.of("merge", "--k", Integer.toString(K), "--out", merged.toString(),
                adapters.resolve(names[0]).toString(), adapters.resolve(names[1]).toString(), adapters.resolve(names[2]).toString());
        assertEquals(0, merge.exit(), merge::toString);

        try (PeftAdapter offline = PeftAdapter.open(merged); PeftAdapter service = PeftAdapter.open(exported)) {
            assertEquals(DType.BF16, offline.dominantDType(), "the offline merge keeps the inputs' dtype");
            assertEquals(DType.BF16, service.dominantDType(), "so does the service by default");
        }
        assertArrayEquals(Files.readAllBytes(merged.resolve("adapter_model.safetensors")),
                Files.readAllBytes(exported.resolve("adapter_model.safetensors")));
    }
}
