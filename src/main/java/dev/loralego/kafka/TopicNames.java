package dev.loralego.kafka;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * The service's topic names (ARCHITECTURE.md, Data flow), each configurable. Immutable.
 *
 * <p>Configuration keys, as read by {@link #from(Map)} and {@link #from(Properties)}; a missing key keeps
 * the default:
 * <table>
 *   <caption>Topic name keys</caption>
 *   <tr><th>key</th><th>default</th><th>content</th></tr>
 *   <tr><td>{@code topic.adapter.layers}</td><td>{@code lora.adapter.layers}</td>
 *       <td>one record per (adapter version, module): the A and B tensors; key {@code group|module}</td></tr>
 *   <tr><td>{@code topic.adapter.events}</td><td>{@code lora.adapter.events}</td>
 *       <td>publish / withdraw commit markers; key group</td></tr>
 *   <tr><td>{@code topic.merged.layers}</td><td>{@code lora.merged.layers}</td>
 *       <td>compacted, latest merged A, B per {@code group|module}</td></tr>
 *   <tr><td>{@code topic.merged.versions}</td><td>{@code lora.merged.versions}</td>
 *       <td>compacted, version manifests; keys group and {@code group@sequence}</td></tr>
 *   <tr><td>{@code topic.deadletter}</td><td>{@code lora.deadletter}</td>
 *       <td>rejected inputs with the reason</td></tr>
 *   <tr><td>{@code topic.schemas}</td><td>{@code lora.schemas}</td>
 *       <td>compacted, Avro schema JSON by schema id (embedded schema source)</td></tr>
 * </table>
 *
 * @param adapterLayers  topic of adapter layer records
 * @param adapterEvents  topic of adapter publish / withdraw events
 * @param mergedLayers   compacted topic of merged layers
 * @param mergedVersions compacted topic of merged version manifests
 * @param deadLetter     topic of rejected input records
 * @param schemas        compacted topic of Avro schemas by id
 */
public record TopicNames(String adapterLayers, String adapterEvents, String mergedLayers,
                         String mergedVersions, String deadLetter, String schemas) {

    /** Configuration key of {@link #adapterLayers()}. */
    public static final String ADAPTER_LAYERS_KEY = "topic.adapter.layers";
    /** Configuration key of {@link #adapterEvents()}. */
    public static final String ADAPTER_EVENTS_KEY = "topic.adapter.events";
    /** Configuration key of {@link #mergedLayers()}. */
    public static final String MERGED_LAYERS_KEY = "topic.merged.layers";
    /** Configuration key of {@link #mergedVersions()}. */
    public static final String MERGED_VERSIONS_KEY = "topic.merged.versions";
    /** Configuration key of {@link #deadLetter()}. */
    public static final String DEAD_LETTER_KEY = "topic.deadletter";
    /** Configuration key of {@link #schemas()}. */
    public static final String SCHEMAS_KEY = "topic.schemas";

    /** Kafka's legal topic names: ASCII letters, digits, '.', '_', '-'; at most 249 characters. */
    private static final Pattern LEGAL = Pattern.compile("[a-zA-Z0-9._-]{1,249}");

    private static final TopicNames DEFAULTS = new TopicNames("lora.adapter.layers", "lora.adapter.events",
            "lora.merged.layers", "lora.merged.versions", "lora.deadletter", "lora.schemas");

    /** Validates every name (legal Kafka topic name) and that no two roles share a topic. */
    public TopicNames {
        Map<String, String> byRole = new LinkedHashMap<>();
        byRole.put(ADAPTER_LAYERS_KEY, adapterLayers);
        byRole.put(ADAPTER_EVENTS_KEY, adapterEvents);
        byRole.put(MERGED_LAYERS_KEY, mergedLayers);
        byRole.put(MERGED_VERSIONS_KEY, mergedVersions);
        byRole.put(DEAD_LETTER_KEY, deadLetter);
        byRole.put(SCHEMAS_KEY, schemas);
        Map<String, String> roleByName = new LinkedHashMap<>();
        byRole.forEach((role, name) -> {
            Objects.requireNonNull(name, role);
            if (!LEGAL.matcher(name).matches() || name.equals(".") || name.equals("..")) {
                throw new IllegalArgumentException("illegal topic name for " + role + ": '" + name
                        + "' (allowed: 1..249 of [a-zA-Z0-9._-], not '.' or '..')");
            }
            String other = roleByName.putIfAbsent(name, role);
            if (other != null) {
                throw new IllegalArgumentException("topic '" + name + "' is configured for both " + other
                        + " and " + role + "; every role needs its own topic");
            }
        });
    }

    /** The default names ({@code lora.adapter.layers}, ...). */
    public static TopicNames defaults() {
        return DEFAULTS;
    }

    /**
     * Names from a configuration map; keys {@code topic.adapter.layers} etc. (see the class comment),
     * other keys ignored, missing keys default.
     *
     * @param config configuration; values are turned into strings and trimmed
     * @return the names
     * @throws IllegalArgumentException if a name is illegal or two roles share a topic
     */
    public static TopicNames from(Map<String, ?> config) {
        Objects.requireNonNull(config, "config");
        return new TopicNames(
                value(config, ADAPTER_LAYERS_KEY, DEFAULTS.adapterLayers),
                value(config, ADAPTER_EVENTS_KEY, DEFAULTS.adapterEvents),
                value(config, MERGED_LAYERS_KEY, DEFAULTS.mergedLayers),
                value(config, MERGED_VERSIONS_KEY, DEFAULTS.mergedVersions),
                value(config, DEAD_LETTER_KEY, DEFAULTS.deadLetter),
                value(config, SCHEMAS_KEY, DEFAULTS.schemas));
    }

    /** As {@link #from(Map)}, from {@link Properties} (defaults of the Properties object included). */
    public static TopicNames from(Properties config) {
        Objects.requireNonNull(config, "config");
        Map<String, String> map = new LinkedHashMap<>();
        for (String key : config.stringPropertyNames()) {
            map.put(key, config.getProperty(key));
        }
        return from(map);
    }

    /** The same names with {@code prefix} put before each; handy for tests and multi-tenant clusters. */
    public TopicNames withPrefix(String prefix) {
        Objects.requireNonNull(prefix, "prefix");
        return new TopicNames(prefix + adapterLayers, prefix + adapterEvents, prefix + mergedLayers,
                prefix + mergedVersions, prefix + deadLetter, prefix + schemas);
    }

    /** Every topic, in the order of the record components. */
    public List<String> all() {
        return List.of(adapterLayers, adapterEvents, mergedLayers, mergedVersions, deadLetter, schemas);
    }

    private static String value(Map<String, ?> config, String key, String fallback) {
        Object v = config.get(key);
        if (v == null) {
            return fallback;
        }
        String s = v.toString().trim();
        if (s.isEmpty()) {
            throw new IllegalArgumentException("configuration key " + key + " is empty; remove it to use "
                    + fallback);
        }
        return s;
    }
}
