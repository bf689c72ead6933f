package dev.loralego.lego;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.gaussian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Lloyd loop with Hamerly-style bounds ({@link RankWiseClustering#runLloyd}) against a plain Lloyd loop written
 * here (every unit measured at every step): the same iterations, assignments and centroids bit for bit, fewer
 * distances, and gaps that are true lower bounds when measured again by explicit differences.
 */
class BoundedLloydTest {

    /** Blobs of various spreads (some overlapping, so units cross), uneven weights, and some exact copies. */
    private static double[] pool(SplittableRandom rng, int n, int dim, int blobs, double spread, double[] w) {
        double[] centres = new double[blobs * dim];
        for (int i = 0; i < centres.length; i++) centres[i] = 3 * gaussian(rng);
        double[] x = new double[n * dim];
        for (int i = 0; i < n; i++) {
            if (i > 0 && rng.nextInt(10) == 0) {
                int src = rng.nextInt(i);
                System.arraycopy(x, src * dim, x, i * dim, dim);
            } else {
                int b = rng.nextInt(blobs);
                for (int d = 0; d < dim; d++) x[i * dim + d] = centres[b * dim + d] + spread * gaussian(rng);
            }
            w[i] = 0.25 + rng.nextDouble();
        }
        return x;
    }

    /** Plain Lloyd: every unit measured at every step, as the loop was before bounds. */
    private static long plainLloyd(double[] f, double[] w, int n, int dim, int k, double[] fc, double[] cw, int[] assign,
                                   int maxIter) {
        double[] fNorms = new double[n], cNorms = new double[k], dist = new double[n * k];
        int[] counts = new int[k];
        SquaredDistances.rowNorms(f, n, dim, fNorms);
        int iter = 0;
        boolean converged = false;
        while (iter < maxIter) {
            iter++;
            SquaredDistances.rowNorms(fc, k, dim, cNorms);
            SquaredDistances.compute(f, fNorms, n, fc, cNorms, k, dim, dist);
            boolean changed = false;
            for (int i = 0; i < n; i++) {
                int best = 0;
                for (int j = 1; j < k; j++) if (dist[i * k + j] < dist[i * k + best]) best = j;
                if (best != assign[i]) {
                    assign[i] = best;
                    changed = true;
                }
            }
            if (!changed) {
                converged = true;
                break;
            }
            RankWiseClustering.weightedMeans(f, w, assign, n, k, dim, fc, cw, true);
            RankWiseClustering.reseedEmpty(f, w, assign, n, k, dim, fc, cw, counts);
        }
        return ((long) iter << 1) | (converged ? 1 : 0);
    }

    private static double explicitDistance(double[] f, int i, double[] c, int j, int dim) {
        double s = 0;
        for (int d = 0; d < dim; d++) {
            double e = f[i * dim + d] - c[j * dim + d];
            s += e * e;
        }
        return Math.sqrt(s);
    }

    @Test
    void sameRunAsPlainLloydWithFewerDistancesAndTrueGaps() {
        SplittableRandom rng = new SplittableRandom(2409_16167L);
        long measured = 0, plainRows = 0;
        for (int trial = 0; trial < 40; trial++) {
            int dim = 3 + rng.nextInt(60), k = 1 + rng.nextInt(8), n = k + 1 + rng.nextInt(150);
            double spread = new double[]{0.05, 0.5, 2.0}[trial % 3];
            double[] w = new double[n];
            double[] f = pool(rng, n, dim, 1 + rng.nextInt(6), spread, w);
            // start from k random units, nothing assigned (as a batch restart does)
            double[] seeds = new double[k * dim];
            for (int j = 0; j < k; j++) System.arraycopy(f, rng.nextInt(n) * dim, seeds, j * dim, dim);
            int maxIter = trial % 4 == 0 ? 2 : 300;

            double[] fcPlain = seeds.clone(), cwPlain = new double[k];
            int[] aPlain = new int[n];
            Arrays.fill(aPlain, -1);
            long plain = plainLloyd(f, w, n, dim, k, fcPlain, cwPlain, aPlain, maxIter);

            double[] fc = seeds.clone(), cw = new double[k], gap = new double[n];
            int[] a = new int[n];
            Arrays.fill(a, -1);
            RankWiseClustering.Workspace ws = new RankWiseClustering.Workspace(n, k, dim, f);
            long bounded = RankWiseClustering.runLloyd(f, w, n, dim, k, fc, cw, a, gap, maxIter, ws, null);

            String what = "trial " + trial + " (n " + n + ", k " + k + ", dim " + dim + ")";
            assertEquals(plain, bounded, what + ": iterations and convergence");
            assertArrayEquals(aPlain, a, what);
            assertArrayEquals(fcPlain, fc, 0.0, what + ": centroids bit for bit");
            assertArrayEquals(cwPlain, cw, 0.0, what);
            measured += ws.measuredRows;
            plainRows += (long) n * (bounded >>> 1);

            // every gap is a lower bound on how much nearer the own centroid is than any other (exact differences)
            for (int i = 0; i < n; i++) {
                if (gap[i] == 0) continue;
                double own = explicitDistance(f, i, fc, a[i], dim);
                for (int j = 0; j < k; j++) {
                    if (j == a[i]) continue;
                    double margin = explicitDistance(f, i, fc, j, dim) - own;
                    assertTrue(margin >= gap[i] * (1 - 1e-9), what + ": unit " + i + " gap " + gap[i] + " > " + margin);
                }
            }
        }
        assertTrue(measured < plainRows * 0.8, "bounds skipped few distances: " + measured + " of " + plainRows);
    }

    @Test
    void warmStartWithGapsEqualsAWarmStartWithout() {
        // a converged clustering, then units perturbed: Lloyd from the old centroids with the old gaps (loosened by
        // nothing, the centroids are the same) takes the same steps as without them
        SplittableRandom rng = new SplittableRandom(11);
        for (int trial = 0; trial < 20; trial++) {
            int dim = 4 + rng.nextInt(40), k = 2 + rng.nextInt(6), n = 4 * k + rng.nextInt(100);
            double[] w = new double[n];
            double[] f = pool(rng, n, dim, k, 0.3 + rng.nextDouble(), w);
            double[] fc = new double[k * dim], cw = new double[k], gap = new double[n];
            for (int j = 0; j < k; j++) System.arraycopy(f, j * dim, fc, j * dim, dim);
            int[] a = new int[n];
            Arrays.fill(a, -1);
            RankWiseClustering.runLloyd(f, w, n, dim, k, fc, cw, a, gap, 300, new RankWiseClustering.Workspace(n, k, dim, f), null);
            // move a few units: their gaps are no longer known
            double[] g = f.clone();
            for (int t = 0; t < 1 + n / 10; t++) {
                int i = rng.nextInt(n);
                for (int d = 0; d < dim; d++) g[i * dim + d] += 2 * gaussian(rng);
                gap[i] = 0;
            }
            double[] fcPlain = fc.clone(), cwPlain = new double[k];
            int[] aPlain = a.clone();
            long plain = plainLloyd(g, w, n, dim, k, fcPlain, cwPlain, aPlain, 300);
            RankWiseClustering.Workspace ws = new RankWiseClustering.Workspace(n, k, dim, g);
            long bounded = RankWiseClustering.runLloyd(g, w, n, dim, k, fc, cw, a, gap, 300, ws, null);
            assertEquals(plain, bounded, "trial " + trial);
            assertArrayEquals(aPlain, a, "trial " + trial);
            assertArrayEquals(fcPlain, fc, 0.0, "trial " + trial);
            assertTrue(ws.measuredRows < (long) n * (bounded >>> 1), "trial " + trial + ": certified units were measured");
        }
    }

    @Test
    void aLloydRunLeavesGapsAsTightAsAFreshMeasurement() {
        // what a refinement keeps as certificates: the gap of every unit measured against the final centroids,
        // whether Lloyd converged or stopped at its iteration cap
        SplittableRandom rng = new SplittableRandom(5);
        for (int trial = 0; trial < 20; trial++) {
            int dIn = 2 + rng.nextInt(20), dOut = 2 + rng.nextInt(20), dim = dIn + dOut;
            int k = 2 + rng.nextInt(6), n = 3 * k + rng.nextInt(80);
            double[] w = new double[n];
            double[] f = pool(rng, n, dim, k, 0.2 + rng.nextDouble(), w);
            UnitPool units = new UnitPool(dIn, dOut, f, w, new int[n], new int[n]);
            double[] seeds = new double[k * dim];
            for (int j = 0; j < k; j++) System.arraycopy(f, rng.nextInt(n) * dim, seeds, j * dim, dim);
            RankWiseClustering clustering = new RankWiseClustering(1, trial % 2 == 0 ? 2 : 300, FeatureNorm.NONE);
            RankWiseClustering.LloydRun run = clustering.lloydRun(units, f, null, seeds, null, null, true, null);

            double[] fNorms = new double[n], cNorms = new double[k], dist = new double[n * k];
            SquaredDistances.rowNorms(f, n, dim, fNorms);
            SquaredDistances.rowNorms(run.featureCentroids(), k, dim, cNorms);
            SquaredDistances.compute(f, fNorms, n, run.featureCentroids(), cNorms, k, dim, dist);
            double cMax = Arrays.stream(cNorms).max().orElseThrow();
            for (int i = 0; i < n; i++) {
                double fresh = RankWiseClustering.gapOf(dist, i * k, k, run.assignment()[i], fNorms[i], cMax);
                assertEquals(fresh, run.gaps()[i], 0.0, "trial " + trial + ", unit " + i);
            }
        }
    }
}
