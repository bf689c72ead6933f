package dev.loralego.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Writes a merged adapter as a directory that PEFT loads as it is ({@code PeftModel.from_pretrained}):
 * {@code adapter_model.safetensors} and {@code adapter_config.json}, both with deterministic bytes.
 *
 * <p>Config: {@code peft_type = "LORA"}; {@code r = lora_alpha = k} where {@code k} is the most common module
 * rank (ties: the largest); {@code use_rslora = false}; every module whose rank differs from {@code k} gets
 * {@code rank_pattern[key] = alpha_pattern[key] = rank}, so each module's scaling is exactly 1. A key is the
 * module's full name as it is ({@link #patternKey}): PEFT since 2025 (huggingface/peft#2419) matches keys with
 * {@code re.match(rf"(.*\.)?({key})$", name)} (see {@link AdapterConfig}), earlier versions with
 * {@code re.match(rf".*\.{key}$", name)} and, when no key matches, look the name itself up, so a full name selects
 * its module under both rules. The writer checks that each key selects exactly its module among the written ones
 * (the only ones PEFT adapts; for a full name this holds under both rules); where a name has other characters than letters, digits, {@code _} and
 * {@code .}, or the check fails, the key is the name regex-escaped and anchored with {@code ^}, which only the newer
 * rule reads. {@code target_modules} is the sorted
 * list of the exact full module names (PEFT matches a list entry when the name equals it or ends with
 * {@code "." + entry}), so precisely the merged modules are adapted — short names would be wrong, e.g. GPT-2's
 * {@code c_proj} names both {@code attn.c_proj} and {@code mlp.c_proj}. {@code fan_in_fan_out},
 * {@code base_model_name_or_path} and {@code task_type} come from the spec.
 *
 * <p>Field precedence: PEFT-like defaults ({@code bias "none"}, {@code inference_mode true},
 * {@code lora_dropout 0.0}, ...) &lt; the spec's extra fields &lt; the computed fields above. Extra fields that
 * would change which modules or tensors PEFT expects ({@code layers_to_transform}, {@code layers_pattern},
 * {@code exclude_modules}, {@code target_parameters}) are written as {@code null}; {@code use_dora} and
 * {@code lora_bias}, if present, as {@code false}; an {@code init_lora_weights} that PEFT would run again on load
 * and that rewrites the base weights ({@code pissa*}, {@code olora}, {@code corda}, {@code loftq}) as {@code true}. Keys are sorted, as PEFT's {@code save_pretrained} does.
 *
 * <p>Tensors: {@code base_model.model.<module>.lora_A.weight} {@code [rank, dIn]} and {@code ...lora_B.weight}
 * {@code [dOut, rank]} in the spec's dtype, sorted by name. The weights are written first, then the config;
 * each file is replaced atomically, the pair is not (a reader that needs both to change together should write
 * into a fresh directory and rename it).
 */
public final class PeftAdapterWriter {
    /** Module names whose plain form is a safe pattern key: only {@code .} is a regex metacharacter in them. */
    private static final Pattern PLAIN_NAME = Pattern.compile("[A-Za-z0-9_.]+");

    /** Fields neutralised to null when present in the extra config: they would narrow the targeted modules. */
    private static final List<String> NULLED_FIELDS =
            List.of("layers_to_transform", "layers_pattern", "exclude_modules", "target_parameters");
    /** Fields forced to false when present in the extra config: they expect tensors this writer does not write. */
    private static final List<String> FALSE_FIELDS = List.of("use_dora", "lora_bias");

    private PeftAdapterWriter() {
    }

    /** Writes {@code spec} into {@code dir} (created if missing), replacing the two files if present. */
    public static void write(Path dir, MergedAdapterSpec spec) throws IOException {
        Files.createDirectories(dir);
        List<TensorSpec> tensors = new ArrayList<>();
        for (Map.Entry<String, ModuleFactors> e : spec.modules().entrySet()) {
            ModuleFactors f = e.getValue();
            tensors.add(new TensorSpec(tensorName(e.getKey(), "A"), spec.dtype(), new long[]{f.rank(), f.dIn()}));
            tensors.add(new TensorSpec(tensorName(e.getKey(), "B"), spec.dtype(), new long[]{f.dOut(), f.rank()}));
        }
        String configJson = PeftJson.pretty(config(spec));
        try (SafetensorsWriter w = SafetensorsWriter.open(dir.resolve(PeftAdapter.WEIGHTS_FILE), null, tensors)) {
            for (TensorSpec t : w.order()) {
                String name = t.name();
                boolean isA = name.endsWith(".lora_A.weight");
                String module = name.substring(PeftAdapter.NAME_PREFIX.length(),
                        name.length() - ".lora_A.weight".length());
                ModuleFactors f = spec.modules().get(module);
                w.writeTensor(name, isA ? f.a() : f.b());
            }
        }
        PeftJson.writeAtomically(dir.resolve(PeftAdapter.CONFIG_FILE), configJson);
    }

    /** {@code base_model.model.<module>.lora_<side>.weight}. */
    public static String tensorName(String module, String side) {
        return PeftAdapter.NAME_PREFIX + module + ".lora_" + side + ".weight";
    }

    /**
     * The rank written as {@code r}: the most common module rank, ties broken towards the largest.
     */
    public static int defaultRank(Map<String, ModuleFactors> modules) {
        SortedMap<Integer, Integer> counts = new TreeMap<>();
        for (ModuleFactors f : modules.values()) {
            counts.merge(f.rank(), 1, Integer::sum);
        }
        int best = -1;
        int bestCount = -1;
        for (Map.Entry<Integer, Integer> e : counts.entrySet()) {
            if (e.getValue() >= bestCount) { // ascending ranks: >= lets the larger rank win a tie
                best = e.getKey();
                bestCount = e.getValue();
            }
        }
        return best;
    }

    /**
     * The {@code rank_pattern}/{@code alpha_pattern} key for {@code module} among the {@code written} modules: its
     * full name when that selects exactly this module under both PEFT rules (class comment), otherwise
     * {@link #anchoredPatternKey}, checked under the newer rule.
     *
     * @throws IllegalStateException if not even the anchored key selects exactly this module
     */
    public static String patternKey(String module, Collection<String> written) {
        if (PLAIN_NAME.matcher(module).matches() && selectsOnly(module, module, written)) {
            return module;
        }
        String key = anchoredPatternKey(module);
        if (!selectsOnly(key, module, written)) {
            throw new IllegalStateException("rank_pattern key '" + key + "' for module '" + module
                    + "' does not select exactly that module among " + written);
        }
        return key;
    }

    /**
     * A key that current PEFT (huggingface/peft#2419, 2025) matches to {@code module} only: its name with every character that is not a
     * letter, digit or underscore backslash-escaped (valid in both Python and Java regex), anchored with {@code ^}
     * so that the optional {@code (.*\.)} prefix cannot match anything before it.
     */
    public static String anchoredPatternKey(String module) {
        StringBuilder sb = new StringBuilder(module.length() + 8).append('^');
        for (int i = 0; i < module.length(); i++) {
            char c = module.charAt(i);
            if (!(Character.isLetterOrDigit(c) || c == '_')) {
                sb.append('\\');
            }
            sb.append(c);
        }
        return sb.toString();
    }

    /**
     * Whether current PEFT's rule matches {@code key} to {@code module} and to no other of {@code all}. That covers
     * the earlier rule too ({@code re.match(rf".*\.{key}$", name)}, else an exact lookup of the name): whatever it
     * matches, the current rule matches as well, and a key never matches its own name under it; so a key equal to
     * its module's name that passes this check selects exactly that module under both.
     */
    static boolean selectsOnly(String key, String module, Iterable<String> all) {
        Pattern current = AdapterConfig.compilePatternKey(key);
        for (String other : all) {
            if (current.matcher(other).lookingAt() != other.equals(module)) return false;
        }
        return true;
    }

    /** The config object for {@code spec} (keys sorted). */
    static ObjectNode config(MergedAdapterSpec spec) {
        SortedMap<String, ModuleFactors> modules = spec.modules();
        int k = defaultRank(modules);
        JsonNodeFactory f = JsonNodeFactory.instance;

        ObjectNode rankPattern = f.objectNode();
        ObjectNode alphaPattern = f.objectNode();
        for (Map.Entry<String, ModuleFactors> e : modules.entrySet()) {
            int rank = e.getValue().rank();
            if (rank != k) {
                String key = patternKey(e.getKey(), modules.keySet());
                rankPattern.put(key, rank);
                alphaPattern.put(key, rank);
            }
        }
        ArrayNode targets = f.arrayNode();
        modules.keySet().forEach(targets::add);

        TreeMap<String, JsonNode> fields = new TreeMap<>();
        // PEFT-like defaults (fields LoraConfig has had since rank_pattern / use_rslora exist).
        fields.put("auto_mapping", NullNode.instance);
        fields.put("bias", f.textNode("none"));
        fields.put("inference_mode", f.booleanNode(true));
        fields.put("init_lora_weights", f.booleanNode(true));
        fields.put("layers_pattern", NullNode.instance);
        fields.put("layers_to_transform", NullNode.instance);
        fields.put("lora_dropout", f.numberNode(0.0));
        fields.put("modules_to_save", NullNode.instance);
        fields.put("revision", NullNode.instance);
        // Caller's extra fields.
        ObjectNode extra = spec.extraConfig();
        if (extra != null) {
            for (Map.Entry<String, JsonNode> e : extra.properties()) {
                fields.put(e.getKey(), e.getValue());
            }
            for (String n : NULLED_FIELDS) {
                if (extra.has(n)) {
                    fields.put(n, NullNode.instance);
                }
            }
            for (String n : FALSE_FIELDS) {
                if (extra.has(n)) {
                    fields.put(n, f.booleanNode(false));
                }
            }
            if (PeftAdapter.isBaseMutatingInit(extra.get("init_lora_weights"))) {
                // PEFT would run PiSSA/OLoRA/CorDA/LoftQ again on load and rewrite the base weights.
                fields.put("init_lora_weights", f.booleanNode(true));
            }
        }
        // Computed fields.
        fields.put("alpha_pattern", alphaPattern);
        fields.put("base_model_name_or_path", spec.baseModel() == null ? NullNode.instance : f.textNode(spec.baseModel()));
        fields.put("fan_in_fan_out", f.booleanNode(spec.fanInFanOut()));
        fields.put("lora_alpha", f.numberNode(k));
        fields.put("peft_type", f.textNode("LORA"));
        fields.put("r", f.numberNode(k));
        fields.put("rank_pattern", rankPattern);
        fields.put("target_modules", targets);
        fields.put("task_type", spec.taskType() == null ? NullNode.instance : f.textNode(spec.taskType()));
        fields.put("use_rslora", f.booleanNode(false));

        ObjectNode root = f.objectNode();
        fields.forEach(root::set);
        return root;
    }
}
