package dev.loralego.lego;

import java.util.Arrays;

/**
 * Frobenius norms of low-rank updates without forming them: {@code ‖Σ_i b_i a_iᵀ‖²_F = Σ_{i,j} (a_i·a_j)(b_i·b_j)},
 * {@code O(r² (dIn + dOut))}. Used to keep one adapter from taking over a merge (an update far larger than
 * its peers').
 */
public final class UpdateNorms {
    private UpdateNorms() {
    }

    /** {@code ‖s · B A‖_F} of one adapter's module. */
    public static double of(AdapterModule m) {
        int r = m.rank(), dIn = m.dIn(), dOut = m.dOut();
        double[] a = m.a(), b = m.b();
        // The column products of B (row-major dOut x r) in one row-wise sweep: each (i, j) accumulator still sums
        // over o in ascending order, so the values are bit-identical to a column-by-column pass, without the
        // strided reads.
        double[] bbs = new double[r * r];
        for (int o = 0; o < dOut; o++) {
            int row = o * r;
            for (int i = 0; i < r; i++) {
                double bi = b[row + i];
                for (int j = i; j < r; j++) bbs[i * r + j] += bi * b[row + j];
            }
        }
        double sum = 0;
        for (int i = 0; i < r; i++) {
            for (int j = i; j < r; j++) {
                double aa = 0;
                for (int c = 0; c < dIn; c++) aa += a[i * dIn + c] * a[j * dIn + c];
                double bb = bbs[i * r + j];
                sum += (i == j ? 1 : 2) * aa * bb;
            }
        }
        return m.scaling() * Math.sqrt(Math.max(sum, 0));
    }

    /**
     * {@code ‖Σ b aᵀ‖_F} over {@code count} units stored row-wise as {@code [a ; b]} from row {@code from} of
     * {@code units} (scaling already folded in, as in a {@link UnitPool}).
     */
    public static double ofUnits(double[] units, int from, int count, int dIn, int dOut) {
        int dim = dIn + dOut;
        // All pair products first, four partner rows per sweep of row i (each loaded value of row i used four
        // times); every (i, j) product is still ONE accumulator summed in index order, and the pairs are combined
        // in the same (i, j) order as a pair-by-pair loop, so the result is bit-identical to it.
        double[] aas = new double[count * count], bbs = new double[count * count];
        for (int i = 0; i < count; i++) {
            int ri = (from + i) * dim;
            int j = i;
            for (; j + 4 <= count; j += 4) {
                int r0 = (from + j) * dim, r1 = r0 + dim, r2 = r1 + dim, r3 = r2 + dim;
                double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int c = 0; c < dIn; c++) {
                    double x = units[ri + c];
                    a0 += x * units[r0 + c];
                    a1 += x * units[r1 + c];
                    a2 += x * units[r2 + c];
                    a3 += x * units[r3 + c];
                }
                double b0 = 0, b1 = 0, b2 = 0, b3 = 0;
                for (int o = dIn; o < dim; o++) {
                    double x = units[ri + o];
                    b0 += x * units[r0 + o];
                    b1 += x * units[r1 + o];
                    b2 += x * units[r2 + o];
                    b3 += x * units[r3 + o];
                }
                int p = i * count + j;
                aas[p] = a0;
                aas[p + 1] = a1;
                aas[p + 2] = a2;
                aas[p + 3] = a3;
                bbs[p] = b0;
                bbs[p + 1] = b1;
                bbs[p + 2] = b2;
                bbs[p + 3] = b3;
            }
            for (; j < count; j++) {
                int rj = (from + j) * dim;
                double aa = 0, bb = 0;
                for (int c = 0; c < dIn; c++) aa += units[ri + c] * units[rj + c];
                for (int o = 0; o < dOut; o++) bb += units[ri + dIn + o] * units[rj + dIn + o];
                aas[i * count + j] = aa;
                bbs[i * count + j] = bb;
            }
        }
        double sum = 0;
        for (int i = 0; i < count; i++) {
            for (int j = i; j < count; j++) sum += (i == j ? 1 : 2) * aas[i * count + j] * bbs[i * count + j];
        }
        return Math.sqrt(Math.max(sum, 0));
    }

    /**
     * {@code ‖Σ b aᵀ‖_F} of units whose {@code a} parts are mutually orthogonal and whose {@code b} parts are too —
     * the units of {@link CanonicalForm#SVD} — as {@code sqrt(Σ_i ‖a_i‖² ‖b_i‖²)}: the cross terms of
     * {@link #ofUnits} vanish, so this is the same norm (up to rounding) in {@code O(count · dim)} instead of
     * {@code O(count² · dim)}.
     */
    public static double ofOrthogonalUnits(double[] units, int from, int count, int dIn, int dOut) {
        int dim = dIn + dOut;
        double sum = 0;
        for (int i = 0; i < count; i++) {
            int r = (from + i) * dim;
            sum += SquaredDistances.sumOfSquares(units, r, dIn) * SquaredDistances.sumOfSquares(units, r + dIn, dOut);
        }
        return Math.sqrt(sum);
    }

    /**
     * The norm of {@link #ofUnits} for units in canonical form {@code canonical}: {@link #ofOrthogonalUnits} for
     * {@link CanonicalForm#SVD}, {@link #ofUnits} otherwise.
     */
    public static double ofCanonicalUnits(double[] units, int from, int count, int dIn, int dOut, CanonicalForm canonical) {
        return canonical == CanonicalForm.SVD ? ofOrthogonalUnits(units, from, count, dIn, dOut)
                : ofUnits(units, from, count, dIn, dOut);
    }

    /** The median (mean of the two middle values for an even count); NaN for none. */
    public static double median(double[] values) {
        if (values.length == 0) return Double.NaN;
        double[] s = values.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }
}
