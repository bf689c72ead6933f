package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The split binary form of {@link StreamingModuleClusters}: {@link StreamingModuleClusters#unitsBytes} per adapter
 * plus the dimension-free skeleton {@link StreamingModuleClusters#toStateBytes()}, restored by
 * {@link StreamingModuleClusters#fromStateBytes}; and the invariant that makes it exact (derived arrays are a pure
 * function of the members), checked after every operation by comparing {@code toBytes()} of a restored copy.
 */
class StreamingModuleClustersSplitStateTest {

    private static final String MODULE = "model.layers.7.self_attn.v_proj";

    /** One operation of a random history. */
    private record Op(Kind kind, String id, AdapterModule factors) {
    }

    private enum Kind { UPSERT, RETRACT, REFINE, RECLUSTER }

    private static LegoOptions options(int k, CanonicalForm canonical, FeatureNorm norm, int maxIter) {
        return new LegoOptions(k, Map.of(), 42L, 2, maxIter, canonical, norm, ParameterReweighting.L2, true);
    }

    /**
     * A seeded history. The operation kinds, ids and ranks come from {@code opsSeed} only; the factor values come
     * from {@code valuesSeed}, so the same {@code opsSeed} at other dims is the same sequence of operations.
     */
    private static List<Op> history(long opsSeed, long valuesSeed, int steps, int dIn, int dOut) {
        SplittableRandom ops = new SplittableRandom(opsSeed);
        SplittableRandom values = new SplittableRandom(valuesSeed);
        List<String> liveIds = new ArrayList<>();
        List<Op> out = new ArrayList<>();
        for (int step = 0; step < steps; step++) {
            int dice = ops.nextInt(10);
            String id = "adapter-" + ops.nextInt(6);
            int rank = 1 + ops.nextInt(5);
            if (dice == 0) {
                out.add(new Op(Kind.REFINE, null, null));
            } else if (dice == 1) {
                out.add(new Op(Kind.RECLUSTER, null, null));
            } else if (dice <= 3 && liveIds.contains(id)) {
                out.add(new Op(Kind.RETRACT, id, null));
                liveIds.remove(id);
            } else {
                // a new adapter or a replacement (new version) of a live one
                out.add(new Op(Kind.UPSERT, id, randomAdapter(id, values, rank, dIn, dOut, 0.5 + values.nextDouble(),
                        0.5 + values.nextDouble())));
                if (!liveIds.contains(id)) liveIds.add(id);
            }
        }
        return out;
    }

    /** Applies an operation; returns what it returned (refine's convergence, retract's liveness) for comparison. */
    private static Optional<Boolean> apply(StreamingModuleClusters s, Op op) {
        return switch (op.kind()) {
            case UPSERT -> {
                s.upsert(op.id(), op.factors());
                yield Optional.empty();
            }
            case RETRACT -> Optional.of(s.retract(op.id()));
            case REFINE -> Optional.of(s.refine());
            case RECLUSTER -> {
                s.recluster();
                yield Optional.empty();
            }
        };
    }

    /** Centroids, feature centroids, cluster weights, assignment and inertia, bit for bit. */
    static void assertDerivedBitIdentical(StreamingModuleClusters expected, StreamingModuleClusters actual, String what) {
        Optional<ClusteringResult> e = expected.clusteringResult(), a = actual.clusteringResult();
        assertEquals(e.isPresent(), a.isPresent(), what);
        if (e.isEmpty()) return;
        ClusteringResult x = e.get(), y = a.get();
        assertEquals(x.k(), y.k(), what);
        assertArrayEquals(bits(x.centroids()), bits(y.centroids()), what + ": centroids");
        assertArrayEquals(bits(x.featureCentroids()), bits(y.featureCentroids()), what + ": feature centroids");
        assertArrayEquals(bits(x.clusterWeight()), bits(y.clusterWeight()), what + ": cluster weights");
        assertArrayEquals(x.assignment(), y.assignment(), what + ": assignment");
        assertEquals(Double.doubleToRawLongBits(x.inertia()), Double.doubleToRawLongBits(y.inertia()), what + ": inertia");
    }

    private static long[] bits(double[] v) {
        long[] b = new long[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Double.doubleToRawLongBits(v[i]);
        return b;
    }

    private static StreamingModuleClusters splitCopy(StreamingModuleClusters s) {
        return StreamingModuleClusters.fromStateBytes(s.toStateBytes(), s::unitsBytes);
    }

    @ParameterizedTest(name = "k={0} {1} {2} lambda={3} refineEvery={4} maxIter={5}")
    @CsvSource({
            "3,SVD,NONE,1.0,0,300",
            "4,BALANCED,HALVES,0.8,3,300",
            "0,NONE,HALVES,1.0,0,1",      // automatic k; Lloyd stops at maxIter = 1 without converging
            "12,SVD,NONE,0.7,2,300",      // k often clamped: trivial states and first fills
            "2,NONE,NONE,0.9,0,2"})
    void aSplitCopyTakenAtAnyPointStaysBitIdenticalUnderTheSameOperations(int k, CanonicalForm canonical,
                                                                          FeatureNorm norm, double lambda,
                                                                          int refineEvery, int maxIter) {
        LegoOptions o = options(k, canonical, norm, maxIter);
        StreamingOptions so = new StreamingOptions(lambda, refineEvery);
        SplittableRandom when = new SplittableRandom(900 + k);
        for (long seed = 0; seed < 3; seed++) {
            List<Op> ops = history(31 * seed + k, 77 * seed + 5, 36, 6, 5);
            StreamingModuleClusters orig = new StreamingModuleClusters(MODULE, o, so);
            List<StreamingModuleClusters> copies = new ArrayList<>();
            boolean sawClustered = false, sawTrivial = false, sawNonConverged = false;
            for (int step = 0; step < ops.size(); step++) {
                Optional<Boolean> expected = apply(orig, ops.get(step));
                for (StreamingModuleClusters c : copies) {
                    assertEquals(expected, apply(c, ops.get(step)), "return value of step " + step);
                }
                byte[] full = orig.toBytes();
                // the invariant: the derived arrays equal what a restore recomputes from the members, bit for bit
                StreamingModuleClusters restored = splitCopy(orig);
                assertArrayEquals(full, restored.toBytes(), "invariant after step " + step + " " + ops.get(step).kind());
                assertDerivedBitIdentical(orig, restored, "invariant after step " + step + " " + ops.get(step).kind());
                Optional<MergedModule> merged = orig.merged();
                for (StreamingModuleClusters c : copies) {
                    assertArrayEquals(full, c.toBytes(), "copy diverged at step " + step);
                    assertDerivedBitIdentical(orig, c, "copy at step " + step);
                    assertArrayEquals(orig.toStateBytes(), c.toStateBytes(), "skeleton at step " + step);
                    assertMergedBitIdentical(merged, c.merged());
                }
                if (when.nextInt(4) == 0) copies.add(splitCopy(orig));
                sawClustered |= orig.clustered();
                sawTrivial |= !orig.clustered() && !orig.liveAdapters().isEmpty();
                sawNonConverged |= orig.clusteringResult().map(r -> !r.converged()).orElse(false);
            }
            assertFalse(copies.isEmpty(), "at least one copy was taken");
            assertTrue(sawClustered, "the history reaches a clustered state");
            if (k >= 12) assertTrue(sawTrivial, "k clamped to the pool size at some point");
            if (maxIter == 1) assertTrue(sawNonConverged, "Lloyd stopped at maxIter without converging at some point");
        }
    }

    @Test
    void theSkeletonSizeDoesNotDependOnTheDimensions() {
        LegoOptions o = options(4, CanonicalForm.BALANCED, FeatureNorm.HALVES, 300);
        StreamingOptions so = new StreamingOptions(0.9, 4);
        List<Op> small = history(5, 6, 30, 8, 6);
        List<Op> large = history(5, 6, 30, 800, 600);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, so);
        StreamingModuleClusters l = new StreamingModuleClusters(MODULE, o, so);
        for (int step = 0; step < small.size(); step++) {
            apply(s, small.get(step));
            apply(l, large.get(step));
            assertEquals(s.poolSize(), l.poolSize(), "same unit counts at step " + step);
            assertEquals(s.toStateBytes().length, l.toStateBytes().length, "skeleton length at step " + step);
        }
        assertTrue(l.clustered());
        // what the skeleton leaves out is the bulk: 8 bytes per value of every unit
        int unitsBytes = 0;
        for (String id : l.liveAdapters()) unitsBytes += l.unitsBytes(id).length;
        assertTrue(unitsBytes >= 8L * l.poolSize() * 1400, "units blobs hold the units");
        // per unit: weight and cluster (12 bytes) and the refinement certificate (24); per cluster its drift (8)
        assertTrue(l.toStateBytes().length < 200 + 36 * l.poolSize() + 20 * l.liveAdapters().size() + 8 * l.clusterCount(),
                "skeleton is per-unit sized: " + l.toStateBytes().length);
        assertArrayEquals(l.toBytes(), splitCopy(l).toBytes());
    }

    @Test
    void emptyClustersKeepTheirHistoricalCentroidThroughTheSkeleton() {
        // four adapters with the same single unit and k = 3: one distinct unit, so two clusters stay empty and keep
        // their k-means++ seed rows, which are history, not a function of the members
        LegoOptions o = options(3, CanonicalForm.NONE, FeatureNorm.NONE, 300);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        Map<String, AdapterModule> same = new TreeMap<>();
        for (int t = 0; t < 4; t++) {
            same.put("dup-" + t, new AdapterModule("dup-" + t, 1.0, 1.0, 1, 2, 1, new double[]{1, 2}, new double[]{3}));
        }
        s.upsertAll(same);
        assertTrue(s.clustered());
        ClusteringResult r = s.clusteringResult().orElseThrow();
        int empty = 0;
        for (double w : r.clusterWeight()) if (w == 0) empty++;
        assertEquals(2, empty, "two clusters without members");
        StreamingModuleClusters copy = splitCopy(s);
        assertArrayEquals(s.toBytes(), copy.toBytes());
        // a new unit is assigned against all centroids, the stored empty rows included, then re-seeds an empty one
        AdapterModule other = new AdapterModule("other", 1.0, 1.0, 1, 2, 1, new double[]{-4, 7}, new double[]{0.5});
        s.upsert("other", other);
        copy.upsert("other", other);
        assertArrayEquals(s.toBytes(), copy.toBytes());
        assertMergedBitIdentical(s.merged(), copy.merged());
        // the skeleton of an all-distinct state holds no such rows: dims 3 here, 1 + 3 * 8 bytes more per row
        StreamingModuleClusters distinct = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(4);
        for (int t = 0; t < 4; t++) distinct.upsert("dup-" + t, randomAdapter("dup-" + t, rng, 1, 2, 1, 1.0, 1.0));
        StreamingModuleClusters dup = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        dup.upsertAll(same);
        assertEquals(distinct.toStateBytes().length + 2 * (4 + 3 * 8), dup.toStateBytes().length);
    }

    @Test
    void aRestoredBatchStateStillEqualsTheBatchMerge() {
        LegoOptions o = options(4, CanonicalForm.SVD, FeatureNorm.HALVES, 300);
        SplittableRandom rng = new SplittableRandom(12);
        List<AdapterModule> adapters = new ArrayList<>();
        TreeMap<String, AdapterModule> byId = new TreeMap<>();
        for (int t = 0; t < 5; t++) {
            AdapterModule m = randomAdapter("b" + t, rng, 2 + t % 3, 9, 7, 1.0, 0.5 + rng.nextDouble());
            adapters.add(m);
            byId.put(m.adapterId(), m);
        }
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, StreamingOptions.defaults());
        s.upsertAll(byId);
        MergedModule batch = LegoMerger.mergeModule(MODULE, adapters, o);
        assertMergedBitIdentical(Optional.of(batch), splitCopy(s).merged());
    }

    @Test
    void unitsBlobsRoundTripAndAreDeterministic() {
        SplittableRandom rng = new SplittableRandom(8);
        AdapterModule m = randomAdapter("ünïcode-id", rng, 4, 5, 3, 2.0, 0.75);
        MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
        byte[] bytes = u.toBytes();
        assertEquals(MinimalSemanticUnits.BYTES_MAGIC, bytes[0]);
        MinimalSemanticUnits back = MinimalSemanticUnits.fromBytes(bytes);
        assertEquals(u.adapterId(), back.adapterId());
        assertEquals(Double.doubleToRawLongBits(u.weight()), Double.doubleToRawLongBits(back.weight()));
        assertEquals(u.sourceRank(), back.sourceRank());
        assertEquals(u.dIn(), back.dIn());
        assertEquals(u.dOut(), back.dOut());
        assertArrayEquals(u.rankIndex(), back.rankIndex());
        assertArrayEquals(u.units(), back.units(), 0.0);
        assertArrayEquals(bytes, back.toBytes());
        // header 2 + id (4 + 12 UTF-8 bytes) + weight 8 + 4 ints + count rank indices + values
        assertEquals(2 + 4 + "ünïcode-id".getBytes(java.nio.charset.StandardCharsets.UTF_8).length + 8 + 16
                + 4 * u.count() + 8 * u.count() * 8, bytes.length);

        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(2, CanonicalForm.SVD, FeatureNorm.NONE, 300),
                StreamingOptions.defaults());
        s.upsert("key", m);
        assertArrayEquals(bytes, s.unitsBytes("key"));
        assertArrayEquals(bytes, StreamingModuleClusters.fromBytes(s.toBytes()).unitsBytes("key"));
        IllegalArgumentException notLive = assertThrows(IllegalArgumentException.class, () -> s.unitsBytes("nope"));
        assertTrue(notLive.getMessage().contains("nope") && notLive.getMessage().contains(MODULE), notLive.getMessage());

        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> MinimalSemanticUnits.fromBytes(Arrays.copyOf(bytes, bytes.length - 3))).getMessage().contains("ünïcode-id"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> MinimalSemanticUnits.fromBytes(Arrays.copyOf(bytes, 20))).getMessage().contains("truncated"));
        byte[] badVersion = bytes.clone();
        badVersion[1] = 9;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MinimalSemanticUnits.fromBytes(badVersion))
                .getMessage().contains("format version 9"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MinimalSemanticUnits.fromBytes(s.toStateBytes()))
                .getMessage().contains("not a units blob"));
    }

    @Test
    void corruptSkeletonsAreRejectedWithAClearMessage() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.SVD, FeatureNorm.NONE, 300),
                StreamingOptions.defaults());
        for (Op op : history(3, 4, 15, 4, 4)) apply(s, op);
        assertTrue(s.clustered());
        byte[] state = s.toStateBytes();
        assertEquals(StreamingModuleClusters.STATE_MAGIC, state[0]);
        assertEquals(StreamingModuleClusters.STATE_FORMAT_VERSION, state[1]);
        // every truncation is rejected, none is misread
        for (int len = 0; len < state.length; len++) {
            byte[] cut = Arrays.copyOf(state, len);
            assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(cut, s::unitsBytes),
                    "prefix of " + len + " bytes");
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(
                Arrays.copyOf(state, state.length - 1), s::unitsBytes)).getMessage().contains("truncated"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(
                Arrays.copyOf(state, state.length + 3), s::unitsBytes)).getMessage().contains("trailing"));
        byte[] badVersion = state.clone();
        badVersion[1] = 7;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(
                badVersion, s::unitsBytes)).getMessage().contains("format version 7"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(
                s.toBytes(), s::unitsBytes)).getMessage().contains("not a streaming cluster skeleton"));
        // the last unit's cluster is the last int before the empty-row count (0 here), the sum order (count and one
        // index per adapter), the inertia and the certificates (drift count, k drifts, the max drift, three values
        // per unit): point it outside [0, k)
        byte[] badCluster = state.clone();
        int certificates = 4 + 8 * s.clusterCount() + 8 + 24 * s.poolSize();
        int at = state.length - certificates - 8 - 4 * s.liveAdapters().size() - 4 - 4 - 4;
        badCluster[at] = 0x7f;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StreamingModuleClusters.fromStateBytes(badCluster, s::unitsBytes));
        String lastId = s.liveAdapters().get(s.liveAdapters().size() - 1);
        assertTrue(e.getMessage().contains(lastId) && e.getMessage().contains("cluster"), e.getMessage());
        // the last unit's last certificate value (its max-drift reference) is the last 8 bytes: make it NaN
        byte[] badCertificate = state.clone();
        long nan = Double.doubleToRawLongBits(Double.NaN);
        for (int b = 0; b < 8; b++) badCertificate[state.length - 8 + b] = (byte) (nan >>> (56 - 8 * b));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamingModuleClusters.fromStateBytes(
                badCertificate, s::unitsBytes)).getMessage().contains("certificate"));
    }

    @Test
    void aMissingOrStaleUnitsEntryNamesTheAdapter() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.NONE, FeatureNorm.NONE, 300),
                StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(21);
        for (String id : List.of("alpha", "beta", "gamma")) s.upsert(id, randomAdapter(id, rng, 2, 4, 3, 1.0, 1.0));
        Map<String, byte[]> store = new HashMap<>();
        for (String id : s.liveAdapters()) store.put(id, s.unitsBytes(id));
        byte[] oldBeta = store.get("beta");
        s.upsert("beta", randomAdapter("beta", rng, 2, 4, 3, 1.0, 1.0));
        byte[] state = s.toStateBytes();

        // the store was not updated for the new version of beta
        IllegalStateException stale = assertThrows(IllegalStateException.class,
                () -> StreamingModuleClusters.fromStateBytes(state, store::get));
        assertTrue(stale.getMessage().contains("adapter beta") && stale.getMessage().contains("stale"), stale.getMessage());

        store.put("beta", s.unitsBytes("beta"));
        assertArrayEquals(s.toBytes(), StreamingModuleClusters.fromStateBytes(state, store::get).toBytes());
        assertNotEquals(Arrays.hashCode(oldBeta), Arrays.hashCode(store.get("beta")));

        store.remove("gamma");
        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> StreamingModuleClusters.fromStateBytes(state, store::get));
        assertTrue(missing.getMessage().contains("adapter gamma") && missing.getMessage().contains("missing"),
                missing.getMessage());
        // a truncated units entry is caught too (its digest differs)
        store.put("gamma", Arrays.copyOf(s.unitsBytes("gamma"), 30));
        assertTrue(assertThrows(IllegalStateException.class, () -> StreamingModuleClusters.fromStateBytes(state, store::get))
                .getMessage().contains("adapter gamma"));
    }

    @Test
    void anEmptyStateRoundTripsThroughTheSkeleton() {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.SVD, FeatureNorm.NONE, 300),
                new StreamingOptions(0.5, 2));
        StreamingModuleClusters copy = StreamingModuleClusters.fromStateBytes(s.toStateBytes(), id -> {
            throw new AssertionError("no units needed, asked for " + id);
        });
        assertTrue(copy.merged().isEmpty());
        assertArrayEquals(s.toBytes(), copy.toBytes());
        // and after everything was withdrawn again
        s.upsert("x", randomAdapter("x", new SplittableRandom(1), 2, 3, 3, 1.0, 1.0));
        s.retract("x");
        assertArrayEquals(s.toBytes(), StreamingModuleClusters.fromStateBytes(s.toStateBytes(), id -> null).toBytes());
    }

    static void assertMergedBitIdentical(Optional<MergedModule> expected, Optional<MergedModule> actual) {
        assertEquals(expected.isPresent(), actual.isPresent(), "presence of output");
        if (expected.isEmpty()) return;
        MergedModule e = expected.get(), a = actual.get();
        assertEquals(e.rank(), a.rank(), "rank");
        assertArrayEquals(e.a(), a.a(), 0.0, "A");
        assertArrayEquals(e.b(), a.b(), 0.0, "B");
        assertEquals(Double.doubleToRawLongBits(e.inertia()), Double.doubleToRawLongBits(a.inertia()), "inertia");
    }
}
