package dev.loralego.stream;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Per-group overrides in the service's config file: applied to their group only, and refused at start when wrong. */
class MergeServiceConfigTest {
    private static MergeService.Config config(Map<String, String> entries) {
        return new MergeService.Config("localhost:1", "app", Path.of("unused"), 1, (short) 1, 1 << 20, 1,
                MergeParameters.defaults(), entries);
    }

    private static String refusal(String key, String value) {
        return assertThrows(IllegalArgumentException.class, () -> config(Map.of(key, value))).getMessage();
    }

    @Test
    void overridesApplyToTheirGroupOnly() {
        MergeService.Config c = config(Map.of("lora.group.g1.k", "4", "lora.group.g1.k.layers.0.q_proj", "2",
                "lora.group.g1.outputReweighting", "FALSE", "lora.group.g1.method", "lego"));
        assertEquals(4, c.parametersOf("g1").lego().k());
        assertEquals(Map.of("layers.0.q_proj", 2), c.parametersOf("g1").lego().kPerModule());
        assertFalse(c.parametersOf("g1").lego().outputReweighting());
        assertEquals(MergeParameters.defaults(), c.parametersOf("g2"));
    }

    @Test
    void aMisspeltOptionIsRefusedAtStartNotIgnored() {
        String unknown = refusal("lora.group.g1.kk", "4");
        assertTrue(unknown.startsWith("config entry 'lora.group.g1.kk': unknown option 'kk'; the options are ["), unknown);
        assertTrue(unknown.contains("refineEvery") && unknown.contains("k.<module>"), unknown);
        String dashed = refusal("lora.group.g1.refine-every", "2");
        assertTrue(dashed.contains("unknown option 'refine-every' (did you mean refineEvery?)"), dashed);
    }

    @Test
    void badValuesAreRefusedNamingTheEntry() {
        assertEquals("config entry 'lora.group.g1.outputReweighting': outputReweighting must be true or false, got 'flase'",
                refusal("lora.group.g1.outputReweighting", "flase"));
        assertEquals("config entry 'lora.group.g1.method': the service merges with method lego only, got 'svd'",
                refusal("lora.group.g1.method", "svd"));
        assertTrue(refusal("lora.group.g1.k", "four").startsWith("config entry 'lora.group.g1.k': "));
        String k = refusal("lora.group.g1.k", "-3");
        assertTrue(k.contains("k must be >= 1") && !k.contains("K_AUTO"), k);
    }
}
