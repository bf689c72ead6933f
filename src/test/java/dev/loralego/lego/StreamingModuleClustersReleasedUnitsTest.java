package dev.loralego.lego;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Units kept out of memory ({@link StreamingModuleClusters#releaseUnits()} with a factor source): every result stays
 * bit-identical to a state that keeps its units; a mini-batch step reads no other adapter's units; re-derived units
 * that differ from the ones the state was built with are refused; the inertia of a mini-batch step (from sufficient
 * statistics) agrees with a direct computation.
 */
class StreamingModuleClustersReleasedUnitsTest {

    private static final String MODULE = "model.layers.3.mlp.down_proj";

    private static LegoOptions options(int k, CanonicalForm canonical, FeatureNorm norm) {
        return new LegoOptions(k, Map.of(), 7L, 2, 300, canonical, norm, ParameterReweighting.L2, true);
    }

    /** The factors every adapter id currently has, as a source; counts the lookups. */
    private static final class CountingSource implements Function<String, AdapterModule> {
        final Map<String, AdapterModule> factors = new HashMap<>();
        final AtomicInteger lookups = new AtomicInteger();

        @Override
        public AdapterModule apply(String id) {
            lookups.incrementAndGet();
            return factors.get(id);
        }
    }

    /** A state with k clusters (SVD, no feature norm) reading released units from a new counting source. */
    private static StreamingModuleClusters withSource(int k, CountingSource source) {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(k, CanonicalForm.SVD, FeatureNorm.NONE),
                StreamingOptions.defaults());
        s.setFactorSource(source);
        return s;
    }

    /** A random adapter of rank {@code r}, registered with the source, then upserted. */
    private static void publish(StreamingModuleClusters s, CountingSource source, String id, SplittableRandom rng, int r,
                                int dIn, int dOut) {
        AdapterModule f = randomAdapter(id, rng, r, dIn, dOut, 1.0, 1.0);
        source.factors.put(id, f);
        s.upsert(id, f);
    }

    @ParameterizedTest(name = "k={0} {1} {2} lambda={3} refineEvery={4}")
    @CsvSource({
            "3,SVD,NONE,1.0,0",
            "4,BALANCED,HALVES,1.0,3",
            "2,NONE,NONE,0.8,0",
            "5,SVD,HALVES,1.0,4"})
    void releasingUnitsAfterEveryStepChangesNoResult(int k, CanonicalForm canonical, FeatureNorm norm, double lambda,
                                                    int refineEvery) {
        StreamingOptions so = new StreamingOptions(lambda, refineEvery);
        StreamingModuleClusters kept = new StreamingModuleClusters(MODULE, options(k, canonical, norm), so);
        StreamingModuleClusters released = new StreamingModuleClusters(MODULE, options(k, canonical, norm), so);
        CountingSource source = new CountingSource();
        released.setFactorSource(source);
        SplittableRandom ops = new SplittableRandom(k * 31L + 1), values = new SplittableRandom(k * 17L + 3);
        List<String> live = new ArrayList<>();
        for (int step = 0; step < 40; step++) {
            int dice = ops.nextInt(10);
            String id = "a" + ops.nextInt(7);
            if (dice <= 1 && live.contains(id)) {
                assertEquals(kept.retract(id), released.retract(id));
                live.remove(id);
                source.factors.remove(id);
            } else if (dice == 2) {
                assertEquals(kept.refine(), released.refine());
            } else {
                AdapterModule f = randomAdapter(id, values, 1 + ops.nextInt(4), 9, 7, 0.5 + values.nextDouble(),
                        0.5 + values.nextDouble());
                source.factors.put(id, f);
                kept.upsert(id, f);
                released.upsert(id, f);
                if (!live.contains(id)) live.add(id);
            }
            StreamingModuleClustersSplitStateTest.assertDerivedBitIdentical(kept, released, "step " + step);
            assertArrayEquals(kept.toStateBytes(), released.toStateBytes(), "skeleton at step " + step);
            StreamingModuleClustersSplitStateTest.assertMergedBitIdentical(kept.merged(), released.merged());
            for (String a : kept.liveAdapters()) {
                assertEquals(Double.doubleToRawLongBits(kept.updateNorm(a)), Double.doubleToRawLongBits(released.updateNorm(a)));
            }
            released.releaseUnits();
        }
        assertTrue(source.lookups.get() > 0, "some steps needed the pool back");
        // a restore from the skeleton through the factor source is the same state
        StreamingModuleClusters restored = StreamingModuleClusters.restore(released.toStateBytes(), source);
        StreamingModuleClustersSplitStateTest.assertDerivedBitIdentical(kept, restored, "restored");
        assertArrayEquals(kept.toBytes(), restored.toBytes());
    }

    @Test
    void aMiniBatchStepReadsNoOtherAdaptersUnits() {
        CountingSource source = new CountingSource();
        StreamingModuleClusters s = withSource(4, source);
        SplittableRandom rng = new SplittableRandom(5);
        for (int t = 0; t < 3; t++) publish(s, source, "first-" + t, rng, 3, 12, 10);
        assertTrue(s.clustered());
        s.releaseUnits();
        int before = source.lookups.get();
        for (int t = 0; t < 5; t++) {
            publish(s, source, "next-" + t, rng, 3, 12, 10);
            s.merged().orElseThrow();
            s.toStateBytes();
            for (String id : s.liveAdapters()) s.updateNorm(id);
            s.releaseUnits();
        }
        assertEquals(before, source.lookups.get(), "upserts of new adapters, merged(), the skeleton and the norms "
                + "never read the released units");
        s.retract("first-0");
        assertTrue(source.lookups.get() > before, "a retraction reads the pool");
    }

    @Test
    void reDerivedUnitsThatDifferAreRefused() {
        CountingSource source = new CountingSource();
        StreamingModuleClusters s = withSource(2, source);
        SplittableRandom rng = new SplittableRandom(9);
        for (String id : List.of("x", "y", "z")) publish(s, source, id, rng, 2, 6, 5);
        byte[] skeleton = s.toStateBytes();
        s.releaseUnits();
        // the source now answers other factors for y: a retraction needs the pool and must not use them
        source.factors.put("y", randomAdapter("y", rng, 2, 6, 5, 1.0, 1.0));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.retract("x"));
        assertTrue(e.getMessage().contains("adapter y") && e.getMessage().contains("stale"), e.getMessage());
        IllegalStateException r = assertThrows(IllegalStateException.class,
                () -> StreamingModuleClusters.restore(skeleton, source));
        assertTrue(r.getMessage().contains("adapter y"), r.getMessage());
        source.factors.remove("z");
        assertThrows(IllegalStateException.class, () -> StreamingModuleClusters.restore(skeleton, source));
        assertThrows(IllegalStateException.class, () -> new StreamingModuleClusters(MODULE,
                options(2, CanonicalForm.SVD, FeatureNorm.NONE), StreamingOptions.defaults()).releaseUnits());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"NONE", "HALVES"})
    void theInertiaOfAMiniBatchStepMatchesADirectComputation(FeatureNorm norm) {
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.SVD, norm),
                StreamingOptions.defaults());
        SplittableRandom rng = new SplittableRandom(13);
        for (int t = 0; t < 9; t++) {
            s.upsert("ad" + t, randomAdapter("ad" + t, rng, 2, 8, 6, 1.0, 0.5 + rng.nextDouble()));
            if (!s.clustered()) continue;
            ClusteringResult r = s.clusteringResult().orElseThrow();
            UnitPool pool = s.pool();
            double[] f = pool.features(norm);
            int dim = pool.dim();
            double direct = 0;
            for (int i = 0; i < pool.size(); i++) {
                int j = r.assignment()[i];
                double d2 = 0;
                for (int d = 0; d < dim; d++) {
                    double diff = f[i * dim + d] - r.featureCentroids()[j * dim + d];
                    d2 += diff * diff;
                }
                direct += pool.weights()[i] * d2;
            }
            assertEquals(direct, r.inertia(), 1e-9 * Math.max(1, direct), "after adapter " + t);
        }
        assertTrue(s.clustered());
    }
}
