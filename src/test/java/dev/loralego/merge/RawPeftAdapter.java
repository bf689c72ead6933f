package dev.loralego.merge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A PEFT adapter directory read with nothing but Jackson and {@code java.nio} — no {@code dev.loralego.peft} — so the
 * merge tests compare the code under test with an independent view of its inputs: the raw F32 tensors of
 * {@code adapter_model.safetensors} (8-byte little-endian header length, JSON header, data) and the PEFT scaling
 * {@code lora_alpha / r} taken straight from {@code adapter_config.json}. Never used by main code.
 */
final class RawPeftAdapter {
    static final String PREFIX = "base_model.model.";
    static final String A_SUFFIX = ".lora_A.weight";
    static final String B_SUFFIX = ".lora_B.weight";
    static final ObjectMapper JSON = new ObjectMapper();

    /** The real fixtures, in the order the tests pass them to the merge. */
    static final String[] FIXTURES = {"gpt2-tigrinya-causal", "gpt2-imdb-seqcls-cattn", "gpt2-seqcls-cattn-cproj"};

    /** One module's factors as stored: {@code a} row-major {@code r × dIn}, {@code b} row-major {@code dOut × r}. */
    record RawModule(int r, int dIn, int dOut, double[] a, double[] b) {
    }

    final Path dir;
    final JsonNode config;
    /**
     * {@code lora_alpha / r}, read from the JSON; NaN when rank/alpha patterns or rsLoRA make it per module (the
     * fixtures have none; merged outputs may, and are read here only for their tensors).
     */
    final double scaling;
    final SortedMap<String, RawModule> modules;
    /** Names of tensors that are not LoRA factors. */
    final SortedSet<String> extraTensors;

    private RawPeftAdapter(Path dir, JsonNode config, double scaling, SortedMap<String, RawModule> modules,
                           SortedSet<String> extraTensors) {
        this.dir = dir;
        this.config = config;
        this.scaling = scaling;
        this.modules = modules;
        this.extraTensors = extraTensors;
    }

    static Path fixture(String name) {
        URL url = RawPeftAdapter.class.getResource("/real-adapters/" + name);
        if (url == null) throw new IllegalStateException("fixture " + name + " missing from the test classpath");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static RawPeftAdapter read(Path dir) throws IOException {
        JsonNode config = JSON.readTree(dir.resolve("adapter_config.json").toFile());
        boolean plain = !config.path("use_rslora").asBoolean(false)
                && config.path("rank_pattern").size() == 0 && config.path("alpha_pattern").size() == 0;
        double scaling = plain ? config.get("lora_alpha").asDouble() / config.get("r").asInt() : Double.NaN;
        Map<String, float[]> tensors = new TreeMap<>();
        Map<String, int[]> shapes = new TreeMap<>();
        readSafetensors(dir.resolve("adapter_model.safetensors"), tensors, shapes);
        SortedMap<String, RawModule> modules = new TreeMap<>();
        SortedSet<String> extra = new TreeSet<>();
        for (String name : tensors.keySet()) {
            if (name.endsWith(A_SUFFIX)) {
                String module = name.substring(PREFIX.length(), name.length() - A_SUFFIX.length());
                String bName = PREFIX + module + B_SUFFIX;
                int[] sa = shapes.get(name), sb = shapes.get(bName);
                modules.put(module, new RawModule(sa[0], sa[1], sb[0], widen(tensors.get(name)), widen(tensors.get(bName))));
            } else if (!name.endsWith(B_SUFFIX)) {
                extra.add(name);
            }
        }
        return new RawPeftAdapter(dir, config, scaling, modules, extra);
    }

    /** Reads every tensor of an F32 or BF16 safetensors file. */
    static void readSafetensors(Path file, Map<String, float[]> tensors, Map<String, int[]> shapes) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen = (int) buf.getLong(0);
        JsonNode header = JSON.readTree(new String(bytes, 8, headerLen, StandardCharsets.UTF_8));
        int dataStart = 8 + headerLen;
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            String dtype = t.get("dtype").asText();
            int[] shape = new int[t.get("shape").size()];
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = t.get("shape").get(i).asInt();
                count *= shape[i];
            }
            int begin = dataStart + t.get("data_offsets").get(0).asInt();
            float[] v = new float[(int) count];
            for (int i = 0; i < v.length; i++) {
                v[i] = switch (dtype) {
                    case "F32" -> buf.getFloat(begin + 4 * i);
                    case "BF16" -> Float.intBitsToFloat((buf.getShort(begin + 2 * i) & 0xffff) << 16);
                    default -> throw new IllegalStateException(file + ": dtype " + dtype + " not handled by the reference");
                };
            }
            tensors.put(e.getKey(), v);
            shapes.put(e.getKey(), shape);
        }
    }

    /** The safetensors dtype names of a file's tensors, by tensor name. */
    static SortedMap<String, String> dtypes(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        int headerLen = (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        JsonNode header = JSON.readTree(new String(bytes, 8, headerLen, StandardCharsets.UTF_8));
        SortedMap<String, String> out = new TreeMap<>();
        header.fields().forEachRemaining(e -> {
            if (!e.getKey().equals("__metadata__")) out.put(e.getKey(), e.getValue().get("dtype").asText());
        });
        return out;
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
