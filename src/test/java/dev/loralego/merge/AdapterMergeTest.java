package dev.loralego.merge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.DareMerge;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;
import dev.loralego.lego.ParameterReweighting;
import dev.loralego.peft.DType;
import dev.loralego.peft.HandBuiltSafetensors;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

import static dev.loralego.merge.DenseReference.addProduct;
import static dev.loralego.merge.DenseReference.distance;
import static dev.loralego.merge.DenseReference.eckartYoungError;
import static dev.loralego.merge.DenseReference.frobenius;
import static dev.loralego.merge.DenseReference.product;
import static dev.loralego.merge.DenseReference.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The offline merge on the three real gpt2 adapters of {@code src/test/resources/real-adapters} (alpha 32, 16, 32,
 * all r = 8; {@code attn.c_attn} in all three, {@code attn.c_proj} and {@code mlp.c_proj} only in the first and the
 * third). Every method is run end to end ({@link AdapterMerge#mergeTo}, output read back with
 * {@link PeftAdapter#open}) and checked against dense updates built here from the raw tensors and {@code alpha / r}
 * read from the JSON ({@link RawPeftAdapter}, {@link DenseReference}), not through the code under test.
 */
class AdapterMergeTest {

    /** Relative Frobenius error of a ΔW rebuilt from f32-stored factors (float rounding is ~1e-7; margin 100). */
    static final double F32_REL_TOL = 1e-5;
    /** Relative gap between a merged residual and the Eckart–Young optimum, for f32-stored output. */
    static final double EY_REL_TOL = 1e-4;
    /** Relative gap to the Eckart–Young optimum for results kept in double (EJML SVDs are accurate to ~1e-13). */
    static final double EY_DOUBLE_REL_TOL = 1e-8;
    /** Largest relative rounding error of bfloat16 round-to-nearest (8 significant bits: half an ulp ≤ 2^-8 |x|). */
    static final double BF16_REL = 0x1p-8;
    /**
     * Layers whose modules are compared as dense {@code d_out × d_in} matrices (all three kinds, targeted by three or
     * by two adapters); every other module is compared on {@link #PROBES} seeded random input vectors, which keeps
     * the class within its time budget (a dense pass over all 36 modules costs ~2.5 s per method).
     */
    static final Set<Integer> DENSE_LAYERS = Set.of(0, 5, 11);
    /** Random input vectors {@code x} on which {@code ΔW x} is compared for modules outside {@link #DENSE_LAYERS}. */
    static final int PROBES = 2;
    /**
     * Modules with an independent dense SVD: one targeted by all three adapters, one by two (a dense SVD costs
     * 0.4–2 s; the 768 × 3072 {@code mlp.c_proj} is left to the orthogonality check).
     */
    static final List<String> EY_MODULES = List.of("transformer.h.0.attn.c_attn", "transformer.h.5.attn.c_proj");

    static List<Path> dirs;
    static List<RawPeftAdapter> raw;
    static SortedSet<String> union;

    @TempDir
    Path tmp;

    /** The coefficient {@code c_t} of adapter {@code t}'s {@code s_t B_t A_t} in a module's expected ΔW. */
    @FunctionalInterface
    interface Coefficients {
        double of(String module, int adapter);
    }

    @BeforeAll
    static void readFixtures() throws IOException {
        dirs = new ArrayList<>();
        raw = new ArrayList<>();
        union = new TreeSet<>();
        for (String name : RawPeftAdapter.FIXTURES) {
            Path dir = RawPeftAdapter.fixture(name);
            dirs.add(dir);
            RawPeftAdapter a = RawPeftAdapter.read(dir);
            raw.add(a);
            union.addAll(a.modules.keySet());
        }
        // what the fixtures' README promises, so a changed fixture fails here rather than obscurely below
        assertEquals(36, union.size());
        assertEquals(36, raw.get(0).modules.size());
        assertEquals(12, raw.get(1).modules.size());
        assertEquals(36, raw.get(2).modules.size());
        assertEquals(32.0 / 8, raw.get(0).scaling);
        assertEquals(16.0 / 8, raw.get(1).scaling);
        assertEquals(32.0 / 8, raw.get(2).scaling);
    }

    // ---- exact baselines -------------------------------------------------------------------------------------

    @Test
    void catIsTheExactSumOfScaledUpdatesIncludingModulesOnlySomeAdaptersTarget() throws IOException {
        Path out = tmp.resolve("cat");
        AdapterMerge.Result result = merge(baseline(MergeMethod.CAT, BaselineOptions.defaults()), null, null, 1, out);

        // rank Σ r_t: 3 × 8 where all three target the module, 2 × 8 where two do
        assertEquals(new TreeMap<>(Map.of(24, 12, 16, 24)), result.rankHistogram());
        assertMergedDeltaW(out, raw, (m, t) -> 1.0, F32_REL_TOL);
    }

    @Test
    void linearIsTheWeightedAverageNormalisedOverAllAdaptersWithUntargetedModulesCountingAsZero() throws IOException {
        Path out = tmp.resolve("linear");
        double[] w = {1, 2, 3};
        merge(baseline(MergeMethod.LINEAR, BaselineOptions.defaults()), w, null, 2, out);

        // ΔW = Σ_t (w_t / 6) s_t B_t A_t: on c_proj modules (adapters 0 and 2 only) the coefficients add up to 4/6,
        // not 1, because adapter 1 contributes a zero update there
        assertMergedDeltaW(out, raw, (m, t) -> w[t] / 6.0, F32_REL_TOL);
    }

    @Test
    void taskArithmeticIsLambdaTimesTheSum() throws IOException {
        Path out = tmp.resolve("task_arithmetic");
        merge(baseline(MergeMethod.TASK_ARITHMETIC, BaselineOptions.defaults().withLambda(0.5)), null, null, 2, out);

        assertMergedDeltaW(out, raw, (m, t) -> 0.5, F32_REL_TOL);
    }

    @Test
    void svdIsTheEckartYoungOptimumOfTheLinearAverage() throws IOException {
        Path out = tmp.resolve("svd");
        int k = 8;
        AdapterMerge.Result result = merge(baseline(MergeMethod.SVD, BaselineOptions.defaults().withK(k)), null, null, 2, out);
        assertEquals(new TreeMap<>(Map.of(k, 36)), result.rankHistogram());

        try (PeftAdapter merged = PeftAdapter.open(out)) {
            for (String module : union) {
                LoraModuleInfo info = merged.module(module);
                assertEquals(k, info.rank(), module);
                assertEquals(1.0, info.scaling(), 0.0, module);
                if (!isDense(module)) continue;
                double[] avg = expectedDeltaW(module, raw, (m, t) -> 1.0 / 3);
                double[] got = product(merged.readB(module), merged.readA(module), info.dOut(), info.rank(), info.dIn(), 1.0);
                double err = distance(got, avg);
                // a truncated SVD is an orthogonal projection of the average: ‖X‖² + ‖M − X‖² = ‖M‖²
                double norm = frobenius(avg), gotNorm = frobenius(got);
                assertEquals(norm * norm, gotNorm * gotNorm + err * err, EY_REL_TOL * norm * norm, module);
                if (EY_MODULES.contains(module)) {
                    double optimum = eckartYoungError(avg, info.dOut(), info.dIn(), k);
                    assertTrue(optimum > 0.01 * norm, module + ": the truncation must discard something");
                    assertEquals(optimum, err, EY_REL_TOL * optimum, module + ": residual vs Eckart–Young optimum");
                }
            }
        }
    }

    // ---- LoRA-LEGO ---------------------------------------------------------------------------------------------

    /**
     * With {@code k} at least the pool size every unit is its own cluster (ALGORITHM.md §3: {@code k} is clamped to
     * the pool size, unit {@code i} is cluster {@code i}), and a singleton's weighted mean is the unit itself whatever
     * its weight. So the merged LoRA is the concatenation of all scaling-folded units (§1), and by the
     * concatenation–summation equivalence {@code ΔW_out = Σ_t s_t B_t A_t}: the SUM of the adapters, not their
     * average (LoRA-LEGO approximates the average only when a cluster gathers one unit of each adapter, as at
     * {@code k = r}). Every canonical form keeps each adapter's {@code B A} exactly, so all three give the sum.
     * Modules targeted by two adapters have a pool of 16 &lt; 24 units: rank 16 there, 24 on {@code c_attn}.
     */
    @ParameterizedTest
    @EnumSource(CanonicalForm.class)
    void legoWithKAtLeastThePoolSizeKeepsEveryUnitSoTheUpdatesAreSummed(CanonicalForm canonical) throws IOException {
        Path out = tmp.resolve("lego-" + canonical);
        LegoOptions options = new LegoOptions(24, Map.of(), 42L, 4, 300, canonical, FeatureNorm.NONE,
                ParameterReweighting.OFF, false);
        AdapterMerge.Result result = merge(MergeSpec.lego(options), new double[]{1, 2, 3}, null, 2, out);

        assertEquals(new TreeMap<>(Map.of(24, 12, 16, 24)), result.rankHistogram());
        assertEquals(0.0, result.meanInertia(), "singleton clusters have no inertia");
        assertMergedDeltaW(out, raw, (m, t) -> 1.0, F32_REL_TOL);

        // §5: r = lora_alpha = the most common rank (16, 24 modules); the 12 c_attn modules of rank 24 in both patterns
        JsonNode config = RawPeftAdapter.JSON.readTree(out.resolve(PeftAdapter.CONFIG_FILE).toFile());
        assertEquals(16, config.get("r").asInt());
        assertEquals(16, config.get("lora_alpha").asInt());
        assertEquals(12, config.get("rank_pattern").size());
        assertEquals(config.get("rank_pattern"), config.get("alpha_pattern"));
        config.get("rank_pattern").elements().forEachRemaining(v -> assertEquals(24, v.asInt()));
        config.get("rank_pattern").fieldNames().forEachRemaining(key -> assertTrue(key.endsWith("c_attn"), key));
    }

    /**
     * Dual reweighting on singleton clusters (ALGORITHM.md §4): the parameter reweighting multiplies a centroid by
     * (mean member norm) / (centroid norm) = 1, and the output reweighting by {@code γ = sqrt(r̄ / k')} with
     * {@code r̄ = 8} and {@code k'} the clusters kept: {@code sqrt(8/24)} on {@code c_attn}, {@code sqrt(8/16)} elsewhere.
     */
    @Test
    void legoDualReweightingOfSingletonClustersScalesTheSumByGamma() throws IOException {
        Path out = tmp.resolve("lego-gamma");
        LegoOptions options = new LegoOptions(24, Map.of(), 42L, 4, 300, CanonicalForm.NONE, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
        merge(MergeSpec.lego(options), null, null, 2, out);

        assertMergedDeltaW(out, raw, (m, t) -> Math.sqrt(8.0 / (8 * targeting(m))), F32_REL_TOL);
    }

    /**
     * Merging an adapter with a copy of itself under the default options (k = 8, canonical svd, both reweightings)
     * gives the adapter back: the pool holds every canonical unit twice, k-means++ never draws a unit at distance 0
     * from a chosen centre while others remain, so the 8 centres are the 8 distinct units, Lloyd converges at once
     * with inertia 0, each centroid is its unit (whatever the weights), the norm ratio is 1 and {@code γ = sqrt(8/8)}.
     */
    @Test
    void legoMergeOfAnAdapterWithItsOwnCopyReturnsTheAdapter() throws IOException {
        Path copy = tmp.resolve("gpt2-tigrinya-copy");
        Files.createDirectories(copy);
        for (String f : List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE)) {
            Files.copy(dirs.get(0).resolve(f), copy.resolve(f));
        }
        Path out = tmp.resolve("lego-self");
        AdapterMerge.Result result = new AdapterMerge(MergeSpec.lego(LegoOptions.defaults()), 2)
                .mergeTo(List.of(dirs.get(0), copy), new double[]{1, 3}, null, out, null);

        assertEquals(new TreeMap<>(Map.of(8, 36)), result.rankHistogram());
        assertEquals(0.0, result.meanInertia());
        assertMergedDeltaW(out, List.of(raw.get(0)), (m, t) -> 1.0, F32_REL_TOL);
    }

    @Test
    void legoDefaultOutputIsAPeftAdapterWithScalingOneOverTheUnionOfModules() throws IOException {
        Path out = tmp.resolve("lego-default");
        AdapterMerge.Result result = merge(MergeSpec.lego(LegoOptions.defaults()), null, null, 2, out);
        assertEquals("gpt2", result.baseModel());
        assertEquals(new TreeMap<>(Map.of(8, 36)), result.rankHistogram(), "k defaults to the largest source rank");

        JsonNode config = RawPeftAdapter.JSON.readTree(out.resolve(PeftAdapter.CONFIG_FILE).toFile());
        assertEquals("LORA", config.get("peft_type").asText());
        assertEquals(8, config.get("r").asInt());
        assertEquals(8, config.get("lora_alpha").asInt());
        assertFalse(config.get("use_rslora").asBoolean());
        assertTrue(config.get("fan_in_fan_out").asBoolean());
        assertEquals("gpt2", config.get("base_model_name_or_path").asText());
        assertEquals("SEQ_CLS", config.get("task_type").asText(),
                "the most common task_type of the inputs: two SEQ_CLS, and one CAUSAL_LM given first (the service agrees)");
        assertEquals(0, config.get("rank_pattern").size());
        assertEquals(0, config.get("alpha_pattern").size());
        assertTrue(config.get("modules_to_save").isNull(), "heads are not merged, so none is declared");
        List<String> targets = new ArrayList<>();
        config.get("target_modules").elements().forEachRemaining(n -> targets.add(n.asText()));
        assertEquals(new ArrayList<>(union), targets, "full module names: 'c_proj' alone would be ambiguous");

        RawPeftAdapter written = RawPeftAdapter.read(out);
        assertEquals(union, written.modules.keySet());
        assertTrue(written.extraTensors.isEmpty(), () -> "unexpected tensors " + written.extraTensors);
        for (Map.Entry<String, RawPeftAdapter.RawModule> e : written.modules.entrySet()) {
            RawPeftAdapter.RawModule m = e.getValue();
            RawPeftAdapter.RawModule source = raw.get(0).modules.get(e.getKey());
            assertEquals(8, m.r(), e.getKey());
            assertEquals(source.dIn(), m.dIn(), e.getKey());
            assertEquals(source.dOut(), m.dOut(), e.getKey());
            assertTrue(Arrays.stream(m.a()).allMatch(Double::isFinite) && Arrays.stream(m.b()).allMatch(Double::isFinite),
                    e.getKey());
            assertTrue(frobenius(m.a()) > 0 && frobenius(m.b()) > 0, e.getKey());
        }
    }

    @Test
    void nonLoraTensorsAreLeftOutAndReported() throws IOException {
        Path out = tmp.resolve("heads");
        AdapterMerge.Result result = merge(baseline(MergeMethod.CAT, BaselineOptions.defaults()), null, null, 1, out);

        assertEquals(List.of("gpt2-imdb-seqcls-cattn:base_model.model.score.weight",
                "gpt2-seqcls-cattn-cproj:base_model.model.score.weight"), result.skippedExtra());
        assertTrue(RawPeftAdapter.read(out).extraTensors.isEmpty());
        try (PeftAdapter merged = PeftAdapter.open(out)) {
            assertTrue(merged.extraTensors().isEmpty());
        }
    }

    /**
     * A non-float extra tensor, such as the I64 {@code num_batches_tracked} a {@code modules_to_save} BatchNorm saves,
     * is left out and reported like a float head: the merge equals, byte for byte, the merge of the same adapters
     * without it.
     */
    @Test
    void nonFloatExtraTensorsAreLeftOutLikeFloatOnes() throws IOException {
        String counter = "base_model.model.classifier.bn.num_batches_tracked";
        List<Path> with = new ArrayList<>();
        List<Path> without = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
            with.add(handBuilt(tmp.resolve("with").resolve("adapter-" + t), factors(t).i64(counter, new long[]{}, 100 + t)));
            without.add(handBuilt(tmp.resolve("without").resolve("adapter-" + t), factors(t)));
        }
        MergeSpec spec = MergeSpec.lego(LegoOptions.defaults());
        Path outWith = tmp.resolve("merged-with");
        Path outWithout = tmp.resolve("merged-without");
        AdapterMerge.Result withResult = new AdapterMerge(spec, 1).mergeTo(with, null, null, outWith, null);
        AdapterMerge.Result withoutResult = new AdapterMerge(spec, 1).mergeTo(without, null, null, outWithout, null);

        assertEquals(List.of("adapter-0:" + counter, "adapter-1:" + counter), withResult.skippedExtra());
        assertEquals(List.of(), withoutResult.skippedExtra());
        for (String f : List.of(PeftAdapter.WEIGHTS_FILE, PeftAdapter.CONFIG_FILE)) {
            assertArrayEquals(Files.readAllBytes(outWithout.resolve(f)), Files.readAllBytes(outWith.resolve(f)), f);
        }
        try (PeftAdapter merged = PeftAdapter.open(outWith)) {
            assertTrue(merged.extraTensors().isEmpty());
            assertEquals(Set.of("model.layers.0.q_proj", "model.layers.0.v_proj"), merged.modules().keySet());
        }
    }

    /** Adapter {@code t}'s F32 factors of two modules, rank 4: A {@code [4, 12]}, B {@code [8, 4]}. */
    private static HandBuiltSafetensors factors(int t) {
        SplittableRandom random = new SplittableRandom(17 + t);
        HandBuiltSafetensors file = new HandBuiltSafetensors();
        for (String module : List.of("model.layers.0.q_proj", "model.layers.0.v_proj")) {
            float[] a = new float[4 * 12];
            float[] b = new float[8 * 4];
            for (int i = 0; i < a.length; i++) a[i] = (float) random.nextGaussian();
            for (int i = 0; i < b.length; i++) b[i] = (float) random.nextGaussian();
            file.f32(RawPeftAdapter.PREFIX + module + RawPeftAdapter.A_SUFFIX, new long[]{4, 12}, a)
                    .f32(RawPeftAdapter.PREFIX + module + RawPeftAdapter.B_SUFFIX, new long[]{8, 4}, b);
        }
        return file;
    }

    private static Path handBuilt(Path dir, HandBuiltSafetensors weights) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8,"
                + " \"base_model_name_or_path\": \"tiny\", \"target_modules\": [\"q_proj\", \"v_proj\"],"
                + " \"modules_to_save\": [\"classifier\"]}");
        weights.write(dir.resolve(PeftAdapter.WEIGHTS_FILE));
        return dir;
    }

    @Test
    void legoOutputIsByteIdenticalAcrossThreadCountsAndRuns() throws IOException {
        MergeSpec spec = MergeSpec.lego(LegoOptions.defaults());
        Path one = tmp.resolve("threads-1"), two = tmp.resolve("threads-2"), again = tmp.resolve("threads-2-again");
        merge(spec, null, null, 1, one);
        merge(spec, null, null, 2, two);
        merge(spec, null, null, 2, again);

        for (String f : List.of(PeftAdapter.WEIGHTS_FILE, PeftAdapter.CONFIG_FILE)) {
            byte[] expected = Files.readAllBytes(one.resolve(f));
            assertArrayEquals(expected, Files.readAllBytes(two.resolve(f)), f + ": 1 vs 2 threads");
            assertArrayEquals(expected, Files.readAllBytes(again.resolve(f)), f + ": second run");
        }
    }

    @Test
    void bf16OutputIsTheF32OutputRoundedToBfloat16() throws IOException {
        MergeSpec spec = baseline(MergeMethod.CAT, BaselineOptions.defaults());
        Path f32 = tmp.resolve("f32"), bf16 = tmp.resolve("bf16");
        merge(spec, null, null, 2, f32);
        merge(spec, null, DType.BF16, 2, bf16);

        assertTrue(RawPeftAdapter.dtypes(f32.resolve(PeftAdapter.WEIGHTS_FILE)).values().stream().allMatch("F32"::equals));
        assertTrue(RawPeftAdapter.dtypes(bf16.resolve(PeftAdapter.WEIGHTS_FILE)).values().stream().allMatch("BF16"::equals));
        int checked = 0;
        try (PeftAdapter exact = PeftAdapter.open(f32); PeftAdapter rounded = PeftAdapter.open(bf16)) {
            assertEquals(exact.modules().keySet(), rounded.modules().keySet());
            for (String module : exact.modules().keySet()) {
                assertEquals(DType.BF16, rounded.module(module).a().dtype());
                checked += assertWithinBf16(module + " A", exact.readA(module), rounded.readA(module));
                checked += assertWithinBf16(module + " B", exact.readB(module), rounded.readB(module));
            }
        }
        assertTrue(checked > 1_000_000, "compared " + checked + " values");
    }

    // ---- errors ------------------------------------------------------------------------------------------------

    @Test
    void adaptersForDifferentBaseModelsAreRefusedNamingBoth() throws IOException {
        Path other = tmp.resolve("gpt2-medium-adapter");
        Files.createDirectories(other);
        Files.copy(dirs.get(1).resolve(PeftAdapter.WEIGHTS_FILE), other.resolve(PeftAdapter.WEIGHTS_FILE));
        ObjectNode config = (ObjectNode) RawPeftAdapter.JSON.readTree(dirs.get(1).resolve(PeftAdapter.CONFIG_FILE).toFile());
        config.put("base_model_name_or_path", "gpt2-medium");
        RawPeftAdapter.JSON.writeValue(other.resolve(PeftAdapter.CONFIG_FILE).toFile(), config);
        Path out = tmp.resolve("mixed");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdapterMerge(
                MergeSpec.lego(LegoOptions.defaults()), 1).mergeTo(List.of(dirs.get(0), other), null, null, out, null));
        assertTrue(e.getMessage().contains("'gpt2'") && e.getMessage().contains("'gpt2-medium'"), e.getMessage());
        assertTrue(e.getMessage().contains("gpt2-medium-adapter"), e.getMessage());
        assertFalse(Files.exists(out), "nothing is written on error");
    }

    @Test
    void aWeightCountThatDiffersFromTheAdapterCountIsRefused() {
        Path out = tmp.resolve("weights");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> merge(baseline(MergeMethod.LINEAR, BaselineOptions.defaults()), new double[]{1, 2}, null, 1, out));
        assertEquals("2 weights given for 3 adapters", e.getMessage());
        assertFalse(Files.exists(out));
    }

    @Test
    void nonPositiveWeightsAreRefused() {
        Path out = tmp.resolve("weights");
        for (double bad : new double[]{0, -1, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> merge(MergeSpec.lego(LegoOptions.defaults()), new double[]{1, bad, 1}, null, 1, out));
            assertTrue(e.getMessage().contains("weights must be finite and > 0"), e.getMessage());
        }
        assertFalse(Files.exists(out));
    }

    @Test
    void aMissingAdapterDirectoryIsNamed() {
        Path missing = tmp.resolve("no-such-adapter");
        Path out = tmp.resolve("missing");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> new AdapterMerge(
                MergeSpec.lego(LegoOptions.defaults()), 1).mergeTo(List.of(dirs.get(0), missing), null, null, out, null));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
        assertFalse(Files.exists(out));
    }

    /** Found by this test: the merge used to overwrite an input adapter given as the output directory. */
    @Test
    void anOutputDirectoryThatIsAnInputIsRefusedAndTheInputKept() throws IOException {
        Path input = tmp.resolve("input");
        Files.createDirectories(input);
        for (String f : List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE)) {
            Files.copy(dirs.get(1).resolve(f), input.resolve(f));
        }
        byte[] before = Files.readAllBytes(input.resolve(PeftAdapter.WEIGHTS_FILE));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdapterMerge(
                baseline(MergeMethod.CAT, BaselineOptions.defaults()), 1)
                .mergeTo(List.of(dirs.get(0), input), null, null, input, null));
        assertTrue(e.getMessage().contains("is the input adapter"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(input.resolve(PeftAdapter.WEIGHTS_FILE)));
    }

    // ---- dense baselines on one real module ----------------------------------------------------------------------

    /** The module both c_proj adapters target, 768 → 768: the cheapest dense SVD of the fixtures. */
    static final String DENSE_MODULE = "transformer.h.0.attn.c_proj";

    @Test
    void tiesOnARealModuleIsTheBestRankKApproximationOfTiesMerging() throws IOException {
        List<AdapterModule> inputs = realInputs(new double[]{1, 1, 1});
        assertEquals(List.of(4.0, 4.0), inputs.stream().map(AdapterModule::scaling).toList(), "alpha 32 / r 8");
        BaselineOptions options = BaselineOptions.defaults(); // density 0.2, λ 1, k = 8
        MergedModule merged = MergeMethod.TIES.merge(DENSE_MODULE, inputs, LegoOptions.defaults(), options);

        assertEquals(8, merged.rank());
        assertFinite(merged);
        List<DenseReference.DenseUpdate> updates = new ArrayList<>();
        for (int t : new int[]{0, 2}) {
            RawPeftAdapter.RawModule m = raw.get(t).modules.get(DENSE_MODULE);
            updates.add(new DenseReference.DenseUpdate(product(m.b(), m.a(), m.dOut(), m.r(), m.dIn(), raw.get(t).scaling),
                    m.dOut(), m.dIn()));
        }
        double[] ties = DenseReference.ties(updates, BaselineOptions.TIES_DEFAULT_DENSITY, 1.0);
        double[] got = product(merged.b(), merged.a(), merged.dOut(), merged.rank(), merged.dIn(), 1.0);
        double optimum = eckartYoungError(ties, 768, 768, 8);
        assertTrue(optimum > 0.1 * frobenius(ties), "a trimmed sparse update is far from rank 8");
        assertEquals(optimum, distance(got, ties), EY_DOUBLE_REL_TOL * optimum);
    }

    /**
     * DARE's dense update, entry by entry, is one of {@code 0, x_0/p, x_2/p, (x_0 + x_2)/p} with
     * {@code x_t = (1/3) s_t ΔW_t[e]} (weights normalised over all three adapters), each adapter's entries kept with
     * frequency {@code p}; the same seed draws the same masks, another seed other ones; the factorised merge has
     * rank k and is the best rank-k approximation of that dense update. (Byte-identical DARE output files for equal
     * seeds are checked end to end on synthetic adapters in {@link SyntheticBaselineMergeTest}.)
     */
    @Test
    void dareOnARealModuleDropsAndRescalesEntriesDeterministically() throws IOException {
        double p = 0.5;
        long seed = 42;
        double[] w = MergeMethod.normaliseWeights(new double[]{1, 1, 1});
        List<AdapterModule> inputs = realInputs(w);
        double[] dense = DareMerge.mergeDense(DENSE_MODULE, inputs, p, seed);

        double[][] x = new double[2][];
        int[] adapters = {0, 2};
        for (int t = 0; t < 2; t++) {
            RawPeftAdapter.RawModule m = raw.get(adapters[t]).modules.get(DENSE_MODULE);
            x[t] = product(m.b(), m.a(), m.dOut(), m.r(), m.dIn(), raw.get(adapters[t]).scaling);
        }
        int size = dense.length;
        long[] kept = new long[2];
        int classified = 0;
        for (int e = 0; e < size; e++) {
            double x0 = w[0] * (x[0][e] / p), x2 = w[2] * (x[1][e] / p);
            double[] candidates = {0, x0, x2, x0 + x2};
            double scale = Math.abs(x0) + Math.abs(x2);
            int match = -1;
            boolean ambiguous = false;
            for (int c = 0; c < 4; c++) {
                if (Math.abs(dense[e] - candidates[c]) <= 1e-12 * scale) {
                    ambiguous |= match >= 0;
                    match = c;
                }
            }
            assertTrue(match >= 0, "entry " + e + " = " + dense[e] + " is no sum of rescaled kept entries");
            if (ambiguous) continue;
            classified++;
            if ((match & 1) != 0) kept[0]++;
            if ((match & 2) != 0) kept[1]++;
        }
        assertTrue(classified > 0.99 * size);
        double sigma = Math.sqrt(p * (1 - p) / classified);
        for (long k : kept) assertEquals(p, (double) k / classified, 6 * sigma, "keep frequency");
        assertArrayEquals(dense, DareMerge.mergeDense(DENSE_MODULE, inputs, p, seed), "same seed, same masks");
        assertFalse(Arrays.equals(dense, DareMerge.mergeDense(DENSE_MODULE, inputs, p, seed + 1)), "another seed, other masks");

        BaselineOptions options = new BaselineOptions(8, p, 1.0, seed);
        MergedModule first = MergeMethod.DARE.merge(DENSE_MODULE, inputs, LegoOptions.defaults(), options);
        assertEquals(8, first.rank());
        assertFinite(first);
        double optimum = eckartYoungError(dense, 768, 768, 8);
        double[] got = product(first.b(), first.a(), first.dOut(), first.rank(), first.dIn(), 1.0);
        assertEquals(optimum, distance(got, dense), EY_DOUBLE_REL_TOL * optimum);
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    private static MergeSpec baseline(MergeMethod method, BaselineOptions options) {
        return new MergeSpec(method, LegoOptions.defaults(), options);
    }

    private static AdapterMerge.Result merge(MergeSpec spec, double[] weights, DType dtype, int threads, Path out)
            throws IOException {
        return new AdapterMerge(spec, threads).mergeTo(dirs, weights, dtype, out, null);
    }

    /** How many fixtures target {@code module}. */
    private static int targeting(String module) {
        int n = 0;
        for (RawPeftAdapter a : raw) if (a.modules.containsKey(module)) n++;
        return n;
    }

    /** The merge's own inputs for {@link #DENSE_MODULE}, as {@link AdapterMerge} builds them. */
    private static List<AdapterModule> realInputs(double[] weights) throws IOException {
        List<PeftAdapter> adapters = new ArrayList<>();
        try {
            for (Path d : dirs) adapters.add(PeftAdapter.open(d));
            List<AdapterModule> inputs = AdapterMerge.inputsOf(adapters, DENSE_MODULE, weights);
            assertEquals(2, inputs.size(), "attn.c_proj is in the first and third fixture");
            return inputs;
        } finally {
            for (PeftAdapter a : adapters) a.close();
        }
    }

    /** {@code Σ_t c_t s_t B_t A_t} over the sources that target {@code module}. */
    private static double[] expectedDeltaW(String module, List<RawPeftAdapter> sources, Coefficients c) {
        double[] w = null;
        for (int t = 0; t < sources.size(); t++) {
            RawPeftAdapter.RawModule m = sources.get(t).modules.get(module);
            if (m == null) continue;
            if (w == null) w = new double[m.dOut() * m.dIn()];
            addProduct(w, m.b(), m.a(), m.dOut(), m.r(), m.dIn(), c.of(module, t) * sources.get(t).scaling);
        }
        return w;
    }

    /** Whether {@code module} (transformer.h.N....) is in one of {@link #DENSE_LAYERS}. */
    private static boolean isDense(String module) {
        String rest = module.substring("transformer.h.".length());
        return DENSE_LAYERS.contains(Integer.parseInt(rest.substring(0, rest.indexOf('.'))));
    }

    /**
     * Reads {@code out} back with {@link PeftAdapter#open} and checks, for every module of the sources' union, that
     * the written scaling is 1 and that {@code ΔW_out = B A} matches {@code ΔW_ref = Σ_t c_t s_t B_t A_t} within
     * {@code tol} relative (Frobenius): as dense matrices for modules in {@link #DENSE_LAYERS}, otherwise as
     * {@code ΔW x} for {@link #PROBES} seeded Gaussian vectors {@code x}.
     */
    private static void assertMergedDeltaW(Path out, List<RawPeftAdapter> sources, Coefficients c, double tol)
            throws IOException {
        SortedSet<String> modules = new TreeSet<>();
        sources.forEach(s -> modules.addAll(s.modules.keySet()));
        SortedMap<String, Double> errors = new TreeMap<>();
        SplittableRandom rng = new SplittableRandom(20240917L);
        int dense = 0;
        try (PeftAdapter merged = PeftAdapter.open(out)) {
            assertEquals(modules, merged.modules().keySet());
            for (String module : modules) {
                LoraModuleInfo info = merged.module(module);
                assertEquals(1.0, info.scaling(), 0.0, module + ": merged modules have r = lora_alpha");
                double[] a = merged.readA(module), b = merged.readB(module);
                if (isDense(module)) {
                    double[] expected = expectedDeltaW(module, sources, c);
                    double[] got = product(b, a, info.dOut(), info.rank(), info.dIn(), 1.0);
                    assertEquals(expected.length, got.length, module);
                    errors.put(module, relativeError(got, expected));
                    dense++;
                    continue;
                }
                double worst = 0;
                for (int p = 0; p < PROBES; p++) {
                    double[] x = new double[info.dIn()];
                    for (int i = 0; i < x.length; i++) x[i] = rng.nextDouble() - 0.5;
                    double[] expected = new double[info.dOut()];
                    for (int t = 0; t < sources.size(); t++) {
                        RawPeftAdapter.RawModule m = sources.get(t).modules.get(module);
                        if (m == null) continue;
                        addTimes(expected, m.b(), m.a(), m.r(), x, c.of(module, t) * sources.get(t).scaling);
                    }
                    double[] got = new double[info.dOut()];
                    addTimes(got, b, a, info.rank(), x, 1.0);
                    worst = Math.max(worst, relativeError(got, expected));
                }
                errors.put(module, worst);
            }
        }
        assertEquals(3 * DENSE_LAYERS.size(), dense, "dense comparisons");
        errors.forEach((module, err) -> assertTrue(err <= tol, module + ": relative ΔW error " + err + " > " + tol));
    }

    /** {@code y += coef · B (A x)}, A row-major {@code r × x.length}, B row-major {@code y.length × r}. */
    private static void addTimes(double[] y, double[] b, double[] a, int r, double[] x, double coef) {
        double[] ax = new double[r];
        for (int j = 0; j < r; j++) {
            double s = 0;
            for (int i = 0; i < x.length; i++) s += a[j * x.length + i] * x[i];
            ax[j] = s;
        }
        for (int o = 0; o < y.length; o++) {
            double s = 0;
            for (int j = 0; j < r; j++) s += b[o * r + j] * ax[j];
            y[o] += coef * s;
        }
    }

    private static int assertWithinBf16(String what, double[] exact, double[] rounded) {
        assertEquals(exact.length, rounded.length, what);
        for (int i = 0; i < exact.length; i++) {
            double bound = BF16_REL * Math.abs(exact[i]) * (1 + 1e-6);
            if (Math.abs(rounded[i] - exact[i]) > bound) {
                throw new AssertionError(what + "[" + i + "]: bf16 " + rounded[i] + " vs f32 " + exact[i]);
            }
        }
        return exact.length;
    }

    private static void assertFinite(MergedModule m) {
        assertTrue(Arrays.stream(m.a()).allMatch(Double::isFinite) && Arrays.stream(m.b()).allMatch(Double::isFinite));
        assertTrue(frobenius(m.a()) > 0 && frobenius(m.b()) > 0);
    }
}
