package dev.loralego.lego;

/**
 * The outcome of rank-wise clustering of one module's {@link UnitPool} (ALGORITHM.md §3).
 *
 * @param k                 number of clusters actually used: {@code min(requestedK, pool size)}
 * @param requestedK        the {@code k} asked for; {@code k < requestedK} means it was clamped to the pool size
 * @param dim               {@code dIn + dOut}
 * @param centroids         row-major {@code k × dim}: weighted means {@code c_j = Σ w_i x_i / Σ w_i} of the RAW
 *                          member units (zeros for an empty cluster)
 * @param featureCentroids  row-major {@code k × dim}: the centroids in assignment space (equal to
 *                          {@code centroids} for {@link FeatureNorm#NONE}; means of {@code [a/‖a‖ ; b/‖b‖]} for
 *                          {@link FeatureNorm#HALVES}); an empty cluster keeps its last value
 * @param assignment        cluster of each pool unit
 * @param clusterWeight     {@code Σ w_i} over each cluster's members (0 for an empty cluster)
 * @param inertia           {@code Σ w_i ‖f_i − fc_{a(i)}‖²} in assignment space
 * @param iterations        Lloyd assignment steps of the kept run (0 when {@code k ≥ pool size}: one unit per cluster)
 * @param converged         whether the last assignment step changed nothing (false when {@code maxIter} was hit)
 */
public record ClusteringResult(int k, int requestedK, int dim, double[] centroids, double[] featureCentroids,
                               int[] assignment, double[] clusterWeight, double inertia, int iterations,
                               boolean converged) {
    public ClusteringResult {
        if (centroids.length != (long) k * dim || featureCentroids.length != (long) k * dim || clusterWeight.length != k) {
            throw new IllegalArgumentException("clustering arrays do not match k " + k + ", dim " + dim);
        }
    }

    /** Whether {@code k} was clamped to the pool size. */
    public boolean kClamped() {
        return k < requestedK;
    }
}
