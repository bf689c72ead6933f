package dev.loralego.merge;

import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.SyntheticAdapters;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.loralego.merge.DenseReference.distance;
import static dev.loralego.merge.DenseReference.eckartYoungError;
import static dev.loralego.merge.DenseReference.frobenius;
import static dev.loralego.merge.DenseReference.product;
import static dev.loralego.merge.DenseReference.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The dense baselines {@code ties} and {@code dare} end to end through {@link AdapterMerge#mergeTo} on three small
 * synthetic adapters ({@link SyntheticAdapters}, shape {@code tiny}: 14 modules of 64 → 64/172 and 172 → 64, rank 4),
 * where a dense SVD per module is cheap. Checked against dense references built from the raw tensors
 * ({@link RawPeftAdapter}, {@link DenseReference}).
 */
class SyntheticBaselineMergeTest {

    /** Relative gap between a merged residual and the Eckart–Young optimum, for f32-stored output. */
    static final double EY_REL_TOL = 1e-4;
    /** Relative Frobenius error between two ΔW rebuilt from f32-stored factors. */
    static final double F32_REL_TOL = 1e-5;
    static final int RANK = 4;
    static final int MODULES = 14;

    @TempDir
    static Path inputs;
    static List<Path> dirs;
    static List<RawPeftAdapter> raw;

    @TempDir
    Path tmp;

    @BeforeAll
    static void synthesize() throws IOException {
        dirs = SyntheticAdapters.generate(inputs, 3, RANK, BaseModelShape.byName("tiny"), 7L, DType.F32);
        raw = new ArrayList<>();
        for (Path d : dirs) raw.add(RawPeftAdapter.read(d));
        assertEquals(MODULES, raw.get(0).modules.size());
        assertEquals(2.0, raw.get(0).scaling, "synthetic adapters have lora_alpha = 2r");
    }

    /**
     * TIES with weights 1: the written ΔW of every module is the best rank-k approximation of TIES-Merging computed
     * densely in the test (trim to the top 20 % per adapter, elect signs, disjoint mean).
     */
    @Test
    void tiesWritesTheBestRankKApproximationOfTiesMergingForEveryModule() throws IOException {
        Path out = tmp.resolve("ties");
        BaselineOptions options = BaselineOptions.defaults().withK(RANK);
        AdapterMerge.Result result = new AdapterMerge(new MergeSpec(MergeMethod.TIES, LegoOptions.defaults(), options), 2)
                .mergeTo(dirs, null, null, out, null);
        assertEquals(new TreeMap<>(Map.of(RANK, MODULES)), result.rankHistogram());

        try (PeftAdapter merged = PeftAdapter.open(out)) {
            assertEquals(raw.get(0).modules.keySet(), merged.modules().keySet());
            for (String module : merged.modules().keySet()) {
                LoraModuleInfo info = merged.module(module);
                double[] got = writtenDeltaW(merged, module);
                assertTrue(Arrays.stream(got).allMatch(Double::isFinite), module);
                List<DenseReference.DenseUpdate> updates = new ArrayList<>();
                for (RawPeftAdapter a : raw) {
                    RawPeftAdapter.RawModule m = a.modules.get(module);
                    updates.add(new DenseReference.DenseUpdate(product(m.b(), m.a(), m.dOut(), m.r(), m.dIn(), a.scaling),
                            m.dOut(), m.dIn()));
                }
                double[] ties = DenseReference.ties(updates, BaselineOptions.TIES_DEFAULT_DENSITY, 1.0);
                double optimum = eckartYoungError(ties, info.dOut(), info.dIn(), RANK);
                assertTrue(optimum > 0.01 * frobenius(ties), module);
                assertEquals(optimum, distance(got, ties), EY_REL_TOL * optimum, module);
            }
        }
    }

    @Test
    void dareIsByteIdenticalForOneSeedAndDiffersForAnother() throws IOException {
        Path first = tmp.resolve("dare-42"), again = tmp.resolve("dare-42-again"), other = tmp.resolve("dare-43");
        dare(0.5, 42L, 1, first);
        dare(0.5, 42L, 2, again);
        dare(0.5, 43L, 2, other);

        for (String f : List.of(PeftAdapter.WEIGHTS_FILE, PeftAdapter.CONFIG_FILE)) {
            assertArrayEquals(Files.readAllBytes(first.resolve(f)), Files.readAllBytes(again.resolve(f)), f);
        }
        assertFalse(Arrays.equals(Files.readAllBytes(first.resolve(PeftAdapter.WEIGHTS_FILE)),
                Files.readAllBytes(other.resolve(PeftAdapter.WEIGHTS_FILE))));
        try (PeftAdapter merged = PeftAdapter.open(first)) {
            for (String module : merged.modules().keySet()) {
                assertTrue(merged.module(module).rank() <= RANK, module);
                double[] w = writtenDeltaW(merged, module);
                assertTrue(Arrays.stream(w).allMatch(Double::isFinite) && frobenius(w) > 0, module);
            }
        }
    }

    /**
     * With density 1 DARE keeps every entry and rescales by 1, so it must write what {@code svd} writes: the best
     * rank-k approximation of the weighted average (unique: the synthetic spectra have no tie at σ_k).
     */
    @Test
    void dareWithDensityOneEqualsTheSvdMerge() throws IOException {
        Path dare = tmp.resolve("dare-1"), svd = tmp.resolve("svd");
        dare(1.0, 42L, 2, dare);
        new AdapterMerge(new MergeSpec(MergeMethod.SVD, LegoOptions.defaults(), BaselineOptions.defaults().withK(RANK)), 2)
                .mergeTo(dirs, null, null, svd, null);

        try (PeftAdapter d = PeftAdapter.open(dare); PeftAdapter s = PeftAdapter.open(svd)) {
            for (String module : s.modules().keySet()) {
                double err = relativeError(writtenDeltaW(d, module), writtenDeltaW(s, module));
                assertTrue(err <= F32_REL_TOL, module + ": " + err);
            }
        }
    }

    private void dare(double density, long seed, int threads, Path out) throws IOException {
        BaselineOptions options = new BaselineOptions(RANK, density, 1.0, seed);
        new AdapterMerge(new MergeSpec(MergeMethod.DARE, LegoOptions.defaults(), options), threads)
                .mergeTo(dirs, null, null, out, null);
    }

    /** {@code scaling · B A} of a written module. */
    private static double[] writtenDeltaW(PeftAdapter adapter, String module) throws IOException {
        LoraModuleInfo info = adapter.module(module);
        return product(adapter.readB(module), adapter.readA(module), info.dOut(), info.rank(), info.dIn(), info.scaling());
    }
}
