package dev.loralego.lego;

import java.util.Objects;
import java.util.TreeMap;

/**
 * {@code --k auto}: chooses the merged rank {@code k} of one module from its pooled units (our addition; the
 * LoRA-LEGO paper, arXiv 2409.16167, and the usual merging tools leave {@code k} to the user).
 *
 * <p>Rule: the smallest {@code k} whose rank-wise clustering keeps at least a share {@code τ} of the pool's energy,
 * <pre>
 *   retained(k) = 1 − Σ_i w_i ‖x_i − c_{a(i)}‖² / Σ_i w_i ‖x_i‖²
 * </pre>
 * with {@code x_i} the pooled (scaling-folded, canonicalised) raw units, {@code c_j} the raw centroids of the
 * clustering at {@code k} and {@code w_i} the sample weights. Energy is measured from the origin, so a cluster of
 * units that point the same way (one skill learned by several adapters) costs little, while forcing two unrelated
 * units into one centroid loses about half of their energy. {@code retained(n) = 1} ({@code n} = pool size: one unit
 * per cluster), so a {@code k} always exists.
 *
 * <p>Search: bisection on {@code [1, n]}, assuming {@code retained} grows with {@code k} (k-means local optima can
 * break that slightly; the bisection then returns a {@code k} that satisfies the rule, possibly not the smallest).
 * About {@code log2 n} clusterings, each exactly as {@link RankWiseClustering#cluster} with the merge's seed, so the
 * choice and the returned clustering are deterministic. A pool with zero energy gets {@code k = 1}.
 */
public final class AutoRank {

    /** The default share {@code τ} of the pool's energy the clustering must keep. */
    public static final double DEFAULT_ENERGY_SHARE = 0.9;

    private AutoRank() {
    }

    /**
     * The chosen rank and its clustering.
     *
     * @param k             the chosen number of clusters
     * @param clustering    the clustering at {@code k} (as {@link RankWiseClustering#cluster} returns it)
     * @param retainedShare {@code retained(k)}
     * @param clusterings   clusterings run by the search
     */
    public record Choice(int k, ClusteringResult clustering, double retainedShare, int clusterings) {
    }

    /**
     * Chooses {@code k} for a pool.
     *
     * @param pool       the module's units (not modified); an empty pool (every unit dropped by the canonical form,
     *                   e.g. untrained adapters with {@code B = 0}) gets {@code k = 1}, like a pool with zero energy
     * @param clustering the merge's clustering settings
     * @param seed       the merge's seed
     * @param share      {@code τ} in {@code (0, 1]}
     */
    public static Choice choose(UnitPool pool, RankWiseClustering clustering, long seed, double share) {
        Objects.requireNonNull(pool, "pool");
        Objects.requireNonNull(clustering, "clustering");
        requireShare(share);
        int n = pool.size();
        TreeMap<Integer, ClusteringResult> tried = new TreeMap<>();
        if (n == 0 || energy(pool) == 0) {
            ClusteringResult one = clustering.cluster(pool, 1, seed);
            return new Choice(1, one, 1.0, 1);
        }
        int lo = 1, hi = n;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            ClusteringResult r = clustering.cluster(pool, mid, seed);
            tried.put(mid, r);
            if (retainedShare(pool, r) >= share) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        ClusteringResult chosen = tried.get(hi);
        if (chosen == null) {
            chosen = clustering.cluster(pool, hi, seed);
            tried.put(hi, chosen);
        }
        return new Choice(hi, chosen, retainedShare(pool, chosen), tried.size());
    }

    /** {@code retained(k)} of a clustering of {@code pool} (1 for a pool with zero energy). */
    public static double retainedShare(UnitPool pool, ClusteringResult clustering) {
        Objects.requireNonNull(pool, "pool");
        Objects.requireNonNull(clustering, "clustering");
        int n = pool.size(), dim = pool.dim();
        if (clustering.assignment().length != n || clustering.dim() != dim) {
            throw new IllegalArgumentException("clustering does not belong to this pool");
        }
        double total = energy(pool);
        if (total == 0) return 1.0;
        double[] x = pool.units(), w = pool.weights(), c = clustering.centroids();
        int[] assign = clustering.assignment();
        double lost = 0;
        for (int i = 0; i < n; i++) lost += w[i] * SquaredDistances.direct(x, i, c, assign[i], dim);
        return 1 - lost / total;
    }

    /** {@code Σ_i w_i ‖x_i‖²} over the raw units. */
    static double energy(UnitPool pool) {
        int n = pool.size(), dim = pool.dim();
        double[] x = pool.units(), w = pool.weights();
        double s = 0;
        for (int i = 0; i < n; i++) {
            double e = 0;
            int row = i * dim;
            for (int d = 0; d < dim; d++) e += x[row + d] * x[row + d];
            s += w[i] * e;
        }
        return s;
    }

    static void requireShare(double share) {
        if (!(share > 0 && share <= 1)) {
            throw new IllegalArgumentException("k auto energy share must be in (0, 1], got " + share);
        }
    }
}
