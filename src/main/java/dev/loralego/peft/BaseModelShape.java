package dev.loralego.peft;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The LoRA-targetable linear layers of a base model: module names and dimensions exactly as in the
 * HuggingFace {@code transformers} implementation, used to generate realistic synthetic adapters.
 *
 * <p>Known shapes ({@link #byName}):
 * <ul>
 *   <li>{@code tiny}: a Llama-like toy, 2 layers, hidden 64, intermediate 172, all 7 projections.</li>
 *   <li>{@code gpt2}: 12 layers {@code transformer.h.{i}.attn.c_attn} 768→2304, {@code attn.c_proj} 768→768,
 *       {@code mlp.c_fc} 768→3072, {@code mlp.c_proj} 3072→768; {@code fan_in_fan_out} (Conv1D).</li>
 *   <li>{@code llama-7b}: 32 layers {@code model.layers.{i}.self_attn.{q,k,v,o}_proj} 4096→4096,
 *       {@code mlp.{gate,up}_proj} 4096→11008, {@code mlp.down_proj} 11008→4096 (meta-llama/Llama-2-7b-hf).</li>
 *   <li>{@code llama-13b}: 40 layers, hidden 5120, intermediate 13824 (meta-llama/Llama-2-13b-hf).</li>
 *   <li>{@code mistral-7b}: 32 layers, hidden 4096, intermediate 14336, grouped-query attention with 8 KV
 *       heads of 128 so {@code k_proj}/{@code v_proj} are 4096→1024 (mistralai/Mistral-7B-v0.1).</li>
 * </ul>
 *
 * @param name          short name ({@code tiny}, {@code gpt2}, ...)
 * @param baseModelName {@code base_model_name_or_path} for configs
 * @param fanInFanOut   whether the base model stores weights {@code [in, out]} (GPT-2 Conv1D)
 * @param layers        number of transformer blocks
 * @param layerPrefix   module name prefix before the layer index, e.g. {@code model.layers.}
 * @param templates     per-layer modules (suffix after the layer index, dimensions)
 */
public record BaseModelShape(String name, String baseModelName, boolean fanInFanOut, int layers, String layerPrefix,
                             List<ModuleTemplate> templates) {

    /**
     * One linear layer of a transformer block.
     *
     * @param suffix module name after {@code <layerPrefix><i>.}, e.g. {@code self_attn.q_proj}
     * @param dIn    input features
     * @param dOut   output features
     */
    public record ModuleTemplate(String suffix, int dIn, int dOut) {
        /** The last name component ({@code q_proj}), as used in {@code target_modules}. */
        public String shortName() {
            return suffix.substring(suffix.lastIndexOf('.') + 1);
        }
    }

    /**
     * A concrete module of the model.
     *
     * @param module full module name, e.g. {@code model.layers.0.self_attn.q_proj}
     * @param dIn    input features
     * @param dOut   output features
     */
    public record ModuleShape(String module, int dIn, int dOut) {
    }

    /** Validates and copies. */
    public BaseModelShape {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(baseModelName, "baseModelName");
        Objects.requireNonNull(layerPrefix, "layerPrefix");
        if (layers < 1 || templates.isEmpty()) {
            throw new IllegalArgumentException("shape '" + name + "' needs layers and modules");
        }
        templates = List.copyOf(templates);
    }

    private static final Map<String, BaseModelShape> KNOWN = new LinkedHashMap<>();

    static {
        register(llama("tiny", "loralego/tiny-llama-synthetic", 2, 64, 64, 172));
        register(new BaseModelShape("gpt2", "gpt2", true, 12, "transformer.h.", List.of(
                new ModuleTemplate("attn.c_attn", 768, 2304),
                new ModuleTemplate("attn.c_proj", 768, 768),
                new ModuleTemplate("mlp.c_fc", 768, 3072),
                new ModuleTemplate("mlp.c_proj", 3072, 768))));
        register(llama("llama-7b", "meta-llama/Llama-2-7b-hf", 32, 4096, 4096, 11008));
        register(llama("llama-13b", "meta-llama/Llama-2-13b-hf", 40, 5120, 5120, 13824));
        register(llama("mistral-7b", "mistralai/Mistral-7B-v0.1", 32, 4096, 1024, 14336));
    }

    private static void register(BaseModelShape s) {
        KNOWN.put(s.name(), s);
    }

    /** A Llama-style decoder: q/k/v/o attention projections (k/v of width {@code kvDim}) and a gated MLP. */
    private static BaseModelShape llama(String name, String base, int layers, int hidden, int kvDim, int intermediate) {
        return new BaseModelShape(name, base, false, layers, "model.layers.", List.of(
                new ModuleTemplate("self_attn.q_proj", hidden, hidden),
                new ModuleTemplate("self_attn.k_proj", hidden, kvDim),
                new ModuleTemplate("self_attn.v_proj", hidden, kvDim),
                new ModuleTemplate("self_attn.o_proj", hidden, hidden),
                new ModuleTemplate("mlp.gate_proj", hidden, intermediate),
                new ModuleTemplate("mlp.up_proj", hidden, intermediate),
                new ModuleTemplate("mlp.down_proj", intermediate, hidden)));
    }

    /**
     * The shape called {@code name}.
     *
     * @throws IllegalArgumentException listing the known names
     */
    public static BaseModelShape byName(String name) {
        BaseModelShape s = KNOWN.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown base model shape '" + name + "' (known: " + names() + ")");
        }
        return s;
    }

    /** The known shape names. */
    public static List<String> names() {
        return List.copyOf(KNOWN.keySet());
    }

    /** The distinct short names of the per-layer modules, in template order ({@code c_proj} once for GPT-2). */
    public List<String> shortNames() {
        List<String> out = new ArrayList<>();
        for (ModuleTemplate t : templates) {
            if (!out.contains(t.shortName())) {
                out.add(t.shortName());
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** Every module, layer by layer, in template order. */
    public List<ModuleShape> modules() {
        List<ModuleShape> out = new ArrayList<>(layers * templates.size());
        for (int i = 0; i < layers; i++) {
            for (ModuleTemplate t : templates) {
                out.add(new ModuleShape(layerPrefix + i + "." + t.suffix(), t.dIn(), t.dOut()));
            }
        }
        return out;
    }
}
