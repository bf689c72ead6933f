package dev.loralego.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.VersionTrigger;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ManifestJsonTest {
    static final ObjectMapper MAPPER = new ObjectMapper();

    static MergedVersionManifest manifest(Map<String, String> parameters) {
        return MergedVersionManifest.newBuilder()
                .setGroup("llama-8b")
                .setSequence(42)
                .setBaseModel(null)
                .setTrigger(new VersionTrigger("ev-1", AdapterEventType.WITHDRAW, "adapter-b", 3L))
                .setAdapters(List.of(new AdapterRef("adapter-a", 1L, 0.5, "team \"a\"", "d-a"),
                        new AdapterRef("adapter-c", 2L, 1.0, null, "d-c")))
                .setModules(List.of(new ModuleRef("layers.0.q_proj", 4, 12, 10, "m-q"),
                        new ModuleRef("layers.0.v_proj", 3, 12, 14, "m-v")))
                .setDigest("whole")
                .setFanInFanOut(true)
                .setTaskType("CAUSAL_LM")
                .setParameters(parameters)
                .setEventTimestamp(1_700_000_000_123L)
                .setServiceVersion("0.1.0")
                .setWarnings(List.of("layers.0.v_proj: rank 300 > max 256"))
                .build();
    }

    static List<String> keys(JsonNode n) {
        List<String> out = new ArrayList<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) out.add(it.next());
        return out;
    }

    @Test
    void keysInSchemaOrderAndValuesAsInTheManifest() throws Exception {
        Map<String, String> params = new HashMap<>();
        params.put("k", "16");
        params.put("decay", "1.0");
        params.put("refineMode", "lloyd");
        JsonNode j = MAPPER.readTree(ManifestJson.toJson(manifest(params)));
        assertEquals(List.of("group", "sequence", "baseModel", "trigger", "adapters", "modules", "digest", "fanInFanOut",
                "taskType", "parameters", "eventTimestamp", "serviceVersion", "warnings"), keys(j));
        assertEquals(List.of("eventId", "type", "adapterId", "adapterVersion"), keys(j.get("trigger")));
        assertEquals(List.of("adapterId", "adapterVersion", "weight", "team", "digest"), keys(j.get("adapters").get(0)));
        assertEquals(List.of("module", "rank", "dIn", "dOut", "digest"), keys(j.get("modules").get(0)));
        assertEquals(List.of("decay", "k", "refineMode"), keys(j.get("parameters")));

        assertEquals("llama-8b", j.get("group").asText());
        assertEquals(42, j.get("sequence").asLong());
        assertTrue(j.get("baseModel").isNull());
        assertEquals("WITHDRAW", j.get("trigger").get("type").asText());
        assertEquals(3, j.get("trigger").get("adapterVersion").asLong());
        assertEquals(0.5, j.get("adapters").get(0).get("weight").asDouble());
        assertEquals("team \"a\"", j.get("adapters").get(0).get("team").asText());
        assertTrue(j.get("adapters").get(1).get("team").isNull());
        assertEquals("m-v", j.get("modules").get(1).get("digest").asText());
        assertEquals(14, j.get("modules").get(1).get("dOut").asInt());
        assertEquals("whole", j.get("digest").asText());
        assertTrue(j.get("fanInFanOut").asBoolean());
        assertEquals("16", j.get("parameters").get("k").asText());
        assertEquals(1_700_000_000_123L, j.get("eventTimestamp").asLong());
        assertEquals("layers.0.v_proj: rank 300 > max 256", j.get("warnings").get(0).asText());
    }

    @Test
    void sameManifestSameBytesWhateverTheParameterMapOrder() {
        Map<String, String> one = new java.util.LinkedHashMap<>();
        one.put("z", "1");
        one.put("a", "2");
        Map<String, String> other = new java.util.LinkedHashMap<>();
        other.put("a", "2");
        other.put("z", "1");
        byte[] x = ManifestJson.toJson(manifest(one));
        assertArrayEquals(x, ManifestJson.toJson(manifest(other)));
        String s = new String(x, StandardCharsets.UTF_8);
        assertTrue(s.contains("\"parameters\":{\"a\":\"2\",\"z\":\"1\"}"), s);
        assertTrue(!s.contains("\n"), "compact, one line");
    }
}
