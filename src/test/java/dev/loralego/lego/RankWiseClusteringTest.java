package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static dev.loralego.lego.NaiveReference.gaussian;
import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weighted k-means of ALGORITHM.md §3 against naive computations. */
class RankWiseClusteringTest {

    /** Distances by expansion vs explicit differences: relative to the squared norms involved. */
    private static final double DISTANCE_TOL = 1e-12;
    /** Floating-point slack allowed in the monotone decrease of the inertia. */
    private static final double MONOTONE_TOL = 1e-12;

    /** A pool of {@code clusters} well-separated blobs; returns the pool and its true labels. */
    private static Object[] plantedPool(long seed, int clusters, int perCluster, int dIn, int dOut, double spread) {
        SplittableRandom rng = new SplittableRandom(seed);
        int dim = dIn + dOut, n = clusters * perCluster;
        double[] centres = new double[clusters * dim];
        for (int j = 0; j < clusters; j++) {
            for (int d = 0; d < dim; d++) centres[j * dim + d] = 20 * gaussian(rng);
        }
        double[] x = new double[n * dim], w = new double[n];
        int[] labels = new int[n], owner = new int[n], rank = new int[n];
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int q = 0; q < n; q++) {
            int i = order[q], j = q % clusters;
            labels[i] = j;
            for (int d = 0; d < dim; d++) x[i * dim + d] = centres[j * dim + d] + spread * gaussian(rng);
            w[i] = 0.5 + rng.nextDouble();
            owner[i] = i;
        }
        return new Object[]{new UnitPool(dIn, dOut, x, w, owner, rank), labels};
    }

    @ParameterizedTest(name = "featureNorm {0}")
    @ValueSource(strings = {"NONE", "HALVES"})
    void recoversPlantedClusters(FeatureNorm norm) {
        for (long seed = 1; seed <= 5; seed++) {
            Object[] planted = plantedPool(seed, 4, 12, 5, 7, 0.3);
            UnitPool pool = (UnitPool) planted[0];
            int[] labels = (int[]) planted[1];
            ClusteringResult r = new RankWiseClustering(4, 100, norm).cluster(pool, 4, seed);
            assertTrue(r.converged());
            // same partition up to a relabelling: a bijection label -> cluster
            int[] map = new int[4];
            Arrays.fill(map, -1);
            for (int i = 0; i < pool.size(); i++) {
                if (map[labels[i]] < 0) map[labels[i]] = r.assignment()[i];
                assertEquals(map[labels[i]], r.assignment()[i], "unit " + i + " (seed " + seed + ")");
            }
            assertEquals(4, Arrays.stream(map).distinct().count(), "4 distinct clusters");
        }
    }

    @Test
    void inertiaNeverIncreasesAcrossLloydSteps() {
        SplittableRandom rng = new SplittableRandom(99);
        for (int trial = 0; trial < 6; trial++) {
            int n = 60, dIn = 6, dOut = 4, dim = 10;
            double[] x = gaussians(rng, n * dim), w = new double[n];
            for (int i = 0; i < n; i++) w[i] = 0.1 + rng.nextDouble();
            UnitPool pool = new UnitPool(dIn, dOut, x, w, new int[n], new int[n]);
            // random (bad) starting centroids, far from the data for some, to force re-seeding too
            double[] init = gaussians(rng, 7 * dim);
            for (int d = 0; d < dim; d++) init[6 * dim + d] += 1000;
            List<Double> inertias = new ArrayList<>();
            ClusteringResult r = new RankWiseClustering(1, 200, FeatureNorm.NONE)
                    .lloyd(pool, init, null, (it, in) -> inertias.add(in));
            assertTrue(inertias.size() >= 2, "several steps observed");
            for (int s = 1; s < inertias.size(); s++) {
                assertTrue(inertias.get(s) <= inertias.get(s - 1) * (1 + MONOTONE_TOL),
                        "step " + s + ": " + inertias.get(s) + " > " + inertias.get(s - 1));
            }
            assertEquals(inertias.get(inertias.size() - 1), r.inertia(), 1e-12 * r.inertia());
            for (double cw : r.clusterWeight()) assertTrue(cw > 0, "far centroid was re-seeded");
        }
    }

    @Test
    void centroidsAreTheNaiveWeightedMeansAndAssignmentIsNearest() {
        SplittableRandom rng = new SplittableRandom(4);
        int n = 40, dIn = 5, dOut = 3, dim = 8, k = 5;
        double[] x = gaussians(rng, n * dim), w = new double[n];
        for (int i = 0; i < n; i++) w[i] = 0.2 + 3 * rng.nextDouble();
        UnitPool pool = new UnitPool(dIn, dOut, x, w, new int[n], new int[n]);
        ClusteringResult r = new RankWiseClustering(3, 300, FeatureNorm.NONE).cluster(pool, k, 7);
        assertTrue(r.converged());
        double[] expected = NaiveReference.weightedMeans(x, w, r.assignment(), k, dim);
        assertArrayEquals(expected, r.centroids(), 1e-12);
        assertArrayEquals(r.centroids(), r.featureCentroids(), 0.0, "NONE: feature space is the raw space");
        double inertia = 0;
        for (int i = 0; i < n; i++) {
            double own = NaiveReference.dist2(x, i, r.centroids(), r.assignment()[i], dim);
            for (int j = 0; j < k; j++) {
                assertTrue(own <= NaiveReference.dist2(x, i, r.centroids(), j, dim) + 1e-9, "unit " + i + " nearest");
            }
            inertia += w[i] * own;
        }
        assertEquals(inertia, r.inertia(), 1e-12 * inertia);
        double[] cw = new double[k];
        for (int i = 0; i < n; i++) cw[r.assignment()[i]] += w[i];
        assertArrayEquals(cw, r.clusterWeight(), 1e-12);
    }

    @Test
    void weightsPullTheCentroid() {
        // two points in one cluster: centroid = (1·x0 + 3·x1) / 4
        double[] x = {0, 0, 4, 8, 100, 100};
        UnitPool pool = new UnitPool(1, 1, x, new double[]{1, 3, 1}, new int[3], new int[3]);
        ClusteringResult r = new RankWiseClustering(2, 50, FeatureNorm.NONE).cluster(pool, 2, 1);
        int j = r.assignment()[0];
        assertEquals(j, r.assignment()[1]);
        assertArrayEquals(new double[]{3, 6}, Arrays.copyOfRange(r.centroids(), 2 * j, 2 * j + 2), 1e-15);
    }

    @Test
    void halvesAssignsOnNormalisedHalvesButAveragesRawUnits() {
        SplittableRandom rng = new SplittableRandom(12);
        int n = 30, dIn = 3, dOut = 4, dim = 7;
        double[] x = new double[n * dim], w = new double[n];
        // two directions, wildly different scales within each: raw k-means would split by scale
        for (int i = 0; i < n; i++) {
            double scale = (i % 3 == 0) ? 50 : 0.5;
            int dir = i % 2;
            for (int d = 0; d < dim; d++) {
                double base = (dir == 0) == (d % 2 == 0) ? 1 : 0;
                x[i * dim + d] = scale * (base + 0.01 * gaussian(rng));
            }
            w[i] = 1;
        }
        UnitPool pool = new UnitPool(dIn, dOut, x, w, new int[n], new int[n]);
        ClusteringResult r = new RankWiseClustering(4, 100, FeatureNorm.HALVES).cluster(pool, 2, 3);
        for (int i = 0; i < n; i++) assertEquals(r.assignment()[i % 2], r.assignment()[i], "grouped by direction");
        assertNotEquals(r.assignment()[0], r.assignment()[1]);
        assertArrayEquals(NaiveReference.weightedMeans(x, w, r.assignment(), 2, dim), r.centroids(), 1e-12);
        // the same partition as NONE k-means on the normalised features
        double[] f = pool.features(FeatureNorm.HALVES);
        UnitPool normalised = new UnitPool(dIn, dOut, f, w, new int[n], new int[n]);
        ClusteringResult onFeatures = new RankWiseClustering(4, 100, FeatureNorm.NONE).cluster(normalised, 2, 3);
        assertArrayEquals(onFeatures.assignment(), r.assignment());
        assertArrayEquals(onFeatures.centroids(), r.featureCentroids(), 0.0);
    }

    @Test
    void emptyClusterIsReseededWithTheFarthestUnit() {
        // 1-D data 0, 1, 2, 10 (second coordinate 0); one centroid far away never attracts anything
        double[] x = {0, 0, 1, 0, 2, 0, 10, 0};
        UnitPool pool = new UnitPool(1, 1, x, new double[]{1, 1, 1, 1}, new int[4], new int[4]);
        List<Double> inertias = new ArrayList<>();
        ClusteringResult r = new RankWiseClustering(1, 10, FeatureNorm.NONE)
                .lloyd(pool, new double[]{1, 0, 1000, 0}, null, (it, in) -> inertias.add(in));
        assertArrayEquals(new int[]{0, 0, 0, 1}, r.assignment());
        assertArrayEquals(new double[]{1, 0, 10, 0}, r.centroids(), 1e-15);
        assertEquals(2.0, r.inertia(), 1e-12);
        assertTrue(r.converged());
    }

    @Test
    void fewerDistinctUnitsThanClustersLeavesEmptyClusters() {
        // 4 copies of 2 distinct units, k = 3: one cluster cannot be filled
        double[] x = {1, 2, 1, 2, 1, 2, 1, 2, 5, 5, 5, 5, 5, 5, 5, 5};
        UnitPool pool = new UnitPool(1, 1, x, new double[]{1, 1, 1, 1, 1, 1, 1, 1}, new int[8], new int[8]);
        ClusteringResult r = new RankWiseClustering(2, 20, FeatureNorm.NONE).cluster(pool, 3, 5);
        long nonEmpty = Arrays.stream(r.clusterWeight()).filter(v -> v > 0).count();
        assertEquals(2, nonEmpty);
        assertEquals(0.0, r.inertia(), 0.0);
        MergedModule m = DualReweighting.apply(r, pool, 1, ParameterReweighting.OFF, false);
        assertEquals(2, m.rank(), "the empty cluster is dropped");
    }

    @ParameterizedTest(name = "featureNorm {0}")
    @ValueSource(strings = {"NONE", "HALVES"})
    void gramFormFindsWhatTheDirectFormFinds(FeatureNorm norm) {
        for (long seed = 11; seed < 19; seed++) {
            // separated but not trivially: several restarts and Lloyd steps; weights uneven
            Object[] planted = plantedPool(seed, 6, 7, 9, 13, 6.0);
            UnitPool pool = (UnitPool) planted[0];
            RankWiseClustering c = new RankWiseClustering(3, 100, norm);
            assertTrue(RankWiseClustering.gramPays(pool.size(), 6, 3), "this pool takes the Gram form");
            ClusteringResult gram = c.cluster(pool, 6, seed), direct = c.clusterDirect(pool, 6, seed);
            assertArrayEquals(direct.assignment(), gram.assignment(), "seed " + seed);
            assertArrayEquals(direct.centroids(), gram.centroids(), 1e-12, "seed " + seed);
            assertArrayEquals(direct.featureCentroids(), gram.featureCentroids(), 1e-12, "seed " + seed);
            assertArrayEquals(direct.clusterWeight(), gram.clusterWeight(), 0.0, "seed " + seed);
            assertEquals(direct.inertia(), gram.inertia(), 1e-12 * direct.inertia(), "seed " + seed);
            assertTrue(gram.converged());
        }
    }

    @Test
    void gramFormKeepsEqualUnitsTogetherAndLeavesTheSurplusClusterEmpty() {
        // three distinct random units, five copies each, uneven weights, k = 4: the Gram distances between copies are
        // exactly zero, so no copy is ever split off into the fourth cluster, which stays empty (as in the direct form)
        SplittableRandom rng = new SplittableRandom(31);
        int dim = 50, n = 15;
        double[] distinct = gaussians(rng, 3 * dim), x = new double[n * dim], w = new double[n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(distinct, (i % 3) * dim, x, i * dim, dim);
            w[i] = 0.3 + rng.nextDouble();
        }
        UnitPool pool = new UnitPool(20, 30, x, w, new int[n], new int[n]);
        assertTrue(RankWiseClustering.gramPays(n, 4, 4));
        RankWiseClustering c = new RankWiseClustering(4, 50, FeatureNorm.NONE);
        for (long seed = 1; seed <= 5; seed++) {
            ClusteringResult r = c.cluster(pool, 4, seed), direct = c.clusterDirect(pool, 4, seed);
            assertEquals(3, Arrays.stream(direct.clusterWeight()).filter(v -> v > 0).count(), "direct, seed " + seed);
            assertEquals(3, Arrays.stream(r.clusterWeight()).filter(v -> v > 0).count(), "seed " + seed);
            for (int i = 0; i < n; i++) assertEquals(r.assignment()[i % 3], r.assignment()[i], "copies together");
            assertArrayEquals(direct.assignment(), r.assignment(), "seed " + seed);
            // the explicit weighted mean of equal copies may differ from them in the last bit: tiny, not zero
            assertEquals(0.0, r.inertia(), 1e-20 * dim, "seed " + seed);
        }
    }

    @Test
    void gramFormIsChosenForSmallPoolsOnly() {
        assertTrue(RankWiseClustering.gramPays(32, 16, 4), "first fill of a rank-16 module");
        assertTrue(RankWiseClustering.gramPays(512, 16, 4));
        assertFalse(RankWiseClustering.gramPays(513, 16, 4));
        assertFalse(RankWiseClustering.gramPays(1600, 16, 4), "100 adapters of rank 16");
    }

    @Test
    void deterministicAcrossRunsAndConcurrentThreads() throws Exception {
        Object[] planted = plantedPool(77, 5, 20, 30, 20, 8.0); // overlapping blobs: restarts matter
        UnitPool pool = (UnitPool) planted[0];
        RankWiseClustering c = new RankWiseClustering(5, 300, FeatureNorm.HALVES);
        ClusteringResult first = c.cluster(pool, 5, 2024);
        ClusteringResult again = c.cluster(pool, 5, 2024);
        assertResultsIdentical(first, again);
        ExecutorService exec = Executors.newFixedThreadPool(4);
        try {
            List<Future<ClusteringResult>> futures = new ArrayList<>();
            for (int t = 0; t < 8; t++) futures.add(exec.submit(() -> c.cluster(pool, 5, 2024)));
            for (Future<ClusteringResult> f : futures) assertResultsIdentical(first, f.get());
        } finally {
            exec.shutdownNow();
        }
        ClusteringResult other = c.cluster(pool, 5, 2025);
        assertTrue(other.inertia() >= 0);
    }

    @Test
    void lowestInertiaRestartIsKept() {
        Object[] planted = plantedPool(5, 6, 8, 4, 4, 12.0);
        UnitPool pool = (UnitPool) planted[0];
        ClusteringResult best = new RankWiseClustering(6, 300, FeatureNorm.NONE).cluster(pool, 6, 9);
        // each single restart (same split sequence) is one of the candidates; the kept one is the minimum
        java.util.SplittableRandom root = new java.util.SplittableRandom(9);
        double min = Double.POSITIVE_INFINITY;
        for (int restart = 0; restart < 6; restart++) {
            java.util.SplittableRandom rng = root.split();
            double[] fc = RankWiseClustering.seedPlusPlus(pool.units(), pool.weights(), pool.size(), pool.dim(), 6, rng);
            ClusteringResult r = new RankWiseClustering(1, 300, FeatureNorm.NONE).lloyd(pool, fc, null, null);
            min = Math.min(min, r.inertia());
        }
        assertEquals(min, best.inertia(), 0.0);
    }

    @Test
    void distanceKernelMatchesTheNaivePerPairLoop() {
        SplittableRandom rng = new SplittableRandom(21);
        for (int k = 1; k <= 9; k++) {
            int n = 7, dim = 13;
            double[] x = gaussians(rng, n * dim), c = gaussians(rng, k * dim);
            double[] xn = new double[n], cn = new double[k], out = new double[n * k];
            SquaredDistances.rowNorms(x, n, dim, xn);
            SquaredDistances.rowNorms(c, k, dim, cn);
            SquaredDistances.compute(x, xn, n, c, cn, k, dim, out);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < k; j++) {
                    double expected = NaiveReference.dist2(x, i, c, j, dim);
                    assertEquals(expected, out[i * k + j], DISTANCE_TOL * (xn[i] + cn[j]), "(" + i + "," + j + ")");
                }
            }
        }
    }

    @Test
    void kAtLeastThePoolGivesOneUnitPerClusterAndSaysWhenClamped() {
        double[] x = {1, 2, 3, 4, 5, 6};
        UnitPool pool = new UnitPool(1, 1, x, new double[]{1, 2, 3}, new int[3], new int[3]);
        ClusteringResult exact = new RankWiseClustering(2, 10, FeatureNorm.NONE).cluster(pool, 3, 1);
        assertFalse(exact.kClamped());
        ClusteringResult clamped = new RankWiseClustering(2, 10, FeatureNorm.NONE).cluster(pool, 8, 1);
        assertTrue(clamped.kClamped());
        assertEquals(3, clamped.k());
        assertEquals(8, clamped.requestedK());
        assertArrayEquals(new int[]{0, 1, 2}, clamped.assignment());
        assertArrayEquals(x, clamped.centroids(), 0.0);
        assertEquals(0, clamped.iterations());
    }

    @Test
    void badArgumentsAreRejected() {
        UnitPool pool = new UnitPool(1, 1, new double[]{1, 2}, new double[]{1}, new int[1], new int[1]);
        assertThrows(IllegalArgumentException.class, () -> new RankWiseClustering(0, 10, FeatureNorm.NONE));
        assertThrows(IllegalArgumentException.class, () -> new RankWiseClustering(1, 10, FeatureNorm.NONE).cluster(pool, 0, 1));
        assertThrows(IllegalArgumentException.class,
                () -> new UnitPool(1, 1, new double[]{1, 2}, new double[]{0}, new int[1], new int[1]));
    }

    private static void assertResultsIdentical(ClusteringResult a, ClusteringResult b) {
        assertArrayEquals(a.centroids(), b.centroids(), 0.0);
        assertArrayEquals(a.featureCentroids(), b.featureCentroids(), 0.0);
        assertArrayEquals(a.assignment(), b.assignment());
        assertArrayEquals(a.clusterWeight(), b.clusterWeight(), 0.0);
        assertEquals(Double.doubleToRawLongBits(a.inertia()), Double.doubleToRawLongBits(b.inertia()));
        assertEquals(a.iterations(), b.iterations());
    }
}
