package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The streaming form (ALGORITHM.md §6): guarantees (a), (b), (c) of {@link StreamingModuleClusters}, and each rule. */
class StreamingModuleClustersTest {

    private static final String MODULE = "model.layers.3.mlp.down_proj";
    /** Retraction exactness: centroids recomputed from the same members. */
    private static final double RETRACTION_TOL = 1e-12;
    private static final double FORMULA_TOL = 1e-12;

    private static LegoOptions options(int k, CanonicalForm canonical, FeatureNorm norm) {
        return new LegoOptions(k, Map.of(), 42L, 3, 300, canonical, norm, ParameterReweighting.L2, true);
    }

    /** Replays a seeded random history of upserts (new versions) and retractions; returns the final live set. */
    private static TreeMap<String, AdapterModule> replayHistory(StreamingModuleClusters s, long seed, int steps,
                                                                int dIn, int dOut) {
        return replayHistory(s, seed, steps, dIn, dOut, new TreeMap<>());
    }

    /** As above, continuing from the live set {@code liveSet} (modified and returned). */
    private static TreeMap<String, AdapterModule> replayHistory(StreamingModuleClusters s, long seed, int steps,
                                                                int dIn, int dOut, TreeMap<String, AdapterModule> liveSet) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (int step = 0; step < steps; step++) {
            String id = "adapter-" + rng.nextInt(7);
            if (liveSet.containsKey(id) && rng.nextInt(3) == 0) {
                assertTrue(s.retract(id));
                liveSet.remove(id);
            } else {
                AdapterModule m = randomAdapter(id, rng, 2 + rng.nextInt(4), dIn, dOut, 0.5 + rng.nextDouble(),
                        0.5 + rng.nextDouble());
                s.upsert(id, m);
                liveSet.put(id, m);
            }
            assertEquals(new ArrayList<>(liveSet.keySet()), s.liveAdapters());
        }
        return liveSet;
    }

    @ParameterizedTest(name = "k={0} {1} {2}")
    @CsvSource({"4,NONE,NONE", "4,SVD,NONE", "3,SVD,HALVES", "5,BALANCED,HALVES", "0,SVD,NONE"})
    void refineReachesALloydFixedPointOnTheLivePool(int k, CanonicalForm canonical, FeatureNorm norm) {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(k, canonical, norm), StreamingOptions.defaults());
        TreeMap<String, AdapterModule> liveSet = replayHistory(s, 100 + k, 40, 10, 8);
        assertFalse(liveSet.isEmpty());
        assertTrue(s.clustered(), "history leaves more units than clusters");
        double before = s.clusteringResult().orElseThrow().inertia();
        assertTrue(s.refine(), "refine converged");
        ClusteringResult after = s.clusteringResult().orElseThrow();
        assertTrue(after.inertia() <= before * (1 + 1e-12), "refinement does not raise the inertia");
        // (a) one more assignment step against the current centroids changes nothing
        ClusteringResult again = new RankWiseClustering(1, 1, norm)
                .lloyd(s.pool(), after.featureCentroids(), after.assignment(), null);
        assertTrue(again.converged());
        assertArrayEquals(after.assignment(), again.assignment());
        // and the centroids are the weighted means of the members
        UnitPool pool = s.pool();
        double[] expected = NaiveReference.weightedMeans(pool.units(), pool.weights(), after.assignment(), after.k(), pool.dim());
        for (int j = 0; j < after.k(); j++) {
            if (after.clusterWeight()[j] == 0) continue;
            for (int d = 0; d < pool.dim(); d++) {
                assertEquals(expected[j * pool.dim() + d], after.centroids()[j * pool.dim() + d], 1e-12);
            }
        }
    }

    @ParameterizedTest(name = "k={0} {1} {2}")
    @CsvSource({"4,SVD,NONE", "3,NONE,HALVES", "0,BALANCED,NONE"})
    void aStateRebuiltFromTheLiveSetEqualsTheBatchMergeBitForBit(int k, CanonicalForm canonical, FeatureNorm norm) {
        LegoOptions o = options(k, canonical, norm);
        StreamingModuleClusters history = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        TreeMap<String, AdapterModule> liveSet = replayHistory(history, 7 + k, 30, 9, 11);
        MergedModule batch = LegoMerger.mergeModule(MODULE, new ArrayList<>(liveSet.values()), o);

        // (b) a fresh instance fed the live set as one update
        StreamingModuleClusters fresh = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        fresh.upsertAll(liveSet);
        assertBitIdentical(batch, fresh.merged().orElseThrow());
        // refining a converged batch state changes nothing
        assertTrue(LegoMerger.merge(MODULE, new ArrayList<>(liveSet.values()), o).clustering().converged());
        assertTrue(fresh.refine());
        assertBitIdentical(batch, fresh.merged().orElseThrow());
        // the long-lived instance after recluster()
        history.recluster();
        assertBitIdentical(batch, history.merged().orElseThrow());
    }

    @Test
    void sequentialFeedWhoseFirstFillHappensLastEqualsTheBatchMerge() {
        LegoOptions o = options(10, CanonicalForm.SVD, FeatureNorm.NONE);
        SplittableRandom rng = new SplittableRandom(3);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        List<AdapterModule> fed = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            AdapterModule m = randomAdapter("t" + t, rng, 3, 8, 6, 1.0, 1.0);
            s.upsert(m.adapterId(), m);
            fed.add(m);
            // pool 3, 6, 9 ≤ k: trivial, and equal to the batch answer with k clamped
            assertEquals(t == 3, s.clustered());
            assertBitIdentical(LegoMerger.mergeModule(MODULE, fed, o), s.merged().orElseThrow());
        }
        assertEquals(10, s.clusterCount());
    }

    @Test
    void toBytesRoundTripPreservesEveryLaterResult() {
        LegoOptions o = options(4, CanonicalForm.SVD, FeatureNorm.HALVES);
        StreamingOptions so = new StreamingOptions(0.9, 3);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, so);
        TreeMap<String, AdapterModule> liveSet = replayHistory(s, 55, 25, 7, 5);
        byte[] bytes = s.toBytes();
        assertEquals(StreamingModuleClusters.FORMAT_VERSION, bytes[0]);
        StreamingModuleClusters restored = StreamingModuleClusters.fromBytes(bytes);
        assertArrayEquals(bytes, restored.toBytes());
        assertBitIdentical(s.merged().orElseThrow(), restored.merged().orElseThrow());
        assertEquals(s.liveRanks(), restored.liveRanks());
        assertEquals(s.liveWeights(), restored.liveWeights());
        assertEquals(s.updatesSinceRefine(), restored.updatesSinceRefine());
        // the same further updates on both
        replayHistory(s, 56, 12, 7, 5, new TreeMap<>(liveSet));
        replayHistory(restored, 56, 12, 7, 5, new TreeMap<>(liveSet));
        assertBitIdentical(s.merged().orElseThrow(), restored.merged().orElseThrow());
        assertArrayEquals(s.toBytes(), restored.toBytes());
        // empty state round trip
        StreamingModuleClusters empty = new StreamingModuleClusters(MODULE, o, so);
        assertTrue(StreamingModuleClusters.fromBytes(empty.toBytes()).merged().isEmpty());
    }

    @Test
    void corruptBytesAreRejectedWithAClearMessage() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.SVD, FeatureNorm.NONE),
                StreamingOptions.defaults());
        replayHistory(s, 1, 10, 4, 4);
        byte[] bytes = s.toBytes();
        byte[] badVersion = bytes.clone();
        badVersion[0] = 99;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromBytes(badVersion))
                .getMessage().contains("format version 99"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> StreamingModuleClusters.fromBytes(Arrays.copyOf(bytes, bytes.length - 5))).getMessage().contains("truncated"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> StreamingModuleClusters.fromBytes(Arrays.copyOf(bytes, bytes.length + 2))).getMessage().contains("trailing"));
    }

    @Test
    void upsertThenRetractRestoresTheCentroids() {
        LegoOptions o = options(3, CanonicalForm.SVD, FeatureNorm.NONE);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(12);
        for (int t = 0; t < 4; t++) s.upsert("base" + t, randomAdapter("base" + t, rng, 3, 10, 6, 1.0, 1.0));
        assertTrue(s.clustered());
        ClusteringResult before = s.clusteringResult().orElseThrow();
        s.upsert("x", randomAdapter("x", rng, 3, 10, 6, 2.0, 1.5));
        ClusteringResult with = s.clusteringResult().orElseThrow();
        assertFalse(Arrays.equals(before.centroids(), with.centroids()), "x moved some centroid");
        assertTrue(s.retract("x"));
        ClusteringResult after = s.clusteringResult().orElseThrow();
        assertArrayEquals(before.centroids(), after.centroids(), RETRACTION_TOL);
        assertArrayEquals(before.clusterWeight(), after.clusterWeight(), RETRACTION_TOL);
        assertArrayEquals(before.assignment(), after.assignment());
    }

    @Test
    void miniBatchStepFollowsTheWeightedCountFormula() {
        LegoOptions o = options(3, CanonicalForm.NONE, FeatureNorm.NONE);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(13);
        for (int t = 0; t < 3; t++) s.upsert("base" + t, randomAdapter("base" + t, rng, 3, 5, 4, 1.0, 1.0 + t));
        ClusteringResult before = s.clusteringResult().orElseThrow();
        AdapterModule x = randomAdapter("z", rng, 2, 5, 4, 3.0, 2.0);
        s.upsert("z", x);
        ClusteringResult after = s.clusteringResult().orElseThrow();
        int dim = 9, k = 3;
        double[] units = MinimalSemanticUnits.fold(x);
        double[] sum = new double[k * dim], m = new double[k];
        for (int u = 0; u < 2; u++) {
            int best = 0;
            for (int j = 1; j < k; j++) {
                if (NaiveReference.dist2(units, u, before.centroids(), j, dim)
                        < NaiveReference.dist2(units, u, before.centroids(), best, dim)) best = j;
            }
            m[best] += 2.0;
            for (int d = 0; d < dim; d++) sum[best * dim + d] += 2.0 * units[u * dim + d];
        }
        for (int j = 0; j < k; j++) {
            double n = before.clusterWeight()[j];
            assertEquals(n + m[j], after.clusterWeight()[j], FORMULA_TOL, "n_j += m_j");
            for (int d = 0; d < dim; d++) {
                double expected = (n * before.centroids()[j * dim + d] + sum[j * dim + d]) / (n + m[j]);
                assertEquals(expected, after.centroids()[j * dim + d], FORMULA_TOL, "c_" + j + "[" + d + "]");
            }
        }
    }

    @Test
    void anEmptiedClusterIsReseededWithTheFarthestUnit() {
        // units [p, p] for p = 1, 1.1, 5, 6 (adapters a, b) and 100 (adapter far)
        AdapterModule a = new AdapterModule("a", 1, 1, 2, 1, 1, new double[]{1, 1.1}, new double[]{1, 1.1});
        AdapterModule b = new AdapterModule("b", 1, 1, 2, 1, 1, new double[]{5, 6}, new double[]{5, 6});
        AdapterModule far = new AdapterModule("far", 1, 1, 1, 1, 1, new double[]{100}, new double[]{100});
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(2, CanonicalForm.NONE, FeatureNorm.NONE),
                StreamingOptions.defaults());
        s.upsertAll(Map.of("a", a, "b", b, "far", far));
        ClusteringResult c = s.clusteringResult().orElseThrow();
        // pool order: a (1, 1.1), b (5, 6), far (100)
        int farCluster = c.assignment()[4];
        for (int i = 0; i < 4; i++) assertTrue(c.assignment()[i] != farCluster, "precondition: far is alone");
        assertTrue(s.retract("far"));
        ClusteringResult r = s.clusteringResult().orElseThrow();
        assertEquals(2, r.k());
        assertEquals(farCluster, r.assignment()[3], "unit 6 (farthest from the mean 3.275) re-seeds the empty cluster");
        int other = r.assignment()[0];
        assertEquals(other, r.assignment()[1]);
        assertEquals(other, r.assignment()[2]);
        assertArrayEquals(new double[]{6, 6}, Arrays.copyOfRange(r.centroids(), 2 * farCluster, 2 * farCluster + 2), 0.0);
        double mean = (1 + 1.1 + 5) / 3;
        assertArrayEquals(new double[]{mean, mean}, Arrays.copyOfRange(r.centroids(), 2 * other, 2 * other + 2), 1e-15);
    }

    @Test
    void forgettingDecaysOlderUnits() {
        LegoOptions o = new LegoOptions(1, Map.of(), 1L, 1, 50, CanonicalForm.NONE, FeatureNorm.NONE,
                ParameterReweighting.OFF, false);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, new StreamingOptions(0.5, 0));
        double[] xa = {1, 0, 2}, xb = {0, 4, 8}, xc = {3, 3, 3};
        s.upsert("a", unit("a", xa, 1.0));
        assertArrayEquals(xa, s.clusteringResult().orElseThrow().centroids(), 0.0);
        s.upsert("b", unit("b", xb, 1.0)); // rebuild with weights (0.5, 1)
        assertArrayEquals(combine(new double[]{0.5, 1}, xa, xb), s.clusteringResult().orElseThrow().centroids(), 1e-15);
        s.upsert("c", unit("c", xc, 2.0)); // mini-batch: (0.25, 0.5, 2)
        assertArrayEquals(combine(new double[]{0.25, 0.5, 2}, xa, xb, xc), s.clusteringResult().orElseThrow().centroids(), 1e-15);
        assertEquals(2.75, s.clusteringResult().orElseThrow().clusterWeight()[0], 1e-15);
        s.retract("b"); // exact removal of b's decayed weight
        assertArrayEquals(combine(new double[]{0.25, 2}, xa, xc), s.clusteringResult().orElseThrow().centroids(), 1e-15);
        // merged ΔW = b̄ āᵀ of the single centroid (no reweighting)
        double[] c = combine(new double[]{0.25, 2}, xa, xc);
        assertArrayEquals(new double[]{c[2] * c[0], c[2] * c[1]}, s.merged().orElseThrow().deltaW(), 1e-14);
    }

    @Test
    void aChangeOfTheAutomaticKRebuildsLikeTheBatchMerge() {
        LegoOptions o = options(0, CanonicalForm.SVD, FeatureNorm.NONE);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(21);
        TreeMap<String, AdapterModule> liveSet = new TreeMap<>();
        for (int t = 0; t < 3; t++) {
            AdapterModule m = randomAdapter("r2-" + t, rng, 2, 6, 6, 1, 1);
            s.upsert(m.adapterId(), m);
            liveSet.put(m.adapterId(), m);
        }
        assertEquals(2, s.targetK());
        AdapterModule big = randomAdapter("r4", rng, 4, 6, 6, 1, 1);
        s.upsert("r4", big);
        liveSet.put("r4", big);
        assertEquals(4, s.targetK());
        assertBitIdentical(LegoMerger.mergeModule(MODULE, new ArrayList<>(liveSet.values()), o), s.merged().orElseThrow());
        s.retract("r4");
        liveSet.remove("r4");
        assertEquals(2, s.targetK());
        assertBitIdentical(LegoMerger.mergeModule(MODULE, new ArrayList<>(liveSet.values()), o), s.merged().orElseThrow());
    }

    @Test
    void emptyLiveSetHasNoOutputAndForgetsTheShape() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, LegoOptions.defaults(), StreamingOptions.defaults());
        assertTrue(s.merged().isEmpty());
        assertFalse(s.retract("nobody"));
        SplittableRandom rng = new SplittableRandom(2);
        s.upsert("a", randomAdapter("a", rng, 2, 3, 3, 1, 1));
        assertTrue(s.merged().isPresent());
        assertTrue(s.retract("a"));
        assertTrue(s.merged().isEmpty());
        s.upsert("b", randomAdapter("b", rng, 2, 5, 4, 1, 1)); // another shape is fine once nothing is live
        assertEquals(4, s.merged().orElseThrow().dOut());
    }

    @Test
    void shapeMismatchIsRejectedAndLeavesTheStateUnchanged() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, LegoOptions.defaults(), StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(4);
        s.upsert("a", randomAdapter("a", rng, 2, 3, 3, 1, 1));
        s.upsert("b", randomAdapter("b", rng, 2, 3, 3, 1, 1));
        byte[] before = s.toBytes();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.upsert("c", randomAdapter("c", rng, 2, 4, 3, 1, 1)));
        assertTrue(e.getMessage().contains(MODULE) && e.getMessage().contains("c"), e.getMessage());
        assertArrayEquals(before, s.toBytes());
    }

    @Test
    void refinesAutomaticallyEveryRefineEveryUpdates() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(2, CanonicalForm.SVD, FeatureNorm.NONE),
                new StreamingOptions(1.0, 3));
        SplittableRandom rng = new SplittableRandom(5);
        s.upsert("a", randomAdapter("a", rng, 2, 4, 4, 1, 1));
        s.upsert("b", randomAdapter("b", rng, 2, 4, 4, 1, 1));
        assertEquals(2, s.updatesSinceRefine());
        s.upsert("c", randomAdapter("c", rng, 2, 4, 4, 1, 1));
        assertEquals(0, s.updatesSinceRefine(), "third update triggered refine()");
        s.retract("a");
        assertEquals(1, s.updatesSinceRefine());
        assertEquals(4, s.updates());
    }

    private static AdapterModule unit(String id, double[] x, double weight) {
        // one unit [a0, a1 ; b0] with scaling 1
        return new AdapterModule(id, weight, 1.0, 1, 2, 1, new double[]{x[0], x[1]}, new double[]{x[2]});
    }

    private static double[] combine(double[] w, double[]... xs) {
        double[] c = new double[xs[0].length];
        double sw = 0;
        for (int t = 0; t < xs.length; t++) {
            sw += w[t];
            for (int d = 0; d < c.length; d++) c[d] += w[t] * xs[t][d];
        }
        for (int d = 0; d < c.length; d++) c[d] /= sw;
        return c;
    }

    private static void assertBitIdentical(MergedModule expected, MergedModule actual) {
        assertEquals(expected.rank(), actual.rank(), "rank");
        assertArrayEquals(expected.a(), actual.a(), 0.0, "A");
        assertArrayEquals(expected.b(), actual.b(), 0.0, "B");
        assertEquals(Double.doubleToRawLongBits(expected.inertia()), Double.doubleToRawLongBits(actual.inertia()), "inertia");
    }
}
