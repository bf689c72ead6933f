package dev.loralego.lego;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.gaussians;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The blocked distance kernel against plain loops, including every remainder of the 4 × 4 blocking. */
class SquaredDistancesTest {

    /** Relative tolerance for sums taken in another order. */
    private static final double REORDER_TOL = 1e-13;

    @Test
    void blockedKernelIsBitIdenticalToOneAccumulatorPerPair() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int dim : new int[]{1, 13, 37}) {
            for (int n = 1; n <= 9; n++) {
                for (int k = 1; k <= 9; k++) {
                    double[] x = gaussians(rng, n * dim), c = gaussians(rng, k * dim);
                    double[] xn = new double[n], cn = new double[k], out = new double[n * k];
                    SquaredDistances.rowNorms(x, n, dim, xn);
                    SquaredDistances.rowNorms(c, k, dim, cn);
                    SquaredDistances.compute(x, xn, n, c, cn, k, dim, out);
                    for (int i = 0; i < n; i++) {
                        for (int j = 0; j < k; j++) {
                            double s = 0;
                            for (int d = 0; d < dim; d++) s += x[i * dim + d] * c[j * dim + d];
                            double expected = Math.max(0, xn[i] + cn[j] - 2 * s);
                            assertEquals(expected, out[i * k + j], 0.0,
                                    "n " + n + ", k " + k + ", dim " + dim + ", pair (" + i + "," + j + ")");
                        }
                    }
                }
            }
        }
    }

    @Test
    void directDistanceAndRowNormsMatchPlainSumsAndAreExactlyZeroForEqualRows() {
        SplittableRandom rng = new SplittableRandom(6);
        for (int dim : new int[]{1, 3, 4, 5, 17, 64}) {
            double[] x = gaussians(rng, 2 * dim);
            double plainDist = 0, plainNorm = 0;
            for (int d = 0; d < dim; d++) {
                double e = x[d] - x[dim + d];
                plainDist += e * e;
                plainNorm += x[d] * x[d];
            }
            assertEquals(plainDist, SquaredDistances.direct(x, 0, x, 1, dim), REORDER_TOL * plainDist, "dim " + dim);
            double[] norms = new double[2];
            SquaredDistances.rowNorms(x, 2, dim, norms);
            assertEquals(plainNorm, norms[0], REORDER_TOL * plainNorm, "dim " + dim);
            assertEquals(0.0, SquaredDistances.direct(x, 1, x, 1, dim), 0.0, "a row against itself");
        }
    }

    @Test
    void dotsAndGramAreBitIdenticalToOneAccumulatorPerPairAndGramIsSymmetric() {
        SplittableRandom rng = new SplittableRandom(8);
        for (int dim : new int[]{1, 13, 37}) {
            for (int n = 1; n <= 11; n++) {
                double[] x = gaussians(rng, n * dim);
                double[] gram = new double[n * n], dots = new double[n * n];
                SquaredDistances.gram(x, n, dim, gram);
                SquaredDistances.dots(x, n, x, n, dim, dots);
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int d = 0; d < dim; d++) s += x[i * dim + d] * x[j * dim + d];
                        String at = "n " + n + ", dim " + dim + ", (" + i + "," + j + ")";
                        assertEquals(s, dots[i * n + j], 0.0, at);
                        assertEquals(s, gram[i * n + j], 0.0, at);
                        assertEquals(gram[j * n + i], gram[i * n + j], 0.0, at + " symmetric");
                    }
                }
            }
        }
    }

    @Test
    void distancesOfChosenRowsHaveTheBitsOfTheFullPass() {
        SplittableRandom rng = new SplittableRandom(9);
        for (int dim : new int[]{1, 7, 33}) {
            for (int k = 1; k <= 9; k++) {
                int n = 23;
                double[] x = gaussians(rng, n * dim), c = gaussians(rng, k * dim);
                double[] xn = new double[n], cn = new double[k], full = new double[n * k];
                SquaredDistances.rowNorms(x, n, dim, xn);
                SquaredDistances.rowNorms(c, k, dim, cn);
                SquaredDistances.compute(x, xn, n, c, cn, k, dim, full);
                for (int m = 0; m <= n; m += 3) {
                    // m rows in a scrambled order, some repeated
                    int[] rows = new int[m];
                    for (int r = 0; r < m; r++) rows[r] = rng.nextInt(n);
                    double[] out = new double[Math.max(1, m) * k];
                    SquaredDistances.computeRows(x, xn, rows, m, c, cn, k, dim, out);
                    for (int r = 0; r < m; r++) {
                        for (int j = 0; j < k; j++) {
                            assertEquals(full[rows[r] * k + j], out[r * k + j], 0.0,
                                    "dim " + dim + ", k " + k + ", m " + m + ", row " + rows[r] + ", centroid " + j);
                        }
                    }
                }
            }
        }
    }
}
