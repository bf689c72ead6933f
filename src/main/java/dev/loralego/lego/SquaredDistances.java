package dev.loralego.lego;

/**
 * Squared Euclidean distances between the rows of two row-major matrices through the expansion
 * {@code ‖x − c‖² = ‖x‖² + ‖c‖² − 2 x·c}, the dot products forming {@code X · Cᵀ} (ALGORITHM.md §3).
 *
 * <p>{@link #compute} is register-blocked: it walks four rows of {@code X} and four centroids at once, sixteen
 * independent accumulators sharing each loaded value (1.3–1.5× the former one-row, four-centroid loop on the
 * {@code llama-7b} shape, see {@code docs/results/perf.md}). Each (row, centroid) dot product is still ONE
 * accumulator summed in index order, so the distances are bit-identical to a plain loop and do not depend on
 * blocking or threads; no memory is allocated. Values below zero from cancellation are clamped to zero.
 * {@link #direct} and {@link #rowNorms} sum in four interleaved partial sums (index mod 4, combined as
 * {@code (s0 + s1) + (s2 + s3)}): deterministic, about 3× faster than one chain, and still exactly zero for equal
 * rows. {@link #dots} is the same blocked product without the norms, and {@link #gram} the Gram matrix
 * {@code X · Xᵀ} for {@link RankWiseClustering}'s batch path on small pools (each pair once, mirrored, same bits as
 * {@link #dots}). The hot loops of {@link RankWiseClustering} and {@link StreamingModuleClusters}; public for the
 * JMH benchmarks.
 */
public final class SquaredDistances {

    private SquaredDistances() {
    }

    /** Squared L2 norm of each of {@code n} rows of length {@code dim}, into {@code out[0..n)}. */
    public static void rowNorms(double[] x, int n, int dim, double[] out) {
        for (int i = 0; i < n; i++) out[i] = sumOfSquares(x, i * dim, dim);
    }

    /**
     * {@code Σ v²} over {@code len} values from {@code off}: four partial sums (index mod 4, combined as
     * {@code (s0 + s1) + (s2 + s3)}), a fixed order, so deterministic.
     */
    public static double sumOfSquares(double[] v, int off, int len) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int d = 0;
        for (; d + 4 <= len; d += 4) {
            double v0 = v[off + d], v1 = v[off + d + 1], v2 = v[off + d + 2], v3 = v[off + d + 3];
            s0 += v0 * v0;
            s1 += v1 * v1;
            s2 += v2 * v2;
            s3 += v3 * v3;
        }
        for (; d < len; d++) s0 += v[off + d] * v[off + d];
        return (s0 + s1) + (s2 + s3);
    }

    /**
     * {@code out[i·k + j] = max(0, xNorms[i] + cNorms[j] − 2 x_i·c_j)}.
     *
     * @param x      row-major {@code n × dim} (not modified)
     * @param xNorms squared row norms of {@code x} (not modified)
     * @param c      row-major {@code k × dim} (not modified)
     * @param cNorms squared row norms of {@code c} (not modified)
     * @param out    {@code n × k}, overwritten
     */
    public static void compute(double[] x, double[] xNorms, int n, double[] c, double[] cNorms, int k, int dim, double[] out) {
        dotsOfRows(x, null, n, c, k, dim, out);
        toDistances(xNorms, null, n, cNorms, k, out);
    }

    /**
     * {@code out[i·k + j] = x_i·c_j}: the matrix product {@code X · Cᵀ}, each entry one accumulator summed in index
     * order (so equal rows give equal bits wherever they sit, and {@code x_i·c_j} has the bits of {@code c_j·x_i}).
     *
     * @param x   row-major {@code n × dim} (not modified)
     * @param c   row-major {@code k × dim} (not modified)
     * @param out {@code n × k}, overwritten
     */
    public static void dots(double[] x, int n, double[] c, int k, int dim, double[] out) {
        dotsOfRows(x, null, n, c, k, dim, out);
    }

    /**
     * The Gram matrix {@code out[i·n + j] = x_i·x_j} of the rows of {@code x}: the entries of {@link #dots}
     * ({@code X · Xᵀ}, same bits), each pair computed once and mirrored.
     *
     * @param x   row-major {@code n × dim} (not modified)
     * @param out {@code n × n}, overwritten
     */
    public static void gram(double[] x, int n, int dim, double[] out) {
        int n4 = n - n % 4;
        for (int i = 0; i < n4; i += 4) {
            for (int j = i; j < n4; j += 4) {
                int x0 = i * dim;
                block(x, x0, x0 + dim, x0 + 2 * dim, x0 + 3 * dim, x, j, dim, out, i * n + j, n);
                if (j == i) continue;
                for (int a = 0; a < 4; a++) {
                    for (int b = 0; b < 4; b++) out[(j + b) * n + i + a] = out[(i + a) * n + j + b];
                }
            }
        }
        for (int i = n4; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double v = dot(x, i, x, j, dim);
                out[i * n + j] = v;
                out[j * n + i] = v;
            }
        }
    }

    /**
     * {@link #compute} for the rows {@code rows[0 .. m)} of {@code x} only: {@code out[r·k + j]} is the distance of
     * row {@code rows[r]} to centroid {@code j}, with the bits {@link #compute} gives it (each dot product is one
     * accumulator in index order, wherever its row sits). Nothing is copied.
     */
    public static void computeRows(double[] x, double[] xNorms, int[] rows, int m, double[] c, double[] cNorms, int k,
                                   int dim, double[] out) {
        dotsOfRows(x, rows, m, c, k, dim, out);
        toDistances(xNorms, rows, m, cNorms, k, out);
    }

    /**
     * {@code out[q·k + j] = x_{row(q)}·c_j} for {@code q < m}, {@code row(q) = rows[q]}, or {@code q} itself when
     * {@code rows} is null: four rows and four centroids at a time ({@link #block}), the remainders one product at a
     * time ({@link #dot}); each product one accumulator in index order, wherever its row sits.
     */
    private static void dotsOfRows(double[] x, int[] rows, int m, double[] c, int k, int dim, double[] out) {
        int m4 = m - m % 4, k4 = k - k % 4;
        for (int q = 0; q < m4; q += 4) {
            int x0 = rowOf(rows, q) * dim, x1 = rowOf(rows, q + 1) * dim, x2 = rowOf(rows, q + 2) * dim,
                    x3 = rowOf(rows, q + 3) * dim;
            for (int j = 0; j < k4; j += 4) block(x, x0, x1, x2, x3, c, j, dim, out, q * k + j, k);
            for (int p = q; p < q + 4; p++) for (int j = k4; j < k; j++) out[p * k + j] = dot(x, rowOf(rows, p), c, j, dim);
        }
        for (int q = m4; q < m; q++) {
            for (int j = 0; j < k; j++) out[q * k + j] = dot(x, rowOf(rows, q), c, j, dim);
        }
    }

    private static int rowOf(int[] rows, int q) {
        return rows == null ? q : rows[q];
    }

    /** Turns the dot products {@link #dotsOfRows} left in {@code out} into squared distances, clamped at zero. */
    private static void toDistances(double[] xNorms, int[] rows, int m, double[] cNorms, int k, double[] out) {
        for (int q = 0; q < m; q++) {
            int row = q * k;
            double xn = xNorms[rowOf(rows, q)];
            for (int j = 0; j < k; j++) out[row + j] = clamp(xn + cNorms[j] - 2 * out[row + j]);
        }
    }

    /**
     * Sixteen dot products {@code x_a·c_{j+b}} ({@code a} the four rows starting at offsets {@code x0 .. x3},
     * {@code b < 4}) into {@code out[off + a·stride + b]}: four rows and four centroids at once, every loaded value
     * shared, each product one accumulator in index order.
     */
    private static void block(double[] x, int x0, int x1, int x2, int x3, double[] c, int j, int dim, double[] out,
                              int off, int stride) {
        int c0 = j * dim, c1 = c0 + dim, c2 = c1 + dim, c3 = c2 + dim;
        double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (int d = 0; d < dim; d++) {
            double a = x[x0 + d], b = x[x1 + d], g = x[x2 + d], h = x[x3 + d];
            double e0 = c[c0 + d], e1 = c[c1 + d], e2 = c[c2 + d], e3 = c[c3 + d];
            s00 += a * e0;
            s01 += a * e1;
            s02 += a * e2;
            s03 += a * e3;
            s10 += b * e0;
            s11 += b * e1;
            s12 += b * e2;
            s13 += b * e3;
            s20 += g * e0;
            s21 += g * e1;
            s22 += g * e2;
            s23 += g * e3;
            s30 += h * e0;
            s31 += h * e1;
            s32 += h * e2;
            s33 += h * e3;
        }
        put4(out, off, s00, s01, s02, s03);
        put4(out, off + stride, s10, s11, s12, s13);
        put4(out, off + 2 * stride, s20, s21, s22, s23);
        put4(out, off + 3 * stride, s30, s31, s32, s33);
    }

    private static void put4(double[] out, int o, double s0, double s1, double s2, double s3) {
        out[o] = s0;
        out[o + 1] = s1;
        out[o + 2] = s2;
        out[o + 3] = s3;
    }

    /** One dot product {@code x_i·c_j}, one accumulator in index order. */
    private static double dot(double[] x, int i, double[] c, int j, int dim) {
        int xr = i * dim, cr = j * dim;
        double s = 0;
        for (int d = 0; d < dim; d++) s += x[xr + d] * c[cr + d];
        return s;
    }

    /** Exact {@code ‖x_i − c_j‖²} by explicit differences (used where an exact zero matters). */
    static double direct(double[] x, int i, double[] c, int j, int dim) {
        int xr = i * dim, cr = j * dim;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int d = 0;
        for (; d + 4 <= dim; d += 4) {
            double e0 = x[xr + d] - c[cr + d], e1 = x[xr + d + 1] - c[cr + d + 1];
            double e2 = x[xr + d + 2] - c[cr + d + 2], e3 = x[xr + d + 3] - c[cr + d + 3];
            s0 += e0 * e0;
            s1 += e1 * e1;
            s2 += e2 * e2;
            s3 += e3 * e3;
        }
        for (; d < dim; d++) {
            double e = x[xr + d] - c[cr + d];
            s0 += e * e;
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static double clamp(double v) {
        return v > 0 ? v : 0;
    }
}
