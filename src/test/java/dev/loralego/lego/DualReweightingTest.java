package dev.loralego.lego;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Parameter and output reweighting of ALGORITHM.md §4 against a naive computation. */
class DualReweightingTest {

    private static final double TOL = 1e-12;

    @ParameterizedTest(name = "{0}, output {1}")
    @CsvSource({"L2,true", "L2,false", "LINF,true", "LINF,false", "OFF,true", "OFF,false"})
    void matchesANaiveComputation(ParameterReweighting p, boolean output) {
        SplittableRandom rng = new SplittableRandom(p.ordinal() * 2L + (output ? 1 : 0));
        int n = 25, dIn = 4, dOut = 6, dim = 10, k = 4;
        double[] x = gaussians(rng, n * dim), w = new double[n];
        for (int i = 0; i < n; i++) w[i] = 0.5 + rng.nextDouble();
        UnitPool pool = new UnitPool(dIn, dOut, x, w, new int[n], new int[n]);
        ClusteringResult c = new RankWiseClustering(2, 100, FeatureNorm.NONE).cluster(pool, k, 3);
        double rBar = 6.5;
        MergedModule m = DualReweighting.apply(c, pool, rBar, p, output);
        assertEquals(k, m.rank());
        double gamma = output ? Math.sqrt(rBar / k) : 1.0;
        for (int j = 0; j < k; j++) {
            double[] cj = java.util.Arrays.copyOfRange(c.centroids(), j * dim, (j + 1) * dim);
            double factor = 1;
            if (p != ParameterReweighting.OFF) {
                double num = 0, den = 0;
                for (int i = 0; i < n; i++) {
                    if (c.assignment()[i] != j) continue;
                    num += w[i] * norm(java.util.Arrays.copyOfRange(x, i * dim, (i + 1) * dim), p);
                    den += w[i];
                }
                factor = (num / den) / norm(cj, p);
            }
            for (int i = 0; i < dIn; i++) assertEquals(Math.sqrt(gamma) * factor * cj[i], m.a()[j * dIn + i], TOL);
            for (int o = 0; o < dOut; o++) assertEquals(Math.sqrt(gamma) * factor * cj[dIn + o], m.b()[o * k + j], TOL);
            if (p != ParameterReweighting.OFF) {
                // after reweighting (before γ), the centroid norm is the members' weighted mean norm
                double[] scaled = new double[dim];
                for (int d = 0; d < dIn; d++) scaled[d] = m.a()[j * dIn + d] / Math.sqrt(gamma);
                for (int o = 0; o < dOut; o++) scaled[dIn + o] = m.b()[o * k + j] / Math.sqrt(gamma);
                double num = 0, den = 0;
                for (int i = 0; i < n; i++) {
                    if (c.assignment()[i] != j) continue;
                    num += w[i] * norm(java.util.Arrays.copyOfRange(x, i * dim, (i + 1) * dim), p);
                    den += w[i];
                }
                assertEquals(num / den, norm(scaled, p), 1e-12 * num / den);
            }
        }
    }

    @Test
    void emptyAndZeroClustersAreDroppedAndGammaCountsOnlyKeptClusters() {
        // 3 clusters: cluster 0 = {u0}, cluster 1 empty, cluster 2 = {u1, u2} with u2 = -u1 (zero centroid)
        double[] x = {3, 4, 1, 1, -1, -1};
        UnitPool pool = new UnitPool(1, 1, x, new double[]{1, 1, 1}, new int[3], new int[3]);
        double[] centroids = {3, 4, 7, 7, 0, 0};
        ClusteringResult c = new ClusteringResult(3, 3, 2, centroids, centroids.clone(), new int[]{0, 2, 2},
                new double[]{1, 0, 2}, 4.0, 2, true);
        MergedModule m = DualReweighting.apply(c, pool, 4.0, ParameterReweighting.L2, true);
        assertEquals(1, m.rank());
        double h = Math.sqrt(Math.sqrt(4.0 / 1));
        assertArrayEquals(new double[]{3 * h}, m.a(), TOL);
        assertArrayEquals(new double[]{4 * h}, m.b(), TOL);
        assertEquals(4.0, m.inertia());
        assertEquals(2, m.iterations());
    }

    @Test
    void allDroppedGivesARankOneZeroModule() {
        UnitPool pool = new UnitPool(2, 1, new double[]{1, 1, 1, -1, -1, -1}, new double[]{1, 1}, new int[2], new int[2]);
        ClusteringResult c = new ClusteringResult(1, 1, 3, new double[3], new double[3], new int[]{0, 0},
                new double[]{2}, 6.0, 1, true);
        MergedModule m = DualReweighting.apply(c, pool, 1.0, ParameterReweighting.L2, true);
        assertEquals(1, m.rank());
        assertArrayEquals(new double[2], m.a(), 0.0);
        assertArrayEquals(new double[1], m.b(), 0.0);
    }

    @Test
    void rejectsAClusteringOfAnotherPool() {
        UnitPool pool = new UnitPool(1, 1, new double[]{1, 2}, new double[]{1}, new int[1], new int[1]);
        ClusteringResult c = new ClusteringResult(1, 1, 2, new double[2], new double[2], new int[]{0, 0},
                new double[]{1}, 0, 0, true);
        assertThrows(IllegalArgumentException.class, () -> DualReweighting.apply(c, pool, 1, ParameterReweighting.L2, true));
        ClusteringResult ok = new ClusteringResult(1, 1, 2, new double[2], new double[2], new int[]{0}, new double[]{1}, 0, 0, true);
        assertThrows(IllegalArgumentException.class, () -> DualReweighting.apply(ok, pool, 0, ParameterReweighting.L2, true));
    }

    private static double norm(double[] v, ParameterReweighting p) {
        double s = 0;
        for (double e : v) s = p == ParameterReweighting.LINF ? Math.max(s, Math.abs(e)) : s + e * e;
        return p == ParameterReweighting.LINF ? s : Math.sqrt(s);
    }
}
