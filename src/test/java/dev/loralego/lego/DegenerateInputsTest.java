package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.EXACT_TOL;
import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Degenerate inputs every merge meets sooner or later: a rank-deficient adapter merged alone, a long run of forgetting,
 * untrained adapters (B = 0) under k auto, non-finite factors. Each reference is computed independently (dense ΔW).
 */
class DegenerateInputsTest {

    private static final String MODULE = "model.layers.0.mlp.down_proj";

    /**
     * A single adapter whose ΔW has lower rank than r (r > dIn or r > dOut, or a zero rank): the SVD and balanced
     * canonical forms keep only its non-zero units, so k (the largest source rank) is clamped to that count. γ must
     * compare it with the number of units the source contributes, not the nominal r: the merge of one LoRA with both
     * reweightings on must reproduce its ΔW (each unit is its own cluster, norm unchanged), as it does for full rank.
     */
    @ParameterizedTest(name = "canonical {0}")
    @EnumSource(CanonicalForm.class)
    void aSingleRankDeficientAdapterIsReproducedWithTheDefaults(CanonicalForm canonical) {
        SplittableRandom rng = new SplittableRandom(21);
        int[][] shapes = {{8, 4, 6}, {8, 6, 4}, {16, 40, 2}};
        for (int[] s : shapes) {
            AdapterModule m = randomAdapter("only", rng, s[0], s[1], s[2], 2.0, 1.0);
            MergedModule out = LegoMerger.mergeModule(MODULE, List.of(m), LegoOptions.defaults().withCanonical(canonical));
            assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(out), EXACT_TOL,
                    canonical + " r=" + s[0] + " dIn=" + s[1] + " dOut=" + s[2]);
        }
        // a rank whose B column is zero (contributes nothing): dropped by svd/balanced, kept as a zero unit by none
        AdapterModule m = randomAdapter("z", rng, 4, 10, 8, 1.0, 1.0);
        double[] b = m.b().clone();
        for (int o = 0; o < 8; o++) b[o * 4 + 3] = 0;
        AdapterModule z = new AdapterModule("z", 1, 1, 4, 10, 8, m.a(), b);
        MergedModule out = LegoMerger.mergeModule(MODULE, List.of(z), LegoOptions.defaults().withCanonical(canonical));
        assertClose(NaiveReference.deltaW(z), NaiveReference.deltaW(out), EXACT_TOL, canonical + " zero rank");
    }

    /** The streaming form reproduces the single rank-deficient adapter too, bit for bit as the batch merge. */
    @Test
    void theStreamingFormAgreesOnARankDeficientAdapter() {
        SplittableRandom rng = new SplittableRandom(22);
        AdapterModule m = randomAdapter("only", rng, 8, 4, 6, 2.0, 1.0);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, LegoOptions.defaults(), StreamingOptions.defaults());
        s.upsert("only", m);
        MergedModule streamed = s.merged().orElseThrow();
        MergedModule batch = LegoMerger.mergeModule(MODULE, List.of(m), LegoOptions.defaults());
        assertArrayEquals(batch.a(), streamed.a(), 0.0);
        assertArrayEquals(batch.b(), streamed.b(), 0.0);
        assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(streamed), EXACT_TOL, "streamed");
    }

    /**
     * Forgetting multiplies every stored weight by λ at each upsert; an adapter that stays live while another is
     * republished ~1075 times at λ = 0.5 (7000 times at λ = 0.9) decays to exactly 0, and UnitPool (weights must
     * be > 0) then makes every later step throw. The weights must stay positive (the old units just stop mattering).
     */
    @Test
    void longForgettingRunsDoNotUnderflowToAZeroWeight() {
        SplittableRandom rng = new SplittableRandom(23);
        LegoOptions o = new LegoOptions(2, Map.of(), 5L, 2, 100, CanonicalForm.NONE, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, new StreamingOptions(0.5, 0));
        s.upsert("old", randomAdapter("old", rng, 2, 5, 4, 1, 1));
        s.upsert("old2", randomAdapter("old2", rng, 2, 5, 4, 1, 1));
        assertDoesNotThrow(() -> {
            for (int i = 0; i < 1200; i++) s.upsert("hot", randomAdapter("hot", rng, 2, 5, 4, 1, 1));
            s.refine();
            s.retract("old2");
        });
        for (double w : s.pool().weights()) assertTrue(w > 0, "weight " + w);
        MergedModule m = s.merged().orElseThrow();
        for (double v : m.deltaW()) assertTrue(Double.isFinite(v));
        // the state still round-trips
        StreamingModuleClusters copy = StreamingModuleClusters.fromBytes(s.toBytes());
        assertArrayEquals(m.a(), copy.merged().orElseThrow().a(), 0.0);
    }

    /**
     * {@code k auto} (the CLI's default for the batch merge) on a module whose adapters are all untrained
     * (PEFT initialises B = 0): the svd/balanced forms drop every unit, the pool is empty, and the merge must give the
     * zero update (as it does with a fixed k) instead of throwing.
     */
    @ParameterizedTest(name = "canonical {0}")
    @EnumSource(CanonicalForm.class)
    void kAutoOnUntrainedAdaptersGivesAZeroUpdate(CanonicalForm canonical) {
        SplittableRandom rng = new SplittableRandom(24);
        AdapterModule fresh = new AdapterModule("fresh", 1, 2, 4, 6, 5, NaiveReference.gaussians(rng, 24), new double[20]);
        AdapterModule fresh2 = new AdapterModule("fresh2", 1, 2, 4, 6, 5, NaiveReference.gaussians(rng, 24), new double[20]);
        LegoOptions auto = LegoOptions.defaults().withK(LegoOptions.K_AUTO).withCanonical(canonical);
        MergedModule m = assertDoesNotThrow(() -> LegoMerger.mergeModule(MODULE, List.of(fresh, fresh2), auto));
        assertArrayEquals(new double[30], m.deltaW(), 0.0);
        assertEquals(30, m.deltaW().length);
    }

    /**
     * A NaN (or infinite) factor: LoRA-LEGO rejects it naming the adapter; every baseline must too. Before, TIES zeroed
     * the NaN entries in its trim and returned a finite merge of a corrupt adapter, cat/linear/svd/task_arithmetic
     * wrote NaN factors, DARE failed inside the SVD ("did not converge").
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(MergeMethod.class)
    void everyMethodRejectsNonFiniteFactorsNamingTheAdapter(MergeMethod method) {
        SplittableRandom rng = new SplittableRandom(25);
        AdapterModule good = randomAdapter("good", rng, 4, 10, 8, 2.5, 1.0);
        AdapterModule m = randomAdapter("bad", rng, 4, 10, 8, 2.5, 1.0);
        for (double bad : new double[]{Double.NaN, Double.POSITIVE_INFINITY}) {
            double[] a = m.a().clone();
            a[3] = bad;
            AdapterModule corrupt = new AdapterModule("bad", 1, 1, 4, 10, 8, a, m.b());
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> method.merge(MODULE, List.of(good, corrupt), LegoOptions.defaults(), BaselineOptions.defaults()));
            assertTrue(e.getMessage().contains("bad"), e.getMessage());
        }
    }
}
