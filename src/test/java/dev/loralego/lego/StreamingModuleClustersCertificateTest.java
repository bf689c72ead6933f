package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Refinement certificates ({@link StreamingModuleClusters#refine()}): a refinement is skipped exactly when a Lloyd
 * assignment step on the current centroids would move no unit (checked against {@link RankWiseClustering#lloyd} on
 * the pool), it then changes no merged value, a restored copy takes the same decision with the same bytes, and
 * units whose certificates hold are not loaded.
 */
class StreamingModuleClustersCertificateTest {

    private static final String MODULE = "model.layers.1.self_attn.v_proj";

    private static LegoOptions options(int k, CanonicalForm canonical, FeatureNorm norm) {
        return new LegoOptions(k, Map.of(), 5L, 2, 300, canonical, norm, ParameterReweighting.L2, true);
    }

    @ParameterizedTest(name = "k={0} {1} {2} lambda={3}")
    @CsvSource({
            "3,SVD,NONE,1.0",
            "4,BALANCED,HALVES,1.0",
            "2,NONE,NONE,0.8",
            "5,SVD,HALVES,0.9"})
    void aRefinementIsSkippedExactlyWhenLloydWouldMoveNoUnit(int k, CanonicalForm canonical, FeatureNorm norm,
                                                            double lambda) {
        LegoOptions o = options(k, canonical, norm);
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, o, new StreamingOptions(lambda, 0));
        RankWiseClustering lloyd = RankWiseClustering.of(o);
        SplittableRandom ops = new SplittableRandom(k * 13L + 5), values = new SplittableRandom(k * 7L + 1);
        List<String> live = new ArrayList<>();
        int skipped = 0, ran = 0;
        for (int step = 0; step < 60; step++) {
            String id = "a" + ops.nextInt(8);
            if (live.size() > 2 && ops.nextInt(5) == 0) {
                String gone = live.remove(ops.nextInt(live.size()));
                s.retract(gone);
            } else {
                s.upsert(id, randomAdapter(id, values, 1 + ops.nextInt(3), 5, 4, 1.0, 0.5 + values.nextDouble()));
                if (!live.contains(id)) live.add(id);
            }
            if (step % 3 != 2 || !s.clustered()) continue;
            ClusteringResult now = s.clusteringResult().orElseThrow();
            ClusteringResult reference = lloyd.lloyd(s.pool(), now.featureCentroids(), now.assignment(), null);
            boolean lloydMovesNothing = reference.iterations() == 1 && reference.converged();
            StreamingModuleClusters copy = StreamingModuleClusters.fromStateBytes(s.toStateBytes(), s::unitsBytes);
            MergedModule before = s.merged().orElseThrow();
            long certifiedBefore = s.certifiedRefinements();
            s.refine();
            copy.refine();
            boolean certified = s.certifiedRefinements() == certifiedBefore + 1;
            assertEquals(lloydMovesNothing, certified, "step " + step + ": skipped iff Lloyd's first step moves nothing");
            assertEquals(certified ? 1 : 0, copy.certifiedRefinements(), "a restored copy decides the same");
            assertArrayEquals(s.toBytes(), copy.toBytes(), "step " + step + ": same state after the refinement");
            if (certified) {
                MergedModule after = s.merged().orElseThrow();
                assertArrayEquals(before.a(), after.a(), 0.0, "a skipped refinement changes nothing");
                assertArrayEquals(before.b(), after.b(), 0.0);
                skipped++;
            } else {
                ran++;
            }
        }
        assertTrue(skipped > 0, "some refinements were certified no-ops (" + skipped + " of " + (skipped + ran) + ")");
    }

    @Test
    void unitsWhoseCertificatesHoldAreNotLoaded() {
        // three well-separated directions; every adapter's three units lie close to them
        int dIn = 6, dOut = 5, r = 3;
        SplittableRandom rng = new SplittableRandom(3);
        double[][] centreA = new double[r][dIn], centreB = new double[dOut][r];
        for (int j = 0; j < r; j++) {
            for (int d = 0; d < dIn; d++) centreA[j][d] = 10 * rng.nextGaussian();
            for (int d = 0; d < dOut; d++) centreB[d][j] = 10 * rng.nextGaussian();
        }
        Map<String, AdapterModule> factors = new HashMap<>();
        AtomicInteger lookups = new AtomicInteger();
        StreamingModuleClusters s = new StreamingModuleClusters(MODULE, options(3, CanonicalForm.NONE, FeatureNorm.NONE),
                new StreamingOptions(1.0, 0));
        s.setFactorSource(id -> {
            lookups.incrementAndGet();
            return factors.get(id);
        });
        for (int t = 0; t < 8; t++) {
            double[] a = new double[r * dIn], b = new double[dOut * r];
            for (int j = 0; j < r; j++) {
                for (int d = 0; d < dIn; d++) a[j * dIn + d] = centreA[j][d] + 0.01 * rng.nextGaussian();
                for (int d = 0; d < dOut; d++) b[d * r + j] = centreB[d][j] + 0.01 * rng.nextGaussian();
            }
            AdapterModule f = new AdapterModule("t" + t, 1.0, 1.0, r, dIn, dOut, a, b);
            factors.put(f.adapterId(), f);
            s.upsert(f.adapterId(), f);
            s.releaseUnits();
        }
        assertTrue(s.clustered());
        MergedModule before = s.merged().orElseThrow();
        lookups.set(0);
        s.refine();
        assertEquals(1, s.certifiedRefinements());
        assertEquals(0, lookups.get(), "no adapter was in doubt, none was re-derived");
        assertEquals(0, s.adaptersCheckedForRefinement());
        assertArrayEquals(before.a(), s.merged().orElseThrow().a(), 0.0);
    }

    @Test
    void certifiedGapIsConservative() {
        assertEquals(0.0, RankWiseClustering.certifiedGap(4.0, 4.0, 1e-12), 0.0, "a tie certifies nothing");
        assertEquals(0.0, RankWiseClustering.certifiedGap(1.0, 1.0 + 1e-9, 1e-8), 0.0, "within the tolerance");
        double g = RankWiseClustering.certifiedGap(1.0, 4.0, 1e-6);
        assertTrue(g > 0 && g < 1.0, "below the exact gap 2 - 1: " + g);
    }
}
