package dev.loralego.lego;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * The streaming form of LoRA-LEGO for one (merge group, module) (ALGORITHM.md §6): the clusters of the live
 * adapters' minimal semantic units, updated when an adapter is published, replaced or withdrawn. A plain mutable
 * object, not thread-safe (one per module; the caller serialises access), with a versioned binary form
 * ({@link #toBytes()}, {@link #fromBytes(byte[])}) for a state store.
 *
 * <p>State: the live adapters keyed by id ({@link TreeMap}: pool order is id order, then rank index), each with its
 * folded canonical units, source rank, merge weight, and per unit its current (decayed) weight and cluster; the
 * centroids (raw and in assignment space) and cluster weights {@code n_j = Σ w_i}. Centroids are never updated by
 * running sums: after every change they are recomputed from the stored members, which is exactly the mini-batch
 * update {@code c_j ← (n_j c_j + Σ_{x→j} w x)/(n_j + m_j)} and the retraction
 * {@code c_j ← (n_j c_j − Σ w x)/(n_j − m_j)}, without the accumulated cancellation error of subtracting, and
 * deterministic.
 *
 * <p>Rules (let {@code k} be the requested k of the module, or the largest rank of the live adapters when 0, and
 * {@code n} the number of pooled units):
 * <ul>
 *   <li>{@code n ≤ k}: trivial state, unit {@code i} is cluster {@code i} (what the batch algorithm returns with
 *       {@code k} clamped to {@code n}); the merged rank is {@code n}.</li>
 *   <li>First fill: the first update that leaves {@code n > k} (from a trivial or empty state), or any update that
 *       changes {@code k}, rebuilds with the batch {@link RankWiseClustering#cluster} (same seed).</li>
 *   <li>{@link #upsert}: a live adapter is first retracted (as {@link #retract}), then every stored weight is
 *       multiplied by the forgetting factor {@code λ}, then (clustered state) every new unit is assigned to the
 *       nearest centroid (current centroids, batch form) and the centroids are recomputed.</li>
 *   <li>{@link #retract}: the adapter's units are removed and the centroids recomputed; a cluster left empty is
 *       re-seeded with the farthest unit as in Lloyd ({@link RankWiseClustering}); if {@code n} drops to
 *       {@code ≤ k}, the state becomes trivial; with no live adapter there is no output.</li>
 *   <li>{@link #refine()}: Lloyd on the stored pool warm-started from the current centroids and assignment (until
 *       no assignment changes or {@code maxIter}); automatic every {@link StreamingOptions#refineEvery()}
 *       updates.</li>
 *   <li>{@link #merged()}: {@link DualReweighting} of the current centroids, {@code r̄} = mean rank of the live
 *       adapters.</li>
 * </ul>
 *
 * <p>Guarantees (tested):
 * <ol type="a">
 *   <li>After {@link #refine()} returned {@code true}, the state is a Lloyd fixed point on the live pool: one more
 *       assignment step against the current centroids changes no assignment.</li>
 *   <li>With {@code λ = 1}, a state whose last rebuild saw the final live set (a fresh instance given the live set
 *       in one {@link #upsertAll}, or any instance after {@link #recluster()}) gives a {@link #merged()} module
 *       bit-identical to {@link LegoMerger#mergeModule} on the same adapters (keys = adapter ids); a following
 *       {@link #refine()} changes nothing when the batch run converged. After an arbitrary sequence of upserts and
 *       retracts, {@link #refine()} reaches a Lloyd fixed point but in general a different local optimum of
 *       k-means than the batch run (k-means++ from scratch versus warm start); no stronger equality is claimed.</li>
 *   <li>{@link #fromBytes}({@link #toBytes()}) restores a state whose every later result is bit-identical.</li>
 * </ol>
 *
 * <p>Invariant (what makes the split form exact): after every operation ({@link #upsert}, {@link #upsertAll},
 * {@link #retract}, {@link #refine()} and {@link #recluster()}, whether Lloyd converged or stopped at
 * {@code maxIter}, and after empty clusters were re-seeded) the derived arrays are a pure function of the live
 * units, their decayed weights and their assignment, computed by the same code in the same unit order:
 * <ul>
 *   <li>trivial state: centroids = the pooled units, feature centroids = their features, cluster weights = their
 *       weights (copies);</li>
 *   <li>clustered state: cluster weights {@code n_j = Σ_{a(i)=j} w_i} and centroids = the weighted means of the raw
 *       units (zero for an empty cluster); feature centroids = the weighted means of the features for every
 *       cluster with {@code n_j > 0}.</li>
 * </ul>
 * It holds because Lloyd always ends right after an update step (or, converged in its first step, keeps the
 * centroids it started from, already of this form) and re-seeding recomputes all means, so no recompute after
 * adopting a batch or Lloyd result is needed (the batch path, {@link LegoMerger}, is untouched). The one
 * exception is the feature centroid of an EMPTY cluster (no unit could re-seed it: fewer distinct units than
 * clusters): it is the last centroid the cluster had, history rather than a function of the members, so
 * {@link #toStateBytes()} stores those rows (only those) explicitly.
 *
 * <p>Split binary form for a store that keeps each adapter's units once: {@link #unitsBytes(String)} per live
 * adapter (immutable while the adapter is live) plus {@link #toStateBytes()}, a small skeleton whose size depends on
 * the number of units but not on {@code dIn}/{@code dOut}; {@link #fromStateBytes} rebuilds an object whose every
 * later result and {@link #toBytes()} are bit-identical to the original's (tested). The skeleton carries a 64-bit
 * digest of each adapter's units blob, so a stale or foreign units entry is detected on restore.
 *
 * <p>Forgetting ({@code λ < 1}) makes each stored unit's weight {@code w λ^(upserts since it arrived)}; all
 * clustering, retraction and reweighting use these decayed weights (so a retraction stays exact). Very long runs
 * with small {@code λ} drive old weights towards underflow; they then stop mattering, as intended.
 */
public final class StreamingModuleClusters {

    /** Leading byte of {@link #toBytes()}; bump when the layout changes, keep reading old versions. */
    public static final byte FORMAT_VERSION = 1;
    /** First byte of {@link #toStateBytes()}: marks a split-state skeleton (ASCII {@code 'S'}). */
    public static final byte STATE_MAGIC = 'S';
    /** Second byte of {@link #toStateBytes()}; bump when the layout changes, keep reading old versions. */
    public static final byte STATE_FORMAT_VERSION = 1;

    private final String module;
    private final LegoOptions options;
    private final StreamingOptions streaming;
    private final RankWiseClustering clustering;
    private final TreeMap<String, LiveAdapter> live = new TreeMap<>();

    private int dIn;
    private int dOut;
    private int targetK;
    private boolean clustered;
    private int k;
    private double[] centroids = new double[0];
    private double[] featureCentroids = new double[0];
    private double[] clusterWeight = new double[0];
    private int lastIterations;
    private boolean lastConverged = true;
    private int updatesSinceRefine;
    private long updates;
    /**
     * The pool (and its assignment-space features) built by the current step, reused by the step's later stages
     * (insertion, refinement, {@link #merged()}) instead of copying every unit again; dropped by every change of
     * the live set or weights, and by {@link #merged()} so that a state kept between steps holds no second copy.
     */
    private UnitPool stepPool;
    private double[] stepFeatures;

    /** One live adapter: its units with per-unit decayed weights and clusters. */
    private static final class LiveAdapter {
        final MinimalSemanticUnits units;
        final double[] weight;
        final int[] assignment;
        /** Digest of {@code units.toBytes()}, computed on first need (it is immutable while live). */
        long unitsDigest;
        boolean unitsDigestKnown;
        /** {@code ‖ΔW‖_F} of the units, computed on first need (immutable while live); NaN until then. */
        double updateNorm = Double.NaN;

        LiveAdapter(MinimalSemanticUnits units, double[] weight, int[] assignment) {
            this.units = units;
            this.weight = weight;
            this.assignment = assignment;
        }
    }

    /**
     * An empty state for one module.
     *
     * @param module    module name (its {@code k} override in {@code options} is resolved here)
     * @param options   LoRA-LEGO options
     * @param streaming forgetting and refinement cadence
     * @throws IllegalArgumentException if {@code k} of the module is {@link LegoOptions#K_AUTO} (batch merges only)
     */
    public StreamingModuleClusters(String module, LegoOptions options, StreamingOptions streaming) {
        this.module = Objects.requireNonNull(module, "module");
        Objects.requireNonNull(options, "options");
        if (options.autoK(module)) {
            throw new IllegalArgumentException("module " + module + ": k auto is a batch-merge choice; the streaming "
                    + "form needs a fixed k (or 0 for the largest source rank)");
        }
        this.options = new LegoOptions(options.requestedK(module), Map.of(), options.seed(), options.nInit(),
                options.maxIter(), options.canonical(), options.featureNorm(), options.parameterReweighting(),
                options.outputReweighting());
        this.streaming = Objects.requireNonNull(streaming, "streaming");
        this.clustering = RankWiseClustering.of(this.options);
    }

    // ------------------------------------------------------------------ updates

    /**
     * Publishes (or replaces) an adapter's factors for this module: one update.
     *
     * @param adapterId key of the adapter (use {@link AdapterModule#adapterId()} for guarantee (b))
     * @param factors   its factors (not modified, not retained: the folded units are copies)
     * @throws IllegalArgumentException if the shape differs from the other live adapters' (state unchanged)
     */
    public void upsert(String adapterId, AdapterModule factors) {
        Objects.requireNonNull(adapterId, "adapterId");
        Objects.requireNonNull(factors, "factors");
        SortedMap<String, AdapterModule> one = new TreeMap<>();
        one.put(adapterId, factors);
        upsertAll(one);
    }

    /**
     * Publishes (or replaces) several adapters as ONE update: their live versions are retracted, weights decay once,
     * then all their units are added together (one batch of the mini-batch step, or one rebuild).
     *
     * @param adapters factors keyed by adapter id (not modified, not retained)
     * @throws IllegalArgumentException on differing shapes (state unchanged)
     */
    public void upsertAll(Map<String, AdapterModule> adapters) {
        Objects.requireNonNull(adapters, "adapters");
        if (adapters.isEmpty()) return;
        TreeMap<String, AdapterModule> sorted = new TreeMap<>(adapters);
        // validate and canonicalise before touching the state
        int expIn = -1, expOut = -1;
        String shapeOf = null;
        for (Map.Entry<String, LiveAdapter> e : live.entrySet()) {
            if (!sorted.containsKey(e.getKey())) {
                expIn = e.getValue().units.dIn();
                expOut = e.getValue().units.dOut();
                shapeOf = e.getKey();
                break;
            }
        }
        TreeMap<String, MinimalSemanticUnits> fresh = new TreeMap<>();
        for (Map.Entry<String, AdapterModule> e : sorted.entrySet()) {
            AdapterModule m = Objects.requireNonNull(e.getValue(), "factors of " + e.getKey());
            if (expIn < 0) {
                expIn = m.dIn();
                expOut = m.dOut();
                shapeOf = e.getKey();
            } else if (m.dIn() != expIn || m.dOut() != expOut) {
                throw new IllegalArgumentException("module " + module + ": adapter " + e.getKey() + " has dIn x dOut = "
                        + m.dIn() + " x " + m.dOut() + " but adapter " + shapeOf + " has " + expIn + " x " + expOut);
            }
            fresh.put(e.getKey(), MinimalSemanticUnits.of(m, options.canonical()));
        }
        dropStepPool();
        boolean removed = false;
        for (String id : fresh.keySet()) removed |= live.remove(id) != null;
        if (removed) afterRemoval();
        double lambda = streaming.forgetting();
        if (lambda < 1) {
            dropStepPool();
            for (LiveAdapter a : live.values()) {
                for (int i = 0; i < a.weight.length; i++) a.weight[i] *= lambda;
            }
        }
        for (Map.Entry<String, MinimalSemanticUnits> e : fresh.entrySet()) {
            MinimalSemanticUnits u = e.getValue();
            double[] w = new double[u.count()];
            Arrays.fill(w, u.weight());
            int[] assign = new int[u.count()];
            Arrays.fill(assign, -1);
            live.put(e.getKey(), new LiveAdapter(u, w, assign));
        }
        dropStepPool();
        dIn = expIn;
        dOut = expOut;
        afterInsertion();
        countUpdate();
    }

    /**
     * Withdraws an adapter: one update if it was live.
     *
     * @return whether the adapter was live
     */
    public boolean retract(String adapterId) {
        Objects.requireNonNull(adapterId, "adapterId");
        if (live.remove(adapterId) == null) return false;
        dropStepPool();
        afterRemoval();
        countUpdate();
        return true;
    }

    /**
     * Lloyd iterations on the stored pool warm-started from the current centroids and assignment (drift control).
     * Resets the refinement counter. A trivial state ({@code n ≤ k}) is left as it is.
     *
     * @return whether Lloyd converged (an assignment step changed nothing) within {@code maxIter}
     */
    public boolean refine() {
        updatesSinceRefine = 0;
        if (!clustered) return true;
        UnitPool pool = stepPool();
        ClusteringResult r = clustering.lloyd(pool, featureCentroids, poolAssignment(), null);
        adopt(r);
        return r.converged();
    }

    /** Rebuilds the clustering from scratch with the batch algorithm on the live pool (same seed). */
    public void recluster() {
        rebuild();
    }

    // ------------------------------------------------------------------ outputs

    /**
     * The merged module of the current clusters after {@link DualReweighting}; empty when no adapter is live.
     * {@link MergedModule#iterations()} is that of the last rebuild or refinement.
     */
    public Optional<MergedModule> merged() {
        if (live.isEmpty()) return Optional.empty();
        UnitPool pool = stepPool();
        MergedModule m = DualReweighting.apply(currentResult(pool), pool, meanRank(),
                options.parameterReweighting(), options.outputReweighting());
        dropStepPool();
        return Optional.of(m);
    }

    /** A snapshot of the current clustering (copies), or empty when no adapter is live. */
    public Optional<ClusteringResult> clusteringResult() {
        if (live.isEmpty()) return Optional.empty();
        ClusteringResult r = currentResult(pool());
        return Optional.of(new ClusteringResult(r.k(), r.requestedK(), r.dim(), r.centroids().clone(),
                r.featureCentroids().clone(), r.assignment(), r.clusterWeight().clone(), r.inertia(), r.iterations(),
                r.converged()));
    }

    /** The stored pool (ids in order, units by rank index) with the current decayed weights; a new object. */
    public UnitPool pool() {
        if (live.isEmpty()) throw new IllegalStateException("module " + module + ": no live adapter");
        List<MinimalSemanticUnits> units = new ArrayList<>(live.size());
        double[] w = new double[poolSize()];
        int u = 0;
        for (LiveAdapter a : live.values()) {
            units.add(a.units);
            System.arraycopy(a.weight, 0, w, u, a.weight.length);
            u += a.weight.length;
        }
        return UnitPool.of(units, w);
    }

    /**
     * {@code ‖Σ b aᵀ‖_F} of a live adapter's stored units ({@link UpdateNorms#ofUnits} over its rows, the same value
     * and bits as computed on {@link #pool()}), cached while the adapter stays live: a module step need not copy the
     * pool or recompute its peers' norms.
     *
     * @throws IllegalArgumentException if {@code adapterId} is not live (names module and adapter)
     */
    public double updateNorm(String adapterId) {
        Objects.requireNonNull(adapterId, "adapterId");
        LiveAdapter a = live.get(adapterId);
        if (a == null) {
            throw new IllegalArgumentException("module " + module + ": adapter " + adapterId + " is not live");
        }
        if (Double.isNaN(a.updateNorm)) {
            a.updateNorm = UpdateNorms.ofUnits(a.units.units(), 0, a.units.count(), a.units.dIn(), a.units.dOut());
        }
        return a.updateNorm;
    }

    /** {@code dIn + dOut} of the live adapters' units (0 when nothing is live); no copy. */
    public int unitDim() {
        return live.isEmpty() ? 0 : dIn + dOut;
    }

    /** Module name. */
    public String module() {
        return module;
    }

    /** Options, with this module's {@code k} resolved into {@link LegoOptions#k()}. */
    public LegoOptions options() {
        return options;
    }

    /** Streaming options. */
    public StreamingOptions streamingOptions() {
        return streaming;
    }

    /** Ids of the live adapters, in order. */
    public List<String> liveAdapters() {
        return Collections.unmodifiableList(new ArrayList<>(live.keySet()));
    }

    /** Source rank of each live adapter, by id. */
    public SortedMap<String, Integer> liveRanks() {
        TreeMap<String, Integer> m = new TreeMap<>();
        live.forEach((id, a) -> m.put(id, a.units.sourceRank()));
        return Collections.unmodifiableSortedMap(m);
    }

    /** Merge weight of each live adapter (as published, before forgetting), by id. */
    public SortedMap<String, Double> liveWeights() {
        TreeMap<String, Double> m = new TreeMap<>();
        live.forEach((id, a) -> m.put(id, a.units.weight()));
        return Collections.unmodifiableSortedMap(m);
    }

    /** Number of pooled units {@code n}. */
    public int poolSize() {
        int n = 0;
        for (LiveAdapter a : live.values()) n += a.units.count();
        return n;
    }

    /** Number of clusters in the state (k, or {@code n} when trivial). */
    public int clusterCount() {
        return k;
    }

    /** The {@code k} the state is built for (0 when nothing is live). */
    public int targetK() {
        return targetK;
    }

    /** Whether the state is a k-means clustering ({@code n > k}) rather than the trivial one. */
    public boolean clustered() {
        return clustered;
    }

    /** Updates since the last refinement. */
    public int updatesSinceRefine() {
        return updatesSinceRefine;
    }

    /** Updates (upserts and effective retractions) since creation. */
    public long updates() {
        return updates;
    }

    // ------------------------------------------------------------------ internals

    private void countUpdate() {
        updates++;
        updatesSinceRefine++;
        if (streaming.refineEvery() > 0 && updatesSinceRefine >= streaming.refineEvery()) refine();
    }

    private int resolveTargetK() {
        if (options.k() > 0) return options.k();
        int max = 0;
        for (LiveAdapter a : live.values()) max = Math.max(max, a.units.sourceRank());
        return max;
    }

    private void afterInsertion() {
        int kT = resolveTargetK();
        if (!clustered || kT != targetK || poolSize() <= kT) {
            rebuild();
            return;
        }
        // mini-batch step: assign the new units (weight vector still unassigned) to the nearest current centroid
        UnitPool pool = stepPool();
        double[] f = stepFeatures();
        int n = pool.size(), dim = pool.dim();
        int[] assign = poolAssignment();
        double[] fNorms = new double[n];
        SquaredDistances.rowNorms(f, n, dim, fNorms);
        double[] cNorms = new double[k];
        SquaredDistances.rowNorms(featureCentroids, k, dim, cNorms);
        double[] dist = new double[k];
        double[] one = new double[1];
        for (int i = 0; i < n; i++) {
            if (assign[i] >= 0) continue;
            double[] row = Arrays.copyOfRange(f, i * dim, (i + 1) * dim);
            one[0] = fNorms[i];
            SquaredDistances.compute(row, one, 1, featureCentroids, cNorms, k, dim, dist);
            int best = 0;
            for (int j = 1; j < k; j++) if (dist[j] < dist[best]) best = j;
            assign[i] = best;
        }
        recomputeFromMembers(pool, f, assign);
    }

    private void afterRemoval() {
        if (live.isEmpty()) {
            dIn = 0;
            dOut = 0;
            targetK = 0;
            clustered = false;
            k = 0;
            centroids = new double[0];
            featureCentroids = new double[0];
            clusterWeight = new double[0];
            lastIterations = 0;
            lastConverged = true;
            return;
        }
        int kT = resolveTargetK();
        if (!clustered || kT != targetK || poolSize() <= kT) {
            rebuild();
            return;
        }
        UnitPool pool = stepPool();
        recomputeFromMembers(pool, stepFeatures(), poolAssignment());
    }

    /** Centroids from the members, re-seeding empty clusters; writes the assignment back. */
    private void recomputeFromMembers(UnitPool pool, double[] f, int[] assign) {
        int n = pool.size(), dim = pool.dim();
        double[] fc = featureCentroids.clone();
        double[] cw = new double[k];
        RankWiseClustering.weightedMeans(f, pool.weights(), assign, n, k, dim, fc, cw, true);
        RankWiseClustering.reseedEmpty(f, pool.weights(), assign, n, k, dim, fc, cw, new int[k]);
        double[] c = new double[k * dim];
        RankWiseClustering.weightedMeans(pool.units(), pool.weights(), assign, n, k, dim, c, cw, false);
        featureCentroids = fc;
        centroids = c;
        clusterWeight = cw;
        writeBack(assign);
    }

    private void rebuild() {
        if (live.isEmpty()) {
            afterRemoval();
            return;
        }
        targetK = resolveTargetK();
        UnitPool pool = stepPool();
        ClusteringResult r = clustering.cluster(pool, targetK, options.seed());
        clustered = pool.size() > targetK;
        adopt(r);
    }

    private void adopt(ClusteringResult r) {
        k = r.k();
        centroids = r.centroids();
        featureCentroids = r.featureCentroids();
        clusterWeight = r.clusterWeight();
        lastIterations = r.iterations();
        lastConverged = r.converged();
        writeBack(r.assignment());
    }

    private ClusteringResult currentResult(UnitPool pool) {
        int[] assign = poolAssignment();
        double[] f = pool == stepPool ? stepFeatures() : pool.features(options.featureNorm());
        double inertia = RankWiseClustering.inertia(f, pool.weights(), assign, pool.size(), pool.dim(), featureCentroids);
        return new ClusteringResult(k, targetK, pool.dim(), centroids, featureCentroids, assign, clusterWeight,
                inertia, lastIterations, lastConverged);
    }

    /** The step's pool, built on first need after the last change (see {@link #stepPool}). */
    private UnitPool stepPool() {
        if (stepPool == null) stepPool = pool();
        return stepPool;
    }

    /** Features of {@link #stepPool()} in assignment space, built on first need. */
    private double[] stepFeatures() {
        UnitPool pool = stepPool();
        if (stepFeatures == null) stepFeatures = pool.features(options.featureNorm());
        return stepFeatures;
    }

    private void dropStepPool() {
        stepPool = null;
        stepFeatures = null;
    }

    private int[] poolAssignment() {
        int[] assign = new int[poolSize()];
        int u = 0;
        for (LiveAdapter a : live.values()) {
            System.arraycopy(a.assignment, 0, assign, u, a.assignment.length);
            u += a.assignment.length;
        }
        return assign;
    }

    private void writeBack(int[] assign) {
        int u = 0;
        for (LiveAdapter a : live.values()) {
            System.arraycopy(assign, u, a.assignment, 0, a.assignment.length);
            u += a.assignment.length;
        }
    }

    private double meanRank() {
        double s = 0;
        for (LiveAdapter a : live.values()) s += a.units.sourceRank();
        return s / live.size();
    }

    // ------------------------------------------------------------------ binary form

    /**
     * The whole state (options included) as bytes: big-endian {@link DataOutputStream} layout, leading
     * {@link #FORMAT_VERSION}; doubles by their raw bits; adapters in id order. Deterministic: equal states give
     * equal bytes.
     */
    public byte[] toBytes() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + 8 * (poolSize() + 2 * k + 1) * Math.max(1, dIn + dOut));
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(FORMAT_VERSION);
            writeScalars(out);
            out.writeInt(live.size());
            for (Map.Entry<String, LiveAdapter> e : live.entrySet()) {
                LiveAdapter a = e.getValue();
                MinimalSemanticUnits u = a.units;
                out.writeUTF(e.getKey());
                out.writeUTF(u.adapterId());
                writeDouble(out, u.weight());
                out.writeInt(u.sourceRank());
                out.writeInt(u.count());
                for (int i = 0; i < u.count(); i++) {
                    out.writeInt(u.rankIndex()[i]);
                    writeDouble(out, a.weight[i]);
                    out.writeInt(a.assignment[i]);
                }
                for (double v : u.units()) writeDouble(out, v);
            }
            for (double v : centroids) writeDouble(out, v);
            for (double v : featureCentroids) writeDouble(out, v);
            for (double v : clusterWeight) writeDouble(out, v);
        } catch (IOException e) {
            throw new UncheckedIOException("writing to memory cannot fail", e);
        }
        return bytes.toByteArray();
    }

    /**
     * Restores a state written by {@link #toBytes()}.
     *
     * @throws IllegalArgumentException on an unknown format version, truncated or trailing bytes, or inconsistent
     *                                  content (the message says what)
     */
    public static StreamingModuleClusters fromBytes(byte[] data) {
        Objects.requireNonNull(data, "data");
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
            byte version = in.readByte();
            if (version != FORMAT_VERSION) {
                throw new IllegalArgumentException("streaming cluster state: unknown format version " + version
                        + " (this build reads " + FORMAT_VERSION + ")");
            }
            StreamingModuleClusters s = readScalars(in);
            String module = s.module;
            int adapters = in.readInt();
            if (adapters < 0 || s.k < 0 || (adapters > 0 && (s.dIn < 1 || s.dOut < 1))) {
                throw new IllegalArgumentException("streaming cluster state of module " + module + ": bad sizes (adapters "
                        + adapters + ", k " + s.k + ", dIn " + s.dIn + ", dOut " + s.dOut + ")");
            }
            int dim = s.dIn + s.dOut;
            for (int t = 0; t < adapters; t++) {
                String key = in.readUTF();
                String id = in.readUTF();
                double weight = readDouble(in);
                int sourceRank = in.readInt();
                int count = in.readInt();
                if (count < 0 || (long) count * dim > data.length) {
                    throw new IllegalArgumentException("streaming cluster state of module " + module + ": adapter " + key
                            + " claims " + count + " units");
                }
                int[] rankIndex = new int[count];
                double[] w = new double[count];
                int[] assign = new int[count];
                for (int i = 0; i < count; i++) {
                    rankIndex[i] = in.readInt();
                    w[i] = readDouble(in);
                    assign[i] = in.readInt();
                    if (assign[i] < 0 || assign[i] >= s.k) {
                        throw new IllegalArgumentException("streaming cluster state of module " + module + ": adapter "
                                + key + " unit " + i + " is in cluster " + assign[i] + " of " + s.k);
                    }
                }
                double[] units = readDoubles(in, count * dim);
                if (s.live.put(key, new LiveAdapter(new MinimalSemanticUnits(id, weight, sourceRank, s.dIn, s.dOut,
                        units, rankIndex), w, assign)) != null) {
                    throw new IllegalArgumentException("streaming cluster state of module " + module
                            + ": adapter " + key + " stored twice");
                }
            }
            if ((long) s.k * dim > data.length) {
                throw new IllegalArgumentException("streaming cluster state of module " + module + ": k " + s.k + " too large");
            }
            s.centroids = readDoubles(in, s.k * dim);
            s.featureCentroids = readDoubles(in, s.k * dim);
            s.clusterWeight = readDoubles(in, s.k);
            if (in.available() > 0) {
                throw new IllegalArgumentException("streaming cluster state of module " + module + ": "
                        + in.available() + " trailing bytes");
            }
            return s;
        } catch (EOFException e) {
            throw new IllegalArgumentException("streaming cluster state: truncated (" + data.length + " bytes)", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("streaming cluster state: unreadable: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------ split binary form

    /**
     * The immutable part of one live adapter ({@link MinimalSemanticUnits#toBytes()}: id, merge weight, source
     * rank, dIn, dOut, rank indices, folded canonical units) for a store entry keyed by adapter; unchanged for as
     * long as the adapter stays live (a replacement is a new version of it). Deterministic.
     *
     * @throws IllegalArgumentException if {@code adapterId} is not live (names module and adapter)
     */
    public byte[] unitsBytes(String adapterId) {
        Objects.requireNonNull(adapterId, "adapterId");
        LiveAdapter a = live.get(adapterId);
        if (a == null) {
            throw new IllegalArgumentException("module " + module + ": adapter " + adapterId + " is not live");
        }
        byte[] bytes = a.units.toBytes();
        if (!a.unitsDigestKnown) {
            a.unitsDigest = digest(bytes);
            a.unitsDigestKnown = true;
        }
        return bytes;
    }

    /**
     * Everything except the units: big-endian, {@link #STATE_MAGIC}, {@link #STATE_FORMAT_VERSION}, module,
     * options, streaming options, counters, dIn, dOut, targetK, clustered, k, last iterations and convergence,
     * then per live adapter in id order its id, unit count, digest of its {@link #unitsBytes}, and per unit its
     * decayed weight and cluster; then the feature centroids of the empty clusters (the only derived values that are
     * not a function of the members, see the class comment; none in a normal state). Centroids and cluster weights
     * are not stored: {@link #fromStateBytes} recomputes them. The size grows with the number of units, not with
     * {@code dIn}/{@code dOut} (except for the empty-cluster rows). Deterministic.
     */
    public byte[] toStateBytes() {
        int dim = dIn + dOut;
        List<Integer> emptyRows = new ArrayList<>();
        if (clustered) {
            for (int j = 0; j < k; j++) if (!(clusterWeight[j] > 0)) emptyRows.add(j);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + module.length() + 16 * live.size()
                + 12 * poolSize() + emptyRows.size() * (4 + 8 * dim));
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(STATE_MAGIC);
            out.writeByte(STATE_FORMAT_VERSION);
            writeScalars(out);
            out.writeInt(live.size());
            for (Map.Entry<String, LiveAdapter> e : live.entrySet()) {
                LiveAdapter a = e.getValue();
                if (!a.unitsDigestKnown) {
                    a.unitsDigest = digest(a.units.toBytes());
                    a.unitsDigestKnown = true;
                }
                out.writeUTF(e.getKey());
                out.writeInt(a.weight.length);
                out.writeLong(a.unitsDigest);
                for (int i = 0; i < a.weight.length; i++) {
                    writeDouble(out, a.weight[i]);
                    out.writeInt(a.assignment[i]);
                }
            }
            out.writeInt(emptyRows.size());
            for (int j : emptyRows) {
                out.writeInt(j);
                for (int d = 0; d < dim; d++) writeDouble(out, featureCentroids[j * dim + d]);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing to memory cannot fail", e);
        }
        return bytes.toByteArray();
    }

    /**
     * Rebuilds a state from {@link #toStateBytes()} and the live adapters' {@link #unitsBytes} entries. Every later
     * result (and {@link #toBytes()}) is bit-identical to the original object's.
     *
     * @param state        the skeleton
     * @param unitsBytesOf the units entry of a live adapter id, or {@code null} when the store has none
     * @throws IllegalArgumentException on a foreign skeleton, an unknown version, truncated or trailing bytes,
     *                                  inconsistent content, or an unreadable units entry (naming the adapter)
     * @throws IllegalStateException    when a live adapter's units entry is missing, or does not match the skeleton
     *                                  (stale or foreign entry: digest, count or shape differ; naming the adapter)
     */
    public static StreamingModuleClusters fromStateBytes(byte[] state, Function<String, byte[]> unitsBytesOf) {
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(unitsBytesOf, "unitsBytesOf");
        StreamingModuleClusters s;
        String[] keys;
        long[] digests;
        double[][] weights;
        int[][] assigns;
        int[] emptyRows;
        double[][] emptyRowValues;
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(state))) {
            byte magic = in.readByte();
            if (magic != STATE_MAGIC) {
                throw new IllegalArgumentException("not a streaming cluster skeleton (first byte " + magic + ", expected "
                        + STATE_MAGIC + ")");
            }
            byte version = in.readByte();
            if (version != STATE_FORMAT_VERSION) {
                throw new IllegalArgumentException("streaming cluster skeleton: unknown format version " + version
                        + " (this build reads " + STATE_FORMAT_VERSION + ")");
            }
            s = readScalars(in);
            String module = s.module;
            int adapters = in.readInt();
            if (adapters < 0 || s.k < 0 || s.k > state.length || adapters > state.length
                    || (adapters > 0 && (s.dIn < 1 || s.dOut < 1))
                    || (adapters == 0 && (s.k != 0 || s.clustered || s.dIn != 0 || s.dOut != 0))) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": bad sizes (adapters "
                        + adapters + ", k " + s.k + ", dIn " + s.dIn + ", dOut " + s.dOut + ", clustered " + s.clustered + ")");
            }
            keys = new String[adapters];
            digests = new long[adapters];
            weights = new double[adapters][];
            assigns = new int[adapters][];
            int n = 0;
            for (int t = 0; t < adapters; t++) {
                keys[t] = in.readUTF();
                if (t > 0 && keys[t].compareTo(keys[t - 1]) <= 0) {
                    throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": adapter "
                            + keys[t] + " out of order or stored twice");
                }
                int count = in.readInt();
                if (count < 0 || count > state.length) {
                    throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": adapter "
                            + keys[t] + " claims " + count + " units");
                }
                digests[t] = in.readLong();
                weights[t] = new double[count];
                assigns[t] = new int[count];
                for (int i = 0; i < count; i++) {
                    double w = readDouble(in);
                    int c = in.readInt();
                    if (!(w > 0) || !Double.isFinite(w)) {
                        throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": adapter "
                                + keys[t] + " unit " + i + " has weight " + w);
                    }
                    int expected = s.clustered ? c : n + i;
                    if (c < 0 || c >= s.k || c != expected) {
                        throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": adapter "
                                + keys[t] + " unit " + i + " is in cluster " + c + " of " + s.k
                                + (s.clustered ? "" : " (trivial state: expected " + expected + ")"));
                    }
                    weights[t][i] = w;
                    assigns[t][i] = c;
                }
                n += count;
            }
            if (adapters > 0 && (s.clustered ? !(n > s.k && s.k == s.targetK) : n != s.k)) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": " + n
                        + " units do not fit k " + s.k + " (target " + s.targetK + ", clustered " + s.clustered + ")");
            }
            int empties = in.readInt();
            if (empties < 0 || empties > s.k || (!s.clustered && empties != 0)) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": " + empties
                        + " empty clusters of " + s.k);
            }
            int dim = s.dIn + s.dOut;
            if ((long) empties * dim * 8 > state.length) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": " + empties
                        + " empty-cluster rows do not fit");
            }
            emptyRows = new int[empties];
            emptyRowValues = new double[empties][];
            for (int e = 0; e < empties; e++) {
                emptyRows[e] = in.readInt();
                if (emptyRows[e] < 0 || emptyRows[e] >= s.k || (e > 0 && emptyRows[e] <= emptyRows[e - 1])) {
                    throw new IllegalArgumentException("streaming cluster skeleton of module " + module
                            + ": bad empty cluster index " + emptyRows[e]);
                }
                emptyRowValues[e] = readDoubles(in, dim);
            }
            if (in.available() > 0) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": "
                        + in.available() + " trailing bytes");
            }
        } catch (EOFException e) {
            throw new IllegalArgumentException("streaming cluster skeleton: truncated (" + state.length + " bytes)", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("streaming cluster skeleton: unreadable: " + e.getMessage(), e);
        }

        for (int t = 0; t < keys.length; t++) {
            String key = keys[t];
            byte[] blob = unitsBytesOf.apply(key);
            if (blob == null) {
                throw new IllegalStateException("module " + s.module + ": the skeleton lists live adapter " + key
                        + " but its units entry is missing");
            }
            long d = digest(blob);
            if (d != digests[t]) {
                throw new IllegalStateException("module " + s.module + ": the units entry of adapter " + key
                        + " does not match the skeleton (digest " + Long.toHexString(d) + ", expected "
                        + Long.toHexString(digests[t]) + "): stale or foreign entry");
            }
            MinimalSemanticUnits u;
            try {
                u = MinimalSemanticUnits.fromBytes(blob);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("module " + s.module + ": units entry of adapter " + key
                        + " is unreadable: " + e.getMessage(), e);
            }
            if (u.count() != weights[t].length || u.dIn() != s.dIn || u.dOut() != s.dOut) {
                throw new IllegalStateException("module " + s.module + ": the units entry of adapter " + key + " has "
                        + u.count() + " units of " + u.dIn() + " x " + u.dOut() + " but the skeleton expects "
                        + weights[t].length + " of " + s.dIn + " x " + s.dOut);
            }
            LiveAdapter a = new LiveAdapter(u, weights[t], assigns[t]);
            a.unitsDigest = d;
            a.unitsDigestKnown = true;
            s.live.put(key, a);
        }
        s.deriveFromMembers(emptyRows, emptyRowValues);
        return s;
    }

    /**
     * Recomputes the derived arrays from the members as the invariant of the class comment states (the same code
     * and unit order as {@link #rebuild()}, {@link RankWiseClustering} and {@link #recomputeFromMembers}); the
     * feature centroids of empty clusters come from {@code emptyRows}/{@code emptyRowValues}, which must list
     * exactly the clusters of zero weight.
     */
    private void deriveFromMembers(int[] emptyRows, double[][] emptyRowValues) {
        if (live.isEmpty()) {
            centroids = new double[0];
            featureCentroids = new double[0];
            clusterWeight = new double[0];
            return;
        }
        UnitPool pool = pool();
        double[] f = pool.features(options.featureNorm());
        if (!clustered) {
            centroids = pool.units().clone();
            featureCentroids = f.clone();
            clusterWeight = pool.weights().clone();
            return;
        }
        int n = pool.size(), dim = pool.dim();
        int[] assign = poolAssignment();
        double[] fc = new double[k * dim];
        for (int e = 0; e < emptyRows.length; e++) {
            System.arraycopy(emptyRowValues[e], 0, fc, emptyRows[e] * dim, dim);
        }
        double[] cw = new double[k];
        RankWiseClustering.weightedMeans(f, pool.weights(), assign, n, k, dim, fc, cw, true);
        int e = 0;
        for (int j = 0; j < k; j++) {
            boolean empty = !(cw[j] > 0);
            boolean listed = e < emptyRows.length && emptyRows[e] == j;
            if (empty != listed) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": cluster " + j
                        + (empty ? " has no member but no stored centroid" : " has members but a stored empty-cluster row"));
            }
            if (listed) e++;
        }
        double[] c = new double[k * dim];
        RankWiseClustering.weightedMeans(pool.units(), pool.weights(), assign, n, k, dim, c, cw, false);
        centroids = c;
        featureCentroids = fc;
        clusterWeight = cw;
    }

    /** 64-bit digest of a units blob: CRC-32C in the high half, CRC-32 in the low half. */
    private static long digest(byte[] bytes) {
        CRC32C c1 = new CRC32C();
        c1.update(bytes, 0, bytes.length);
        CRC32 c2 = new CRC32();
        c2.update(bytes, 0, bytes.length);
        return (c1.getValue() << 32) | c2.getValue();
    }

    private static <E extends Enum<E>> E readEnum(Class<E> type, String name, String module) {
        try {
            return Enum.valueOf(type, name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": unknown "
                    + type.getSimpleName() + " " + name, e);
        }
    }

    /** The scalar part shared by {@link #toBytes()} and {@link #toStateBytes()}: module, options, counters, sizes. */
    private void writeScalars(DataOutputStream out) throws IOException {
        out.writeUTF(module);
        out.writeInt(options.k());
        out.writeLong(options.seed());
        out.writeInt(options.nInit());
        out.writeInt(options.maxIter());
        out.writeUTF(options.canonical().name());
        out.writeUTF(options.featureNorm().name());
        out.writeUTF(options.parameterReweighting().name());
        out.writeBoolean(options.outputReweighting());
        writeDouble(out, streaming.forgetting());
        out.writeInt(streaming.refineEvery());
        out.writeInt(updatesSinceRefine);
        out.writeLong(updates);
        out.writeInt(dIn);
        out.writeInt(dOut);
        out.writeInt(targetK);
        out.writeBoolean(clustered);
        out.writeInt(k);
        out.writeInt(lastIterations);
        out.writeBoolean(lastConverged);
    }

    /** Reads what {@link #writeScalars} wrote into a new, still empty state. */
    private static StreamingModuleClusters readScalars(DataInputStream in) throws IOException {
        String module = in.readUTF();
        int kOpt = in.readInt();
        long seed = in.readLong();
        int nInit = in.readInt();
        int maxIter = in.readInt();
        CanonicalForm canonical = readEnum(CanonicalForm.class, in.readUTF(), module);
        FeatureNorm featureNorm = readEnum(FeatureNorm.class, in.readUTF(), module);
        ParameterReweighting param = readEnum(ParameterReweighting.class, in.readUTF(), module);
        boolean output = in.readBoolean();
        StreamingOptions streaming = new StreamingOptions(readDouble(in), in.readInt());
        LegoOptions options = new LegoOptions(kOpt, Map.of(), seed, nInit, maxIter, canonical, featureNorm, param, output);
        StreamingModuleClusters s = new StreamingModuleClusters(module, options, streaming);
        s.updatesSinceRefine = in.readInt();
        s.updates = in.readLong();
        s.dIn = in.readInt();
        s.dOut = in.readInt();
        s.targetK = in.readInt();
        s.clustered = in.readBoolean();
        s.k = in.readInt();
        s.lastIterations = in.readInt();
        s.lastConverged = in.readBoolean();
        return s;
    }

    private static void writeDouble(DataOutputStream out, double v) throws IOException {
        out.writeLong(Double.doubleToRawLongBits(v));
    }

    private static double readDouble(DataInputStream in) throws IOException {
        return Double.longBitsToDouble(in.readLong());
    }

    private static double[] readDoubles(DataInputStream in, int n) throws IOException {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = readDouble(in);
        return v;
    }
}
