package dev.loralego.lego;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The factored norms against the dense {@code ΔW} built directly. */
class UpdateNormsTest {
    private static final double TOL = 1e-10;

    @Test
    void factoredNormEqualsTheDenseNorm() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int trial = 0; trial < 20; trial++) {
            int r = 1 + rnd.nextInt(6), dIn = 1 + rnd.nextInt(20), dOut = 1 + rnd.nextInt(20);
            double[] a = new double[r * dIn], b = new double[dOut * r];
            for (int i = 0; i < a.length; i++) a[i] = rnd.nextDouble() * 2 - 1;
            for (int i = 0; i < b.length; i++) b[i] = rnd.nextDouble() * 2 - 1;
            double s = 0.5 + rnd.nextDouble();
            AdapterModule m = new AdapterModule("x", 1, s, r, dIn, dOut, a, b);
            double dense = 0;
            for (int o = 0; o < dOut; o++) {
                for (int c = 0; c < dIn; c++) {
                    double w = 0;
                    for (int k = 0; k < r; k++) w += b[o * r + k] * a[k * dIn + c];
                    dense += (s * w) * (s * w);
                }
            }
            assertEquals(Math.sqrt(dense), UpdateNorms.of(m), TOL * Math.sqrt(dense));
            // As folded units [sqrt(s) a ; sqrt(s) b], rows 2.. of a bigger array.
            int dim = dIn + dOut;
            double[] units = new double[(r + 2) * dim];
            for (int k = 0; k < r; k++) {
                for (int c = 0; c < dIn; c++) units[(k + 2) * dim + c] = Math.sqrt(s) * a[k * dIn + c];
                for (int o = 0; o < dOut; o++) units[(k + 2) * dim + dIn + o] = Math.sqrt(s) * b[o * r + k];
            }
            assertEquals(Math.sqrt(dense), UpdateNorms.ofUnits(units, 2, r, dIn, dOut), TOL * Math.sqrt(dense));
        }
    }

    @Test
    void median() {
        assertEquals(2.0, UpdateNorms.median(new double[]{3, 1, 2}));
        assertEquals(2.5, UpdateNorms.median(new double[]{4, 1, 3, 2}));
        assertEquals(Double.NaN, UpdateNorms.median(new double[0]));
    }
}
