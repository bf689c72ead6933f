package dev.loralego.peft;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A PEFT LoRA {@code adapter_config.json}: typed access to the fields the merge needs, PEFT's per-module rank,
 * alpha and scaling, and the whole JSON object kept as it was read (unknown fields and key order included) so a
 * rewrite loses nothing.
 *
 * <p>Per-module values follow PEFT ({@code peft/tuners/lora/model.py} {@code _create_and_replace},
 * {@code tuners_utils.get_pattern_key}): for a module's full name (e.g. {@code model.layers.3.self_attn.q_proj},
 * without the {@code base_model.model.} prefix), the first key {@code k} of {@code rank_pattern} in file order
 * for which {@code re.match(rf"(.*\.)?({k})$", name)} succeeds gives {@code r = rank_pattern[k]}, otherwise
 * {@code r}; {@code alpha} is resolved the same way from {@code alpha_pattern} (independently) with default
 * {@code lora_alpha}. Scaling is {@code alpha / r}, or {@code alpha / sqrt(r)} with {@code use_rslora}
 * (Kalajdzievski 2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA").
 *
 * <p>Missing fields take PEFT's {@code LoraConfig} defaults ({@code r = 8}, {@code lora_alpha = 8}, no patterns,
 * {@code use_rslora = false}, {@code fan_in_fan_out = false}). Patterns are compiled as Java regular
 * expressions, which agree with Python's {@code re} for the names and escapes used in practice.
 * Instances are immutable.
 */
public final class AdapterConfig {

    /** PEFT's default {@code r}. */
    public static final int DEFAULT_R = 8;
    /** PEFT's default {@code lora_alpha}. */
    public static final double DEFAULT_ALPHA = 8;

    private final ObjectNode raw;
    private final int r;
    private final double loraAlpha;
    private final boolean useRslora;
    private final boolean useDora;
    private final Map<String, Integer> rankPattern;
    private final Map<String, Double> alphaPattern;
    private final Map<String, Pattern> rankRegex;
    private final Map<String, Pattern> alphaRegex;
    private final List<String> targetModules;
    private final String targetModulesRegex;
    private final Pattern targetRegex;
    private final boolean fanInFanOut;
    private final String baseModel;
    private final String peftType;
    private final String taskType;
    private final List<String> modulesToSave;

    private AdapterConfig(String source, ObjectNode node) {
        this.raw = node.deepCopy();
        this.r = positiveInt(source, "r", raw.get("r"), DEFAULT_R);
        this.loraAlpha = positiveNumber(source, "lora_alpha", raw.get("lora_alpha"), DEFAULT_ALPHA);
        this.useRslora = bool(source, "use_rslora", raw.get("use_rslora"));
        this.useDora = bool(source, "use_dora", raw.get("use_dora"));
        this.fanInFanOut = bool(source, "fan_in_fan_out", raw.get("fan_in_fan_out"));
        this.baseModel = text(source, "base_model_name_or_path", raw.get("base_model_name_or_path"));
        this.peftType = text(source, "peft_type", raw.get("peft_type"));
        this.taskType = text(source, "task_type", raw.get("task_type"));

        Map<String, Integer> ranks = new LinkedHashMap<>();
        Map<String, Pattern> rankRx = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : objectField(source, "rank_pattern").entrySet()) {
            ranks.put(e.getKey(), positiveInt(source, "rank_pattern." + e.getKey(), e.getValue(), -1));
            rankRx.put(e.getKey(), compileKey(source, "rank_pattern", e.getKey()));
        }
        Map<String, Double> alphas = new LinkedHashMap<>();
        Map<String, Pattern> alphaRx = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : objectField(source, "alpha_pattern").entrySet()) {
            alphas.put(e.getKey(), positiveNumber(source, "alpha_pattern." + e.getKey(), e.getValue(), -1));
            alphaRx.put(e.getKey(), compileKey(source, "alpha_pattern", e.getKey()));
        }
        this.rankPattern = Collections.unmodifiableMap(ranks);
        this.alphaPattern = Collections.unmodifiableMap(alphas);
        this.rankRegex = rankRx;
        this.alphaRegex = alphaRx;

        JsonNode tm = raw.get("target_modules");
        if (tm == null || tm.isNull()) {
            this.targetModules = null;
            this.targetModulesRegex = null;
            this.targetRegex = null;
        } else if (tm.isTextual()) {
            this.targetModules = null;
            this.targetModulesRegex = tm.textValue();
            try {
                this.targetRegex = Pattern.compile(targetModulesRegex);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException(source + ": field 'target_modules' is not a valid regular expression: "
                        + e.getMessage(), e);
            }
        } else {
            this.targetModules = stringList(source, "target_modules", tm);
            this.targetModulesRegex = null;
            this.targetRegex = null;
        }
        JsonNode mts = raw.get("modules_to_save");
        this.modulesToSave = mts == null || mts.isNull() ? List.of() : stringList(source, "modules_to_save", mts);
    }

    // ---------------------------------------------------------------- construction

    /**
     * Reads and validates a config file.
     *
     * @throws IOException              if it cannot be read (missing file: {@link NoSuchFileException})
     * @throws IllegalArgumentException naming the file and field for bad JSON or a field of the wrong type
     */
    public static AdapterConfig read(Path json) throws IOException {
        String text = Files.readString(json, StandardCharsets.UTF_8);
        return parse(json.toString(), text);
    }

    /**
     * Parses and validates a config.
     *
     * @throws IllegalArgumentException naming the field for bad JSON (including duplicate keys) or a bad field
     */
    public static AdapterConfig parse(String json) {
        return parse("adapter_config.json", json);
    }

    private static AdapterConfig parse(String source, String json) {
        JsonNode node;
        try {
            node = PeftJson.MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(source + ": not a JSON object");
        }
        return new AdapterConfig(source, (ObjectNode) node);
    }

    /** A config from a JSON object (copied). */
    public static AdapterConfig of(ObjectNode node) {
        return new AdapterConfig("adapter config", node);
    }

    /** A copy with {@code field} set to {@code value} (added at the end if new; other keys keep their order). */
    public AdapterConfig with(String field, JsonNode value) {
        ObjectNode copy = raw.deepCopy();
        copy.set(field, value);
        return new AdapterConfig("adapter config", copy);
    }

    // ---------------------------------------------------------------- fields

    /** {@code r}: the default rank. */
    public int r() {
        return r;
    }

    /** {@code lora_alpha}: the default alpha. */
    public double loraAlpha() {
        return loraAlpha;
    }

    /** {@code use_rslora}: scaling {@code alpha / sqrt(r)} instead of {@code alpha / r}. */
    public boolean useRslora() {
        return useRslora;
    }

    /** {@code use_dora}: weight-decomposed LoRA (not a plain LoRA; this project does not merge it). */
    public boolean useDora() {
        return useDora;
    }

    /** {@code rank_pattern} in file order (empty if absent); unmodifiable. */
    public Map<String, Integer> rankPattern() {
        return rankPattern;
    }

    /** {@code alpha_pattern} in file order (empty if absent); unmodifiable. */
    public Map<String, Double> alphaPattern() {
        return alphaPattern;
    }

    /** {@code target_modules} when it is a list; {@code null} when it is a regex string or absent. */
    public List<String> targetModules() {
        return targetModules;
    }

    /** {@code target_modules} when it is a regex string (PEFT full-matches it against module names); else {@code null}. */
    public String targetModulesRegex() {
        return targetModulesRegex;
    }

    /** {@code fan_in_fan_out}: the base weight is stored {@code [in, out]} (GPT-2's Conv1D), so {@code ΔW = (BA)ᵀ}. */
    public boolean fanInFanOut() {
        return fanInFanOut;
    }

    /** {@code base_model_name_or_path}, or {@code null}. */
    public String baseModel() {
        return baseModel;
    }

    /** {@code peft_type} (e.g. {@code "LORA"}), or {@code null}. */
    public String peftType() {
        return peftType;
    }

    /** {@code task_type} (e.g. {@code "CAUSAL_LM"}), or {@code null}. */
    public String taskType() {
        return taskType;
    }

    /** {@code modules_to_save} (empty if absent or null); unmodifiable. */
    public List<String> modulesToSave() {
        return modulesToSave;
    }

    // ---------------------------------------------------------------- per module (PEFT rules)

    /** The rank PEFT gives {@code module} (full name without {@code base_model.model.}). */
    public int rankFor(String module) {
        String key = firstMatchingKey(rankRegex, module);
        return key == null ? r : rankPattern.get(key);
    }

    /** The alpha PEFT gives {@code module}. */
    public double alphaFor(String module) {
        String key = firstMatchingKey(alphaRegex, module);
        return key == null ? loraAlpha : alphaPattern.get(key);
    }

    /** PEFT's scaling of {@code module}: {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA. */
    public double scalingFor(String module) {
        int rank = rankFor(module);
        double alpha = alphaFor(module);
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    /**
     * Whether PEFT targets {@code module} by {@code target_modules}: a regex string must match the whole name;
     * a list entry matches a name equal to it or ending with {@code "." + entry}. {@code false} if absent.
     */
    public boolean targets(String module) {
        if (targetRegex != null) {
            return targetRegex.matcher(module).matches();
        }
        if (targetModules == null) {
            return false;
        }
        for (String t : targetModules) {
            if (module.equals(t) || module.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }

    /**
     * PEFT's {@code get_pattern_key}: the first of {@code keys} (in iteration order) for which
     * {@code re.match(rf"(.*\.)?({key})$", module)} matches, or {@code null} if none does.
     *
     * @throws IllegalArgumentException if a key is not a valid regular expression
     */
    public static String patternKeyFor(Collection<String> keys, String module) {
        for (String k : keys) {
            if (compilePatternKey(k).matcher(module).lookingAt()) {
                return k;
            }
        }
        return null;
    }

    /** The regex PEFT builds from a pattern key; use {@code lookingAt()} (Python's {@code re.match}). */
    static Pattern compilePatternKey(String key) {
        return Pattern.compile("(.*\\.)?(" + key + ")$");
    }

    private static String firstMatchingKey(Map<String, Pattern> keys, String module) {
        for (Map.Entry<String, Pattern> e : keys.entrySet()) {
            if (e.getValue().matcher(module).lookingAt()) {
                return e.getKey();
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- JSON

    /** A deep copy of the whole JSON object as read (unknown fields and key order kept). */
    public ObjectNode raw() {
        return raw.deepCopy();
    }

    /** The JSON text: the object as read, key order kept, 2-space indent. */
    public String toJson() {
        return PeftJson.pretty(raw);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AdapterConfig c && raw.equals(c.raw);
    }

    @Override
    public int hashCode() {
        return raw.hashCode();
    }

    @Override
    public String toString() {
        return "AdapterConfig[r=" + r + ", lora_alpha=" + loraAlpha + ", base=" + baseModel + "]";
    }

    // ---------------------------------------------------------------- validation

    private Map<String, JsonNode> objectField(String source, String field) {
        JsonNode n = raw.get(field);
        if (n == null || n.isNull()) {
            return Map.of();
        }
        if (!n.isObject()) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be an object, got " + n);
        }
        Map<String, JsonNode> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : n.properties()) {
            out.put(e.getKey(), e.getValue());
        }
        return out;
    }

    private static Pattern compileKey(String source, String field, String key) {
        try {
            return compilePatternKey(key);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(source + ": key '" + key + "' of '" + field
                    + "' is not a valid regular expression: " + e.getDescription(), e);
        }
    }

    private static int positiveInt(String source, String field, JsonNode n, int dflt) {
        if ((n == null || n.isNull()) && dflt > 0) {
            return dflt;
        }
        if (n == null || !n.isNumber() || !isWhole(n) || n.asDouble() < 1 || n.asDouble() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be a positive integer, got " + n);
        }
        return n.asInt();
    }

    private static boolean isWhole(JsonNode n) {
        if (n.isIntegralNumber()) {
            return true;
        }
        double d = n.asDouble();
        return d == Math.rint(d);
    }

    private static double positiveNumber(String source, String field, JsonNode n, double dflt) {
        if ((n == null || n.isNull()) && dflt > 0) {
            return dflt;
        }
        if (n == null || !n.isNumber() || !(n.asDouble() > 0) || !Double.isFinite(n.asDouble())) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be a positive number, got " + n);
        }
        return n.asDouble();
    }

    private static boolean bool(String source, String field, JsonNode n) {
        if (n == null || n.isNull()) {
            return false;
        }
        if (!n.isBoolean()) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be true or false, got " + n);
        }
        return n.booleanValue();
    }

    private static String text(String source, String field, JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be a string, got " + n);
        }
        return n.textValue();
    }

    private static List<String> stringList(String source, String field, JsonNode n) {
        if (!n.isArray()) {
            throw new IllegalArgumentException(source + ": field '" + field + "' must be a list of strings or a string, got " + n);
        }
        List<String> out = new ArrayList<>(n.size());
        for (JsonNode e : n) {
            if (!e.isTextual()) {
                throw new IllegalArgumentException(source + ": field '" + field + "' holds a non-string entry " + e);
            }
            out.add(e.textValue());
        }
        return Collections.unmodifiableList(out);
    }
}
