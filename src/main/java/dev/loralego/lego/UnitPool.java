package dev.loralego.lego;

import java.util.List;
import java.util.Objects;

/**
 * The pooled minimal semantic units of all adapters targeting one module: the data set that rank-wise clustering
 * partitions (ALGORITHM.md §3). Unit {@code i} is {@code x_i = [a_i ; b_i] ∈ R^{dIn + dOut}}, row {@code i} of a
 * flat row-major {@code n × (dIn + dOut)} array, with sample weight {@code w_i > 0} and its owner (index of the
 * adapter in the pooled list, and the unit's rank index within that adapter).
 *
 * <p>Arrays are not copied and must not be modified while the pool is in use.
 */
public final class UnitPool {

    private final int dIn;
    private final int dOut;
    private final int n;
    private final double[] units;
    private final double[] weights;
    private final int[] ownerAdapter;
    private final int[] ownerRank;

    /**
     * Wraps pooled units (not copied).
     *
     * @param units        row-major {@code n × (dIn + dOut)}
     * @param weights      {@code n} sample weights, finite and {@code > 0}
     * @param ownerAdapter {@code n} adapter indices
     * @param ownerRank    {@code n} rank indices
     */
    public UnitPool(int dIn, int dOut, double[] units, double[] weights, int[] ownerAdapter, int[] ownerRank) {
        if (dIn < 1 || dOut < 1) throw new IllegalArgumentException("dIn, dOut must be >= 1, got " + dIn + ", " + dOut);
        int dim = dIn + dOut;
        this.n = weights.length;
        if (units.length != (long) n * dim || ownerAdapter.length != n || ownerRank.length != n) {
            throw new IllegalArgumentException("pool arrays do not agree: " + units.length + " values, " + n
                    + " weights, " + ownerAdapter.length + " owners, " + ownerRank.length + " rank indices, dim " + dim);
        }
        for (int i = 0; i < n; i++) {
            if (!(weights[i] > 0) || !Double.isFinite(weights[i])) {
                throw new IllegalArgumentException("weight of unit " + i + " must be finite and > 0, got " + weights[i]);
            }
        }
        this.dIn = dIn;
        this.dOut = dOut;
        this.units = units;
        this.weights = weights;
        this.ownerAdapter = ownerAdapter;
        this.ownerRank = ownerRank;
    }

    /**
     * Concatenates the units of several adapters in list order; each unit weighs its adapter's merge weight and is
     * owned by the adapter's list index.
     *
     * @throws IllegalArgumentException if the list is empty or the adapters' shapes differ
     */
    public static UnitPool of(List<MinimalSemanticUnits> adapters) {
        double[] w = new double[totalCount(adapters)];
        int u = 0;
        for (MinimalSemanticUnits m : adapters) {
            for (int i = 0; i < m.count(); i++) w[u++] = m.weight();
        }
        return of(adapters, w);
    }

    /**
     * Concatenates the units of several adapters in list order with explicit per-unit weights (the streaming form's
     * decayed weights).
     *
     * @param unitWeights one weight per pooled unit, in pool order
     */
    public static UnitPool of(List<MinimalSemanticUnits> adapters, double[] unitWeights) {
        Objects.requireNonNull(adapters, "adapters");
        if (adapters.isEmpty()) throw new IllegalArgumentException("a unit pool needs at least one adapter");
        MinimalSemanticUnits first = adapters.get(0);
        int dIn = first.dIn(), dOut = first.dOut(), dim = dIn + dOut;
        int n = totalCount(adapters);
        double[] x = new double[n * dim];
        int[] owner = new int[n], rank = new int[n];
        int u = 0;
        for (int t = 0; t < adapters.size(); t++) {
            MinimalSemanticUnits m = adapters.get(t);
            if (m.dIn() != dIn || m.dOut() != dOut) {
                throw new IllegalArgumentException("adapter " + m.adapterId() + " has dIn x dOut = " + m.dIn() + " x "
                        + m.dOut() + " but adapter " + first.adapterId() + " has " + dIn + " x " + dOut);
            }
            System.arraycopy(m.units(), 0, x, u * dim, m.count() * dim);
            for (int i = 0; i < m.count(); i++) {
                owner[u] = t;
                rank[u] = m.rankIndex()[i];
                u++;
            }
        }
        return new UnitPool(dIn, dOut, x, unitWeights, owner, rank);
    }

    private static int totalCount(List<MinimalSemanticUnits> adapters) {
        long n = 0;
        for (MinimalSemanticUnits m : adapters) n += m.count();
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("too many units: " + n);
        return (int) n;
    }

    /**
     * The vectors k-means assigns on (ALGORITHM.md §3): the units themselves for {@link FeatureNorm#NONE} (the
     * internal array, not a copy), or a new array {@code [a/‖a‖ ; b/‖b‖]} for {@link FeatureNorm#HALVES}
     * (a zero half stays zero).
     */
    public double[] features(FeatureNorm norm) {
        if (norm == FeatureNorm.NONE) return units;
        int dim = dim();
        double[] f = new double[units.length];
        for (int i = 0; i < n; i++) {
            int row = i * dim;
            normaliseInto(units, f, row, dIn);
            normaliseInto(units, f, row + dIn, dOut);
        }
        return f;
    }

    private static void normaliseInto(double[] src, double[] dst, int off, int len) {
        double s = 0;
        for (int c = 0; c < len; c++) s += src[off + c] * src[off + c];
        if (s == 0) return;
        double inv = 1.0 / Math.sqrt(s);
        for (int c = 0; c < len; c++) dst[off + c] = src[off + c] * inv;
    }

    /** Number of units {@code n}. */
    public int size() {
        return n;
    }

    /** Input dimension. */
    public int dIn() {
        return dIn;
    }

    /** Output dimension. */
    public int dOut() {
        return dOut;
    }

    /** {@code dIn + dOut}. */
    public int dim() {
        return dIn + dOut;
    }

    /** Row-major {@code n × (dIn + dOut)}; the internal array: do not modify. */
    public double[] units() {
        return units;
    }

    /** Sample weights; the internal array: do not modify. */
    public double[] weights() {
        return weights;
    }

    /** Adapter index (in the pooled list) of each unit; the internal array: do not modify. */
    public int[] ownerAdapter() {
        return ownerAdapter;
    }

    /** Rank index within its adapter of each unit; the internal array: do not modify. */
    public int[] ownerRank() {
        return ownerRank;
    }

    /** Dense {@code Σ_i b_i a_iᵀ} over the pool (unweighted), {@code dOut × dIn}. For tests and small modules only. */
    public double[] deltaW() {
        return MinimalSemanticUnits.deltaW(units, n, dIn, dOut);
    }
}
