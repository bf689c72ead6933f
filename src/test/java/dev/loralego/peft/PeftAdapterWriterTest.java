package dev.loralego.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Merged adapters written as PEFT directories and read back. */
class PeftAdapterWriterTest {

    private static final double EXACT = 0.0;
    /** bf16 keeps p = 8 significant bits: round-to-nearest error is at most the unit roundoff 2^-p relative. */
    private static final double BF16_RELATIVE = 0x1p-8;
    /** Tolerance for comparing dense ΔW products computed in different association orders. */
    private static final double PRODUCT_TOLERANCE = 1e-12;

    @TempDir
    Path dir;

    private static ModuleFactors factors(SplittableRandom rnd, int rank, int dIn, int dOut) {
        double[] a = new double[rank * dIn];
        double[] b = new double[dOut * rank];
        for (int i = 0; i < a.length; i++) {
            a[i] = rnd.nextGaussian() / Math.sqrt(dIn);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = rnd.nextGaussian() * 1e-2;
        }
        return new ModuleFactors(rank, dIn, dOut, a, b);
    }

    /** gpt2-like modules with mixed ranks: most common rank 6 (4 modules), then 3, 9. */
    private static SortedMap<String, ModuleFactors> gpt2Modules(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        SortedMap<String, ModuleFactors> m = new TreeMap<>();
        m.put("transformer.h.0.attn.c_attn", factors(rnd, 6, 24, 72));
        m.put("transformer.h.0.attn.c_proj", factors(rnd, 3, 24, 24));
        m.put("transformer.h.0.mlp.c_proj", factors(rnd, 9, 96, 24));
        m.put("transformer.h.1.attn.c_attn", factors(rnd, 6, 24, 72));
        m.put("transformer.h.1.attn.c_proj", factors(rnd, 6, 24, 24));
        m.put("transformer.h.1.mlp.c_proj", factors(rnd, 6, 96, 24));
        m.put("transformer.h.10.mlp.c_proj", factors(rnd, 3, 96, 24));
        return m;
    }

    @Test
    void writtenF32AdapterReadsBackExactlyWithPerModuleRanks() throws IOException {
        SortedMap<String, ModuleFactors> modules = gpt2Modules(1);
        Path out = dir.resolve("merged");
        PeftAdapterWriter.write(out, new MergedAdapterSpec("gpt2", "CAUSAL_LM", true, DType.F32, modules, null));
        try (PeftAdapter a = PeftAdapter.open(out)) {
            AdapterConfig c = a.config();
            assertEquals(new ArrayList<>(modules.keySet()), new ArrayList<>(a.modules().keySet()));
            assertEquals(6, c.r());
            assertEquals(6, c.loraAlpha(), EXACT);
            assertEquals("LORA", c.peftType());
            assertEquals("gpt2", c.baseModel());
            assertEquals("CAUSAL_LM", c.taskType());
            assertTrue(c.fanInFanOut());
            assertFalse(c.useRslora());
            assertEquals(3, c.rankPattern().size(), "only modules whose rank differs from r");
            assertEquals(new ArrayList<>(modules.keySet()), c.targetModules(), "exact full names, sorted");
            assertEquals(List.of(), a.extraTensors().keySet().stream().toList());
            for (var e : modules.entrySet()) {
                String name = e.getKey();
                ModuleFactors f = e.getValue();
                LoraModuleInfo m = a.module(name);
                assertEquals(f.rank(), m.rank(), name);
                assertEquals(f.dIn(), m.dIn(), name);
                assertEquals(f.dOut(), m.dOut(), name);
                assertEquals(1.0, m.scaling(), EXACT, "scaling 1 for " + name);
                assertEquals(f.rank(), c.rankFor(name));
                double[] ra = a.readA(name);
                double[] rb = a.readB(name);
                for (int i = 0; i < ra.length; i++) {
                    assertEquals((float) f.a()[i], ra[i], EXACT, name + " A[" + i + "]");
                }
                for (int i = 0; i < rb.length; i++) {
                    assertEquals((float) f.b()[i], rb[i], EXACT, name + " B[" + i + "]");
                }
            }
            // each rank_pattern key selects exactly its module under PEFT's regex rule, checked over all gpt2 module names
            List<String> allGpt2 = new ArrayList<>();
            for (BaseModelShape.ModuleShape s : BaseModelShape.byName("gpt2").modules()) {
                allGpt2.add(s.module());
            }
            for (String key : c.rankPattern().keySet()) {
                List<String> hits = new ArrayList<>();
                Pattern p = Pattern.compile("(.*\\.)?(" + key + ")$");
                for (String name : allGpt2) {
                    if (p.matcher(name).lookingAt()) {
                        hits.add(name);
                    }
                }
                assertEquals(1, hits.size(), key + " matched " + hits);
                assertEquals(c.rankPattern().get(key), modules.get(hits.get(0)).rank());
            }
            // every written module gets its rank under current PEFT's rule and under the rule before huggingface/peft#2419
            List<String> keys = new ArrayList<>(c.rankPattern().keySet());
            for (var e : modules.entrySet()) {
                assertEquals(e.getValue().rank(), pattern(keys, c.rankPattern(), c.r(), e.getKey(), false), e.getKey());
                assertEquals(e.getValue().rank(), pattern(keys, c.rankPattern(), c.r(), e.getKey(), true), "legacy " + e.getKey());
            }
            // target_modules hit exactly the merged modules among all gpt2 modules (mlp.c_proj vs attn.c_proj!)
            for (String name : allGpt2) {
                assertEquals(modules.containsKey(name), c.targets(name), name);
            }
        }
    }

    @Test
    void bf16ValuesAreWithinBf16Rounding() throws IOException {
        SortedMap<String, ModuleFactors> modules = gpt2Modules(2);
        Path out = dir.resolve("bf16");
        PeftAdapterWriter.write(out, new MergedAdapterSpec("gpt2", null, true, DType.BF16, modules, null));
        try (PeftAdapter a = PeftAdapter.open(out)) {
            assertEquals(DType.BF16, a.dominantDType());
            assertTrue(a.config().raw().get("task_type").isNull());
            for (var e : modules.entrySet()) {
                double[] ra = a.readA(e.getKey());
                double[] want = e.getValue().a();
                for (int i = 0; i < ra.length; i++) {
                    assertEquals(want[i], ra[i], Math.abs(want[i]) * BF16_RELATIVE, e.getKey() + " A[" + i + "]");
                }
                double[] rb = a.readB(e.getKey());
                double[] wantB = e.getValue().b();
                for (int i = 0; i < rb.length; i++) {
                    assertEquals(wantB[i], rb[i], Math.abs(wantB[i]) * BF16_RELATIVE, e.getKey() + " B[" + i + "]");
                }
            }
        }
    }

    @Test
    void rewritingARealAdapterKeepsItsDeltaWAndItsConfigFields() throws IOException {
        Path src = Fixtures.dir("gpt2-tigrinya-causal");
        SortedMap<String, ModuleFactors> modules = new TreeMap<>();
        ObjectNode extra;
        SortedMap<String, double[]> deltaW = new TreeMap<>();
        try (PeftAdapter a = PeftAdapter.open(src)) {
            extra = a.config().raw();
            for (LoraModuleInfo m : a.modules().values()) {
                double[] aa = a.readA(m.module());
                double[] bb = a.readB(m.module());
                double[] scaledB = new double[bb.length];
                for (int i = 0; i < bb.length; i++) {
                    scaledB[i] = bb[i] * m.scaling(); // fold s into B so the written adapter has scaling 1
                }
                modules.put(m.module(), new ModuleFactors(m.rank(), m.dIn(), m.dOut(), aa, scaledB));
                if (m.module().startsWith("transformer.h.0.")) {
                    deltaW.put(m.module(), denseDeltaW(m.scaling(), aa, bb, m.rank(), m.dIn(), m.dOut()));
                }
            }
        }
        Path out = dir.resolve("rewritten");
        PeftAdapterWriter.write(out, new MergedAdapterSpec("gpt2", "CAUSAL_LM", true, DType.F64, modules, extra));
        try (PeftAdapter b = PeftAdapter.open(out)) {
            assertEquals(36, b.modules().size());
            for (var e : deltaW.entrySet()) {
                LoraModuleInfo m = b.module(e.getKey());
                double[] got = denseDeltaW(m.scaling(), b.readA(m.module()), b.readB(m.module()), m.rank(), m.dIn(), m.dOut());
                double[] want = e.getValue();
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], PRODUCT_TOLERANCE, e.getKey() + " ΔW[" + i + "]");
                }
            }
            JsonNode raw = b.config().raw();
            assertEquals(16, raw.get("qalora_group_size").intValue(), "unknown field carried");
            assertEquals(0.05, raw.get("lora_dropout").doubleValue(), EXACT, "known extra field carried");
            assertEquals(8, b.config().r(), "computed r wins over extra");
            assertEquals(8.0, b.config().loraAlpha(), EXACT, "computed lora_alpha (not 32) wins over extra");
            assertTrue(raw.get("layers_to_transform").isNull());
        }
    }

    /** ΔW = s · B A, dense dOut × dIn, by the textbook triple loop. */
    private static double[] denseDeltaW(double s, double[] a, double[] b, int r, int dIn, int dOut) {
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < dIn; i++) {
                double sum = 0;
                for (int k = 0; k < r; k++) {
                    sum += b[o * r + k] * a[k * dIn + i];
                }
                w[o * dIn + i] = s * sum;
            }
        }
        return w;
    }

    /**
     * The written factors are a plain update of the original base model. An {@code init_lora_weights} carried in the
     * extra config that PEFT runs again on load and that rewrites the base weights ({@code pissa*}, {@code olora},
     * {@code corda}, {@code loftq}: {@code peft/tuners/lora/layer.py}) would make PEFT subtract a decomposition of the
     * base from it when loading the merged adapter; PEFT itself writes {@code true} when it converts such an adapter.
     */
    @Test
    void extraBaseMutatingInitIsNotWritten() throws IOException {
        for (String init : List.of("pissa", "pissa_niter_16", "olora", "corda", "loftq")) {
            ObjectNode extra = JsonNodeFactory.instance.objectNode().put("init_lora_weights", init).put("lora_dropout", 0.1);
            Path out = dir.resolve("init-" + init);
            PeftAdapterWriter.write(out, new MergedAdapterSpec("gpt2", "CAUSAL_LM", true, DType.F32, gpt2Modules(5), extra));
            JsonNode written = PeftJson.MAPPER.readTree(Files.readString(out.resolve(PeftAdapter.CONFIG_FILE)));
            assertTrue(written.get("init_lora_weights").isBoolean() && written.get("init_lora_weights").booleanValue(),
                    init + " -> " + written.get("init_lora_weights"));
            assertEquals(0.1, written.get("lora_dropout").doubleValue(), EXACT, "other extra fields still carried");
            PeftAdapter.open(out).close();
        }
        ObjectNode harmless = JsonNodeFactory.instance.objectNode().put("init_lora_weights", "gaussian");
        Path out = dir.resolve("init-gaussian");
        PeftAdapterWriter.write(out, new MergedAdapterSpec("gpt2", "CAUSAL_LM", true, DType.F32, gpt2Modules(5), harmless));
        assertEquals("gaussian", PeftJson.MAPPER.readTree(Files.readString(out.resolve(PeftAdapter.CONFIG_FILE)))
                .get("init_lora_weights").textValue(), "an init that leaves the base alone is carried");
    }

    @Test
    void bytesAreDeterministic() throws IOException {
        ObjectNode extra = JsonNodeFactory.instance.objectNode().put("lora_dropout", 0.1).put("zz_custom", "x");
        MergedAdapterSpec spec = new MergedAdapterSpec("gpt2", "SEQ_CLS", true, DType.F16, gpt2Modules(3), extra);
        Path one = dir.resolve("one");
        Path two = dir.resolve("two");
        PeftAdapterWriter.write(one, spec);
        PeftAdapterWriter.write(two, spec);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) {
            assertArrayEquals(Files.readAllBytes(one.resolve(f)), Files.readAllBytes(two.resolve(f)), f);
        }
        JsonNode config = new ObjectMapper().readTree(Files.readString(one.resolve("adapter_config.json")));
        List<String> keys = new ArrayList<>();
        config.fieldNames().forEachRemaining(keys::add);
        List<String> sorted = new ArrayList<>(keys);
        sorted.sort(null);
        assertEquals(sorted, keys, "keys sorted like PEFT's save_pretrained");
        assertEquals("x", config.get("zz_custom").textValue());
        try (var files = Files.list(one)) {
            assertEquals(2, files.count(), "no temporary files left");
        }
    }

    @Test
    void defaultRankIsMostCommonWithTiesToLargest() {
        SplittableRandom rnd = new SplittableRandom(4);
        SortedMap<String, ModuleFactors> m = new TreeMap<>();
        m.put("a", factors(rnd, 2, 3, 3));
        m.put("b", factors(rnd, 4, 3, 3));
        assertEquals(4, PeftAdapterWriter.defaultRank(m));
        m.put("c", factors(rnd, 2, 3, 3));
        assertEquals(2, PeftAdapterWriter.defaultRank(m));
        m.put("d", factors(rnd, 5, 3, 3));
        m.put("e", factors(rnd, 5, 3, 3));
        assertEquals(5, PeftAdapterWriter.defaultRank(m));
    }

    /**
     * The value PEFT takes from a {@code rank_pattern}-like map for {@code module}, written from its two rules:
     * current PEFT takes the first key {@code k} in file order with {@code re.match(rf"(.*\.)?({k})$", module)};
     * before huggingface/peft#2419 the first with {@code re.match(rf".*\.{k}$", module)}; with none, both look the
     * module name itself up, else the default.
     */
    private static int pattern(List<String> keys, Map<String, Integer> values, int dflt, String module, boolean legacy) {
        for (String k : keys) {
            Pattern p = Pattern.compile(legacy ? ".*\\." + k + "$" : "(.*\\.)?(" + k + ")$");
            if (p.matcher(module).lookingAt()) return values.get(k);
        }
        return values.getOrDefault(module, dflt);
    }

    @Test
    void patternKeysAreFullNamesWhereBothPeftRulesReadThemAndAnchoredOtherwise() {
        List<String> gpt2 = List.of("transformer.h.1.attn.c_proj", "transformer.h.11.attn.c_proj", "transformer.h.1.mlp.c_proj");
        for (String m : gpt2) assertEquals(m, PeftAdapterWriter.patternKey(m, gpt2));

        // "a.b" is a suffix of "x.a.b": the older rule (and the newer) would also give its value to "x.a.b"
        List<String> nested = List.of("a.b", "x.a.b");
        assertEquals("^a\\.b", PeftAdapterWriter.patternKey("a.b", nested));
        assertEquals("x.a.b", PeftAdapterWriter.patternKey("x.a.b", nested));
        // "." is a wildcard: "h.1" also matches "hx1" under both rules
        List<String> wildcard = List.of("h.1", "hx1");
        assertEquals("^h\\.1", PeftAdapterWriter.patternKey("h.1", wildcard));
        assertEquals("hx1", PeftAdapterWriter.patternKey("hx1", wildcard));
        // a name with another regex metacharacter is never used plain
        List<String> odd = List.of("experts.w-1", "experts.w1");
        assertEquals("^experts\\.w\\-1", PeftAdapterWriter.patternKey("experts.w-1", odd));

        for (List<String> all : List.of(gpt2, nested, wildcard, odd)) {
            for (String m : all) {
                String key = PeftAdapterWriter.patternKey(m, all);
                List<String> keys = List.of(key);
                for (String other : all) {
                    int want = other.equals(m) ? 7 : 3;
                    assertEquals(want, pattern(keys, Map.of(key, 7), 3, other, false), key + " on " + other);
                    if (key.equals(m)) assertEquals(want, pattern(keys, Map.of(key, 7), 3, other, true), "legacy " + key + " on " + other);
                }
            }
        }
    }
}
