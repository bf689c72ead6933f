package dev.loralego.lego;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Rank-wise clustering of LoRA-LEGO (Zhao et al., arXiv 2409.16167, §3.2; ALGORITHM.md §3): weighted k-means with
 * squared Euclidean distance on the pooled minimal semantic units of one module.
 *
 * <ul>
 *   <li>Seeding: k-means++ (Arthur &amp; Vassilvitskii 2007) with sample weights: the first centre is drawn with
 *       probability {@code ∝ w_i}, each further one {@code ∝ w_i D(x_i)²}. When every remaining {@code D²} is zero
 *       (fewer distinct units than {@code k}) the draw falls back to {@code ∝ w_i}.</li>
 *   <li>Randomness: one {@code SplittableRandom(seed)}, {@code split()} once per restart, in restart order.</li>
 *   <li>Restarts: {@code nInit}; the lowest inertia wins, the earliest restart on ties.</li>
 *   <li>Lloyd: assign every unit to its nearest centroid (lowest index on ties), recompute weighted centroids
 *       {@code c_j = Σ w_i x_i / Σ w_i}, until an assignment step changes nothing or {@code maxIter} assignment
 *       steps ran.</li>
 *   <li>Empty cluster during Lloyd (our decision; the paper is silent): after each update step, each empty cluster
 *       in index order takes the unit farthest from its own centroid by weighted distance
 *       {@code w_i ‖f_i − c_{a(i)}‖²} (lowest index on ties) among units whose cluster has at least two members and
 *       that are not on their centroid (squared distance above {@code 1e-20 ‖f_i‖²}: the weighted mean of equal
 *       copies may differ from them in the last bits); centroids are recomputed after each move. When no unit
 *       qualifies (fewer distinct units than clusters) the cluster stays empty and keeps its last centroid; it is
 *       dropped by {@link DualReweighting}. Moving a unit onto its own centroid never raises the objective.</li>
 *   <li>{@link FeatureNorm#HALVES}: the whole k-means runs on {@code [a/‖a‖ ; b/‖b‖]}; the returned
 *       {@link ClusteringResult#centroids()} are the weighted means of the RAW units of each final cluster.</li>
 *   <li>{@code k ≥ pool size}: no k-means; unit {@code i} is cluster {@code i} (k clamped to the pool size and
 *       {@link ClusteringResult#kClamped()} says so when {@code k > n}).</li>
 * </ul>
 * Distances in the assignment step use {@code ‖x‖² + ‖c‖² − 2 x·c} with a blocked {@code X · Cᵀ}; seeding,
 * re-seeding and inertia use explicit differences. Pools of at most {@code 8 · nInit · k} units (the first fill of a
 * streaming module, the offline merge of a few adapters) are clustered on their Gram matrix instead: the same
 * algorithm with every seeding and assignment distance from {@code G = F Fᵀ} ({@link #gramPays}); re-seeding,
 * centroids and inertia stay explicit. Each call is single-threaded with its own workspaces, so one
 * instance can be used from many threads at once (modules are the unit of parallelism) and results are
 * bit-identical regardless of threads.
 */
public final class RankWiseClustering {

    /** Observes a Lloyd run after each update step (for tests and diagnostics). */
    @FunctionalInterface
    public interface LloydListener {
        /**
         * Called after the centroids were recomputed (and empty clusters re-seeded) in step {@code iteration}.
         *
         * @param iteration 1-based assignment step
         * @param inertia   {@code Σ w_i ‖f_i − fc_{a(i)}‖²} with the new centroids
         */
        void afterUpdate(int iteration, double inertia);
    }

    private final int nInit;
    private final int maxIter;
    private final FeatureNorm featureNorm;

    /**
     * @param nInit       k-means++ restarts ({@code ≥ 1})
     * @param maxIter     Lloyd assignment steps per restart ({@code ≥ 1})
     * @param featureNorm assignment features
     */
    public RankWiseClustering(int nInit, int maxIter, FeatureNorm featureNorm) {
        if (nInit < 1) throw new IllegalArgumentException("nInit must be >= 1, got " + nInit);
        if (maxIter < 1) throw new IllegalArgumentException("maxIter must be >= 1, got " + maxIter);
        this.nInit = nInit;
        this.maxIter = maxIter;
        this.featureNorm = Objects.requireNonNull(featureNorm, "featureNorm");
    }

    /** The clustering configured by a merge's options. */
    public static RankWiseClustering of(LegoOptions options) {
        return new RankWiseClustering(options.nInit(), options.maxIter(), options.featureNorm());
    }

    /** Assignment features used by this clustering. */
    public FeatureNorm featureNorm() {
        return featureNorm;
    }

    /** Lloyd assignment-step cap. */
    public int maxIter() {
        return maxIter;
    }

    /**
     * Clusters a pool into {@code min(k, pool size)} clusters.
     *
     * @param pool units and sample weights (not modified)
     * @param k    requested clusters, {@code ≥ 1}
     * @param seed seed of every random choice
     */
    public ClusteringResult cluster(UnitPool pool, int k, long seed) {
        return cluster(pool, k, seed, false);
    }

    /**
     * {@link #cluster} always in the direct form, whatever the pool size (to compare the two forms and to benchmark
     * them; the service and the offline merge use {@link #cluster}).
     */
    public ClusteringResult clusterDirect(UnitPool pool, int k, long seed) {
        return cluster(pool, k, seed, true);
    }

    private ClusteringResult cluster(UnitPool pool, int k, long seed, boolean direct) {
        Objects.requireNonNull(pool, "pool");
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        int n = pool.size(), dim = pool.dim();
        double[] f = pool.features(featureNorm);
        if (k >= n) return trivial(pool, f, k);
        double[] w = pool.weights();
        if (!direct && gramPays(n, k, nInit)) return clusterOnGram(pool, f, w, k, seed);
        Workspace ws = new Workspace(n, k, dim, f);
        SplittableRandom root = new SplittableRandom(seed);
        BestRestart best = new BestRestart();
        for (int restart = 0; restart < nInit; restart++) {
            SplittableRandom rng = root.split();
            double[] fc = seedPlusPlus(f, w, n, dim, k, rng);
            int[] assign = new int[n];
            Arrays.fill(assign, -1);
            double[] cw = new double[k];
            long run = runLloyd(f, w, n, dim, k, fc, cw, assign, new double[n], maxIter, ws, null);
            best.offer(fc, assign, inertia(f, w, assign, n, dim, fc), (int) (run >>> 1), (run & 1) != 0);
        }
        return best.result(pool, f, k);
    }

    /** The restart of lowest inertia so far (the earliest on ties). */
    private static final class BestRestart {
        double[] fc;
        int[] assign;
        double inertia = Double.POSITIVE_INFINITY;
        int iterations;
        boolean converged;

        void offer(double[] fc, int[] assign, double inertia, int iterations, boolean converged) {
            if (this.fc != null && !(inertia < this.inertia)) return;
            this.fc = fc;
            this.assign = assign;
            this.inertia = inertia;
            this.iterations = iterations;
            this.converged = converged;
        }

        ClusteringResult result(UnitPool pool, double[] f, int k) {
            return finish(pool, f, fc, assign, k, k, inertia, iterations, converged);
        }
    }

    /**
     * Whether {@link #cluster} runs on the Gram matrix: its {@code n²/2} dot products of length {@code dim} are paid
     * once, while the direct form pays about {@code nInit · (k seeding distances + a few Lloyd steps of k) · n} of
     * them. The first fill of a streaming module ({@code n = 2r} units for {@code k = r}) and the offline merge of a
     * few adapters fall on this side; large pools stay direct. A function of {@code (n, k, nInit)} only, so the
     * offline merge and the service take the same path on the same pool.
     */
    static boolean gramPays(int n, int k, int nInit) {
        return (long) n <= 8L * nInit * k;
    }

    /**
     * {@link #cluster} on the Gram matrix {@code G = F Fᵀ} of the features: each centre is kept as coefficients
     * {@code α_j} over the units (a seed {@code e_p}, a mean {@code w_l / W_j} over its members), so
     * {@code ‖f_i − c_j‖² = G_ii − 2 Σ_l α_jl G_il + Σ_lm α_jl α_jm G_lm} costs {@code O(n)} instead of
     * {@code O(dim)}. Same algorithm as the direct form: the same k-means++ draws (distances from {@code G}, exactly
     * zero between equal units), the same Lloyd loop and tie rules, empty clusters re-seeded by the direct rule on
     * explicit centroids. Each restart's explicit feature centroids and inertia are computed from its final
     * assignment by the direct routines, and the lowest inertia wins as before. Distances differ from the direct
     * form only by rounding, so a near tie may resolve differently; results are deterministic and shared by every
     * caller.
     */
    private ClusteringResult clusterOnGram(UnitPool pool, double[] f, double[] w, int k, long seed) {
        int n = pool.size(), dim = pool.dim();
        double[] g = new double[n * n];
        SquaredDistances.gram(f, n, dim, g);
        GramWorkspace gws = new GramWorkspace(n, k);
        SplittableRandom root = new SplittableRandom(seed);
        BestRestart best = new BestRestart();
        for (int restart = 0; restart < nInit; restart++) {
            SplittableRandom rng = root.split();
            double[] alpha = new double[k * n];
            int[] seeds = seedPlusPlusOnGram(g, w, n, k, rng);
            for (int j = 0; j < k; j++) alpha[j * n + seeds[j]] = 1.0;
            int[] assign = new int[n];
            Arrays.fill(assign, -1);
            int iter = 0;
            boolean converged = false;
            while (iter < maxIter) {
                iter++;
                if (!assignNearestOnGram(g, n, k, alpha, assign, gws)) {
                    converged = true;
                    break;
                }
                meanCoefficients(w, assign, n, k, alpha, gws.clusterWeight);
                if (hasEmpty(gws.clusterWeight, k)) {
                    double[] fc = explicitCentroids(f, w, assign, n, k, dim, alpha, gws.clusterWeight);
                    reseedEmpty(f, w, assign, n, k, dim, fc, gws.clusterWeight, gws.counts);
                    meanCoefficients(w, assign, n, k, alpha, gws.clusterWeight);
                }
            }
            double[] fc = explicitCentroids(f, w, assign, n, k, dim, alpha, new double[k]);
            best.offer(fc, assign, inertia(f, w, assign, n, dim, fc), iter, converged);
        }
        return best.result(pool, f, k);
    }

    /** Reused arrays of one Gram-path clustering call. */
    private static final class GramWorkspace {
        final double[] dist;
        final double[] t;
        final double[] q;
        final double[] clusterWeight;
        final int[] counts;

        GramWorkspace(int n, int k) {
            dist = new double[n * k];
            t = new double[k * n];
            q = new double[k];
            clusterWeight = new double[k];
            counts = new int[k];
        }
    }

    /** {@code max(0, G_ii + G_pp − 2 G_ip)}: exactly zero for equal units (their three dot products share bits). */
    private static double gramDistance(double[] g, int n, int i, int p) {
        double d = g[i * n + i] + g[p * n + p] - 2 * g[i * n + p];
        return d > 0 ? d : 0;
    }

    /** {@link #seedPlusPlus} with distances from the Gram matrix; returns the chosen unit of each centre. */
    static int[] seedPlusPlusOnGram(double[] g, double[] w, int n, int k, SplittableRandom rng) {
        int[] seeds = new int[k];
        double[] d2 = new double[n];
        double[] p = new double[n];
        seeds[0] = draw(w, n, sum(w, n), rng);
        for (int i = 0; i < n; i++) d2[i] = gramDistance(g, n, i, seeds[0]);
        for (int c = 1; c < k; c++) {
            for (int i = 0; i < n; i++) p[i] = w[i] * d2[i];
            double total = sum(p, n);
            seeds[c] = total > 0 ? draw(p, n, total, rng) : draw(w, n, sum(w, n), rng);
            for (int i = 0; i < n; i++) {
                double d = gramDistance(g, n, i, seeds[c]);
                if (d < d2[i]) d2[i] = d;
            }
        }
        return seeds;
    }

    /**
     * Assigns every unit to its nearest centre {@code Σ_l α_jl f_l} (lowest index on ties), the distance
     * {@code G_ii − 2 t_ji + q_j} with {@code t_ji = Σ_l α_jl G_li} and {@code q_j = Σ_l α_jl t_jl}, clamped at zero.
     *
     * @return whether any assignment changed
     */
    private static boolean assignNearestOnGram(double[] g, int n, int k, double[] alpha, int[] assign, GramWorkspace ws) {
        double[] t = ws.t, q = ws.q;
        Arrays.fill(t, 0.0);
        for (int j = 0; j < k; j++) {
            int tr = j * n;
            for (int l = 0; l < n; l++) {
                double a = alpha[tr + l];
                if (a == 0) continue;
                int gr = l * n;
                for (int i = 0; i < n; i++) t[tr + i] += a * g[gr + i];
            }
            double qj = 0;
            for (int l = 0; l < n; l++) {
                double a = alpha[tr + l];
                if (a != 0) qj += a * t[tr + l];
            }
            q[j] = qj;
        }
        double[] dist = ws.dist;
        for (int i = 0; i < n; i++) {
            double gii = g[i * n + i];
            for (int j = 0; j < k; j++) {
                double d = gii - 2 * t[j * n + i] + q[j];
                dist[i * k + j] = d > 0 ? d : 0;
            }
        }
        return assignFromDistances(dist, n, k, assign);
    }

    /**
     * Coefficients of the weighted means of the assignment: {@code α_jl = w_l / W_j} for members; the row of an
     * empty cluster is kept (it keeps its last centre, as in the direct form). Cluster weights into {@code cw}.
     */
    private static void meanCoefficients(double[] w, int[] assign, int n, int k, double[] alpha, double[] cw) {
        clusterWeights(w, assign, n, cw);
        for (int j = 0; j < k; j++) {
            if (cw[j] > 0) Arrays.fill(alpha, j * n, (j + 1) * n, 0.0);
        }
        for (int i = 0; i < n; i++) alpha[assign[i] * n + i] = w[i] / cw[assign[i]];
    }

    private static boolean hasEmpty(double[] cw, int k) {
        for (int j = 0; j < k; j++) if (!(cw[j] > 0)) return true;
        return false;
    }

    /**
     * Explicit feature centroids: the weighted means of the members ({@link #weightedMeans}, the direct form's bits)
     * and, for a cluster with no members, its kept centre {@code Σ_l α_jl f_l} (a seed's row copied exactly).
     */
    private static double[] explicitCentroids(double[] f, double[] w, int[] assign, int n, int k, int dim,
                                              double[] alpha, double[] cw) {
        double[] fc = new double[k * dim];
        clusterWeights(w, assign, n, cw);
        for (int j = 0; j < k; j++) {
            if (cw[j] > 0) continue;
            int cr = j * dim, ar = j * n;
            for (int l = 0; l < n; l++) {
                double a = alpha[ar + l];
                if (a == 0) continue;
                int fr = l * dim;
                for (int d = 0; d < dim; d++) fc[cr + d] += a * f[fr + d];
            }
        }
        weightedMeans(f, w, assign, n, k, dim, fc, cw, true);
        return fc;
    }

    /**
     * Lloyd iterations warm-started from given centroids (the streaming form's drift control, ALGORITHM.md §6).
     *
     * @param pool                    units and sample weights (not modified)
     * @param initialFeatureCentroids row-major {@code k × dim} in assignment space (not modified)
     * @param initialAssignment       the current assignment, or {@code null} (then the first step always counts as
     *                                a change and every centroid is recomputed); when given, the centroids must be
     *                                the weighted means of this assignment, as a converged state keeps them
     * @param listener                observer of each update step, or {@code null}
     */
    public ClusteringResult lloyd(UnitPool pool, double[] initialFeatureCentroids, int[] initialAssignment,
                                  LloydListener listener) {
        Objects.requireNonNull(pool, "pool");
        double[] f = pool.features(featureNorm);
        LloydRun run = lloydRun(pool, f, null, initialFeatureCentroids, initialAssignment, null, false, listener);
        int n = pool.size(), dim = pool.dim();
        double in = inertia(f, pool.weights(), run.assignment(), n, dim, run.featureCentroids());
        return finish(pool, f, run.featureCentroids(), run.assignment(), run.k(), run.k(), in, run.iterations(),
                run.converged());
    }

    /**
     * What a Lloyd run leaves: the assignment, the centroids in assignment space, how it ended, and each unit's
     * certified gap ({@link #certifiedGap}) with respect to the final centroids.
     */
    record LloydRun(int k, int[] assignment, double[] featureCentroids, int iterations, boolean converged, double[] gaps) {
    }

    /**
     * The Lloyd loop of {@link #lloyd} without its epilogue (raw centroids and inertia), for a caller that recomputes
     * both from the assignment anyway ({@link StreamingModuleClusters#refine()}).
     *
     * @param f      the pool's features ({@code pool.features(featureNorm())})
     * @param fNorms their squared row norms as {@link SquaredDistances#rowNorms} gives them, or {@code null} to compute
     * @param initialGaps certified gaps of the units with respect to the initial centroids and assignment (units whose
     *                    gap is positive are not measured in the first step), or {@code null} for none
     * @param keepGaps    whether the caller keeps the final gaps as certificates: then every unit the last step did not
     *                    measure is measured against the final centroids ({@link #tightenGaps}); otherwise the run's
     *                    {@code gaps} are only the (looser) bounds Lloyd carried
     */
    LloydRun lloydRun(UnitPool pool, double[] f, double[] fNorms, double[] initialFeatureCentroids,
                      int[] initialAssignment, double[] initialGaps, boolean keepGaps, LloydListener listener) {
        int n = pool.size(), dim = pool.dim();
        if (initialFeatureCentroids.length == 0 || initialFeatureCentroids.length % dim != 0) {
            throw new IllegalArgumentException("initial centroids have " + initialFeatureCentroids.length
                    + " values, not a positive multiple of dim " + dim);
        }
        int k = initialFeatureCentroids.length / dim;
        int[] assign = new int[n];
        if (initialAssignment == null) {
            Arrays.fill(assign, -1);
        } else {
            if (initialAssignment.length != n) {
                throw new IllegalArgumentException("initial assignment has " + initialAssignment.length + " entries, pool " + n);
            }
            for (int i = 0; i < n; i++) {
                if (initialAssignment[i] < 0 || initialAssignment[i] >= k) {
                    throw new IllegalArgumentException("initial assignment of unit " + i + " is " + initialAssignment[i]
                            + ", not in [0, " + k + ")");
                }
                assign[i] = initialAssignment[i];
            }
        }
        double[] gaps = new double[n];
        if (initialGaps != null && initialAssignment != null) {
            if (initialGaps.length != n) throw new IllegalArgumentException("initial gaps: " + initialGaps.length + ", pool " + n);
            for (int i = 0; i < n; i++) gaps[i] = initialGaps[i] > 0 ? initialGaps[i] : 0;
        }
        double[] fc = initialFeatureCentroids.clone();
        double[] cw = new double[k];
        Workspace ws = new Workspace(n, k, dim, f, fNorms);
        long run = n == 0 ? 1 : runLloyd(f, pool.weights(), n, dim, k, fc, cw, assign, gaps, maxIter, ws, listener);
        boolean converged = (run & 1) != 0;
        if (keepGaps && n > 0) tightenGaps(f, n, dim, fc, k, assign, gaps, converged, ws);
        return new LloydRun(k, assign, fc, (int) (run >>> 1), converged, gaps);
    }

    /**
     * Measures the gap of every unit that the last assignment step did not measure (all of them when Lloyd stopped at
     * {@code maxIter}, after a final update): a gap carried through the iterations only shrinks, and a certificate
     * kept for later refinements should be as tight as a fresh one.
     */
    private static void tightenGaps(double[] f, int n, int dim, double[] fc, int k, int[] assign, double[] gap,
                                    boolean converged, Workspace ws) {
        boolean[] fresh = new boolean[n];
        if (converged) for (int r = 0; r < ws.lastMeasured; r++) fresh[ws.rows[r]] = true;
        int m = 0;
        for (int i = 0; i < n; i++) if (!fresh[i]) ws.rows[m++] = i;
        measure(f, m, dim, fc, k, assign, gap, ws, false);
    }

    /** The trivial clustering for {@code k ≥ n}: unit {@code i} is cluster {@code i}. */
    static ClusteringResult trivial(UnitPool pool, double[] features, int requestedK) {
        int n = pool.size();
        int[] assign = new int[n];
        for (int i = 0; i < n; i++) assign[i] = i;
        return new ClusteringResult(n, requestedK, pool.dim(), pool.units().clone(), features.clone(), assign,
                pool.weights().clone(), 0.0, 0, true);
    }

    /** Raw centroids and cluster weights of a final assignment, packed into a result. */
    static ClusteringResult finish(UnitPool pool, double[] f, double[] fc, int[] assign, int k, int requestedK,
                                   double inertia, int iterations, boolean converged) {
        int n = pool.size(), dim = pool.dim();
        double[] c = new double[k * dim];
        double[] cw = new double[k];
        weightedMeans(pool.units(), pool.weights(), assign, n, k, dim, c, cw, false);
        return new ClusteringResult(k, requestedK, dim, c, fc, assign, cw, inertia, iterations, converged);
    }

    /** Reused arrays of one clustering call. */
    static final class Workspace {
        final double[] fNorms;
        final double[] cNorms;
        final double[] dist;
        final int[] counts;
        final int[] rows;
        final double[] before;
        final double[] moves;
        /** Unit-to-centroid distance rows computed so far (each is {@code k} distances). */
        long measuredRows;
        /** Units the last assignment step measured: {@code rows[0 .. lastMeasured)}. */
        int lastMeasured;

        Workspace(int n, int k, int dim, double[] f) {
            this(n, k, dim, f, null);
        }

        /** With the features' squared row norms given ({@link SquaredDistances#rowNorms}'s bits), or computed. */
        Workspace(int n, int k, int dim, double[] f, double[] givenNorms) {
            if (givenNorms != null) {
                fNorms = givenNorms;
            } else {
                fNorms = new double[n];
                SquaredDistances.rowNorms(f, n, dim, fNorms);
            }
            cNorms = new double[k];
            dist = new double[n * k];
            counts = new int[k];
            rows = new int[n];
            before = new double[k * dim];
            moves = new double[k];
        }
    }

    /**
     * Lloyd loop, in place on {@code fc}, {@code cw}, {@code assign} and {@code gap}, with Hamerly-style bounds: each
     * unit carries a certified gap ({@link #certifiedGap}) by which its own centroid is nearer than any other; after
     * an update the gap shrinks by its own centroid's movement plus the largest movement, and a unit whose gap stays
     * positive keeps its cluster without being measured. Every other unit is measured with the same distance bits
     * as a full pass and assigned by the same rule, so the iterations, assignments and centroids are those of plain
     * Lloyd, bit for bit; only the number of distances computed changes.
     *
     * @param gap per unit: a certified gap with respect to {@code fc} and {@code assign} (0 where none, and for every
     *            unit with {@code assign = -1}); on return, certified gaps with respect to the final centroids
     * @return {@code iterations << 1 | (converged ? 1 : 0)}
     */
    static long runLloyd(double[] f, double[] w, int n, int dim, int k, double[] fc, double[] cw, int[] assign,
                         double[] gap, int maxIter, Workspace ws, LloydListener listener) {
        int iter = 0;
        boolean converged = false;
        while (iter < maxIter) {
            iter++;
            boolean changed = assignBounded(f, n, dim, fc, k, assign, gap, ws);
            if (!changed) {
                converged = true;
                break;
            }
            System.arraycopy(fc, 0, ws.before, 0, k * dim);
            weightedMeans(f, w, assign, n, k, dim, fc, cw, true);
            if (hasEmpty(cw, k)) {
                int[] was = assign.clone();
                reseedEmpty(f, w, assign, n, k, dim, fc, cw, ws.counts);
                // a unit moved by re-seeding has no certificate
                for (int i = 0; i < n; i++) if (assign[i] != was[i]) gap[i] = 0;
            }
            loosen(gap, assign, n, ws.before, fc, k, dim, ws.moves);
            if (listener != null) listener.afterUpdate(iter, inertia(f, w, assign, n, dim, fc));
        }
        return ((long) iter << 1) | (converged ? 1 : 0);
    }

    /**
     * Assigns every unit whose gap is not positive to its nearest centroid (lowest index on ties) and measures its
     * new gap; the others keep their cluster, which their certificate proves to be the nearest.
     *
     * @return whether any assignment changed
     */
    static boolean assignBounded(double[] f, int n, int dim, double[] fc, int k, int[] assign, double[] gap, Workspace ws) {
        int m = 0;
        for (int i = 0; i < n; i++) if (!(gap[i] > 0)) ws.rows[m++] = i;
        ws.measuredRows += m;
        ws.lastMeasured = m;
        return measure(f, m, dim, fc, k, assign, gap, ws, true);
    }

    /**
     * Measures the units {@code ws.rows[0 .. m)} against the centroids {@code fc} (the bits of a full pass, nothing
     * copied) and sets their certified gaps; with {@code reassign}, first moves each to its nearest centroid (lowest
     * index on ties), else keeps its cluster.
     *
     * @return whether any assignment changed
     */
    private static boolean measure(double[] f, int m, int dim, double[] fc, int k, int[] assign, double[] gap,
                                   Workspace ws, boolean reassign) {
        SquaredDistances.rowNorms(fc, k, dim, ws.cNorms);
        double cMax = largest(ws.cNorms, k);
        SquaredDistances.computeRows(f, ws.fNorms, ws.rows, m, fc, ws.cNorms, k, dim, ws.dist);
        boolean changed = false;
        for (int r = 0; r < m; r++) {
            int i = ws.rows[r], row = r * k;
            if (reassign) {
                int best = nearest(ws.dist, row, k);
                if (assign[i] != best) {
                    assign[i] = best;
                    changed = true;
                }
            }
            gap[i] = gapOf(ws.dist, row, k, assign[i], ws.fNorms[i], cMax);
        }
        return changed;
    }

    /**
     * Shrinks every positive gap by the movement of its unit's centroid plus the largest movement, from
     * {@code before} to {@code fc} (triangle inequality: no other centroid can have come nearer by more).
     */
    static void loosen(double[] gap, int[] assign, int n, double[] before, double[] fc, int k, int dim, double[] moves) {
        double maxMove = centroidMoves(before, fc, k, dim, moves);
        for (int i = 0; i < n; i++) {
            if (gap[i] > 0) gap[i] = Math.max(0.0, gap[i] - (moves[assign[i]] + maxMove));
        }
    }

    /**
     * {@code moves[j] = ‖after_j − before_j‖} for the {@code k} rows of two centroid sets.
     *
     * @return the largest movement
     */
    static double centroidMoves(double[] before, double[] after, int k, int dim, double[] moves) {
        double maxMove = 0;
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int d = j * dim, end = d + dim; d < end; d++) {
                double e = after[d] - before[d];
                s += e * e;
            }
            moves[j] = Math.sqrt(s);
            maxMove = Math.max(maxMove, moves[j]);
        }
        return maxMove;
    }

    /**
     * Squared distances within this relative error ({@code τ = CERT_TOLERANCE (‖f‖² + max_j ‖c_j‖²)}) count as
     * unknown when a gap is measured: far above the rounding of the distance kernels (about {@code 1e-13} relative
     * at these lengths) both when the gap is measured and when a later assignment relies on it.
     */
    static final double CERT_TOLERANCE = 1e-8;

    /**
     * A certified lower bound on {@code ‖f − c_other‖ − ‖f − c_own‖} from computed squared distances {@code d1}
     * (own) and {@code d2} (nearest other), each known within {@code tau}; 0 when nothing is certain.
     */
    static double certifiedGap(double d1, double d2, double tau) {
        double lo = d2 - tau;
        if (!(lo > 0)) return 0;
        double g = Math.sqrt(lo) - Math.sqrt(Math.max(0, d1) + tau);
        return g > 0 ? g : 0;
    }

    /**
     * The certified gap of a unit in cluster {@code own} from its squared distances {@code dist[row .. row + k)} to
     * the centroids: against the nearest other centroid (infinite when {@code k = 1}), each distance known within
     * {@code τ = CERT_TOLERANCE (fSq + cMax)}.
     *
     * @param fSq  the unit's squared norm
     * @param cMax the largest squared norm of the centroids ({@link #largest})
     */
    static double gapOf(double[] dist, int row, int k, int own, double fSq, double cMax) {
        double other = Double.POSITIVE_INFINITY;
        for (int j = 0; j < k; j++) if (j != own && dist[row + j] < other) other = dist[row + j];
        return certifiedGap(dist[row + own], other, CERT_TOLERANCE * (fSq + cMax));
    }

    /** The largest of {@code v[0 .. k)}, at least 0. */
    static double largest(double[] v, int k) {
        double max = 0;
        for (int j = 0; j < k; j++) max = Math.max(max, v[j]);
        return max;
    }

    /**
     * Assigns unit {@code i} to the nearest of row {@code i} of {@code dist} ({@code n × k}).
     *
     * @return whether any assignment changed
     */
    static boolean assignFromDistances(double[] dist, int n, int k, int[] assign) {
        boolean changed = false;
        for (int i = 0; i < n; i++) {
            int best = nearest(dist, i * k, k);
            if (assign[i] != best) {
                assign[i] = best;
                changed = true;
            }
        }
        return changed;
    }

    /** Index of the smallest of {@code dist[offset .. offset + k)}, the lowest index on ties. */
    static int nearest(double[] dist, int offset, int k) {
        int best = 0;
        double bestD = dist[offset];
        for (int j = 1; j < k; j++) {
            if (dist[offset + j] < bestD) {
                bestD = dist[offset + j];
                best = j;
            }
        }
        return best;
    }

    /** {@code cw_j = Σ_{a(i)=j} w_i}, summed in unit order (every entry of {@code cw} rewritten). */
    static void clusterWeights(double[] w, int[] assign, int n, double[] cw) {
        Arrays.fill(cw, 0.0);
        for (int i = 0; i < n; i++) cw[assign[i]] += w[i];
    }

    /**
     * {@code out_j = Σ_{a(i)=j} w_i x_i / Σ_{a(i)=j} w_i}, summed in unit order; {@code outWeight_j = Σ w_i}.
     * An empty cluster's row is left unchanged ({@code keepEmpty}) or zeroed.
     */
    static void weightedMeans(double[] x, double[] w, int[] assign, int n, int k, int dim, double[] out,
                              double[] outWeight, boolean keepEmpty) {
        clusterWeights(w, assign, n, outWeight);
        for (int j = 0; j < k; j++) {
            if (outWeight[j] > 0 || !keepEmpty) Arrays.fill(out, j * dim, (j + 1) * dim, 0.0);
        }
        accumulate(x, w, assign, n, dim, out);
        for (int j = 0; j < k; j++) {
            double cwj = outWeight[j];
            if (cwj > 0) {
                int cr = j * dim;
                for (int d = 0; d < dim; d++) out[cr + d] /= cwj;
            }
        }
    }

    /**
     * {@code Σ_{a(i)=j} w_i x_i} into row {@code j} of {@code out} (every row rewritten) and {@code Σ_{a(i)=j} w_i}
     * into {@code outWeight}, in unit order: exactly the sums {@link #weightedMeans} divides, so dividing each row
     * with positive weight by its weight gives its means bit for bit, and appending units later (in order) gives
     * the sums of the longer list bit for bit.
     */
    static void weightedSums(double[] x, double[] w, int[] assign, int n, int k, int dim, double[] out,
                             double[] outWeight) {
        Arrays.fill(outWeight, 0, k, 0.0);
        for (int i = 0; i < n; i++) outWeight[assign[i]] += w[i];
        Arrays.fill(out, 0, k * dim, 0.0);
        accumulate(x, w, assign, n, dim, out);
    }

    /** {@code out[a(i)] += w_i x_i} for every unit, in unit order (the one summation both of the above use). */
    static void accumulate(double[] x, double[] w, int[] assign, int n, int dim, double[] out) {
        for (int i = 0; i < n; i++) {
            int xr = i * dim, cr = assign[i] * dim;
            double wi = w[i];
            for (int d = 0; d < dim; d++) out[cr + d] += wi * x[xr + d];
        }
    }

    /**
     * Squared distance, relative to {@code ‖f_i‖²}, up to which a unit counts as on its centroid when re-seeding:
     * the weighted mean of equal copies can differ from them in the last bits (a residue near
     * {@code (n ε)² ‖f‖²}), and such a copy must not be split off into an empty cluster. Far below any real
     * difference between units (their factors carry 3 to 7 significant digits).
     */
    static final double ON_CENTROID = 1e-20;

    /**
     * Re-seeds every empty cluster (index order) with the unit farthest from its centroid by weighted distance
     * among units of clusters with at least two members that are not on their centroid ({@link #ON_CENTROID};
     * lowest index on ties), recomputing the centroids after each move. A cluster no unit qualifies for stays
     * empty.
     *
     * @return number of clusters re-seeded
     */
    static int reseedEmpty(double[] f, double[] w, int[] assign, int n, int k, int dim, double[] fc, double[] cw,
                           int[] counts) {
        int reseeded = 0;
        for (int j = 0; j < k; j++) {
            if (cw[j] > 0) continue;
            Arrays.fill(counts, 0);
            for (int i = 0; i < n; i++) counts[assign[i]]++;
            int best = -1;
            double bestD = 0;
            for (int i = 0; i < n; i++) {
                int a = assign[i];
                if (counts[a] < 2) continue;
                double dist = SquaredDistances.direct(f, i, fc, a, dim);
                if (dist <= ON_CENTROID * SquaredDistances.sumOfSquares(f, i * dim, dim)) continue;
                double d = w[i] * dist;
                if (d > bestD) {
                    bestD = d;
                    best = i;
                }
            }
            if (best < 0) continue;
            assign[best] = j;
            weightedMeans(f, w, assign, n, k, dim, fc, cw, true);
            reseeded++;
        }
        return reseeded;
    }

    /** {@code Σ w_i ‖f_i − fc_{a(i)}‖²} by explicit differences, in unit order. */
    static double inertia(double[] f, double[] w, int[] assign, int n, int dim, double[] fc) {
        double s = 0;
        for (int i = 0; i < n; i++) s += w[i] * SquaredDistances.direct(f, i, fc, assign[i], dim);
        return s;
    }

    /** Weighted k-means++ seeding; returns row-major {@code k × dim} centres copied from {@code f}. */
    static double[] seedPlusPlus(double[] f, double[] w, int n, int dim, int k, SplittableRandom rng) {
        double[] fc = new double[k * dim];
        double[] d2 = new double[n];
        double[] p = new double[n];
        int first = draw(w, n, sum(w, n), rng);
        System.arraycopy(f, first * dim, fc, 0, dim);
        for (int i = 0; i < n; i++) d2[i] = SquaredDistances.direct(f, i, fc, 0, dim);
        for (int c = 1; c < k; c++) {
            for (int i = 0; i < n; i++) p[i] = w[i] * d2[i];
            double total = sum(p, n);
            int next = total > 0 ? draw(p, n, total, rng) : draw(w, n, sum(w, n), rng);
            System.arraycopy(f, next * dim, fc, c * dim, dim);
            for (int i = 0; i < n; i++) {
                double d = SquaredDistances.direct(f, i, fc, c, dim);
                if (d < d2[i]) d2[i] = d;
            }
        }
        return fc;
    }

    private static double sum(double[] v, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += v[i];
        return s;
    }

    /** Index drawn with probability {@code p_i / total} (cumulative sum in index order). */
    private static int draw(double[] p, int n, double total, SplittableRandom rng) {
        double target = rng.nextDouble() * total;
        double acc = 0;
        int last = -1;
        for (int i = 0; i < n; i++) {
            if (p[i] <= 0) continue;
            acc += p[i];
            last = i;
            if (acc > target) return i;
        }
        return last;
    }
}
