package dev.loralego.peft;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Synthetic adapters: real module layouts, PEFT-readable, deterministic, with shared structure across adapters. */
class SyntheticAdaptersTest {

    private static final double EXACT = 0.0;
    /** |cos| above which two A rows count as the same skill direction (shared rows sit near 0.95, random near 0.1). */
    private static final double ALIGNED_COSINE = 0.8;

    @TempDir
    Path dir;

    @Test
    void tinyAdaptersHaveTheDocumentedModulesShapesAndConfig() throws IOException {
        List<Path> dirs = SyntheticAdapters.generate(dir.resolve("tiny"), 3, 4, BaseModelShape.byName("tiny"), 7, DType.F32);
        assertEquals(List.of("adapter-00", "adapter-01", "adapter-02"),
                dirs.stream().map(p -> p.getFileName().toString()).toList());
        for (Path d : dirs) {
            try (PeftAdapter a = PeftAdapter.open(d)) {
                assertEquals(14, a.modules().size());
                for (int layer = 0; layer < 2; layer++) {
                    String p = "model.layers." + layer + ".";
                    checkModule(a, p + "self_attn.q_proj", 64, 64);
                    checkModule(a, p + "self_attn.k_proj", 64, 64);
                    checkModule(a, p + "self_attn.v_proj", 64, 64);
                    checkModule(a, p + "self_attn.o_proj", 64, 64);
                    checkModule(a, p + "mlp.gate_proj", 64, 172);
                    checkModule(a, p + "mlp.up_proj", 64, 172);
                    checkModule(a, p + "mlp.down_proj", 172, 64);
                }
                AdapterConfig c = a.config();
                assertEquals(4, c.r());
                assertEquals(8, c.loraAlpha(), EXACT, "lora_alpha = 2r");
                assertEquals(List.of("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"),
                        c.targetModules());
                assertEquals("CAUSAL_LM", c.taskType());
                assertEquals("LORA", c.peftType());
                assertFalse(c.fanInFanOut());
                assertTrue(a.extraTensors().isEmpty());
                assertEquals(DType.F32, a.dominantDType());
            }
        }
    }

    private static void checkModule(PeftAdapter a, String module, int dIn, int dOut) {
        LoraModuleInfo m = a.module(module);
        assertEquals(dIn, m.dIn(), module);
        assertEquals(dOut, m.dOut(), module);
        assertEquals(2.0, m.scaling(), EXACT, module);
    }

    @Test
    void sameSeedSameBytesDifferentSeedDifferentBytes() throws IOException {
        BaseModelShape tiny = BaseModelShape.byName("tiny");
        List<Path> a = SyntheticAdapters.generate(dir.resolve("a"), 2, 4, tiny, 99, DType.BF16);
        List<Path> b = SyntheticAdapters.generate(dir.resolve("b"), 2, 4, tiny, 99, DType.BF16);
        List<Path> c = SyntheticAdapters.generate(dir.resolve("c"), 2, 4, tiny, 100, DType.BF16);
        List<Path> alone = SyntheticAdapters.generate(dir.resolve("alone"), 1, 4, tiny, 99, DType.BF16);
        for (int k = 0; k < 2; k++) {
            for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) {
                assertArrayEquals(Files.readAllBytes(a.get(k).resolve(f)), Files.readAllBytes(b.get(k).resolve(f)), f);
            }
            assertFalse(java.util.Arrays.equals(Files.readAllBytes(a.get(k).resolve("adapter_model.safetensors")),
                    Files.readAllBytes(c.get(k).resolve("adapter_model.safetensors"))), "seed changes values");
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a.get(0).resolve("adapter_model.safetensors")),
                Files.readAllBytes(a.get(1).resolve("adapter_model.safetensors"))), "adapters differ");
        assertArrayEquals(Files.readAllBytes(a.get(0).resolve("adapter_model.safetensors")),
                Files.readAllBytes(alone.get(0).resolve("adapter_model.safetensors")),
                "adapter 0 does not depend on how many adapters are generated");
    }

    @Test
    void valuesHaveTrainedLoraScalesAndSharedDirections() throws IOException {
        int rank = 8;
        List<Path> dirs = SyntheticAdapters.generate(dir.resolve("stats"), 2, rank, BaseModelShape.byName("tiny"), 5, DType.F64);
        int aligned = 0;
        int pairs = 0;
        try (PeftAdapter x = PeftAdapter.open(dirs.get(0)); PeftAdapter y = PeftAdapter.open(dirs.get(1))) {
            for (LoraModuleInfo m : x.modules().values()) {
                double[] ax = x.readA(m.module());
                double[] ay = y.readA(m.module());
                double[] bx = x.readB(m.module());
                // A entries ~ N(0, 1/dIn)-ish, B entries ~ 1e-2
                assertEquals(1.0 / Math.sqrt(m.dIn()), rms(ax), 0.5 / Math.sqrt(m.dIn()), m.module() + " A scale");
                assertEquals(SyntheticAdapters.B_SCALE, rms(bx), 0.5 * SyntheticAdapters.B_SCALE, m.module() + " B scale");
                for (int i = 0; i < rank; i++) {
                    for (int j = 0; j < rank; j++) {
                        pairs++;
                        if (Math.abs(cosine(ax, i, ay, j, m.dIn())) > ALIGNED_COSINE) {
                            aligned++;
                        }
                    }
                }
            }
        }
        // with a pool of 2r skills and 3/4 of the slots shared, two adapters share ~2 directions per module
        assertTrue(aligned >= 10, "shared skill directions across adapters: " + aligned + " of " + pairs);
        assertTrue(aligned < pairs / 8, "but most unit pairs are unrelated: " + aligned + " of " + pairs);
    }

    private static double rms(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x * x;
        }
        return Math.sqrt(s / v.length);
    }

    private static double cosine(double[] a, int rowA, double[] b, int rowB, int n) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int c = 0; c < n; c++) {
            double x = a[rowA * n + c];
            double y = b[rowB * n + c];
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        return dot / Math.sqrt(na * nb);
    }

    @Test
    void gpt2AdapterUsesConv1DLayout() throws IOException {
        List<Path> dirs = SyntheticAdapters.generate(dir.resolve("gpt2"), 1, 2, BaseModelShape.byName("gpt2"), 1, DType.F16,
                List.of("c_attn", "c_proj"));
        try (PeftAdapter a = PeftAdapter.open(dirs.get(0))) {
            assertEquals(36, a.modules().size());
            assertTrue(a.fanInFanOut());
            assertEquals("gpt2", a.config().baseModel());
            assertEquals(List.of("c_attn", "c_proj"), a.config().targetModules());
            LoraModuleInfo cAttn = a.module("transformer.h.0.attn.c_attn");
            assertArrayEquals(new long[]{2, 768}, cAttn.a().shape());
            assertArrayEquals(new long[]{2304, 2}, cAttn.b().shape());
            assertArrayEquals(new long[]{2, 3072}, a.module("transformer.h.11.mlp.c_proj").a().shape());
            assertArrayEquals(new long[]{768, 2}, a.module("transformer.h.11.mlp.c_proj").b().shape());
            assertEquals(DType.F16, a.dominantDType());
        }
    }

    @Test
    void knownShapesHaveRealDimensions() {
        BaseModelShape llama = BaseModelShape.byName("llama-7b");
        List<BaseModelShape.ModuleShape> modules = llama.modules();
        assertEquals(32 * 7, modules.size());
        assertEquals("meta-llama/Llama-2-7b-hf", llama.baseModelName());
        assertEquals(new BaseModelShape.ModuleShape("model.layers.0.self_attn.q_proj", 4096, 4096), modules.get(0));
        assertEquals(new BaseModelShape.ModuleShape("model.layers.31.mlp.down_proj", 11008, 4096), modules.get(modules.size() - 1));
        assertEquals(new BaseModelShape.ModuleShape("model.layers.0.mlp.up_proj", 4096, 11008), modules.get(5));
        BaseModelShape mistral = BaseModelShape.byName("mistral-7b");
        assertEquals(new BaseModelShape.ModuleShape("model.layers.0.self_attn.k_proj", 4096, 1024), mistral.modules().get(1));
        assertEquals(40 * 7, BaseModelShape.byName("llama-13b").modules().size());
        assertEquals(List.of("c_attn", "c_proj", "c_fc"), BaseModelShape.byName("gpt2").shortNames());
        long values = 0;
        for (BaseModelShape.ModuleShape m : modules) {
            values += 16L * (m.dIn() + m.dOut());
        }
        assertEquals(39_976_960L, values, "llama-7b at r=16: ~40M values, ~80 MB in bf16");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BaseModelShape.byName("gpt5"));
        assertTrue(e.getMessage().contains("gpt5") && e.getMessage().contains("llama-7b"));
    }

    @Test
    void rejectsBadArguments() {
        BaseModelShape tiny = BaseModelShape.byName("tiny");
        assertThrows(IllegalArgumentException.class, () -> SyntheticAdapters.generate(dir, 0, 4, tiny, 1, DType.F32));
        assertThrows(IllegalArgumentException.class, () -> SyntheticAdapters.generate(dir, 1, 0, tiny, 1, DType.F32));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SyntheticAdapters.generate(dir, 1, 4, tiny, 1, DType.F32, List.of("c_attn")));
        assertTrue(e.getMessage().contains("c_attn"));
        assertEquals("adapter-007", SyntheticAdapters.adapterDirName(7, 120));
        assertEquals("adapter-07", SyntheticAdapters.adapterDirName(7, 12));
        List<String> none = new ArrayList<>();
        assertThrows(IllegalArgumentException.class, () -> SyntheticAdapters.generate(dir, 1, 4, tiny, 1, DType.F32, none));
    }
}
