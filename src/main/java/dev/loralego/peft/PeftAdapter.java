package dev.loralego.peft;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter directory opened for reading: {@code adapter_config.json} plus
 * {@code adapter_model.safetensors}, with its modules discovered from the tensor names and checked against
 * the config.
 *
 * <p>Tensor names: {@code base_model.model.<module>.lora_A.weight} and {@code ...lora_B.weight}, also with an
 * adapter-name infix ({@code ...lora_A.default.weight}); the {@code base_model.model.} prefix is stripped to
 * give the module's full name. A is {@code [r, in]}, B {@code [out, r]}. {@link #open} fails, naming the module,
 * on a missing half, a factor that is not F32, F16, BF16 or F64 (named with its dtype), non-2-D factors, A and B
 * of different rank, a rank that differs from the config's (pattern-resolved) {@code r}, two copies of one
 * factor, and on LoRA variants this project cannot merge as
 * plain LoRA (DoRA magnitude vectors, LoRA bias, embedding LoRA, unconverted PiSSA/OLoRA/CorDA/LoftQ adapters,
 * whose initialisation rewrote the base weights, activated LoRA and layer replication). Every other tensor (e.g. a
 * {@code modules_to_save} head such as {@code base_model.model.score.weight}, or a BatchNorm's I64
 * {@code num_batches_tracked}: extras may have any dtype the format defines) is reported in
 * {@link #extraTensors()}, not as a module.
 */
public final class PeftAdapter implements AutoCloseable {

    /** The config file name PEFT writes. */
    public static final String CONFIG_FILE = "adapter_config.json";
    /** The weights file name PEFT writes with safetensors. */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    /** The prefix PEFT puts before module names in saved tensor names. */
    public static final String NAME_PREFIX = "base_model.model.";

    private static final Pattern LORA_FACTOR = Pattern.compile("(.+)\\.lora_([AB])(?:\\.([^.]+))?\\.weight");
    private static final Pattern UNSUPPORTED_LORA =
            Pattern.compile("(.+)\\.(lora_magnitude_vector|lora_embedding_[AB]|lora_[AB](?:\\.[^.]+)?\\.bias)(\\..*)?");

    private final Path directory;
    private final AdapterConfig config;
    private final SafetensorsFile weights;
    private final SortedMap<String, LoraModuleInfo> modules;
    private final SortedMap<String, TensorInfo> extraTensors;

    private PeftAdapter(Path directory, AdapterConfig config, SafetensorsFile weights,
                        SortedMap<String, LoraModuleInfo> modules, SortedMap<String, TensorInfo> extraTensors) {
        this.directory = directory;
        this.config = config;
        this.weights = weights;
        this.modules = modules;
        this.extraTensors = extraTensors;
    }

    /**
     * Opens an adapter directory.
     *
     * @throws NoSuchFileException        if the directory or one of its two files is missing
     * @throws SafetensorsFormatException if the weights file breaks the safetensors format
     * @throws IllegalArgumentException   for a bad config field or a module problem, naming it
     */
    public static PeftAdapter open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "not a PEFT adapter directory");
        }
        Path configFile = dir.resolve(CONFIG_FILE);
        Path weightsFile = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new NoSuchFileException(configFile.toString(), null, "PEFT adapter without " + CONFIG_FILE);
        }
        if (!Files.isRegularFile(weightsFile)) {
            String hint = Files.exists(dir.resolve("adapter_model.bin"))
                    ? "only adapter_model.bin (pickle) is present; convert it to safetensors"
                    : "PEFT adapter without " + WEIGHTS_FILE;
            throw new NoSuchFileException(weightsFile.toString(), null, hint);
        }
        AdapterConfig config = AdapterConfig.read(configFile);
        if (config.peftType() != null && !"LORA".equals(config.peftType())) {
            throw new IllegalArgumentException(configFile + ": peft_type is '" + config.peftType() + "', only LORA is supported");
        }
        if (config.useDora()) {
            throw new IllegalArgumentException(configFile + ": use_dora is true; DoRA adapters cannot be merged as plain LoRA");
        }
        if (isSet(config, "alora_invocation_tokens")) {
            throw new IllegalArgumentException(configFile + ": alora_invocation_tokens is set: an activated LoRA (aLoRA)"
                    + " applies only from its invocation tokens on, and a merged LoRA would apply it to every token");
        }
        if (isSet(config, "layer_replication")) {
            throw new IllegalArgumentException(configFile + ": layer_replication is set: its modules belong to the"
                    + " stacked copies of layers PEFT builds at load, not to the base model's layers, so they cannot be"
                    + " merged as plain LoRA modules of that model");
        }
        String mutatingInit = baseMutatingInit(config);
        if (mutatingInit != null) {
            throw new IllegalArgumentException(configFile + ": init_lora_weights is '" + mutatingInit + "': this"
                    + " initialisation changed the base weights (PEFT subtracts the initial B0·A0 from them, or quantises"
                    + " them), so the factors are not an update of the original base model; save it converted to plain"
                    + " LoRA (save_pretrained(..., path_initial_model_for_weight_conversion=...)) and merge that");
        }
        SafetensorsFile weights = SafetensorsFile.open(weightsFile);
        try {
            SortedMap<String, TensorInfo> extras = new TreeMap<>();
            SortedMap<String, LoraModuleInfo> modules = discoverModules(weightsFile, config, weights, extras);
            PeftAdapter adapter = new PeftAdapter(dir, config, weights,
                    Collections.unmodifiableSortedMap(modules), Collections.unmodifiableSortedMap(extras));
            weights = null;
            return adapter;
        } finally {
            if (weights != null) {
                weights.close();
            }
        }
    }

    /** Whether {@code config} holds {@code field} with a value other than {@code null} (or an empty list). */
    private static boolean isSet(AdapterConfig config, String field) {
        com.fasterxml.jackson.databind.JsonNode n = config.raw().get(field);
        return n != null && !n.isNull() && !(n.isContainerNode() && n.isEmpty());
    }

    /**
     * The {@code init_lora_weights} of {@code config} if it names an initialisation that rewrites the base weights
     * (PEFT {@code lora/layer.py}: {@code pissa*}, {@code corda*}, {@code olora}, {@code loftq}); otherwise {@code null}.
     * PEFT runs it again on load while the saved config still names it, so the factors alone are not the update.
     */
    static String baseMutatingInit(AdapterConfig config) {
        com.fasterxml.jackson.databind.JsonNode n = config.raw().get("init_lora_weights");
        return isBaseMutatingInit(n) ? n.textValue() : null;
    }

    /** Whether an {@code init_lora_weights} value names an initialisation that rewrites the base weights. */
    static boolean isBaseMutatingInit(com.fasterxml.jackson.databind.JsonNode n) {
        if (n == null || !n.isTextual()) {
            return false;
        }
        String v = n.textValue().toLowerCase(java.util.Locale.ROOT);
        return v.startsWith("pissa") || v.startsWith("corda") || v.equals("olora") || v.equals("loftq");
    }

    private static SortedMap<String, LoraModuleInfo> discoverModules(Path source, AdapterConfig config,
                                                                     SafetensorsFile weights,
                                                                     SortedMap<String, TensorInfo> extras) {
        SortedMap<String, TensorInfo> aTensors = new TreeMap<>();
        SortedMap<String, TensorInfo> bTensors = new TreeMap<>();
        for (TensorInfo t : weights.tensors().values()) {
            String name = t.name();
            String local = name.startsWith(NAME_PREFIX) ? name.substring(NAME_PREFIX.length()) : name;
            Matcher unsupported = UNSUPPORTED_LORA.matcher(local);
            if (unsupported.matches()) {
                throw new IllegalArgumentException(source + ": module '" + unsupported.group(1) + "': tensor '" + name
                        + "' belongs to a LoRA variant that cannot be merged as plain LoRA (DoRA, LoRA bias or embedding LoRA)");
            }
            Matcher m = LORA_FACTOR.matcher(local);
            if (!m.matches()) {
                extras.put(name, t);
                continue;
            }
            String module = m.group(1);
            if (!t.decodable()) {
                throw new IllegalArgumentException(source + ": module '" + module + "': LoRA factor '" + name
                        + "' has dtype " + t.elementType().safetensorsName() + "; LoRA factors must be F32, F16, BF16"
                        + " or F64");
            }
            SortedMap<String, TensorInfo> side = m.group(2).equals("A") ? aTensors : bTensors;
            TensorInfo previous = side.put(module, t);
            if (previous != null) {
                throw new IllegalArgumentException(source + ": module '" + module + "' has two lora_" + m.group(2)
                        + " tensors: '" + previous.name() + "' and '" + name + "' (several adapters in one file?)");
            }
        }
        for (String module : bTensors.keySet()) {
            if (!aTensors.containsKey(module)) {
                throw new IllegalArgumentException(source + ": module '" + module + "' has lora_B but no lora_A");
            }
        }
        SortedMap<String, LoraModuleInfo> modules = new TreeMap<>();
        for (Map.Entry<String, TensorInfo> e : aTensors.entrySet()) {
            String module = e.getKey();
            TensorInfo a = e.getValue();
            TensorInfo b = bTensors.get(module);
            if (b == null) {
                throw new IllegalArgumentException(source + ": module '" + module + "' has lora_A but no lora_B");
            }
            if (a.rank() != 2 || b.rank() != 2) {
                throw new IllegalArgumentException(source + ": module '" + module + "': LoRA factors must be 2-D, got A "
                        + TensorShapes.format(a.shape()) + " and B " + TensorShapes.format(b.shape())
                        + " (convolution LoRA is not supported)");
            }
            long rankA = a.dim(0);
            long dIn = a.dim(1);
            long dOut = b.dim(0);
            long rankB = b.dim(1);
            if (rankA != rankB) {
                throw new IllegalArgumentException(source + ": module '" + module + "': lora_A " + TensorShapes.format(a.shape())
                        + " has rank " + rankA + " but lora_B " + TensorShapes.format(b.shape()) + " has rank " + rankB);
            }
            if (rankA < 1 || dIn < 1 || dOut < 1 || dIn > Integer.MAX_VALUE || dOut > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(source + ": module '" + module + "': bad factor shapes A "
                        + TensorShapes.format(a.shape()) + ", B " + TensorShapes.format(b.shape()));
            }
            int expected = config.rankFor(module);
            if (rankA != expected) {
                throw new IllegalArgumentException(source + ": module '" + module + "': tensors have rank " + rankA
                        + " but the config gives r = " + expected + " (r / rank_pattern)");
            }
            modules.put(module, new LoraModuleInfo(module, (int) rankA, (int) dIn, (int) dOut, a, b,
                    config.scalingFor(module)));
        }
        if (modules.isEmpty()) {
            throw new IllegalArgumentException(source + ": no LoRA tensors (*.lora_A.weight / *.lora_B.weight) found");
        }
        return modules;
    }

    /** The adapter directory. */
    public Path directory() {
        return directory;
    }

    /** The parsed {@code adapter_config.json}. */
    public AdapterConfig config() {
        return config;
    }

    /** {@code fan_in_fan_out} of the config (the same for every module of one adapter). */
    public boolean fanInFanOut() {
        return config.fanInFanOut();
    }

    /** The weights file, for direct tensor access. */
    public SafetensorsFile weights() {
        return weights;
    }

    /** The LoRA modules by full name; unmodifiable. */
    public SortedMap<String, LoraModuleInfo> modules() {
        return modules;
    }

    /**
     * Tensors that are not LoRA factors (e.g. {@code modules_to_save} heads), of any dtype, by tensor name;
     * unmodifiable.
     */
    public SortedMap<String, TensorInfo> extraTensors() {
        return extraTensors;
    }

    /** The dtype holding most elements of the LoRA factors (ties: the first in {@link DType} order). */
    public DType dominantDType() {
        Map<DType, Long> elements = new EnumMap<>(DType.class);
        for (LoraModuleInfo m : modules.values()) {
            elements.merge(m.a().dtype(), m.a().elementCount(), Long::sum);
            elements.merge(m.b().dtype(), m.b().elementCount(), Long::sum);
        }
        DType best = null;
        long bestCount = -1;
        for (Map.Entry<DType, Long> e : elements.entrySet()) {
            if (e.getValue() > bestCount) {
                best = e.getKey();
                bestCount = e.getValue();
            }
        }
        return best;
    }

    /** The module called {@code module}, or an exception naming it and the directory. */
    public LoraModuleInfo module(String module) {
        LoraModuleInfo m = modules.get(module);
        if (m == null) {
            throw new IllegalArgumentException(directory + ": no LoRA module '" + module + "'");
        }
        return m;
    }

    /** {@code A} of {@code module}, row-major {@code [rank, dIn]}, as stored (scaling not applied). */
    public double[] readA(String module) throws IOException {
        return weights.readDoubles(module(module).a().name());
    }

    /** {@code B} of {@code module}, row-major {@code [dOut, rank]}, as stored (scaling not applied). */
    public double[] readB(String module) throws IOException {
        return weights.readDoubles(module(module).b().name());
    }

    /** Closes the weights file. */
    @Override
    public void close() throws IOException {
        weights.close();
    }

    @Override
    public String toString() {
        return "PeftAdapter[" + directory + ", " + modules.size() + " modules]";
    }
}
