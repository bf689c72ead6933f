package dev.loralego.client;

import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.VersionTrigger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ManifestJson}: the pinned layout of format 1, round trips, and clear errors. */
class ManifestJsonTest {
    /** A manifest.json of format 1 as this build writes it; it must keep loading and keep being written byte for byte. */
    private static final String GOLDEN = "/client/manifest-format1.json";

    static MergedVersionManifest sample() {
        Map<String, String> params = new TreeMap<>(Map.of("seed", "42", "k", "0", "canonical", "svd"));
        return MergedVersionManifest.newBuilder()
                .setGroup("gpt2").setSequence(12).setBaseModel("gpt2")
                .setTrigger(new VersionTrigger("6f1c1d2e-0000-4000-8000-000000000001", AdapterEventType.WITHDRAW, "imdb", -1L))
                .setAdapters(List.of(new AdapterRef("tigrinya", 3L, 1.5, "speech", "aa".repeat(32)),
                        new AdapterRef("seqcls", 1L, 0.25, null, "bb".repeat(32))))
                .setModules(List.of(new ModuleRef("transformer.h.0.attn.c_attn", 8, 768, 2304, "cc".repeat(32)),
                        new ModuleRef("transformer.h.0.mlp.c_proj", 4, 3072, 768, "dd".repeat(32))))
                .setDigest("ee".repeat(32)).setFanInFanOut(true).setTaskType(null).setParameters(params)
                .setEventTimestamp(1_700_000_123_456L).setServiceVersion("lora-lego 0.1.0").build();
    }

    @Test
    void writesTheGoldenFileByteForByteAndReadsItBack() throws IOException {
        String golden;
        try (InputStream in = ManifestJsonTest.class.getResourceAsStream(GOLDEN)) {
            golden = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertEquals(golden, ManifestJson.toJson(sample()));
        assertEquals(sample(), ManifestJson.parse(golden));
    }

    @Test
    void warningsAndInertiaRoundTrip() {
        MergedVersionManifest m = MergedVersionManifest.newBuilder(sample())
                .setWarnings(List.of("transformer.h.0.attn.c_attn: layer rejected: NaN", "second \"quoted\""))
                .setMeanInertia(1.25e-3).build();
        MergedVersionManifest back = ManifestJson.parse(ManifestJson.toJson(m));
        assertEquals(m, back);
        assertEquals(2, back.getWarnings().size());
    }

    @Test
    void withdrawnVersionsRoundTripAndAreLeftOutWhenThereAreNone() {
        MergedVersionManifest m = MergedVersionManifest.newBuilder(sample())
                .setWithdrawnVersions(new TreeMap<>(Map.of("imdb", 2L, "alpha", 7L))).build();
        String json = ManifestJson.toJson(m);
        assertTrue(json.contains("\"withdrawnVersions\" : {\n    \"alpha\" : 7,\n    \"imdb\" : 2\n  }"), json);
        assertEquals(m, ManifestJson.parse(json));
        assertTrue(!ManifestJson.toJson(sample()).contains("withdrawnVersions"));
    }

    @Test
    void roundTripsThroughAFileWithAnyKeyOrder(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("sub").resolve(ManifestJson.FILE_NAME);
        ManifestJson.write(file, sample());
        assertEquals(sample(), ManifestJson.read(file));
        try (var entries = Files.list(file.getParent())) {
            assertEquals(List.of(file), entries.toList(), "no temporary file left behind");
        }
        String reordered = "{\"serviceVersion\":\"s\",\"eventTimestamp\":5,\"parameters\":{},\"taskType\":\"SEQ_CLS\","
                + "\"fanInFanOut\":false,\"digest\":\"d\",\"modules\":[],\"adapters\":[],\"trigger\":{\"adapterVersion\":2,"
                + "\"adapterId\":\"x\",\"type\":\"PUBLISH\",\"eventId\":\"e\"},\"baseModel\":null,\"sequence\":3,\"group\":\"g\","
                + "\"manifestFormat\":1}";
        MergedVersionManifest m = ManifestJson.parse(reordered);
        assertEquals(3, m.getSequence());
        assertEquals("SEQ_CLS", m.getTaskType());
        assertEquals(null, m.getBaseModel());
        assertEquals(2, m.getTrigger().getAdapterVersion());
    }

    @Test
    void refusesNewerFormatsAndNamesBadFields() {
        String json = ManifestJson.toJson(sample());
        IllegalArgumentException newer = assertThrows(IllegalArgumentException.class,
                () -> ManifestJson.parse(json.replace("\"manifestFormat\" : 1", "\"manifestFormat\" : 2")));
        assertTrue(newer.getMessage().contains("manifestFormat 2 is not supported"), newer.getMessage());
        IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                () -> ManifestJson.parse(json.replace("\"rank\" : 8", "\"rank\" : \"8\"")));
        assertTrue(rank.getMessage().contains("modules[].rank"), rank.getMessage());
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> ManifestJson.parse(json.replace("\"WITHDRAW\"", "\"DELETE\"")));
        assertTrue(type.getMessage().contains("trigger.type"), type.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ManifestJson.parse("[1, 2]"));
    }
}
