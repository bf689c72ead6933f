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
 * rows. The hot loops of {@link RankWiseClustering} and {@link StreamingModuleClusters}; public for the JMH
 * benchmarks.
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
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            int x0 = i * dim, x1 = x0 + dim, x2 = x1 + dim, x3 = x2 + dim;
            int j = 0;
            for (; j + 4 <= k; j += 4) {
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
                store4(out, i, j, k, xNorms[i], cNorms, s00, s01, s02, s03);
                store4(out, i + 1, j, k, xNorms[i + 1], cNorms, s10, s11, s12, s13);
                store4(out, i + 2, j, k, xNorms[i + 2], cNorms, s20, s21, s22, s23);
                store4(out, i + 3, j, k, xNorms[i + 3], cNorms, s30, s31, s32, s33);
            }
            for (int r = i; r < i + 4; r++) remainingCentroids(x, xNorms, r, c, cNorms, j, k, dim, out);
        }
        for (; i < n; i++) {
            int xr = i * dim;
            int j = 0;
            for (; j + 4 <= k; j += 4) {
                int c0 = j * dim, c1 = c0 + dim, c2 = c1 + dim, c3 = c2 + dim;
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int d = 0; d < dim; d++) {
                    double v = x[xr + d];
                    s0 += v * c[c0 + d];
                    s1 += v * c[c1 + d];
                    s2 += v * c[c2 + d];
                    s3 += v * c[c3 + d];
                }
                store4(out, i, j, k, xNorms[i], cNorms, s0, s1, s2, s3);
            }
            remainingCentroids(x, xNorms, i, c, cNorms, j, k, dim, out);
        }
    }

    private static void store4(double[] out, int i, int j, int k, double xNorm, double[] cNorms,
                               double s0, double s1, double s2, double s3) {
        int o = i * k + j;
        out[o] = clamp(xNorm + cNorms[j] - 2 * s0);
        out[o + 1] = clamp(xNorm + cNorms[j + 1] - 2 * s1);
        out[o + 2] = clamp(xNorm + cNorms[j + 2] - 2 * s2);
        out[o + 3] = clamp(xNorm + cNorms[j + 3] - 2 * s3);
    }

    /** Centroids {@code from..k-1} of row {@code i}, one at a time. */
    private static void remainingCentroids(double[] x, double[] xNorms, int i, double[] c, double[] cNorms, int from,
                                           int k, int dim, double[] out) {
        int xr = i * dim;
        for (int j = from; j < k; j++) {
            int c0 = j * dim;
            double s0 = 0;
            for (int d = 0; d < dim; d++) s0 += x[xr + d] * c[c0 + d];
            out[i * k + j] = clamp(xNorms[i] + cNorms[j] - 2 * s0);
        }
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
