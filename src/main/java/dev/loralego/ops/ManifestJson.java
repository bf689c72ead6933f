package dev.loralego.ops;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.VersionTrigger;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * The JSON view of a {@link MergedVersionManifest} served by {@code /groups/{g}/versions/latest}.
 *
 * <p>Keys appear in the order of the Avro schema ({@code schemas/merged-version.avsc}): group, sequence,
 * baseModel, trigger, adapters, modules, digest, fanInFanOut, taskType, parameters (sorted by name),
 * eventTimestamp, serviceVersion, warnings. Nested records keep their schema order too, and absent optional
 * fields are written as {@code null}, so the same manifest always gives the same bytes.
 */
public final class ManifestJson {
    private static final ObjectMapper MAPPER = new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT);

    private ManifestJson() {
    }

    /** The manifest as a JSON tree, keys in schema order. */
    public static ObjectNode toTree(MergedVersionManifest m) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("group", m.getGroup());
        o.put("sequence", m.getSequence());
        o.put("baseModel", m.getBaseModel());
        VersionTrigger t = m.getTrigger();
        ObjectNode trigger = o.putObject("trigger");
        trigger.put("eventId", t.getEventId());
        trigger.put("type", t.getType().name());
        trigger.put("adapterId", t.getAdapterId());
        trigger.put("adapterVersion", t.getAdapterVersion());
        ArrayNode adapters = o.putArray("adapters");
        for (AdapterRef a : m.getAdapters()) {
            ObjectNode n = adapters.addObject();
            n.put("adapterId", a.getAdapterId());
            n.put("adapterVersion", a.getAdapterVersion());
            n.put("weight", a.getWeight());
            n.put("team", a.getTeam());
            n.put("digest", a.getDigest());
        }
        ArrayNode modules = o.putArray("modules");
        for (ModuleRef r : m.getModules()) {
            ObjectNode n = modules.addObject();
            n.put("module", r.getModule());
            n.put("rank", r.getRank());
            n.put("dIn", r.getDIn());
            n.put("dOut", r.getDOut());
            n.put("digest", r.getDigest());
        }
        o.put("digest", m.getDigest());
        o.put("fanInFanOut", m.getFanInFanOut());
        o.put("taskType", m.getTaskType());
        ObjectNode parameters = o.putObject("parameters");
        for (Map.Entry<String, String> e : new TreeMap<>(m.getParameters()).entrySet()) parameters.put(e.getKey(), e.getValue());
        o.put("eventTimestamp", m.getEventTimestamp());
        o.put("serviceVersion", m.getServiceVersion());
        ArrayNode warnings = o.putArray("warnings");
        for (String w : m.getWarnings()) warnings.add(w);
        return o;
    }

    /** The manifest as compact UTF-8 JSON. */
    public static byte[] toJson(MergedVersionManifest m) {
        try {
            return MAPPER.writeValueAsString(toTree(m)).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("could not write manifest of group " + m.getGroup() + " as JSON", e);
        }
    }
}
