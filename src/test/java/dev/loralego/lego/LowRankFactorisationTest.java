package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.EXACT_TOL;
import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
