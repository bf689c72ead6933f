package dev.loralego.lego;

import java.util.Objects;

/**
 * Dual reweighting of LoRA-LEGO (Zhao et al., arXiv 2409.16167, §3.3; ALGORITHM.md §4), turning the centroids of a
 * {@link ClusteringResult} into the merged module's factors.
 *
 * <ol>
 *   <li>Clusters that are empty, or whose centroid is exactly zero, are dropped (they add nothing to {@code ΔW} and
 *       a zero centroid has no direction to rescale). {@code k'} = clusters kept, in cluster order.</li>
 *   <li>Parameter reweighting (norm decay), unless {@link ParameterReweighting#OFF}:
 *       {@code c_j ← c_j · (Σ_{i∈C_j} w_i ‖x_i‖ / Σ_{i∈C_j} w_i) / ‖c_j‖} with the L2 or L∞ norm of the whole
 *       vector {@code [a ; b]}; {@code x_i} are the pool's (canonicalised, scaling-folded) raw units, also under
 *       {@link FeatureNorm#HALVES}.</li>
 *   <li>Output reweighting (variance expansion), when enabled: {@code γ = sqrt(r̄ / k')}, {@code r̄} the mean number of
 *       units the adapters targeting the module contribute ({@link #meanUnitCount}: their mean rank for
 *       {@link CanonicalForm#NONE}), folded as {@code sqrt(γ)} on each side.</li>
 *   <li>Split: {@code ā_j} = first {@code dIn} entries (row {@code j} of {@code A}), {@code b̄_j} = last {@code dOut}
 *       (column {@code j} of {@code B}); the result has scaling 1.</li>
 * </ol>
 * When every cluster is dropped (or the pool was empty) the result is a rank-1 module of zeros: {@code ΔW = 0} and
 * still a valid PEFT LoRA.
 */
public final class DualReweighting {

    private DualReweighting() {
    }

    /**
     * Applies both reweightings and splits the centroids.
     *
     * @param clustering     clustering of {@code pool} (not modified)
     * @param pool           the clustered units with their sample weights (not modified)
     * @param meanSourceRank {@code r̄ > 0}
     * @param parameter      norm used by the parameter reweighting, or OFF
     * @param output         whether the output reweighting {@code γ} is applied
     */
    public static MergedModule apply(ClusteringResult clustering, UnitPool pool, double meanSourceRank,
                                     ParameterReweighting parameter, boolean output) {
        Objects.requireNonNull(clustering, "clustering");
        Objects.requireNonNull(pool, "pool");
        Objects.requireNonNull(parameter, "parameter");
        if (!(meanSourceRank > 0) || !Double.isFinite(meanSourceRank)) {
            throw new IllegalArgumentException("mean source rank must be finite and > 0, got " + meanSourceRank);
        }
        int n = pool.size(), dim = pool.dim();
        if (clustering.dim() != dim || clustering.assignment().length != n) {
            throw new IllegalArgumentException("clustering (dim " + clustering.dim() + ", " + clustering.assignment().length
                    + " units) does not belong to this pool (dim " + dim + ", " + n + " units)");
        }
        return apply(clustering, pool.weights(), unitNorms(pool, parameter), pool.dIn(), pool.dOut(), meanSourceRank,
                parameter, output);
    }

    /**
     * The norm of every unit of {@code pool} ({@code ‖x_i‖} in the norm of {@code parameter}; zeros when OFF), in
     * unit order: what {@link #apply(ClusteringResult, double[], double[], int, int, double, ParameterReweighting,
     * boolean)} takes, so a caller that keeps these scalars need not keep the units.
     */
    public static double[] unitNorms(UnitPool pool, ParameterReweighting parameter) {
        return unitNorms(pool.units(), pool.size(), pool.dim(), parameter);
    }

    /** {@link #unitNorms(UnitPool, ParameterReweighting)} of {@code n} row-major units of width {@code dim}. */
    public static double[] unitNorms(double[] units, int n, int dim, ParameterReweighting parameter) {
        double[] norms = new double[n];
        if (parameter == ParameterReweighting.OFF) return norms;
        for (int i = 0; i < n; i++) norms[i] = norm(units, i * dim, dim, parameter);
        return norms;
    }

    /**
     * The same as {@link #apply(ClusteringResult, UnitPool, double, ParameterReweighting, boolean)} (bit for bit)
     * from the units' sample weights and norms ({@link #unitNorms}) instead of the units themselves.
     *
     * @param weights   sample weight of each unit, in the clustering's unit order
     * @param unitNorms norm of each unit, same order
     */
    public static MergedModule apply(ClusteringResult clustering, double[] weights, double[] unitNorms, int dIn, int dOut,
                                     double meanSourceRank, ParameterReweighting parameter, boolean output) {
        Objects.requireNonNull(clustering, "clustering");
        Objects.requireNonNull(parameter, "parameter");
        if (!(meanSourceRank > 0) || !Double.isFinite(meanSourceRank)) {
            throw new IllegalArgumentException("mean source rank must be finite and > 0, got " + meanSourceRank);
        }
        int n = weights.length, dim = dIn + dOut, k = clustering.k();
        if (clustering.dim() != dim || clustering.assignment().length != n || unitNorms.length != n) {
            throw new IllegalArgumentException("clustering (dim " + clustering.dim() + ", " + clustering.assignment().length
                    + " units) does not match " + n + " weights, " + unitNorms.length + " norms of dim " + dim);
        }
        double[] w = weights, c = clustering.centroids();
        int[] assign = clustering.assignment();
        // Σ w_i and Σ w_i ‖x_i‖ per cluster, in unit order
        double[] sumW = new double[k], sumWNorm = new double[k];
        for (int i = 0; i < n; i++) {
            int j = assign[i];
            sumW[j] += w[i];
            if (parameter != ParameterReweighting.OFF) sumWNorm[j] += w[i] * unitNorms[i];
        }
        boolean[] keep = new boolean[k];
        int kept = 0;
        for (int j = 0; j < k; j++) {
            keep[j] = sumW[j] > 0 && norm(c, j * dim, dim, ParameterReweighting.LINF) > 0;
            if (keep[j]) kept++;
        }
        if (kept == 0) {
            return new MergedModule(1, dIn, dOut, new double[dIn], new double[dOut], clustering.inertia(),
                    clustering.iterations());
        }
        double halfGamma = output ? Math.sqrt(Math.sqrt(meanSourceRank / kept)) : 1.0;
        double[] a = new double[kept * dIn];
        double[] b = new double[dOut * kept];
        int col = 0;
        for (int j = 0; j < k; j++) {
            if (!keep[j]) continue;
            int cr = j * dim;
            double factor = halfGamma;
            if (parameter != ParameterReweighting.OFF) {
                factor *= (sumWNorm[j] / sumW[j]) / norm(c, cr, dim, parameter);
            }
            for (int i = 0; i < dIn; i++) a[col * dIn + i] = c[cr + i] * factor;
            for (int o = 0; o < dOut; o++) b[o * kept + col] = c[cr + dIn + o] * factor;
            col++;
        }
        return new MergedModule(kept, dIn, dOut, a, b, clustering.inertia(), clustering.iterations());
    }

    /**
     * {@code r̄} of the output reweighting: the mean number of units the adapters contribute to the pool, over the
     * adapters that contribute any. With {@link CanonicalForm#NONE} every adapter contributes its {@code r} units,
     * so this is the mean source rank; {@link CanonicalForm#BALANCED} and {@link CanonicalForm#SVD} drop units that
     * add nothing to {@code ΔW} (a zero half; a zero singular value, e.g. {@code r > min(dIn, dOut)}), and the
     * variance argument of {@code γ} counts the units that are summed. So the merge of one adapter, each unit its own
     * cluster, reproduces its {@code ΔW} in every canonical form. 1 when no adapter contributes a unit (the pool is
     * empty, every cluster is dropped and {@code γ} is not used).
     *
     * @param unitCounts units per adapter after the canonical form
     */
    public static double meanUnitCount(int[] unitCounts) {
        long sum = 0;
        int contributing = 0;
        for (int c : unitCounts) {
            if (c > 0) {
                sum += c;
                contributing++;
            }
        }
        return contributing == 0 ? 1.0 : (double) sum / contributing;
    }

    /** L∞ (exact in any order) or L2 (four accumulators in a fixed order: deterministic) of a slice. */
    private static double norm(double[] v, int off, int len, ParameterReweighting p) {
        if (p == ParameterReweighting.LINF) {
            double m0 = 0, m1 = 0, m2 = 0, m3 = 0;
            int d = 0;
            for (; d + 4 <= len; d += 4) {
                m0 = Math.max(m0, Math.abs(v[off + d]));
                m1 = Math.max(m1, Math.abs(v[off + d + 1]));
                m2 = Math.max(m2, Math.abs(v[off + d + 2]));
                m3 = Math.max(m3, Math.abs(v[off + d + 3]));
            }
            for (; d < len; d++) m0 = Math.max(m0, Math.abs(v[off + d]));
            return Math.max(Math.max(m0, m1), Math.max(m2, m3));
        }
        return Math.sqrt(SquaredDistances.sumOfSquares(v, off, len));
    }
}
