package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every baseline of ALGORITHM.md §7 against an independent dense computation. */
class BaselineMergesTest {

    /** Exact methods (stacked factors): only rounding separates them from the dense sum. */
    private static final double EXACT = 1e-9;
    /** Methods that go through an SVD of the dense result. */
    private static final double SVD_TOL = 1e-8;
    private static final String MODULE = "transformer.h.0.attn.c_attn";
    private static final int D_OUT = 7, D_IN = 9;

    private static List<AdapterModule> adapters(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        return List.of(randomAdapter("a", rng, 2, D_IN, D_OUT, 2.0, 1.0),
                randomAdapter("b", rng, 3, D_IN, D_OUT, 0.5, 2.5),
                randomAdapter("c", rng, 4, D_IN, D_OUT, 4.0, 0.3));
    }

    private static double[] weights(List<AdapterModule> list) {
        double[] w = new double[list.size()];
        for (int t = 0; t < w.length; t++) w[t] = list.get(t).weight();
        return w;
    }

    @Test
    void catIsTheExactWeightedSumWithRankSumOfRanks() {
        List<AdapterModule> list = adapters(1);
        MergedModule m = ConcatenationMerge.cat(MODULE, list);
        assertEquals(9, m.rank());
        assertClose(NaiveReference.weightedSum(list, weights(list)), NaiveReference.deltaW(m), EXACT, "cat");
        assertTrue(Double.isNaN(m.inertia()));
    }

    @Test
    void linearIsTheExactAverageWithCallerNormalisedWeights() {
        List<AdapterModule> raw = adapters(2);
        // four adapters in the merge, the fourth (weight 2) does not target this module: it counts as zero ΔW
        double[] all = MergeMethod.normaliseWeights(new double[]{1.0, 2.5, 0.3, 2.0});
        assertEquals(1.0, all[0] + all[1] + all[2] + all[3], 1e-15);
        List<AdapterModule> list = new ArrayList<>();
        for (int t = 0; t < 3; t++) list.add(raw.get(t).withWeight(all[t]));
        MergedModule m = MergeMethod.LINEAR.merge(MODULE, list, LegoOptions.defaults(), BaselineOptions.defaults());
        double[] expected = NaiveReference.weightedSum(raw, new double[]{1.0 / 5.8, 2.5 / 5.8, 0.3 / 5.8});
        assertClose(expected, NaiveReference.deltaW(m), EXACT, "linear");
        assertThrows(IllegalArgumentException.class, () -> MergeMethod.normaliseWeights(new double[]{1, 0}));
    }

    @Test
    void taskArithmeticScalesTheSumByLambdaIncludingNegative() {
        List<AdapterModule> list = adapters(3);
        for (double lambda : new double[]{0.7, 1.0, -1.3}) {
            MergedModule m = MergeMethod.TASK_ARITHMETIC.merge(MODULE, list, LegoOptions.defaults(),
                    BaselineOptions.defaults().withLambda(lambda));
            double[] coef = weights(list);
            for (int t = 0; t < coef.length; t++) coef[t] *= lambda;
            assertClose(NaiveReference.weightedSum(list, coef), NaiveReference.deltaW(m), EXACT, "λ = " + lambda);
        }
    }

    @Test
    void svdIsTheBestRankKApproximation() {
        List<AdapterModule> list = adapters(4);
        double[] dense = NaiveReference.weightedSum(list, weights(list));
        double[] sigma = NaiveReference.svd(dense, D_OUT, D_IN)[0];
        for (int k = 1; k <= 7; k++) {
            MergedModule m = SvdMerge.merge(MODULE, list, k);
            assertEquals(k, m.rank());
            double[] approx = NaiveReference.deltaW(m);
            // Eckart–Young: ‖M − M_k‖_F² = Σ_{i ≥ k} σ_i²
            double optimal = 0;
            for (int i = k; i < sigma.length; i++) optimal += sigma[i] * sigma[i];
            double err = Math.pow(NaiveReference.frobenius(NaiveReference.minus(dense, approx)), 2);
            assertEquals(optimal, err, 1e-9 * sigma[0] * sigma[0], "approximation error at k = " + k);
            // distinct singular values: the approximation itself is unique
            if (k < sigma.length) assertTrue(sigma[k - 1] - sigma[k] > 1e-6 * sigma[0]);
            assertClose(NaiveReference.bestRankK(dense, D_OUT, D_IN, k), approx, SVD_TOL, "M_k at k = " + k);
        }
        assertEquals(2, MergeMethod.SVD.merge(MODULE, list, null, BaselineOptions.defaults().withK(2)).rank());
        assertEquals(4, MergeMethod.SVD.merge(MODULE, list, null, BaselineOptions.defaults()).rank(), "default k = max rank");
    }

    @Test
    void tiesMatchesTheNaiveDenseImplementation() {
        List<AdapterModule> list = adapters(5);
        for (double density : new double[]{0.2, 0.5, 1.0}) {
            double[] naive = NaiveReference.ties(list, density, 0.8);
            MergedModule full = TiesMerge.merge(MODULE, list, density, 0.8, Math.min(D_OUT, D_IN));
            assertClose(naive, NaiveReference.deltaW(full), SVD_TOL, "TIES full rank, density " + density);
            MergedModule low = TiesMerge.merge(MODULE, list, density, 0.8, 3);
            assertClose(NaiveReference.bestRankK(naive, D_OUT, D_IN, 3), NaiveReference.deltaW(low), SVD_TOL,
                    "TIES rank 3, density " + density);
        }
        MergedModule viaEnum = MergeMethod.TIES.merge(MODULE, list, null, BaselineOptions.defaults());
        assertClose(NaiveReference.bestRankK(NaiveReference.ties(list, 0.2, 1.0), D_OUT, D_IN, 4),
                NaiveReference.deltaW(viaEnum), SVD_TOL, "TIES defaults: density 0.2, λ 1, k = max rank");
    }

    @Test
    void tiesTrimsTiesAtTheLowestIndexAndElectsSigns() {
        // ΔW_1 = [[1, -1, 1], [1, -1, 1]]: all magnitudes tie; density 0.5 keeps entries 0, 1, 2
        AdapterModule one = new AdapterModule("one", 1, 1, 1, 3, 2, new double[]{1, -1, 1}, new double[]{1, 1});
        MergedModule m = TiesMerge.merge(MODULE, List.of(one), 0.5, 1.0, 2);
        assertArrayEquals(new double[]{1, -1, 1, 0, 0, 0}, m.deltaW(), 1e-12);
        // add ΔW_2 = [[-3, 0, 0], [0, 0, 0]] (weight 1): entry 0 is elected negative, only ΔW_2 agrees → −3
        AdapterModule two = new AdapterModule("two", 1, 1, 1, 3, 2, new double[]{-3, 0, 0}, new double[]{1, 0});
        MergedModule both = TiesMerge.merge(MODULE, List.of(one, two), 0.5, 2.0, 2);
        assertArrayEquals(new double[]{-6, -2, 2, 0, 0, 0}, both.deltaW(), 1e-12);
        assertArrayEquals(NaiveReference.ties(List.of(one, two), 0.5, 2.0), both.deltaW(), 1e-12);
    }

    @Test
    void dareMatchesTheNaiveImplementationAndIsSeeded() {
        List<AdapterModule> list = adapters(6);
        double[] naive = NaiveReference.dare(MODULE, list, 0.5, 123L);
        assertClose(naive, DareMerge.mergeDense(MODULE, list, 0.5, 123L), EXACT, "DARE dense");
        MergedModule full = DareMerge.merge(MODULE, list, 0.5, 123L, 7);
        assertClose(naive, NaiveReference.deltaW(full), SVD_TOL, "DARE full rank");
        MergedModule low = DareMerge.merge(MODULE, list, 0.5, 123L, 2);
        assertClose(NaiveReference.bestRankK(naive, D_OUT, D_IN, 2), NaiveReference.deltaW(low), SVD_TOL, "DARE rank 2");
        // same seed: identical; other seed: different masks
        assertArrayEquals(DareMerge.mergeDense(MODULE, list, 0.5, 123L), DareMerge.mergeDense(MODULE, list, 0.5, 123L), 0.0);
        assertFalse(java.util.Arrays.equals(DareMerge.mergeDense(MODULE, list, 0.5, 123L),
                DareMerge.mergeDense(MODULE, list, 0.5, 124L)));
        assertFalse(java.util.Arrays.equals(DareMerge.mergeDense(MODULE, list, 0.5, 123L),
                DareMerge.mergeDense("other", list, 0.5, 123L)), "module name enters the seed");
        // density 1 drops nothing: the weighted sum
        assertClose(NaiveReference.weightedSum(list, weights(list)), DareMerge.mergeDense(MODULE, list, 1.0, 9L), EXACT,
                "DARE density 1");
        // about half the entries survive
        double[] single = DareMerge.mergeDense(MODULE, List.of(list.get(0)), 0.5, 77L);
        long kept = java.util.Arrays.stream(single).filter(v -> v != 0).count();
        assertTrue(kept > 15 && kept < 48, "kept " + kept + " of 63");
    }

    @Test
    void seedDerivationIsStable() {
        // fixed values: a change here changes every published DARE result
        assertEquals(0xaf63dc4c8601ec8cL, DareMerge.fnv1a64("a"), "FNV-1a 64 test vector");
        assertEquals(DareMerge.adapterSeed(1, "m", 0), DareMerge.adapterSeed(1, "m", 0));
        assertTrue(DareMerge.adapterSeed(1, "m", 0) != DareMerge.adapterSeed(1, "m", 1));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(MergeMethod.class)
    void everyMethodRejectsMismatchedShapesNamingModuleAndAdapter(MergeMethod method) {
        SplittableRandom rng = new SplittableRandom(7);
        List<AdapterModule> list = List.of(randomAdapter("fine", rng, 2, 4, 3, 1, 1), randomAdapter("odd", rng, 2, 4, 5, 1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> method.merge(MODULE, list, LegoOptions.defaults(), BaselineOptions.defaults()));
        assertTrue(e.getMessage().contains(MODULE) && e.getMessage().contains("odd"), e.getMessage());
    }

    @Test
    void methodNamesParse() {
        assertEquals(MergeMethod.TASK_ARITHMETIC, MergeMethod.parse("task_arithmetic"));
        assertEquals(MergeMethod.TASK_ARITHMETIC, MergeMethod.parse("Task-Arithmetic"));
        assertEquals("lego", MergeMethod.LEGO.cliName());
        assertThrows(IllegalArgumentException.class, () -> MergeMethod.parse("average"));
        assertThrows(IllegalArgumentException.class, () -> new BaselineOptions(0, 1.5, 1, 1));
    }
}
