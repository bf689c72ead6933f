package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.EXACT_TOL;
import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The batch LoRA-LEGO merge of one module: exact cases, a hand-computed case, order independence, bad input. */
class LegoMergerTest {

    private static final String MODULE = "model.layers.0.self_attn.q_proj";

    private static LegoOptions plain(int k) {
        return new LegoOptions(k, Map.of(), 42L, 4, 300, CanonicalForm.NONE, FeatureNorm.NONE,
                ParameterReweighting.OFF, false);
    }

    @ParameterizedTest(name = "canonical {0}")
    @EnumSource(CanonicalForm.class)
    void singleAdapterWithKEqualToThePoolIsReproducedExactly(CanonicalForm canonical) {
        SplittableRandom rng = new SplittableRandom(1);
        AdapterModule m = randomAdapter("only", rng, 6, 10, 8, 2.0, 1.0);
        MergedModule plainOut = LegoMerger.mergeModule(MODULE, List.of(m), plain(6).withCanonical(canonical));
        assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(plainOut), EXACT_TOL, canonical + " no reweighting");
        // with both reweightings: each cluster is one unit (norm unchanged) and γ = sqrt(6/6) = 1
        MergedModule defaults = LegoMerger.mergeModule(MODULE, List.of(m), LegoOptions.defaults().withCanonical(canonical));
        assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(defaults), EXACT_TOL, canonical + " defaults");
    }

    @ParameterizedTest(name = "canonical {0}")
    @EnumSource(CanonicalForm.class)
    void identicalAdaptersMergeToTheirCommonDeltaW(CanonicalForm canonical) {
        SplittableRandom rng = new SplittableRandom(2);
        AdapterModule m = randomAdapter("x", rng, 5, 9, 7, 1.5, 1.0);
        List<AdapterModule> copies = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            copies.add(new AdapterModule("copy" + t, 1.0 + t, m.scaling(), m.rank(), m.dIn(), m.dOut(), m.a(), m.b()));
        }
        MergedModule out = LegoMerger.mergeModule(MODULE, copies, LegoOptions.defaults().withCanonical(canonical));
        assertEquals(5, out.rank());
        assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(out), EXACT_TOL, "common ΔW");
    }

    @Test
    void handComputedTwoAdapterCase() {
        // folded units (scaling 4, halves): x1 = [1, 0 ; 2, 0], x2 = [0, 1 ; 0, 2]
        AdapterModule p = new AdapterModule("p", 1.0, 4.0, 1, 2, 2, new double[]{0.5, 0}, new double[]{1, 0});
        AdapterModule q = new AdapterModule("q", 1.0, 4.0, 1, 2, 2, new double[]{0, 0.5}, new double[]{0, 1});
        // k = 1: c = [0.5, 0.5 ; 1, 1]; L2 reweighting scales by sqrt(5)/sqrt(2.5) = sqrt(2); γ = sqrt(1/1)
        // → ā = [√2/2, √2/2], b̄ = [√2, √2], ΔW = [[1, 1], [1, 1]]
        LegoOptions one = new LegoOptions(1, Map.of(), 7L, 2, 50, CanonicalForm.NONE, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
        MergedModule merged = LegoMerger.mergeModule("m", List.of(q, p), one);
        assertEquals(1, merged.rank());
        assertArrayEquals(new double[]{Math.sqrt(0.5), Math.sqrt(0.5)}, merged.a(), 1e-15);
        assertArrayEquals(new double[]{Math.sqrt(2), Math.sqrt(2)}, merged.b(), 1e-15);
        assertArrayEquals(new double[]{1, 1, 1, 1}, merged.deltaW(), 1e-15);
        assertEquals(2 * (0.25 + 0.25 + 1 + 1), merged.inertia(), 1e-15, "Σ w ‖x − c‖²");
        // without parameter reweighting: ΔW = c_b c_aᵀ = [[0.5, 0.5], [0.5, 0.5]]
        MergedModule noParam = LegoMerger.mergeModule("m", List.of(p, q),
                new LegoOptions(1, Map.of(), 7L, 2, 50, CanonicalForm.NONE, FeatureNorm.NONE, ParameterReweighting.OFF, true));
        assertArrayEquals(new double[]{0.5, 0.5, 0.5, 0.5}, noParam.deltaW(), 1e-15);
        // k = 2 (each unit its own cluster): γ = sqrt(1/2), ΔW = γ (x1 x1ᵀ-part + x2 x2ᵀ-part) = diag(√2, √2)
        MergedModule two = LegoMerger.mergeModule("m", List.of(p, q), one.withK(2));
        assertArrayEquals(new double[]{Math.sqrt(2), 0, 0, Math.sqrt(2)}, two.deltaW(), 1e-15);
        // weights 1 and 3, k = 1, no reweighting: c = (x1 + 3 x2)/4 = [0.25, 0.75 ; 0.5, 1.5]
        MergedModule weighted = LegoMerger.mergeModule("m", List.of(p, q.withWeight(3.0)), plain(1));
        assertArrayEquals(new double[]{0.125, 0.375, 0.375, 1.125}, weighted.deltaW(), 1e-15);
    }

    @Test
    void resultDoesNotDependOnTheOrderOfTheList() {
        SplittableRandom rng = new SplittableRandom(3);
        List<AdapterModule> list = new ArrayList<>();
        for (int t = 0; t < 5; t++) list.add(randomAdapter("a" + t, rng, 4, 12, 10, 1.0 + t, 1.0 + 0.5 * t));
        MergedModule first = LegoMerger.mergeModule(MODULE, list, LegoOptions.defaults());
        Collections.reverse(list);
        MergedModule reversed = LegoMerger.mergeModule(MODULE, list, LegoOptions.defaults());
        assertArrayEquals(first.a(), reversed.a(), 0.0);
        assertArrayEquals(first.b(), reversed.b(), 0.0);
        assertEquals(4, first.rank(), "k = largest source rank");
    }

    @Test
    void perModuleKOverridesAndClampingToThePool() {
        SplittableRandom rng = new SplittableRandom(4);
        List<AdapterModule> list = List.of(randomAdapter("a", rng, 2, 5, 5, 1, 1), randomAdapter("b", rng, 3, 5, 5, 1, 1));
        LegoOptions o = new LegoOptions(0, Map.of(MODULE, 2), 1L, 2, 50, CanonicalForm.SVD, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
        assertEquals(2, LegoMerger.mergeModule(MODULE, list, o).rank());
        assertEquals(3, LegoMerger.mergeModule("other", list, o).rank(), "default: largest source rank");
        LegoMerger.Outcome clamped = LegoMerger.merge("other", list, o.withK(50).withCanonical(CanonicalForm.NONE));
        assertTrue(clamped.clustering().kClamped());
        assertEquals(5, clamped.merged().rank());
    }

    @Test
    void untrainedAdaptersGiveAZeroUpdate() {
        SplittableRandom rng = new SplittableRandom(6);
        AdapterModule fresh = new AdapterModule("fresh", 1, 2, 4, 6, 5, NaiveReference.gaussians(rng, 24), new double[20]);
        MergedModule m = LegoMerger.mergeModule(MODULE, List.of(fresh), LegoOptions.defaults());
        assertEquals(1, m.rank());
        assertArrayEquals(new double[30], m.deltaW(), 0.0);
    }

    @Test
    void badInputNamesModuleAndAdapter() {
        SplittableRandom rng = new SplittableRandom(5);
        AdapterModule a = randomAdapter("good", rng, 2, 4, 4, 1, 1);
        AdapterModule b = randomAdapter("wide", rng, 2, 5, 4, 1, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LegoMerger.mergeModule(MODULE, List.of(a, b), LegoOptions.defaults()));
        assertTrue(e.getMessage().contains(MODULE) && e.getMessage().contains("wide"), e.getMessage());
        IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
                () -> LegoMerger.mergeModule(MODULE, List.of(a, a), LegoOptions.defaults()));
        assertTrue(dup.getMessage().contains("good"), dup.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LegoMerger.mergeModule(MODULE, List.of(), LegoOptions.defaults()));
    }
}
