package dev.loralego.lego;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code k auto}: the energy-share rule, its search, and its hook into the batch merge. */
class AutoRankTest {

    private static final String MODULE = "model.layers.0.mlp.up_proj";
    private static final double NOISE = 1e-3;

    /**
     * {@code adapters} adapters of rank {@code directions}, each holding the same {@code directions} orthogonal
     * rank-1 units (e_i, e_i) with tiny private noise: the pool has exactly {@code directions} groups.
     */
    private static List<AdapterModule> groupedAdapters(int adapters, int directions, int dim, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<AdapterModule> out = new ArrayList<>();
        for (int t = 0; t < adapters; t++) {
            double[] a = new double[directions * dim], b = new double[dim * directions];
            for (int i = 0; i < directions; i++) {
                double scale = 1.0 + 0.5 * i;
                for (int c = 0; c < dim; c++) {
                    a[i * dim + c] = (c == i ? scale : 0) + NOISE * rng.nextGaussian();
                    b[c * directions + i] = (c == i ? scale : 0) + NOISE * rng.nextGaussian();
                }
            }
            out.add(new AdapterModule("t" + t, 1.0, 1.0, directions, dim, dim, a, b));
        }
        return out;
    }

    private static LegoOptions options(CanonicalForm canonical) {
        return new LegoOptions(LegoOptions.K_AUTO, Map.of(), 42L, 4, 300, canonical, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
    }

    @Test
    void picksTheNumberOfDistinctGroupsAndItIsTheSmallestThatKeepsTheShare() {
        UnitPool pool = LegoMerger.pool(groupedAdapters(3, 4, 10, 1), CanonicalForm.NONE);
        RankWiseClustering clustering = new RankWiseClustering(4, 300, FeatureNorm.NONE);
        AutoRank.Choice c = AutoRank.choose(pool, clustering, 42L, 0.9);
        assertEquals(4, c.k());
        assertTrue(c.retainedShare() >= 0.9);
        assertTrue(c.retainedShare() > 0.999, "the four groups are tight: " + c.retainedShare());
        double three = AutoRank.retainedShare(pool, clustering.cluster(pool, 3, 42L));
        assertTrue(three < 0.9, "with three clusters two groups must share a centroid: " + three);
        assertTrue(c.clusterings() <= 5, "bisection on [1, 12] needs at most ceil(log2 12) + 1 clusterings");
    }

    @Test
    void retainedShareMatchesANaiveComputation() {
        SplittableRandom rng = new SplittableRandom(3);
        int n = 9, dIn = 4, dOut = 3, dim = dIn + dOut;
        double[] x = NaiveReference.gaussians(rng, n * dim);
        double[] w = new double[n];
        for (int i = 0; i < n; i++) w[i] = 0.5 + rng.nextDouble();
        UnitPool pool = new UnitPool(dIn, dOut, x, w, new int[n], new int[n]);
        ClusteringResult r = new RankWiseClustering(2, 100, FeatureNorm.NONE).cluster(pool, 3, 7L);
        double lost = 0, total = 0;
        for (int i = 0; i < n; i++) {
            int j = r.assignment()[i];
            for (int d = 0; d < dim; d++) {
                double e = x[i * dim + d] - r.centroids()[j * dim + d];
                lost += w[i] * e * e;
                total += w[i] * x[i * dim + d] * x[i * dim + d];
            }
        }
        assertEquals(1 - lost / total, AutoRank.retainedShare(pool, r), 1e-12);
    }

    @Test
    void aHigherShareNeverChoosesFewerClusters() {
        UnitPool pool = LegoMerger.pool(groupedAdapters(4, 5, 12, 2), CanonicalForm.SVD);
        RankWiseClustering clustering = new RankWiseClustering(3, 300, FeatureNorm.NONE);
        int previous = 0;
        for (double share : new double[]{0.3, 0.6, 0.9, 0.99, 1.0}) {
            int k = AutoRank.choose(pool, clustering, 1L, share).k();
            assertTrue(k >= previous, "share " + share + " chose " + k + " after " + previous);
            previous = k;
        }
        assertEquals(pool.size(), AutoRank.choose(pool, clustering, 1L, 1.0).k(),
                "no two noisy units coincide, so only one unit per cluster keeps all the energy");
    }

    @Test
    void mergeWithKAutoEqualsTheMergeAtTheChosenK() {
        List<AdapterModule> adapters = groupedAdapters(3, 4, 10, 4);
        LegoMerger.Outcome auto = LegoMerger.merge(MODULE, adapters, options(CanonicalForm.SVD));
        int k = auto.clustering().k();
        assertEquals(4, k);
        MergedModule fixed = LegoMerger.mergeModule(MODULE, adapters, options(CanonicalForm.SVD).withK(k));
        assertEquals(fixed.rank(), auto.merged().rank());
        assertArrayEquals(fixed.a(), auto.merged().a(), 0.0);
        assertArrayEquals(fixed.b(), auto.merged().b(), 0.0);
        // and it is deterministic
        MergedModule again = LegoMerger.mergeModule(MODULE, adapters, options(CanonicalForm.SVD));
        assertArrayEquals(auto.merged().a(), again.a(), 0.0);
    }

    @Test
    void zeroEnergyPoolGetsOneCluster() {
        AdapterModule zero = new AdapterModule("z", 1.0, 1.0, 2, 3, 3, new double[6], new double[6]);
        UnitPool pool = LegoMerger.pool(List.of(zero), CanonicalForm.NONE);
        assertEquals(1, AutoRank.choose(pool, new RankWiseClustering(1, 10, FeatureNorm.NONE), 1L, 0.9).k());
    }

    @Test
    void optionsValidateAndStreamingRefusesAuto() {
        assertThrows(IllegalArgumentException.class, () -> options(CanonicalForm.SVD).withAutoEnergyShare(0.0));
        assertThrows(IllegalArgumentException.class, () -> options(CanonicalForm.SVD).withAutoEnergyShare(1.5));
        assertThrows(IllegalArgumentException.class, () -> options(CanonicalForm.SVD).withK(-2));
        assertEquals(AutoRank.DEFAULT_ENERGY_SHARE, LegoOptions.defaults().autoEnergyShare());
        assertTrue(options(CanonicalForm.SVD).autoK(MODULE));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new StreamingModuleClusters(MODULE, options(CanonicalForm.SVD), StreamingOptions.defaults()));
        assertTrue(e.getMessage().contains(MODULE) && e.getMessage().contains("auto"), e.getMessage());
    }
}
