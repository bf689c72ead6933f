package dev.loralego.lego;

/**
 * Squared Euclidean distances between the rows of two row-major matrices through the expansion
 * {@code ‖x − c‖² = ‖x‖² + ‖c‖² − 2 x·c}, the dot products forming {@code X · Cᵀ} (ALGORITHM.md §3).
 *
 * <p>The kernel walks each row of {@code X} once per block of four centroids, with one accumulator per
 * (row, centroid) summed in index order: results do not depend on blocking or threads, and no memory is
 * allocated. Values below zero from cancellation are clamped to zero. The hot loop of
 * {@link RankWiseClustering} and {@link StreamingModuleClusters}; public for the JMH benchmarks.
 */
public final class SquaredDistances {

    private SquaredDistances() {
    }

    /** Squared L2 norm of each of {@code n} rows of length {@code dim}, into {@code out[0..n)}. */
    public static void rowNorms(double[] x, int n, int dim, double[] out) {
        for (int i = 0; i < n; i++) {
            double s = 0;
            int row = i * dim;
            for (int d = 0; d < dim; d++) s += x[row + d] * x[row + d];
            out[i] = s;
        }
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
        for (int i = 0; i < n; i++) {
            int xr = i * dim;
            int or = i * k;
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
                out[or + j] = clamp(xNorms[i] + cNorms[j] - 2 * s0);
                out[or + j + 1] = clamp(xNorms[i] + cNorms[j + 1] - 2 * s1);
                out[or + j + 2] = clamp(xNorms[i] + cNorms[j + 2] - 2 * s2);
                out[or + j + 3] = clamp(xNorms[i] + cNorms[j + 3] - 2 * s3);
            }
            for (; j < k; j++) {
                int c0 = j * dim;
                double s0 = 0;
                for (int d = 0; d < dim; d++) s0 += x[xr + d] * c[c0 + d];
                out[or + j] = clamp(xNorms[i] + cNorms[j] - 2 * s0);
            }
        }
    }

    /** Exact {@code ‖x_i − c_j‖²} by explicit differences (used where an exact zero matters). */
    static double direct(double[] x, int i, double[] c, int j, int dim) {
        double s = 0;
        int xr = i * dim, cr = j * dim;
        for (int d = 0; d < dim; d++) {
            double diff = x[xr + d] - c[cr + d];
            s += diff * diff;
        }
        return s;
    }

    private static double clamp(double v) {
        return v > 0 ? v : 0;
    }
}
