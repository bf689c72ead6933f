package dev.loralego.stream;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Which parameter changes make the sequencer emit every module of a group again. */
class MergeParametersTest {
    /** Keys whose change can alter a module's current result: they re-cluster a stored module, or re-encode it. */
    private static final Set<String> CHANGE_RESULTS = Set.of("k", "k.layers.0.q_proj", "seed", "nInit", "maxIter", "canonical",
            "featureNorm", "parameterReweighting", "outputReweighting", "decay", "outputDType");

    /** For each key of the map form, another valid value. */
    private static final Map<String, String> OTHER_VALUE = Map.ofEntries(Map.entry("k", "5"), Map.entry("k.layers.0.q_proj", "2"),
            Map.entry("seed", "7"), Map.entry("nInit", "2"), Map.entry("maxIter", "10"), Map.entry("canonical", "none"),
            Map.entry("featureNorm", "halves"), Map.entry("parameterReweighting", "off"), Map.entry("outputReweighting", "false"),
            Map.entry("decay", "0.5"), Map.entry("outputDType", "BF16"), Map.entry("refineEvery", "3"),
            Map.entry("refineMode", "recluster"), Map.entry("maxRank", "64"), Map.entry("normOutlierFactor", "4.0"),
            Map.entry("normOutlierPolicy", "clip"), Map.entry("method", "lego"));

    @Test
    void exactlyTheClusteringOptionsTheDecayAndTheDTypeChangeAModulesResult() {
        Map<String, String> base = new HashMap<>(MergeParameters.defaults().withOutputDType("F32").toMap());
        base.put("k", "3");
        MergeParameters p = MergeParameters.fromMap(base);
        Set<String> keys = new TreeSet<>(base.keySet());
        keys.add("k.layers.0.q_proj");
        assertEquals(new TreeSet<>(OTHER_VALUE.keySet()), keys, "every parameter has another value here");
        Set<String> changing = new TreeSet<>();
        for (String key : keys) {
            Map<String, String> m = new HashMap<>(base);
            m.put(key, OTHER_VALUE.get(key));
            MergeParameters other = MergeParameters.fromMap(m);
            if (key.equals("method")) {
                assertEquals(p, other, "lego is the service's only method");
                continue;
            }
            assertEquals(false, p.equals(other), key + " is parsed");
            if (other.changeModuleResults(p)) changing.add(key);
            assertEquals(other.changeModuleResults(p), p.changeModuleResults(other), key + ": symmetric");
        }
        assertEquals(new TreeSet<>(CHANGE_RESULTS), changing);
        assertEquals(false, p.changeModuleResults(MergeParameters.fromMap(base)));
    }
}
