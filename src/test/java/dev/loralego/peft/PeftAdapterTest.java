package dev.loralego.peft;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Opening adapter directories: the three real PEFT adapters and hand-made broken ones. */
class PeftAdapterTest {

    private static final double EXACT = 0.0;

    @TempDir
    Path dir;

    // ------------------------------------------------------------ real fixtures

    @Test
    void fixturesAreIntactPerSourceTxt() throws IOException, NoSuchAlgorithmException {
        Pattern line = Pattern.compile("^\\s+([0-9a-f]{64})\\s+(\\S+)\\s*$", Pattern.MULTILINE);
        for (String name : Fixtures.NAMES) {
            Path d = Fixtures.dir(name);
            String source = Files.readString(d.resolve("SOURCE.txt"));
            Matcher m = line.matcher(source.substring(source.indexOf("sha256:")));
            int checked = 0;
            while (m.find()) {
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(d.resolve(m.group(2))));
                assertEquals(m.group(1), HexFormat.of().formatHex(digest), name + "/" + m.group(2));
                checked++;
            }
            assertEquals(2, checked, "both files of " + name + " listed");
        }
    }

    @Test
    void tigrinyaCausal() throws IOException {
        try (PeftAdapter a = PeftAdapter.open(Fixtures.dir("gpt2-tigrinya-causal"))) {
            assertEquals(36, a.modules().size(), "12 layers x attn.c_attn, attn.c_proj, mlp.c_proj");
            checkGpt2Module(a, "transformer.h.0.attn.c_attn", 768, 2304, 4.0);
            checkGpt2Module(a, "transformer.h.11.attn.c_proj", 768, 768, 4.0);
            checkGpt2Module(a, "transformer.h.5.mlp.c_proj", 3072, 768, 4.0);
            assertTrue(a.extraTensors().isEmpty());
            assertTrue(a.fanInFanOut());
            assertEquals("CAUSAL_LM", a.config().taskType());
            assertEquals("gpt2", a.config().baseModel());
            assertEquals(List.of("c_attn", "c_proj"), a.config().targetModules());
            for (LoraModuleInfo m : a.modules().values()) {
                assertTrue(a.config().targets(m.module()), m.module());
            }
        }
    }

    @Test
    void imdbSeqClsHasOnlyCAttnAndAScoreHead() throws IOException {
        try (PeftAdapter a = PeftAdapter.open(Fixtures.dir("gpt2-imdb-seqcls-cattn"))) {
            assertEquals(12, a.modules().size());
            for (int layer = 0; layer < 12; layer++) {
                checkGpt2Module(a, "transformer.h." + layer + ".attn.c_attn", 768, 2304, 2.0);
            }
            assertEquals(List.of("base_model.model.score.weight"), new ArrayList<>(a.extraTensors().keySet()));
            assertArrayEquals(new long[]{2, 768}, a.extraTensors().get("base_model.model.score.weight").shape());
            assertEquals(List.of("classifier", "score"), a.config().modulesToSave());
            assertEquals("SEQ_CLS", a.config().taskType());
        }
    }

    @Test
    void seqClsCAttnCProj() throws IOException {
        try (PeftAdapter a = PeftAdapter.open(Fixtures.dir("gpt2-seqcls-cattn-cproj"))) {
            assertEquals(36, a.modules().size());
            checkGpt2Module(a, "transformer.h.3.attn.c_attn", 768, 2304, 4.0);
            checkGpt2Module(a, "transformer.h.3.attn.c_proj", 768, 768, 4.0);
            checkGpt2Module(a, "transformer.h.3.mlp.c_proj", 3072, 768, 4.0);
            assertEquals(List.of("base_model.model.score.weight"), new ArrayList<>(a.extraTensors().keySet()));
            assertEquals(DType.F32, a.dominantDType());
        }
    }

    private static void checkGpt2Module(PeftAdapter a, String module, int dIn, int dOut, double scaling) throws IOException {
        LoraModuleInfo m = a.module(module);
        assertEquals(8, m.rank(), module);
        assertEquals(dIn, m.dIn(), module);
        assertEquals(dOut, m.dOut(), module);
        assertArrayEquals(new long[]{8, dIn}, m.a().shape(), module + " A");
        assertArrayEquals(new long[]{dOut, 8}, m.b().shape(), module + " B");
        assertEquals(scaling, m.scaling(), EXACT, module);
        assertEquals("base_model.model." + module + ".lora_A.weight", m.a().name());
        // values: readA equals the raw little-endian F32 bytes decoded independently
        double[] aValues = a.readA(module);
        ByteBuffer raw = ByteBuffer.wrap(a.weights().readRawBytes(m.a().name())).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(8 * dIn, aValues.length);
        for (int i = 0; i < aValues.length; i++) {
            assertEquals(raw.getFloat(4 * i), aValues[i], EXACT);
        }
        double[] b = a.readB(module);
        assertEquals(dOut * 8, b.length);
        assertTrue(java.util.Arrays.stream(aValues).anyMatch(v -> v != 0), "trained A is not zero");
    }

    // ------------------------------------------------------------ hand-made adapters

    private Path adapter(String name, String config, Map<String, long[]> tensors) throws IOException {
        Path d = dir.resolve(name);
        Files.createDirectories(d);
        Files.writeString(d.resolve("adapter_config.json"), config);
        List<TensorData> data = new ArrayList<>();
        for (Map.Entry<String, long[]> e : tensors.entrySet()) {
            long n = 1;
            for (long x : e.getValue()) {
                n *= x;
            }
            double[] v = new double[(int) n];
            for (int i = 0; i < v.length; i++) {
                v[i] = (i % 7) - 3;
            }
            data.add(new TensorData(e.getKey(), DType.F16, e.getValue(), v));
        }
        SafetensorsWriter.write(d.resolve("adapter_model.safetensors"), null, data);
        return d;
    }

    private static final String P = "base_model.model.";
    private static final String CONFIG_R4 = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}";

    private static Map<String, long[]> tensors(Object... nameShape) {
        Map<String, long[]> m = new TreeMap<>();
        for (int i = 0; i < nameShape.length; i += 2) {
            m.put((String) nameShape[i], (long[]) nameShape[i + 1]);
        }
        return m;
    }

    @Test
    void acceptsAdapterNameInfixAndPatternRanks() throws IOException {
        Path d = adapter("infix", "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"rank_pattern\": {\"k\": 2}, "
                        + "\"alpha_pattern\": {\"k\": 1}}",
                tensors(P + "m.q.lora_A.default.weight", new long[]{4, 10}, P + "m.q.lora_B.default.weight", new long[]{6, 4},
                        P + "m.k.lora_A.default.weight", new long[]{2, 10}, P + "m.k.lora_B.default.weight", new long[]{3, 2}));
        try (PeftAdapter a = PeftAdapter.open(d)) {
            assertEquals(List.of("m.k", "m.q"), new ArrayList<>(a.modules().keySet()));
            assertEquals(2, a.module("m.k").rank());
            assertEquals(0.5, a.module("m.k").scaling(), EXACT);
            assertEquals(2.0, a.module("m.q").scaling(), EXACT);
            assertEquals(DType.F16, a.dominantDType());
            double[] aq = a.readA("m.q");
            assertEquals(40, aq.length);
            assertEquals(-3, aq[0], EXACT);
            assertEquals(3, aq[6], EXACT);
        }
    }

    private String rejected(Path d) {
        Exception e = assertThrows(Exception.class, () -> PeftAdapter.open(d).close());
        return e.getMessage();
    }

    @Test
    void rejectsModuleProblemsNamingTheModule() throws IOException {
        String m1 = rejected(adapter("noB", CONFIG_R4, tensors(P + "x.q.lora_A.weight", new long[]{4, 10})));
        assertTrue(m1.contains("'x.q'") && m1.contains("no lora_B"), m1);
        String m2 = rejected(adapter("noA", CONFIG_R4, tensors(P + "x.q.lora_B.weight", new long[]{10, 4})));
        assertTrue(m2.contains("'x.q'") && m2.contains("no lora_A"), m2);
        String m3 = rejected(adapter("mismatch", CONFIG_R4, tensors(P + "x.q.lora_A.weight", new long[]{4, 10},
                P + "x.q.lora_B.weight", new long[]{10, 5})));
        assertTrue(m3.contains("'x.q'") && m3.contains("rank 4") && m3.contains("rank 5"), m3);
        String m4 = rejected(adapter("configRank", "{\"peft_type\": \"LORA\", \"r\": 8}", tensors(P + "x.q.lora_A.weight",
                new long[]{4, 10}, P + "x.q.lora_B.weight", new long[]{10, 4})));
        assertTrue(m4.contains("'x.q'") && m4.contains("r = 8"), m4);
        String m5 = rejected(adapter("threeD", CONFIG_R4, tensors(P + "x.c.lora_A.weight", new long[]{4, 3, 1, 1},
                P + "x.c.lora_B.weight", new long[]{5, 4, 1, 1})));
        assertTrue(m5.contains("'x.c'") && m5.contains("2-D"), m5);
        String m6 = rejected(adapter("dora", CONFIG_R4, tensors(P + "x.q.lora_A.weight", new long[]{4, 10},
                P + "x.q.lora_B.weight", new long[]{10, 4}, P + "x.q.lora_magnitude_vector", new long[]{10})));
        assertTrue(m6.contains("'x.q'") && m6.contains("DoRA"), m6);
        String m7 = rejected(adapter("twice", CONFIG_R4, tensors(P + "x.q.lora_A.weight", new long[]{4, 10},
                P + "x.q.lora_A.other.weight", new long[]{4, 10}, P + "x.q.lora_B.weight", new long[]{10, 4})));
        assertTrue(m7.contains("'x.q'") && m7.contains("two lora_A"), m7);
        String m8 = rejected(adapter("none", CONFIG_R4, tensors(P + "score.weight", new long[]{2, 3})));
        assertTrue(m8.contains("no LoRA tensors"), m8);
    }

    /** F32 A {@code [4, 10]} and B {@code [6, 4]} of module {@code x.q}, with distinct values. */
    private static HandBuiltSafetensors f32Factors() {
        float[] a = new float[40];
        float[] b = new float[24];
        for (int i = 0; i < a.length; i++) {
            a[i] = i * 0.25f - 3;
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = 2 - i * 0.125f;
        }
        return new HandBuiltSafetensors().f32(P + "x.q.lora_A.weight", new long[]{4, 10}, a)
                .f32(P + "x.q.lora_B.weight", new long[]{6, 4}, b);
    }

    private Path rawAdapter(String name, HandBuiltSafetensors weights) throws IOException {
        Path d = dir.resolve(name);
        Files.createDirectories(d);
        Files.writeString(d.resolve("adapter_config.json"), CONFIG_R4);
        weights.write(d.resolve("adapter_model.safetensors"));
        return d;
    }

    /**
     * A {@code modules_to_save} BatchNorm saves an I64 {@code num_batches_tracked} (a scalar) beside the LoRA factors;
     * the adapter opens and lists it as an extra tensor, like a float head, and the factors read as before.
     */
    @Test
    void nonFloatExtraTensorsAreListedAsExtras() throws IOException {
        String counter = P + "classifier.bn.num_batches_tracked";
        String mask = P + "classifier.mask";
        Path d = rawAdapter("bn", f32Factors().i64(counter, new long[]{}, 1234)
                .tensor(mask, "BOOL", new long[]{3}, new byte[]{1, 0, 1})
                .f32(P + "classifier.bn.weight", new long[]{2}, 1f, 1f));
        try (PeftAdapter a = PeftAdapter.open(d)) {
            assertEquals(List.of("x.q"), List.copyOf(a.modules().keySet()));
            assertEquals(List.of(P + "classifier.bn.num_batches_tracked", P + "classifier.bn.weight", mask),
                    List.copyOf(a.extraTensors().keySet()));
            TensorInfo t = a.extraTensors().get(counter);
            assertEquals(ElementType.I64, t.elementType());
            assertArrayEquals(new long[]{}, t.shape());
            assertEquals(1234, ByteBuffer.wrap(a.weights().readRawBytes(counter)).order(ByteOrder.LITTLE_ENDIAN).getLong());
            assertEquals(DType.F32, a.dominantDType());
            assertEquals(-3, a.readA("x.q")[0], EXACT);
            assertEquals(2 - 23 * 0.125, a.readB("x.q")[23], EXACT);
        }
    }

    /** A LoRA factor must be F32, F16, BF16 or F64: an I32 (or F8) one is refused at open, named with its dtype. */
    @Test
    void aLoraFactorThatIsNotFloatIsRefusedNamingItAndItsDtype() throws IOException {
        String aName = P + "x.q.lora_A.weight";
        Path i32 = rawAdapter("i32", new HandBuiltSafetensors().tensor(aName, "I32", new long[]{4, 10}, new byte[160])
                .f32(P + "x.q.lora_B.weight", new long[]{6, 4}, new float[24]));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.open(i32).close());
        assertTrue(e.getMessage().contains("'" + aName + "'") && e.getMessage().contains("I32")
                && e.getMessage().contains("'x.q'"), e.getMessage());

        String bName = P + "x.q.lora_B.default.weight";
        Path f8 = rawAdapter("f8", new HandBuiltSafetensors().f32(P + "x.q.lora_A.default.weight", new long[]{4, 10},
                new float[40]).tensor(bName, "F8_E4M3", new long[]{6, 4}, new byte[24]));
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.open(f8).close());
        assertTrue(e.getMessage().contains("'" + bName + "'") && e.getMessage().contains("F8_E4M3"), e.getMessage());
    }

    /**
     * PEFT's PiSSA, OLoRA, CorDA and LoftQ initialisations subtract the initial {@code s·B0·A0} from (or quantise) the
     * base weight ({@code peft/tuners/lora/layer.py} {@code pissa_init}/{@code olora_init}/{@code loftq_init}), and
     * {@code load_adapter} runs them again when the saved config still names them ({@code PeftModel.save_pretrained},
     * {@code save_mutated_as_lora}: "Otherwise, self.load_adapter will subtract the decomposed values again"). Such an
     * adapter's update of the original base weight is {@code s·(B·A − B0·A0)}, not {@code s·B·A}: merging its factors as
     * plain LoRA is silently wrong. Converted adapters are saved with {@code init_lora_weights = true}.
     */
    @Test
    void rejectsAdaptersWhoseInitMutatedTheBaseWeights() throws IOException {
        Map<String, long[]> ok = tensors(P + "x.q.lora_A.weight", new long[]{4, 10}, P + "x.q.lora_B.weight", new long[]{10, 4});
        for (String init : List.of("\"pissa\"", "\"pissa_niter_4\"", "\"olora\"", "\"corda\"", "\"loftq\"")) {
            String config = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"init_lora_weights\": " + init + "}";
            String msg = rejected(adapter("init" + init.replace("\"", ""), config, ok));
            assertTrue(msg.contains("init_lora_weights"), init + ": " + msg);
        }
        for (String init : List.of("true", "false", "\"gaussian\"", "\"eva\"", "\"orthogonal\"", "null")) {
            String config = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"init_lora_weights\": " + init + "}";
            try (PeftAdapter a = PeftAdapter.open(adapter("plain" + init.replace("\"", ""), config, ok))) {
                assertEquals(2.0, a.module("x.q").scaling(), EXACT, init);
            }
        }
    }

    @Test
    void rejectsBadDirectoriesAndConfigs() throws IOException {
        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        NoSuchFileException e1 = assertThrows(NoSuchFileException.class, () -> PeftAdapter.open(empty));
        assertTrue(e1.getMessage().contains("adapter_config.json"), e1.getMessage());
        Files.writeString(empty.resolve("adapter_config.json"), CONFIG_R4);
        NoSuchFileException e2 = assertThrows(NoSuchFileException.class, () -> PeftAdapter.open(empty));
        assertTrue(e2.getMessage().contains("adapter_model.safetensors"), e2.getMessage());
        assertThrows(NoSuchFileException.class, () -> PeftAdapter.open(dir.resolve("missing")));
        Map<String, long[]> ok = tensors(P + "x.q.lora_A.weight", new long[]{4, 10}, P + "x.q.lora_B.weight", new long[]{10, 4});
        assertTrue(rejected(adapter("ia3", "{\"peft_type\": \"IA3\"}", ok)).contains("IA3"));
        assertTrue(rejected(adapter("usedora", "{\"peft_type\": \"LORA\", \"r\": 4, \"use_dora\": true}", ok)).contains("use_dora"));
        assertTrue(rejected(adapter("badjson", "{\"r\": 4,", ok)).contains("adapter_config.json"));
        assertTrue(rejected(adapter("alora", "{\"peft_type\": \"LORA\", \"r\": 4, \"alora_invocation_tokens\": [32, 7]}", ok))
                .contains("alora_invocation_tokens"));
        assertTrue(rejected(adapter("replicated", "{\"peft_type\": \"LORA\", \"r\": 4, \"layer_replication\": [[0, 4], [2, 6]]}", ok))
                .contains("layer_replication"));
        for (String unset : new String[]{"null", "[]"}) {   // what PEFT writes when neither is used
            Path plain = adapter("unset" + unset.length(), "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 4,"
                    + " \"alora_invocation_tokens\": " + unset + ", \"layer_replication\": " + unset + "}", ok);
            try (PeftAdapter a = PeftAdapter.open(plain)) {
                assertEquals(List.of("x.q"), List.copyOf(a.modules().keySet()));
            }
        }
        Path broken = adapter("brokenweights", CONFIG_R4, ok);
        Files.write(broken.resolve("adapter_model.safetensors"), new byte[]{1, 2, 3});
        assertThrows(SafetensorsFormatException.class, () -> PeftAdapter.open(broken));
    }
}
