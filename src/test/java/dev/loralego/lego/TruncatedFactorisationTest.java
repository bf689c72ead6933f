package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.QRDecomposition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LowRankFactorisation#ofDenseTruncated} and its Gram route ({@link LowRankFactorisation#ofDenseGram}) against
 * an independent computation: EJML's full SVD of the same matrix ({@link NaiveReference#svd}), matrices built from a
 * known spectrum with EJML's QR, and dense reconstructions by plain loops.
 *
 * <p>Tolerances, all relative to {@code σ_1} (the full SVD itself agrees with the construction to about 1e-15; the
 * Gram route's observed errors on these cases are 1e-15 to 1e-14, and its own acceptance bound is
 * {@code 2^-40 ≈ 9e-13}): singular values {@link #SIGMA_TOL}; the Eckart–Young error and products
 * {@link #PRODUCT_TOL}.
 */
class TruncatedFactorisationTest {

    /** Leading singular values against the full SVD, relative to σ_1. */
    private static final double SIGMA_TOL = 1e-12;
    /** ‖W − B A‖_F against the optimum, and products against the reference product, relative to σ_1. */
    private static final double PRODUCT_TOL = 1e-11;

    // ---------------------------------------------------------------------------------------------- best rank k

    @ParameterizedTest(name = "{0} x {1}, k = {2}")
    @CsvSource({"240,60,4", "60,240,4", "240,60,9", "60,240,12", "150,150,20", "300,100,1", "64,64,8"})
    void gramRouteGivesTheLeadingTripletsOfTheFullSvd(int dOut, int dIn, int k) {
        SplittableRandom rng = new SplittableRandom(17L * dOut + dIn + 1000L * k);
        // a decaying spectrum plus noise, like a merged update: no exact ties, every σ > 0
        double[] w = lowRankPlusNoise(rng, dOut, dIn, 2 * k + 3, 0.05);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f, "the Gram route accepts a well-separated spectrum");
        assertEquals(k, f.rank());

        double[][] ref = NaiveReference.svd(w, dOut, dIn);
        double[] sigma = ref[0];
        double s1 = sigma[0];
        for (int j = 0; j < k; j++) {
            assertEquals(sigma[j], f.singularValues()[j], SIGMA_TOL * s1, "σ_" + j);
            if (j > 0) assertTrue(f.singularValues()[j] <= f.singularValues()[j - 1], "descending");
        }
        assertBalancedAndOrthogonal(f);
        assertEquals(optimalError(sigma, k), distance(w, f), PRODUCT_TOL * s1, "Eckart–Young error");
        // distinct singular values at the cut: the best rank-k approximation is unique
        assertTrue(sigma[k - 1] - sigma[k] > 1e-6 * s1);
        assertClose(NaiveReference.bestRankK(w, dOut, dIn, k), product(f), PRODUCT_TOL * s1, "B A = W_k");
        // every pair on its own: u_j σ_j v_jᵀ of the full SVD (compared as a rank-one product: no sign gauge)
        for (int j = 0; j < k; j++) {
            assertClose(rankOne(ref, dOut, dIn, j), pairProduct(f, j), PRODUCT_TOL * s1, "pair " + j);
        }
    }

    @Test
    void tallAndWideAreTransposesOfEachOther() {
        int dOut = 200, dIn = 70, k = 6;
        double[] w = lowRankPlusNoise(new SplittableRandom(5), dOut, dIn, 10, 0.1);
        double[] wt = transpose(w, dOut, dIn);
        LowRankFactorisation.Factors tall = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        LowRankFactorisation.Factors wide = LowRankFactorisation.ofDenseGram(wt, dIn, dOut, k);
        assertNotNull(tall);
        assertNotNull(wide);
        double s1 = tall.singularValues()[0];
        for (int j = 0; j < k; j++) assertEquals(tall.singularValues()[j], wide.singularValues()[j], SIGMA_TOL * s1);
        assertClose(transpose(product(tall), dOut, dIn), product(wide), PRODUCT_TOL * s1, "(B A)ᵀ of W = B A of Wᵀ");
    }

    // ----------------------------------------------------------------------------------- rank-deficient inputs

    @ParameterizedTest(name = "{0} x {1}, rank {2}, k = {3}")
    @CsvSource({"180,60,5,12", "60,180,3,10", "100,100,1,8"})
    void rankDeficientMatrixGivesItsExactFactorsAndANegligibleTail(int dOut, int dIn, int rank, int k) {
        SplittableRandom rng = new SplittableRandom(31L * rank + k);
        double[] w = NaiveReference.product(gaussians(rng, dOut * rank), gaussians(rng, rank * dIn), dOut, rank, dIn, 1.0);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f, "rounding-level singular values are harmless: the check passes");
        assertEquals(k, f.rank(), "k pairs even when the true rank is smaller");
        double[] sigma = NaiveReference.svd(w, dOut, dIn)[0];
        double s1 = sigma[0];
        for (int j = 0; j < rank; j++) assertEquals(sigma[j], f.singularValues()[j], SIGMA_TOL * s1, "σ_" + j);
        for (int j = rank; j < k; j++) assertTrue(f.singularValues()[j] <= 1e-13 * s1, "σ_" + j + " is rounding");
        assertTrue(distance(w, f) <= 1e-13 * s1, "W is reproduced: " + distance(w, f) / s1);
        assertBalancedAndOrthogonal(f);
    }

    @Test
    void exactlyZeroDirectionsGiveZeroPairs() {
        // W is zero outside a 3 × 3 block: the Gram matrix has exact zero rows, Y exact zero columns, σ_3.. = 0 exactly
        int dOut = 90, dIn = 40, k = 8;
        double[] w = new double[dOut * dIn];
        double[] block = {3, 1, 0, 1, 2, 0.5, 0, 0.5, 1};
        for (int o = 0; o < 3; o++) {
            for (int i = 0; i < 3; i++) w[(10 + o) * dIn + 20 + i] = block[o * 3 + i];
        }
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f, "exact zero pairs pass the check: their vectors are orthogonal to the range of W");
        assertEquals(k, f.rank());
        double[] sigma = NaiveReference.svd(w, dOut, dIn)[0];
        for (int j = 0; j < 3; j++) assertEquals(sigma[j], f.singularValues()[j], SIGMA_TOL * sigma[0], "σ_" + j);
        for (int j = 3; j < k; j++) assertEquals(0.0, f.singularValues()[j], 1e-15 * sigma[0], "σ_" + j);
        assertTrue(distance(w, f) <= 1e-14 * sigma[0]);
        for (double v : f.a()) assertTrue(Double.isFinite(v));
        for (double v : f.b()) assertTrue(Double.isFinite(v));
    }

    // ----------------------------------------------------------------------------- repeated singular values

    /**
     * σ = (5, 5, 5, 2, 2, 2, 2, 2, then 1/(1+j) below 1). With the cut after a cluster (k = 3, 8) the best rank-k
     * approximation is unique and compared directly; with the cut inside one (k = 2, 5, 6) only the error and the
     * subspace are determined: the result must be the clusters above the cut plus a piece of the cut cluster, of
     * rank {@code k − start} with all singular values equal to the cluster's, inside that cluster's singular
     * subspaces.
     */
    @ParameterizedTest(name = "{0} x {1}, k = {2}")
    @CsvSource({"160,90,8", "90,160,3", "160,90,6", "90,160,5", "160,90,2"})
    void repeatedSingularValuesGiveTheBestProductAndTheRightSubspace(int dOut, int dIn, int k) {
        int n = Math.min(dOut, dIn);
        double[] spectrum = new double[n];
        for (int j = 0; j < n; j++) spectrum[j] = j < 3 ? 5.0 : j < 8 ? 2.0 : 1.0 / (1 + j);
        SplittableRandom rng = new SplittableRandom(777L + k + dOut);
        DMatrixRMaj u = orthonormal(rng, dOut, n), v = orthonormal(rng, dIn, n);
        double[] w = compose(u, spectrum, v, n);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f);
        for (int j = 0; j < k; j++) assertEquals(spectrum[j], f.singularValues()[j], SIGMA_TOL * 5, "σ_" + j);
        assertEquals(optimalError(spectrum, k), distance(w, f), PRODUCT_TOL * 5, "Eckart–Young error");
        double[] got = product(f);
        if (k == 3 || k == 8) {
            assertClose(compose(u, Arrays.copyOf(spectrum, k), v, k), got, PRODUCT_TOL * 5, "unique W_k");
            return;
        }
        // B A − (clusters above the cut) is σ_c · (a partial isometry of rank k − start) inside the cut cluster
        int start = k < 3 ? 0 : 3, end = k < 3 ? 3 : 8;
        double value = spectrum[start];
        double[] above = compose(u, Arrays.copyOf(spectrum, start), v, start);
        double[] rest = NaiveReference.minus(got, above);
        double[] restSigma = NaiveReference.svd(rest, dOut, dIn)[0];
        for (int j = 0; j < k - start; j++) assertEquals(value, restSigma[j], 1e-10, "cut-cluster piece σ_" + j);
        for (int j = k - start; j < restSigma.length; j++) assertEquals(0.0, restSigma[j], 1e-10, "σ_" + j);
        assertTrue(outside(rest, dOut, dIn, u, start, end, true) <= 1e-10, "column space");
        assertTrue(outside(rest, dOut, dIn, v, start, end, false) <= 1e-10, "row space");
    }

    /**
     * σ_{k-1} and σ_k (0-based: the last kept and the first dropped) only {@code 1e-7} apart: the Gram matrix must
     * still order them, and the result is the unique best rank-k approximation, determined to about
     * {@code 1e-16 / 1e-7 = 1e-9}.
     */
    @ParameterizedTest(name = "{0} x {1}, k = {2}")
    @CsvSource({"200,120,6", "120,200,10"})
    void nearlyTiedValuesAtTheCutStayOnTheGramRouteAndExact(int dOut, int dIn, int k) {
        int n = Math.min(dOut, dIn);
        double[] spectrum = new double[n];
        for (int j = 0; j < n; j++) spectrum[j] = j < k ? 1.0 - 0.05 * j : 0.5 * Math.pow(0.9, j - k);
        spectrum[k] = spectrum[k - 1] - 1e-7;
        SplittableRandom rng = new SplittableRandom(99L + k);
        DMatrixRMaj u = orthonormal(rng, dOut, n), v = orthonormal(rng, dIn, n);
        double[] w = compose(u, spectrum, v, n);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f, "accepted");
        for (int j = 0; j < k; j++) assertEquals(spectrum[j], f.singularValues()[j], SIGMA_TOL, "σ_" + j);
        assertEquals(optimalError(spectrum, k), distance(w, f), PRODUCT_TOL, "Eckart–Young error");
        assertClose(compose(u, Arrays.copyOf(spectrum, k), v, k), product(f), 1e-7, "W_k");
    }

    // ------------------------------------------------------------------------------------- routing and fallback

    @ParameterizedTest(name = "{0} x {1}, k = {2}")
    @CsvSource({"40,25,25", "25,40,25", "40,25,30", "30,30,1000", "12,7,3", "9,7,7", "100,40,11"})
    void kNearOrAboveTheSmallerDimensionAndSmallMatricesUseTheFullSvd(int dOut, int dIn, int k) {
        double[] w = gaussians(new SplittableRandom(dOut * 7L + k), dOut * dIn);
        int n = Math.min(dOut, dIn);
        assertFalse(LowRankFactorisation.gramRoutePays(Math.min(k, n), n));
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, k);
        assertEquals(Math.min(k, n), f.rank());
        assertSameBits(LowRankFactorisation.ofDense(w, dOut, dIn).truncate(k), f, "the full SVD, truncated");
        if (k >= n) assertTrue(distance(w, f) <= 1e-12 * f.singularValues()[0], "all pairs: W itself");
    }

    @Test
    void routingRuleTakesTheGramRouteUpToAQuarterOfTheSmallerDimension() {
        assertTrue(LowRankFactorisation.gramRoutePays(8, 768));
        assertTrue(LowRankFactorisation.gramRoutePays(192, 768), "m = 768 / 4");
        assertFalse(LowRankFactorisation.gramRoutePays(193, 768));
        assertTrue(LowRankFactorisation.gramRoutePays(1, 4));
        assertFalse(LowRankFactorisation.gramRoutePays(3, 9), "small matrices: the full SVD");
        assertFalse(LowRankFactorisation.gramRoutePays(0, 768), "no pairs: nothing to compute");

        // where the rule says Gram, ofDenseTruncated returns the Gram route's bits
        int dOut = 120, dIn = 80, k = 5;
        double[] w = lowRankPlusNoise(new SplittableRandom(4), dOut, dIn, 9, 0.05);
        LowRankFactorisation.Factors gram = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(gram);
        assertSameBits(gram, LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, k), "Gram route taken");
        assertEquals(0, LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, 0).rank());
    }

    /**
     * A geometric spectrum {@code σ_j = 10^-j}: at k = 8, {@code σ_8² = 1e-16 σ_1²} is below what the Gram matrix
     * resolves, the residual check fails and {@link LowRankFactorisation#ofDenseTruncated} returns the full SVD's
     * result, bit for bit.
     */
    @Test
    void tinyTrailingSingularValuesFallBackToTheFullSvd() {
        int dOut = 150, dIn = 100, k = 8;
        double[] spectrum = new double[dIn];
        for (int j = 0; j < dIn; j++) spectrum[j] = Math.pow(10, -j);
        SplittableRandom rng = new SplittableRandom(12);
        double[] w = compose(orthonormal(rng, dOut, dIn), spectrum, orthonormal(rng, dIn, dIn), dIn);
        assertTrue(LowRankFactorisation.gramRoutePays(k, dIn));
        assertNull(LowRankFactorisation.ofDenseGram(w, dOut, dIn, k), "the residual check refuses");
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, k);
        assertSameBits(LowRankFactorisation.ofDense(w, dOut, dIn).truncate(k), f, "fallback");
        for (int j = 0; j < k; j++) assertEquals(spectrum[j], f.singularValues()[j], 1e-14, "σ_" + j);
        // a moderately graded spectrum (σ_k = 1e-3 σ_1) stays on the Gram route and is exact
        for (int j = 0; j < dIn; j++) spectrum[j] = Math.pow(10, -3.0 * j / (k - 1));
        double[] mild = compose(orthonormal(rng, dOut, dIn), spectrum, orthonormal(rng, dIn, dIn), dIn);
        LowRankFactorisation.Factors g = LowRankFactorisation.ofDenseGram(mild, dOut, dIn, k);
        assertNotNull(g);
        for (int j = 0; j < k; j++) assertEquals(spectrum[j], g.singularValues()[j], SIGMA_TOL, "mild σ_" + j);
        assertEquals(optimalError(spectrum, k), distance(mild, g), PRODUCT_TOL, "mild Eckart–Young error");
    }

    // ------------------------------------------------------------------------------ edge values, determinism

    @Test
    void powerOfTwoScalingCommutesBitForBit() {
        int dOut = 130, dIn = 50, k = 4;
        double[] w = lowRankPlusNoise(new SplittableRandom(21), dOut, dIn, 8, 0.1);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseGram(w, dOut, dIn, k);
        assertNotNull(f);
        for (int e : new int[]{-900, -600, 600, 900}) {
            double[] scaled = w.clone();
            for (int i = 0; i < scaled.length; i++) scaled[i] = Math.scalb(scaled[i], e);
            LowRankFactorisation.Factors g = LowRankFactorisation.ofDenseGram(scaled, dOut, dIn, k);
            assertNotNull(g, "2^" + e + ": no overflow or underflow in the Gram matrix");
            for (int j = 0; j < k; j++) {
                assertEquals(Math.scalb(f.singularValues()[j], e), g.singularValues()[j], 0.0, "σ_" + j + " at 2^" + e);
            }
            for (int i = 0; i < f.b().length; i++) assertEquals(Math.scalb(f.b()[i], e / 2), g.b()[i], 0.0, "B at 2^" + e);
            for (int i = 0; i < f.a().length; i++) assertEquals(Math.scalb(f.a()[i], e / 2), g.a()[i], 0.0, "A at 2^" + e);
        }
    }

    @Test
    void zeroAndNonFiniteMatricesBehaveLikeTheFullSvd() {
        int dOut = 80, dIn = 60;
        LowRankFactorisation.Factors zero = LowRankFactorisation.ofDenseTruncated(new double[dOut * dIn], dOut, dIn, 4);
        assertEquals(4, zero.rank());
        for (double s : zero.singularValues()) assertEquals(0.0, s, 0.0);
        for (double v : zero.b()) assertEquals(0.0, v, 0.0);
        double[] bad = gaussians(new SplittableRandom(2), dOut * dIn);
        bad[17] = Double.NaN;
        assertNull(LowRankFactorisation.ofDenseGram(bad, dOut, dIn, 4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LowRankFactorisation.ofDenseTruncated(bad, dOut, dIn, 4));
        assertTrue(e.getMessage().contains("non-finite"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LowRankFactorisation.ofDenseTruncated(new double[5], 2, 3, 1));
        assertThrows(IllegalArgumentException.class, () -> LowRankFactorisation.ofDenseTruncated(new double[6], 2, 3, -1));
    }

    @Test
    void sameInputGivesTheSameBits() {
        int dOut = 300, dIn = 110, k = 7;
        double[] w = lowRankPlusNoise(new SplittableRandom(8), dOut, dIn, 12, 0.2);
        LowRankFactorisation.Factors f1 = LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, k);
        LowRankFactorisation.Factors f2 = LowRankFactorisation.ofDenseTruncated(w.clone(), dOut, dIn, k);
        assertNotNull(LowRankFactorisation.ofDenseGram(w, dOut, dIn, k));
        assertSameBits(f1, f2, "repeat");
        MergedModule m1 = DenseUpdates.factor(w, dOut, dIn, k), m2 = DenseUpdates.factor(w.clone(), dOut, dIn, k);
        assertArrayEquals(m1.a(), m2.a());
        assertArrayEquals(m1.b(), m2.b());
    }

    /** TIES on three random rank-8 adapters, 192 → 576: what {@code DenseUpdates.factor} now does on real shapes. */
    @Test
    void tiesOfRandomAdaptersIsTheBestRankKApproximationViaTheGramRoute() {
        SplittableRandom rng = new SplittableRandom(2024);
        int dIn = 192, dOut = 576, k = 8;
        List<AdapterModule> adapters = List.of(NaiveReference.randomAdapter("a", rng, 8, dIn, dOut, 2.0, 1.0),
                NaiveReference.randomAdapter("b", rng, 8, dIn, dOut, 2.0, 1.0),
                NaiveReference.randomAdapter("c", rng, 8, dIn, dOut, 4.0, 0.5));
        double[] dense = NaiveReference.ties(adapters, 0.2, 1.0);
        assertNotNull(LowRankFactorisation.ofDenseGram(dense, dOut, dIn, k), "the route is taken");
        MergedModule merged = TiesMerge.merge("m", adapters, 0.2, 1.0, k);
        assertEquals(k, merged.rank());
        double[] sigma = NaiveReference.svd(dense, dOut, dIn)[0];
        double got = NaiveReference.frobenius(NaiveReference.minus(dense, NaiveReference.deltaW(merged)));
        assertEquals(optimalError(sigma, k), got, PRODUCT_TOL * sigma[0], "Eckart–Young error");
        NaiveReference.assertClose(NaiveReference.bestRankK(dense, dOut, dIn, k), NaiveReference.deltaW(merged), 1e-10,
                "TIES rank 8");
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** {@code Σ_{j<r} 2^{-j/2} u_j v_jᵀ} (random orthonormal u, v) plus {@code noise ·} i.i.d. Gaussians. */
    private static double[] lowRankPlusNoise(SplittableRandom rng, int dOut, int dIn, int r, double noise) {
        int q = Math.min(r, Math.min(dOut, dIn));
        double[] s = new double[q];
        for (int j = 0; j < q; j++) s[j] = 10 * Math.pow(2, -j / 2.0);
        double[] w = compose(orthonormal(rng, dOut, q), s, orthonormal(rng, dIn, q), q);
        double[] g = gaussians(rng, dOut * dIn);
        for (int i = 0; i < w.length; i++) w[i] += noise * g[i];
        return w;
    }

    /** {@code m × c} with orthonormal columns: EJML's Householder QR of Gaussians (independent of our QR). */
    private static DMatrixRMaj orthonormal(SplittableRandom rng, int m, int c) {
        DMatrixRMaj g = DMatrixRMaj.wrap(m, c, gaussians(rng, m * c));
        QRDecomposition<DMatrixRMaj> qr = DecompositionFactory_DDRM.qr(m, c);
        assertTrue(qr.decompose(g));
        return qr.getQ(null, true);
    }

    /** {@code U diag(s) Vᵀ} with the first {@code r} columns. */
    private static double[] compose(DMatrixRMaj u, double[] s, DMatrixRMaj v, int r) {
        int dOut = u.numRows, dIn = v.numRows;
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < r; j++) {
                double f = u.get(o, j) * s[j];
                if (f == 0) continue;
                for (int i = 0; i < dIn; i++) w[o * dIn + i] += f * v.get(i, j);
            }
        }
        return w;
    }

    private static double optimalError(double[] sigma, int k) {
        double t = 0;
        for (int j = k; j < sigma.length; j++) t += sigma[j] * sigma[j];
        return Math.sqrt(t);
    }

    private static double[] product(LowRankFactorisation.Factors f) {
        return NaiveReference.product(f.b(), f.a(), f.dOut(), f.rank(), f.dIn(), 1.0);
    }

    private static double distance(double[] w, LowRankFactorisation.Factors f) {
        return NaiveReference.frobenius(NaiveReference.minus(w, product(f)));
    }

    /** {@code b_j a_jᵀ}. */
    private static double[] pairProduct(LowRankFactorisation.Factors f, int j) {
        int m = f.rank(), dIn = f.dIn(), dOut = f.dOut();
        double[] out = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < dIn; i++) out[o * dIn + i] = f.b()[o * m + j] * f.a()[j * dIn + i];
        }
        return out;
    }

    /** {@code σ_j u_j v_jᵀ} of a {@link NaiveReference#svd} result. */
    private static double[] rankOne(double[][] svd, int dOut, int dIn, int j) {
        int m = svd[0].length;
        double[] out = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < dIn; i++) out[o * dIn + i] = svd[0][j] * svd[1][o * m + j] * svd[2][i * m + j];
        }
        return out;
    }

    /** {@code B'ᵀB' = A'A'ᵀ = diag(σ)} within {@code 1e-12 σ_1}: balanced, orthogonal pairs. */
    private static void assertBalancedAndOrthogonal(LowRankFactorisation.Factors f) {
        int m = f.rank(), dIn = f.dIn(), dOut = f.dOut();
        double tol = 1e-12 * f.singularValues()[0];
        for (int j = 0; j < m; j++) {
            for (int l = 0; l <= j; l++) {
                double bb = 0, aa = 0;
                for (int o = 0; o < dOut; o++) bb += f.b()[o * m + j] * f.b()[o * m + l];
                for (int i = 0; i < dIn; i++) aa += f.a()[j * dIn + i] * f.a()[l * dIn + i];
                double want = j == l ? f.singularValues()[j] : 0.0;
                assertEquals(want, bb, tol, "B'ᵀB'[" + j + "," + l + "]");
                assertEquals(want, aa, tol, "A'A'ᵀ[" + j + "," + l + "]");
            }
        }
    }

    /** Absolute Frobenius distance, with the tolerance already scaled. */
    private static void assertClose(double[] expected, double[] actual, double absTol, String what) {
        double err = NaiveReference.frobenius(NaiveReference.minus(expected, actual));
        assertTrue(err <= absTol, what + ": ‖difference‖ = " + err + " > " + absTol);
    }

    private static void assertSameBits(LowRankFactorisation.Factors expected, LowRankFactorisation.Factors actual,
                                       String what) {
        assertEquals(expected.rank(), actual.rank(), what);
        assertArrayEquals(expected.singularValues(), actual.singularValues(), 0.0, what + ": σ");
        assertArrayEquals(expected.a(), actual.a(), 0.0, what + ": A");
        assertArrayEquals(expected.b(), actual.b(), 0.0, what + ": B");
    }

    private static double[] transpose(double[] w, int rows, int cols) {
        double[] t = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
        }
        return t;
    }

    /**
     * Frobenius norm of the part of {@code x}'s columns ({@code columns = true}) or rows outside the span of basis
     * columns {@code from..to-1}, relative to {@code ‖x‖_F}.
     */
    private static double outside(double[] x, int dOut, int dIn, DMatrixRMaj basis, int from, int to, boolean columns) {
        int len = columns ? dOut : dIn, count = columns ? dIn : dOut;
        double out = 0;
        for (int t = 0; t < count; t++) {
            double[] vec = new double[len];
            for (int e = 0; e < len; e++) vec[e] = columns ? x[e * dIn + t] : x[t * dIn + e];
            for (int j = from; j < to; j++) {
                double dot = 0;
                for (int e = 0; e < len; e++) dot += basis.get(e, j) * vec[e];
                for (int e = 0; e < len; e++) vec[e] -= dot * basis.get(e, j);
            }
            for (double v : vec) out += v * v;
        }
        return Math.sqrt(out) / Math.max(NaiveReference.frobenius(x), Double.MIN_NORMAL);
    }
}
