package dev.loralego.client;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.peft.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code manifest.json}: a merged version's {@link MergedVersionManifest} as JSON, written beside the PEFT
 * files by {@code export} and {@code watch} so that a serving process (or a person) can tell which adapters,
 * versions and digests it is running.
 *
 * <p>Layout: {@code "manifestFormat": 1} first, then the manifest's fields with the Avro schema's names and
 * in its order ({@code group, sequence, baseModel, trigger, adapters, modules, digest, fanInFanOut, taskType,
 * parameters, eventTimestamp, serviceVersion, warnings, meanInertia}, then {@code withdrawnVersions} (sorted by
 * adapter id) when there are any); nested objects keep their schema order too, parameters are
 * sorted by name. Two-space indent, LF line ends, a final newline. The same manifest always gives the same
 * bytes. {@link #read} accepts any key order and refuses a newer {@code manifestFormat}.
 */
public final class ManifestJson {
    static {
        // Building manifests from copies (newBuilder(other)) makes Avro load our classes: they must be trusted.
        dev.loralego.registry.ShippedAvroClasses.trust();
    }

    /** The file name beside the PEFT files. */
    public static final String FILE_NAME = "manifest.json";
    /** The layout version this class writes and the newest it reads. */
    public static final int FORMAT = 1;

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();
    private static final ObjectWriter LINE_WRITER = MAPPER.writer().without(SerializationFeature.INDENT_OUTPUT);

    private ManifestJson() {
    }

    /** The JSON object of {@code m}, keys in the documented order. */
    public static ObjectNode toTree(MergedVersionManifest m) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode root = f.objectNode();
        root.put("manifestFormat", FORMAT);
        root.put("group", m.getGroup());
        root.put("sequence", m.getSequence());
        root.put("baseModel", m.getBaseModel());
        ObjectNode trigger = root.putObject("trigger");
        trigger.put("eventId", m.getTrigger().getEventId());
        trigger.put("type", m.getTrigger().getType().name());
        trigger.put("adapterId", m.getTrigger().getAdapterId());
        trigger.put("adapterVersion", m.getTrigger().getAdapterVersion());
        ArrayNode adapters = root.putArray("adapters");
        for (AdapterRef a : m.getAdapters()) {
            ObjectNode n = adapters.addObject();
            n.put("adapterId", a.getAdapterId());
            n.put("adapterVersion", a.getAdapterVersion());
            n.put("weight", a.getWeight());
            n.put("team", a.getTeam());
            n.put("digest", a.getDigest());
        }
        ArrayNode modules = root.putArray("modules");
        for (ModuleRef r : m.getModules()) {
            ObjectNode n = modules.addObject();
            n.put("module", r.getModule());
            n.put("rank", r.getRank());
            n.put("dIn", r.getDIn());
            n.put("dOut", r.getDOut());
            n.put("digest", r.getDigest());
        }
        root.put("digest", m.getDigest());
        root.put("fanInFanOut", m.getFanInFanOut());
        root.put("taskType", m.getTaskType());
        ObjectNode params = root.putObject("parameters");
        new TreeMap<>(m.getParameters()).forEach(params::put);
        root.put("eventTimestamp", m.getEventTimestamp());
        root.put("serviceVersion", m.getServiceVersion());
        ArrayNode warnings = root.putArray("warnings");
        m.getWarnings().forEach(warnings::add);
        root.put("meanInertia", m.getMeanInertia());
        if (!m.getWithdrawnVersions().isEmpty()) { // absent when empty: files without it read the same, and stay the same
            ObjectNode withdrawn = root.putObject("withdrawnVersions");
            new TreeMap<>(m.getWithdrawnVersions()).forEach(withdrawn::put);
        }
        return root;
    }

    /** The file's text (ends with a newline). */
    public static String toJson(MergedVersionManifest m) {
        try {
            return MAPPER.writeValueAsString(toTree(m)).replace("\r\n", "\n") + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write manifest JSON", e);
        }
    }

    /** The same fields on one line (no newline), as {@code versions --json} prints one manifest per line. */
    public static String toJsonLine(MergedVersionManifest m) {
        try {
            return LINE_WRITER.writeValueAsString(toTree(m));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write manifest JSON", e);
        }
    }

    /** Writes {@code m} to {@code file} through a temporary file in the same directory, then an atomic rename. */
    public static void write(Path file, MergedVersionManifest m) throws IOException {
        AtomicFiles.write(file, toJson(m).getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Reads a file written by {@link #write}.
     *
     * @throws IllegalArgumentException naming the file and field for bad JSON, a missing or mistyped field, or
     *                                  a {@code manifestFormat} newer than {@link #FORMAT}
     */
    public static MergedVersionManifest read(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        try {
            return parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses the text of a {@code manifest.json}; see {@link #read}. */
    public static MergedVersionManifest parse(String text) {
        JsonNode root;
        try {
            root = MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IllegalArgumentException("not a JSON object");
        long format = integer(root, "manifestFormat");
        if (format < 1 || format > FORMAT) {
            throw new IllegalArgumentException("manifestFormat " + format + " is not supported (this build reads 1.." + FORMAT
                    + "; upgrade lora-lego)");
        }
        JsonNode t = object(root, "trigger");
        VersionTrigger trigger = new VersionTrigger(text(t, "trigger.eventId", "eventId"),
                eventType(text(t, "trigger.type", "type")),
                text(t, "trigger.adapterId", "adapterId"), integer(t, "trigger.adapterVersion", "adapterVersion"));
        List<AdapterRef> adapters = new ArrayList<>();
        for (JsonNode a : array(root, "adapters")) {
            adapters.add(new AdapterRef(text(a, "adapters[].adapterId", "adapterId"),
                    integer(a, "adapters[].adapterVersion", "adapterVersion"), number(a, "adapters[].weight", "weight"),
                    optionalText(a, "adapters[].team", "team"), text(a, "adapters[].digest", "digest")));
        }
        List<ModuleRef> modules = new ArrayList<>();
        for (JsonNode r : array(root, "modules")) {
            modules.add(new ModuleRef(text(r, "modules[].module", "module"), (int) integer(r, "modules[].rank", "rank"),
                    (int) integer(r, "modules[].dIn", "dIn"), (int) integer(r, "modules[].dOut", "dOut"),
                    text(r, "modules[].digest", "digest")));
        }
        Map<String, String> params = new TreeMap<>();
        JsonNode p = object(root, "parameters");
        for (Map.Entry<String, JsonNode> e : p.properties()) {
            if (!e.getValue().isTextual()) throw new IllegalArgumentException("field 'parameters." + e.getKey() + "' must be a string");
            params.put(e.getKey(), e.getValue().textValue());
        }
        JsonNode fifo = root.get("fanInFanOut");
        if (fifo == null || !fifo.isBoolean()) throw new IllegalArgumentException("field 'fanInFanOut' must be true or false");
        return MergedVersionManifest.newBuilder()
                .setGroup(text(root, "group", "group"))
                .setSequence(integer(root, "sequence"))
                .setBaseModel(optionalText(root, "baseModel", "baseModel"))
                .setTrigger(trigger)
                .setAdapters(adapters)
                .setModules(modules)
                .setDigest(text(root, "digest", "digest"))
                .setFanInFanOut(fifo.booleanValue())
                .setTaskType(optionalText(root, "taskType", "taskType"))
                .setParameters(params)
                .setEventTimestamp(integer(root, "eventTimestamp"))
                .setServiceVersion(text(root, "serviceVersion", "serviceVersion"))
                .setWarnings(optionalStrings(root, "warnings"))
                .setMeanInertia(root.has("meanInertia") ? number(root, "meanInertia", "meanInertia") : 0.0)
                .setWithdrawnVersions(optionalVersions(root, "withdrawnVersions"))
                .build();
    }

    /** An optional object of adapter id to version (absent in files written before the field existed: empty). */
    private static Map<String, Long> optionalVersions(JsonNode root, String field) {
        JsonNode o = root.get(field);
        Map<String, Long> out = new TreeMap<>();
        if (o == null || o.isNull()) return out;
        if (!o.isObject()) throw new IllegalArgumentException("field '" + field + "' must be an object of adapter versions");
        for (Map.Entry<String, JsonNode> e : o.properties()) {
            if (!e.getValue().canConvertToExactIntegral() || !e.getValue().canConvertToLong()) {
                throw new IllegalArgumentException("field '" + field + "." + e.getKey() + "' must be an integer");
            }
            out.put(e.getKey(), e.getValue().longValue());
        }
        return out;
    }

    /** An optional array of strings (absent in files written before the field existed: empty). */
    private static List<String> optionalStrings(JsonNode root, String field) {
        JsonNode a = root.get(field);
        List<String> out = new ArrayList<>();
        if (a == null || a.isNull()) return out;
        if (!a.isArray()) throw new IllegalArgumentException("field '" + field + "' must be an array of strings");
        for (JsonNode e : a) {
            if (!e.isTextual()) throw new IllegalArgumentException("field '" + field + "[]' must be a string");
            out.add(e.textValue());
        }
        return out;
    }

    private static AdapterEventType eventType(String name) {
        try {
            return AdapterEventType.valueOf(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("field 'trigger.type' must be PUBLISH or WITHDRAW, got '" + name + "'", e);
        }
    }

    private static JsonNode object(JsonNode parent, String field) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isObject()) throw new IllegalArgumentException("field '" + field + "' must be an object");
        return n;
    }

    private static JsonNode array(JsonNode parent, String field) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isArray()) throw new IllegalArgumentException("field '" + field + "' must be a list");
        return n;
    }

    private static String text(JsonNode parent, String path, String field) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isTextual()) throw new IllegalArgumentException("field '" + path + "' must be a string");
        return n.textValue();
    }

    private static String optionalText(JsonNode parent, String path, String field) {
        JsonNode n = parent.get(field);
        if (n == null || n.isNull()) return null;
        if (!n.isTextual()) throw new IllegalArgumentException("field '" + path + "' must be a string or null");
        return n.textValue();
    }

    private static long integer(JsonNode parent, String field) {
        return integer(parent, field, field);
    }

    private static long integer(JsonNode parent, String path, String field) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isIntegralNumber() || !n.canConvertToLong()) {
            throw new IllegalArgumentException("field '" + path + "' must be an integer");
        }
        return n.longValue();
    }

    private static double number(JsonNode parent, String path, String field) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isNumber()) throw new IllegalArgumentException("field '" + path + "' must be a number");
        return n.doubleValue();
    }
}
