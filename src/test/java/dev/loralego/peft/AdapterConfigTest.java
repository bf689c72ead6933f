package dev.loralego.peft;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PEFT's per-module rank/alpha/scaling rules and lossless rewriting of adapter_config.json. */
class AdapterConfigTest {

    private static final double EXACT = 0.0;

    @Test
    void rankAndAlphaPatternsFollowPeftFirstMatchingKeyRule() {
        AdapterConfig c = AdapterConfig.parse("{\"r\": 8, \"lora_alpha\": 16, "
                + "\"rank_pattern\": {\"q_proj\": 4, \"model.layers.1.self_attn.q_proj\": 2, \"mlp\\\\.(up|gate)_proj\": 12, "
                + "\"self_attn.o_proj\": 6},"
                + "\"alpha_pattern\": {\"layers.1.self_attn.q_proj\": 3}}");
        // suffix key "q_proj" matches every q_proj: layer 0 -> r 4, alpha default 16
        assertEquals(4, c.rankFor("model.layers.0.self_attn.q_proj"));
        assertEquals(16, c.alphaFor("model.layers.0.self_attn.q_proj"), EXACT);
        assertEquals(4.0, c.scalingFor("model.layers.0.self_attn.q_proj"), EXACT);
        // layer 1: "q_proj" comes first in the dict, so the more specific rank key never wins; alpha key does match
        assertEquals(4, c.rankFor("model.layers.1.self_attn.q_proj"));
        assertEquals(3, c.alphaFor("model.layers.1.self_attn.q_proj"), EXACT);
        assertEquals(0.75, c.scalingFor("model.layers.1.self_attn.q_proj"), EXACT);
        // multi-component suffix key
        assertEquals(6, c.rankFor("model.layers.5.self_attn.o_proj"));
        // regex key with alternation
        assertEquals(12, c.rankFor("model.layers.0.mlp.up_proj"));
        assertEquals(12, c.rankFor("model.layers.0.mlp.gate_proj"));
        assertEquals(8, c.rankFor("model.layers.0.mlp.down_proj"));
        // a key matches only at a component boundary: "q_proj" does not match "qq_proj"
        assertEquals(8, c.rankFor("model.layers.0.self_attn.qq_proj"));
        assertEquals(2.0, c.scalingFor("model.layers.0.self_attn.k_proj"), EXACT);
        // the key must reach the end of the name
        assertEquals(8, c.rankFor("model.layers.0.self_attn.q_proj.base_layer"));
    }

    @Test
    void keyOrderDecidesBetweenOverlappingKeys() {
        AdapterConfig c = AdapterConfig.parse("{\"r\": 8, \"lora_alpha\": 8, "
                + "\"rank_pattern\": {\"model.layers.1.self_attn.q_proj\": 2, \"q_proj\": 4}}");
        assertEquals(2, c.rankFor("model.layers.1.self_attn.q_proj"));
        assertEquals(4, c.rankFor("model.layers.11.self_attn.q_proj"), "layers.1 key does not match layers.11");
        assertEquals(List.of("model.layers.1.self_attn.q_proj", "q_proj"), new ArrayList<>(c.rankPattern().keySet()));
        assertEquals("q_proj", AdapterConfig.patternKeyFor(c.rankPattern().keySet(), "x.q_proj"));
        assertNull(AdapterConfig.patternKeyFor(c.rankPattern().keySet(), "x.k_proj"));
    }

    @Test
    void rsLoraScalesBySquareRootOfRank() {
        AdapterConfig c = AdapterConfig.parse("{\"r\": 16, \"lora_alpha\": 32, \"use_rslora\": true, "
                + "\"rank_pattern\": {\"v_proj\": 4}, \"alpha_pattern\": {\"v_proj\": 6}}");
        assertTrue(c.useRslora());
        assertEquals(32 / Math.sqrt(16), c.scalingFor("m.q_proj"), EXACT);
        assertEquals(6 / Math.sqrt(4), c.scalingFor("m.v_proj"), EXACT);
    }

    @Test
    void defaultsAreLoraConfigDefaults() {
        AdapterConfig c = AdapterConfig.parse("{\"peft_type\": \"LORA\"}");
        assertEquals(8, c.r());
        assertEquals(8, c.loraAlpha(), EXACT);
        assertEquals(1.0, c.scalingFor("anything"), EXACT);
        assertFalse(c.fanInFanOut());
        assertNull(c.targetModules());
        assertNull(c.targetModulesRegex());
        assertEquals(List.of(), c.modulesToSave());
        assertEquals(Map.of(), c.rankPattern());
    }

    @Test
    void targetModulesListOrRegexMatchLikePeft() {
        AdapterConfig list = AdapterConfig.parse("{\"target_modules\": [\"c_proj\", \"attn.c_attn\"]}");
        assertEquals(List.of("c_proj", "attn.c_attn"), list.targetModules());
        assertTrue(list.targets("transformer.h.0.attn.c_proj"));
        assertTrue(list.targets("transformer.h.0.mlp.c_proj"), "short name hits both c_proj modules");
        assertTrue(list.targets("transformer.h.3.attn.c_attn"));
        assertFalse(list.targets("transformer.h.3.mlp.c_fc"));
        assertFalse(list.targets("transformer.h.3.attn.xc_proj"));
        AdapterConfig regex = AdapterConfig.parse("{\"target_modules\": \".*\\\\.(q|v)_proj\"}");
        assertNull(regex.targetModules());
        assertEquals(".*\\.(q|v)_proj", regex.targetModulesRegex());
        assertTrue(regex.targets("model.layers.0.self_attn.q_proj"));
        assertFalse(regex.targets("model.layers.0.self_attn.k_proj"));
        assertFalse(AdapterConfig.parse("{\"target_modules\": \"q_proj\"}").targets("model.q_proj"), "regex is a full match");
    }

    @Test
    void rewriteKeepsUnknownFieldsAndKeyOrder() {
        String json = "{\"peft_version\": \"0.17.1\", \"r\": 4, \"zeta\": {\"nested\": [1, 2.5, null]}, "
                + "\"lora_alpha\": 8.5, \"alpha\": true, \"target_modules\": [\"q_proj\"]}";
        AdapterConfig c = AdapterConfig.parse(json);
        AdapterConfig again = AdapterConfig.parse(c.toJson());
        assertEquals(c, again);
        assertEquals(List.of("peft_version", "r", "zeta", "lora_alpha", "alpha", "target_modules"), fieldNames(again.raw()));
        assertEquals("0.17.1", again.raw().get("peft_version").textValue());
        assertEquals(8.5, again.loraAlpha(), EXACT);
        AdapterConfig changed = c.with("base_model_name_or_path", TextNode.valueOf("gpt2"));
        assertEquals("gpt2", changed.baseModel());
        assertNull(c.baseModel(), "with() does not modify the original");
        assertEquals("base_model_name_or_path", fieldNames(changed.raw()).get(6));
        ObjectNode raw = c.raw();
        raw.put("r", 99);
        assertEquals(4, c.r(), "raw() is a copy");
    }

    @Test
    void rewriteOfEveryFixtureIsLossless() throws IOException {
        for (String name : Fixtures.NAMES) {
            AdapterConfig c = AdapterConfig.read(Fixtures.dir(name).resolve("adapter_config.json"));
            AdapterConfig again = AdapterConfig.parse(c.toJson());
            assertEquals(c, again, name);
            assertEquals(fieldNames(c.raw()), fieldNames(again.raw()), name);
            assertTrue(again.raw().has("megatron_core"), "unknown-to-us field kept in " + name);
        }
        AdapterConfig tig = AdapterConfig.read(Fixtures.dir("gpt2-tigrinya-causal").resolve("adapter_config.json"));
        assertEquals(16, AdapterConfig.parse(tig.toJson()).raw().get("qalora_group_size").intValue());
        assertTrue(AdapterConfig.parse(tig.toJson()).raw().has("corda_config"));
    }

    @Test
    void toJsonReproducesPeftWrittenFilesByteForByte() throws IOException {
        // PEFT writes json.dumps(config, indent=2, sort_keys=True); an unchanged config must come back identical
        for (String name : Fixtures.NAMES) {
            java.nio.file.Path file = Fixtures.dir(name).resolve("adapter_config.json");
            assertEquals(java.nio.file.Files.readString(file), AdapterConfig.read(file).toJson(), name);
        }
    }

    @Test
    void badFieldsAreNamed() {
        assertMessage("{\"r\": \"8\"}", "'r'");
        assertMessage("{\"r\": 0}", "'r'");
        assertMessage("{\"r\": 2.5}", "'r'");
        assertMessage("{\"lora_alpha\": -1}", "'lora_alpha'");
        assertMessage("{\"rank_pattern\": {\"q_proj\": 2.5}}", "'rank_pattern.q_proj'");
        assertMessage("{\"rank_pattern\": [1]}", "'rank_pattern'");
        assertMessage("{\"alpha_pattern\": {\"q_proj\": \"x\"}}", "'alpha_pattern.q_proj'");
        assertMessage("{\"rank_pattern\": {\"q_proj(\": 2}}", "q_proj(");
        assertMessage("{\"target_modules\": 5}", "'target_modules'");
        assertMessage("{\"target_modules\": [\"a\", 1]}", "'target_modules'");
        assertMessage("{\"use_rslora\": \"yes\"}", "'use_rslora'");
        assertMessage("{\"fan_in_fan_out\": 1}", "'fan_in_fan_out'");
        assertMessage("{\"r\": 8, \"r\": 4}", "Duplicate");
        assertMessage("[1]", "not a JSON object");
        assertMessage("{", "not valid JSON");
    }

    private static void assertMessage(String json, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AdapterConfig.parse(json));
        assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' should mention " + fragment);
    }

    private static List<String> fieldNames(ObjectNode n) {
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }
}
