package dev.loralego.peft;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Collections;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Everything {@link PeftAdapterWriter} needs to write a merged adapter as a PEFT directory.
 *
 * @param baseModel   {@code base_model_name_or_path} (from the inputs)
 * @param taskType    {@code task_type} (from the inputs: {@link #taskTypeOf}), or {@code null}
 * @param fanInFanOut {@code fan_in_fan_out} (from the inputs)
 * @param dtype       stored dtype of the factors
 * @param modules     factors by full module name (without {@code base_model.model.}); copied into a sorted map
 * @param extraConfig extra {@code adapter_config.json} fields to carry (e.g. {@code lora_dropout},
 *                    {@code modules_to_save}); the fields the writer computes win over them; nullable, copied
 */
public record MergedAdapterSpec(String baseModel, String taskType, boolean fanInFanOut, DType dtype,
                                SortedMap<String, ModuleFactors> modules, ObjectNode extraConfig) {

    /**
     * The {@code task_type} of a merge of adapters with these task types: the most common one ({@code null}s, adapters
     * that state none, are not counted), ties to the first in string order; {@code null} when none states one. It
     * depends only on the multiset, not on the order of the inputs, so the offline merge and the service (whose live
     * set is ordered by adapter id) agree. PEFT picks the model class from it when loading.
     */
    public static String taskTypeOf(java.util.Collection<String> taskTypes) {
        TreeMap<String, Integer> counts = new TreeMap<>();
        for (String t : taskTypes) if (t != null) counts.merge(t, 1, Integer::sum);
        String best = null;
        for (java.util.Map.Entry<String, Integer> e : counts.entrySet()) {
            if (best == null || e.getValue() > counts.get(best)) best = e.getKey();
        }
        return best;
    }

    /**
     * The dtype a merge of adapters with these dominant dtypes ({@link PeftAdapter#dominantDType}) is written in by
     * default: the most common one ({@code null}s are not counted), ties to the first in {@link DType}'s order (F32,
     * F16, BF16, F64); {@code null} when there is none. Like {@link #taskTypeOf} it depends only on the multiset, so
     * the offline merge and the service agree.
     */
    public static DType dtypeOf(java.util.Collection<DType> dtypes) {
        java.util.EnumMap<DType, Integer> counts = new java.util.EnumMap<>(DType.class);
        for (DType d : dtypes) if (d != null) counts.merge(d, 1, Integer::sum);
        DType best = null;
        for (java.util.Map.Entry<DType, Integer> e : counts.entrySet()) {
            if (best == null || e.getValue() > counts.get(best)) best = e.getKey();
        }
        return best;
    }

    /** Checks non-null fields and at least one valid module name; copies the map and the extra config. */
    public MergedAdapterSpec {
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(modules, "modules");
        if (modules.isEmpty()) {
            throw new IllegalArgumentException("a merged adapter needs at least one module");
        }
        for (String m : modules.keySet()) {
            if (m.isEmpty() || m.startsWith(".") || m.endsWith(".") || m.startsWith(PeftAdapter.NAME_PREFIX)
                    || m.contains("..")) {
                throw new IllegalArgumentException("invalid module name '" + m
                        + "' (full module name without the base_model.model. prefix expected)");
            }
            Objects.requireNonNull(modules.get(m), "factors of module " + m);
        }
        modules = Collections.unmodifiableSortedMap(new TreeMap<>(modules));
        extraConfig = extraConfig == null ? null : extraConfig.deepCopy();
    }

    /** A copy of the extra config fields, or {@code null}. */
    @Override
    public ObjectNode extraConfig() {
        return extraConfig == null ? null : extraConfig.deepCopy();
    }
}
