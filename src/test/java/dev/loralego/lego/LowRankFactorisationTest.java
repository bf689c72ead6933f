package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.EXACT_TOL;
import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The QR and SVD building blocks of the canonical form and the baselines. */
class LowRankFactorisationTest {

    private static final double ORTHO_TOL = 1e-12;

    @ParameterizedTest(name = "{0} x {1}, zero column {2}")
    @CsvSource({"9,4,-1", "4,9,-1", "6,6,2", "5,3,0", "1,3,-1", "3,1,0"})
    void householderQrReconstructsWithOrthonormalQ(int m, int n, int zeroColumn) {
        SplittableRandom rng = new SplittableRandom(3L * m + n);
        double[] a = gaussians(rng, m * n);
        if (zeroColumn >= 0) for (int i = 0; i < m; i++) a[i * n + zeroColumn] = 0.0;
        DMatrixRMaj[] qr = LowRankFactorisation.thinQr(DMatrixRMaj.wrap(m, n, a.clone()));
        int p = Math.min(m, n);
        assertEquals(m, qr[0].numRows);
        assertEquals(p, qr[0].numCols);
        assertEquals(p, qr[1].numRows);
        assertEquals(n, qr[1].numCols);
        // Q R = M
        assertClose(a, NaiveReference.product(qr[0].data, qr[1].data, m, p, n, 1.0), EXACT_TOL, "Q R");
        // Qᵀ Q = I and R upper triangular
        for (int c1 = 0; c1 < p; c1++) {
            for (int c2 = 0; c2 < p; c2++) {
                double dot = 0;
                for (int i = 0; i < m; i++) dot += qr[0].get(i, c1) * qr[0].get(i, c2);
                assertEquals(c1 == c2 ? 1.0 : 0.0, dot, ORTHO_TOL, "QᵀQ[" + c1 + "," + c2 + "]");
            }
            for (int c = 0; c < c1 && c < n; c++) assertEquals(0.0, qr[1].get(c1, c), 0.0, "R lower part");
        }
    }

    @ParameterizedTest(name = "dOut={0} r={1} dIn={2}")
    @CsvSource({"9,3,7", "4,6,5", "12,12,3"})
    void svdOfAProductMatchesTheDenseSvd(int dOut, int r, int dIn) {
        SplittableRandom rng = new SplittableRandom(41L * dOut + r);
        double[] b = gaussians(rng, dOut * r), a = gaussians(rng, r * dIn);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofProduct(b, a, dOut, r, dIn);
        double[] dense = NaiveReference.product(b, a, dOut, r, dIn, 1.0);
        assertClose(dense, NaiveReference.deltaW(new MergedModule(f.rank(), dIn, dOut, f.a(), f.b(), 0, 0)), EXACT_TOL,
                "B' A' = B A");
        double[] sigma = NaiveReference.svd(dense, dOut, dIn)[0];
        for (int j = 0; j < f.rank(); j++) {
            assertEquals(sigma[j], f.singularValues()[j], 1e-10 * sigma[0], "σ_" + j);
        }
    }

    @Test
    void zeroProductHasZeroSingularValues() {
        LowRankFactorisation.Factors f = LowRankFactorisation.ofProduct(new double[12], gaussians(new SplittableRandom(1), 15),
                4, 3, 5);
        assertEquals(3, f.rank());
        for (double s : f.singularValues()) assertEquals(0.0, s, 0.0);
        for (double v : f.b()) assertEquals(0.0, v, 0.0);
    }

    @Test
    void fixSignsMakesTheLargestEntryOfEachBColumnPositive() {
        SplittableRandom rng = new SplittableRandom(8);
        double[] a = gaussians(rng, 3 * 4), b = gaussians(rng, 5 * 3);
        double[] before = NaiveReference.product(b, a, 5, 3, 4, 1.0);
        LowRankFactorisation.fixSigns(a, b, 3, 4, 5);
        assertClose(before, NaiveReference.product(b, a, 5, 3, 4, 1.0), 0.0, "ΔW unchanged");
        for (int j = 0; j < 3; j++) {
            double best = 0, val = 0;
            for (int o = 0; o < 5; o++) {
                if (Math.abs(b[o * 3 + j]) > best) {
                    best = Math.abs(b[o * 3 + j]);
                    val = b[o * 3 + j];
                }
            }
            assertTrue(val > 0, "column " + j);
        }
    }

    // ------------------------------------------------------------------ CholeskyQR2 route vs the Householder reference

    /**
     * Agreement of the two routes, relative to {@code σ_0} (singular values, {@code B'ᵀB'}, {@code A'A'ᵀ}) and to the
     * factor norms ({@code 10 ×} this): observed ≈ 2e-15 on every case below, κ = 1e5 included (1e-13 passes).
     */
    private static final double ROUTE_TOL = 1e-12;

    @ParameterizedTest(name = "dOut={0} r={1} dIn={2} s={3}")
    @CsvSource({"300,16,200,1.0", "1376,16,512,2.0", "16,16,40,1.0", "50,7,33,0.5", "40,1,30,1.0", "200,33,150,1.0"})
    void choleskyQrRouteMatchesHouseholderOnWellConditionedFactors(int dOut, int r, int dIn, double s) {
        SplittableRandom rng = new SplittableRandom(1009L * dOut + 31L * r + dIn);
        double[] b = gaussians(rng, dOut * r), a = gaussians(rng, r * dIn);
        LowRankFactorisation.Transposed fast = LowRankFactorisation.ofProductCholeskyQr(b, a, dOut, r, dIn, s);
        assertNotNull(fast, "well-conditioned tall factors take the CholeskyQR2 route");
        assertRoutesAgree(LowRankFactorisation.ofProductHouseholder(b, a, dOut, r, dIn, s), fast.toFactors(dIn, dOut),
                b, a, s, ROUTE_TOL);
    }

    @ParameterizedTest(name = "κ(B) = κ(Aᵀ) = {0}")
    @CsvSource({"1e2", "1e4", "1e5"})
    void choleskyQrRouteStaysAccurateOnModeratelyIllConditionedFactors(double kappa) {
        int dOut = 400, r = 16, dIn = 300;
        SplittableRandom rng = new SplittableRandom(77);
        double[] b = withCondition(rng, dOut, r, kappa);
        double[] a = transpose(withCondition(rng, dIn, r, kappa), dIn, r);
        LowRankFactorisation.Transposed fast = LowRankFactorisation.ofProductCholeskyQr(b, a, dOut, r, dIn, 1.0);
        assertNotNull(fast, "κ = " + kappa + " is within the CholeskyQR2 bound");
        // the small singular values of the product are σ_0 / κ² and below: compared relative to σ_0, like the units
        assertRoutesAgree(LowRankFactorisation.ofProductHouseholder(b, a, dOut, r, dIn, 1.0), fast.toFactors(dIn, dOut),
                b, a, 1.0, ROUTE_TOL);
    }

    enum Bad {
        B_ZERO, B_ZERO_COLUMN, B_DUPLICATED_COLUMN, A_DUPLICATED_ROW, A_ZERO_ROW, B_KAPPA_1E9, A_KAPPA_1E12, B_TINY,
        WIDE_B, WIDE_A
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Bad.class)
    void rankDeficientOrIllConditionedFactorsFallBackToHouseholder(Bad bad) {
        int dOut = bad == Bad.WIDE_B ? 10 : 120, r = 16, dIn = bad == Bad.WIDE_A ? 12 : 90;
        SplittableRandom rng = new SplittableRandom(bad.ordinal() + 5);
        double[] b = gaussians(rng, dOut * r), a = gaussians(rng, r * dIn);
        switch (bad) {
            case B_ZERO -> b = new double[dOut * r];
            case B_ZERO_COLUMN -> {
                for (int o = 0; o < dOut; o++) b[o * r + 5] = 0.0;
            }
            case B_DUPLICATED_COLUMN -> {
                for (int o = 0; o < dOut; o++) b[o * r + 9] = b[o * r + 2];
            }
            case A_DUPLICATED_ROW -> System.arraycopy(a, 3 * dIn, a, 11 * dIn, dIn);
            case A_ZERO_ROW -> Arrays.fill(a, 0, dIn, 0.0);
            case B_KAPPA_1E9 -> b = withCondition(rng, dOut, r, 1e9);
            case A_KAPPA_1E12 -> a = transpose(withCondition(rng, dIn, r, 1e12), dIn, r);
            case B_TINY -> {
                for (int i = 0; i < b.length; i++) b[i] *= 1e-150; // B's Gram would be subnormal
            }
            default -> {
            }
        }
        assertNull(LowRankFactorisation.ofProductCholeskyQr(b, a, dOut, r, dIn, 1.0), "the CholeskyQR2 route declines");
        LowRankFactorisation.Factors f = LowRankFactorisation.ofProduct(b, a, dOut, r, dIn);
        LowRankFactorisation.Factors reference = LowRankFactorisation.ofProductHouseholder(b, a, dOut, r, dIn, 1.0);
        // the fallback is what ofProduct returned: bit for bit the Householder route
        assertArrayEquals(reference.a(), f.a());
        assertArrayEquals(reference.b(), f.b());
        assertArrayEquals(reference.singularValues(), f.singularValues());
        double[] dense = NaiveReference.product(b, a, dOut, r, dIn, 1.0);
        double[] rebuilt = NaiveReference.deltaW(new MergedModule(f.rank(), dIn, dOut, f.a(), f.b(), 0, 0));
        if (bad == Bad.B_ZERO) {
            for (double v : rebuilt) assertEquals(0.0, v, 0.0);
        } else {
            assertClose(dense, rebuilt, EXACT_TOL, "B' A' = B A");
        }
    }

    @Test
    void choleskyQrRouteIsDeterministic() {
        SplittableRandom rng = new SplittableRandom(99);
        int dOut = 700, r = 16, dIn = 500;
        double[] b = gaussians(rng, dOut * r), a = gaussians(rng, r * dIn);
        LowRankFactorisation.Factors f1 = LowRankFactorisation.ofProduct(b, a, dOut, r, dIn);
        LowRankFactorisation.Factors f2 = LowRankFactorisation.ofProduct(b.clone(), a.clone(), dOut, r, dIn);
        assertArrayEquals(f1.a(), f2.a());
        assertArrayEquals(f1.b(), f2.b());
        assertArrayEquals(f1.singularValues(), f2.singularValues());
    }

    /**
     * Both routes give the SVD of {@code s B A}: singular values, the sign-fixed factors and {@code B'ᵀB' = S},
     * {@code A'A'ᵀ = S} agree within {@code tol} relative to {@code σ_0} (resp. the factor norm), and
     * {@code B' A' = s B A} to {@link NaiveReference#EXACT_TOL} / 100.
     */
    private static void assertRoutesAgree(LowRankFactorisation.Factors reference, LowRankFactorisation.Factors fast,
                                          double[] b, double[] a, double s, double tol) {
        int m = reference.rank(), dIn = reference.dIn(), dOut = reference.dOut();
        assertEquals(m, fast.rank());
        double s0 = reference.singularValues()[0];
        for (int j = 0; j < m; j++) {
            assertEquals(reference.singularValues()[j], fast.singularValues()[j], tol * s0, "σ_" + j);
            if (j > 0) assertTrue(fast.singularValues()[j] <= fast.singularValues()[j - 1], "descending");
        }
        // orthogonal directions: B'ᵀB' = A'A'ᵀ = S
        for (int j = 0; j < m; j++) {
            for (int k = 0; k <= j; k++) {
                double bb = 0, aa = 0;
                for (int o = 0; o < dOut; o++) bb += fast.b()[o * m + j] * fast.b()[o * m + k];
                for (int i = 0; i < dIn; i++) aa += fast.a()[j * dIn + i] * fast.a()[k * dIn + i];
                double expected = j == k ? fast.singularValues()[j] : 0.0;
                assertEquals(expected, bb, tol * s0, "B'ᵀB'[" + j + "," + k + "]");
                assertEquals(expected, aa, tol * s0, "A'A'ᵀ[" + j + "," + k + "]");
            }
        }
        double[] dense = NaiveReference.product(b, a, dOut, b.length / dOut, dIn, s);
        assertClose(dense, NaiveReference.deltaW(new MergedModule(m, dIn, dOut, fast.a(), fast.b(), 0, 0)),
                EXACT_TOL / 100, "B' A' = s B A");
        double[] ra = reference.a().clone(), rb = reference.b().clone(), fa = fast.a().clone(), fb = fast.b().clone();
        LowRankFactorisation.fixSigns(ra, rb, m, dIn, dOut);
        LowRankFactorisation.fixSigns(fa, fb, m, dIn, dOut);
        assertClose(ra, fa, tol * 10, "A' (signs fixed)");
        assertClose(rb, fb, tol * 10, "B' (signs fixed)");
    }

    /**
     * Row-major {@code n × r} {@code Q₁ diag(κ^{-j/(r-1)}) Q₂} with random orthonormal {@code Q₁} and orthogonal
     * {@code Q₂}: {@code κ₂ = κ}.
     */
    private static double[] withCondition(SplittableRandom rng, int n, int r, double kappa) {
        DMatrixRMaj q1 = LowRankFactorisation.thinQr(DMatrixRMaj.wrap(n, r, gaussians(rng, n * r)))[0];
        DMatrixRMaj q2 = LowRankFactorisation.thinQr(DMatrixRMaj.wrap(r, r, gaussians(rng, r * r)))[0];
        for (int j = 0; j < r; j++) {
            double d = Math.pow(kappa, -(double) j / (r - 1));
            for (int i = 0; i < n; i++) q1.data[i * r + j] *= d;
        }
        return NaiveReference.product(q1.data, q2.data, n, r, r, 1.0);
    }

    private static double[] transpose(double[] x, int rows, int cols) {
        double[] t = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
        }
        return t;
    }
}
