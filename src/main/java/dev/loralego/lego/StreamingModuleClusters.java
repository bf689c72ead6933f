package dev.loralego.lego;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntFunction;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * The streaming form of LoRA-LEGO for one (merge group, module) (ALGORITHM.md §6): the clusters of the live
 * adapters' minimal semantic units, updated when an adapter is published, replaced or withdrawn. A plain mutable
 * object, not thread-safe (one per module; the caller serialises access), with a versioned binary form
 * ({@link #toBytes()}, {@link #fromBytes(byte[])}) and a split form for a store that keeps each adapter's units once
 * ({@link #toStateBytes()} plus the units, or the factors they come from).
 *
 * <p>State: the live adapters keyed by id ({@link TreeMap}), each with its folded canonical units, source rank,
 * merge weight, and per unit its current (decayed) weight, cluster and two cached scalars (its norm for
 * {@link DualReweighting} and its squared feature norm); the <em>sum order</em> of the live adapters (see below);
 * per cluster the sums {@code S_j = Σ w_i x_i}, {@code F_j = Σ w_i f_i} and weights {@code n_j = Σ w_i}, the
 * centroids {@code S_j / n_j} (raw) and {@code F_j / n_j} (assignment space); the inertia of the last step.
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
 *       nearest centroid (current centroids, batch form) and the clusters' sums are updated — the mini-batch step
 *       {@code c_j ← (n_j c_j + Σ_{x→j} w x)/(n_j + m_j)}.</li>
 *   <li>{@link #retract}: the adapter's units are removed and every cluster's sums are recomputed from its
 *       remaining members (exact: no subtraction, so no cancellation error); a cluster left empty is re-seeded with
 *       the farthest unit as in Lloyd ({@link RankWiseClustering}); if {@code n} drops to {@code ≤ k}, the state
 *       becomes trivial; with no live adapter there is no output.</li>
 *   <li>{@link #refine()}: Lloyd on the stored pool warm-started from the current centroids and assignment (until
 *       no assignment changes or {@code maxIter}); automatic every {@link StreamingOptions#refineEvery()}
 *       updates. When its first assignment step would move no unit, Lloyd has converged on the current centroids
 *       and the state is left exactly as it is. Refinement certificates find that out cheaply: each unit keeps a
 *       lower bound on how much nearer its own centroid was than any other when its distances were last computed
 *       (a full pass, its mini-batch step, a previous check), and each cluster the total distance its centroid
 *       moved since the last full pass ({@code Σ ‖Δc_j‖}, and {@code Σ max_j ‖Δc_j‖}); by the triangle
 *       inequality a unit whose bound exceeds its own cluster's movement plus the largest movement cannot change
 *       cluster. Only the adapters with a unit in doubt are loaded and assigned exactly (the same distance bits as
 *       Lloyd); if none moves, the refinement is a no-op, otherwise the full Lloyd runs.</li>
 *   <li>{@link #merged()}: {@link DualReweighting} of the current centroids, {@code r̄} =
 *       {@link DualReweighting#meanUnitCount} of the live adapters' units (their mean rank for {@code none}).</li>
 * </ul>
 *
 * <p>Cost: a mini-batch step touches only the new units and the {@code k} centroids ({@code O((m + k)·dim)}, with
 * {@code λ = 1} and no empty cluster); it never reads the other adapters' units. Retraction, refinement, rebuilds,
 * forgetting ({@code λ < 1}) and restoring from the split form read the whole pool. So the units of the live
 * adapters need not stay in memory: given a {@link #setFactorSource factor source} (the factors each adapter was
 * upserted with), {@link #releaseUnits()} drops them and they are re-derived (canonicalised again, checked against
 * the digest taken when they were first derived) when a step needs the pool.
 *
 * <p>Sum order, and why the sums are exact: each cluster's sums are accumulated unit by unit in the <em>sum
 * order</em> — the live adapters in id order as of the last full pass (rebuild, a refinement that moved a unit,
 * retraction, forgetting, restore), followed by the adapters upserted since, in upsert order (units by rank index within an adapter).
 * Appending the new units of a mini-batch step to the running sums therefore gives bit for bit what summing all
 * members afresh in that order gives, and every other operation recomputes the sums from the members in that
 * order. Hence the invariant: after every operation the derived arrays are a pure function of the live units, their
 * decayed weights, their assignment and the sum order:
 * <ul>
 *   <li>trivial state: centroids = the pooled units (id order), feature centroids = their features, cluster
 *       weights = their weights (copies);</li>
 *   <li>clustered state: {@code n_j}, {@code S_j}, {@code F_j} summed in sum order; centroids {@code S_j / n_j}
 *       (zero for an empty cluster); feature centroids {@code F_j / n_j} for every cluster with {@code n_j > 0}.</li>
 * </ul>
 * A full pass on the batch algorithm or Lloyd uses the pool in id order (as {@link LegoMerger} does) and resets the
 * sum order to id order, so its sums are the ones the batch code divided. The exceptions to the invariant are
 * stored explicitly in {@link #toStateBytes()}: the feature centroid of an EMPTY cluster (no unit could re-seed it:
 * fewer distinct units than clusters) is the last centroid the cluster had; and the inertia, which is computed
 * directly ({@code Σ w ‖f − c‖²}) after a full pass and from the sufficient statistics
 * ({@code Σ_j Σ_{i∈j} w_i ‖f_i‖² − 2 c_j·F_j + n_j ‖c_j‖²}, clamped at 0) after the other steps.
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
 *   <li>{@link #fromBytes}({@link #toBytes()}) and {@link #fromStateBytes} of {@link #toStateBytes()} restore a
 *       state whose every later result is bit-identical; so does releasing and re-deriving the units.</li>
 * </ol>
 *
 * <p>Forgetting ({@code λ < 1}) makes each stored unit's weight {@code max(w λ^(upserts since it arrived), 2^-900)}
 * ({@link #DECAY_FLOOR}; never 0, which would be no sample weight); all clustering, retraction and reweighting use
 * these decayed weights (so a retraction stays exact). Very long runs with small {@code λ} drive old weights down to
 * the floor, where next to any recent unit they stop mattering, as intended.
 */
public final class StreamingModuleClusters {

    /** Leading byte of {@link #toBytes()}; bump when the layout changes. */
    public static final byte FORMAT_VERSION = 2;
    /** First byte of {@link #toStateBytes()}: marks a split-state skeleton (ASCII {@code 'S'}). */
    public static final byte STATE_MAGIC = 'S';
    /** Second byte of {@link #toStateBytes()}; bump when the layout changes. */
    public static final byte STATE_FORMAT_VERSION = 3;

    private final String module;
    private final LegoOptions options;
    private final StreamingOptions streaming;
    private final RankWiseClustering clustering;
    private final TreeMap<String, LiveAdapter> live = new TreeMap<>();
    /** Live adapter ids in sum order (see the class comment). */
    private final List<String> sumOrder = new ArrayList<>();

    private int dIn;
    private int dOut;
    private int targetK;
    private boolean clustered;
    private int k;
    private double[] centroids = new double[0];
    private double[] featureCentroids = new double[0];
    private double[] clusterWeight = new double[0];
    /** Clustered state: {@code S_j} (row-major k × dim); null when trivial or empty. */
    private double[] rawSums;
    /** Clustered state: {@code F_j}; the same array as {@link #rawSums} when features are the units. */
    private double[] featureSums;
    private double inertia;
    private int lastIterations;
    private boolean lastConverged = true;
    private int updatesSinceRefine;
    private long updates;
    /**
     * Per cluster: the distance its feature centroid moved in total since the last full pass, {@code Σ ‖Δc_j‖} over the
     * changes (the triangle inequality bounds its movement between any two of them). Refinement certificates.
     */
    private double[] drift = new double[0];
    /** {@code Σ max_j ‖Δc_j‖} over the same changes: bounds the movement of every centroid. */
    private double maxDrift;
    /** Drift restarts so far (this object only): a step that did one does not add its movement to {@link #drift}. */
    private long fullPasses;
    /** Refinements that a certificate showed to be no-ops (this object only; diagnostics and tests). */
    private long certifiedRefinements;
    /** Adapters whose units a refinement check had to load (this object only; diagnostics and tests). */
    private long adaptersCheckedForRefinement;
    private Function<String, AdapterModule> factorSource;
    /** Units of the pool in id order and their features, built on first need after the last change; then dropped. */
    private UnitPool stepPool;
    private double[] stepFeatures;

    /** One live adapter: its units (null while released) with per-unit decayed weights, clusters and scalars. */
    private static final class LiveAdapter {
        final String key;
        final String unitsId;
        final double mergeWeight;
        final int sourceRank;
        final int count;
        MinimalSemanticUnits units;
        final double[] weight;
        final int[] assignment;
        /** Per unit: its norm for {@link DualReweighting} and {@code ‖f‖²} in assignment space. */
        double[] unitNorm;
        double[] featureSq;
        /** The units in assignment space while the units are in memory (the units themselves without a feature norm). */
        double[] features;
        /** Digest of {@code units.toBytes()}, computed on first need (it is immutable while live). */
        long unitsDigest;
        boolean unitsDigestKnown;
        /** {@code ‖ΔW‖_F} of the units, computed on first need (immutable while live); NaN until then. */
        double updateNorm = Double.NaN;
        /**
         * Per unit, its refinement certificate: a lower bound on {@code ‖f − c_other‖ − ‖f − c_own‖} when it was
         * measured (0: none), and {@link #drift} of its own cluster and {@link #maxDrift} at that time.
         */
        double[] gap;
        double[] ownDriftAt;
        double[] maxDriftAt;
        /** The small matrices of its canonicalisation, to re-derive its units cheaply (null: none or not yet). */
        LowRankFactorisation.Replay replay;

        LiveAdapter(String key, MinimalSemanticUnits units, double[] weight, int[] assignment) {
            this.key = key;
            this.unitsId = units.adapterId();
            this.mergeWeight = units.weight();
            this.sourceRank = units.sourceRank();
            this.count = units.count();
            this.units = units;
            this.replay = units.replay();
            this.weight = weight;
            this.assignment = assignment;
            this.gap = new double[count];
            this.ownDriftAt = new double[count];
            this.maxDriftAt = new double[count];
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

    // ------------------------------------------------------------------ units in memory

    /**
     * Where released units come back from: the factors each live adapter was upserted with (same id, weight,
     * scaling and values), canonicalised again with this state's options. Null: units are never released.
     */
    public void setFactorSource(Function<String, AdapterModule> source) {
        this.factorSource = source;
    }

    /** The factor source set by {@link #setFactorSource}, or null. */
    public Function<String, AdapterModule> factorSource() {
        return factorSource;
    }

    /**
     * Drops the live adapters' units from memory, keeping everything a mini-batch step, {@link #merged()} and
     * {@link #toStateBytes()} need; they are re-derived through the factor source when a step needs the pool.
     *
     * @throws IllegalStateException without a factor source
     */
    public void releaseUnits() {
        if (factorSource == null) {
            throw new IllegalStateException("module " + module + ": units cannot be released without a factor source");
        }
        for (LiveAdapter a : live.values()) {
            if (a.units == null) continue;
            ensureDigest(a);
            ensureUpdateNorm(a);
            a.units = null;
            a.features = null;
        }
        dropStepPool();
    }

    /** Bytes this state keeps in memory (centroids, sums, per-unit scalars and any units loaded), roughly. */
    public long retainedBytes() {
        long b = 1024L + 8L * ((centroids == null ? 0 : centroids.length) + featureCentroids.length + clusterWeight.length);
        if (rawSums != null) b += 8L * rawSums.length;
        if (featureSums != null && featureSums != rawSums) b += 8L * featureSums.length;
        for (LiveAdapter a : live.values()) {
            b += 128 + 56L * a.count;
            if (a.replay != null) b += 64 + 8 * a.replay.values();
            if (a.units != null) b += 8L * a.units.units().length;
        }
        return b;
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
                expIn = dIn;
                expOut = dOut;
                shapeOf = e.getKey();
                break;
            }
        }
        TreeMap<String, Prepared> fresh = new TreeMap<>();
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
            fresh.put(e.getKey(), prepare(m));
        }
        upsertPrepared(fresh, expIn, expOut);
    }

    /**
     * An adapter's factors made ready for this state (folded and canonicalised with its options), so a caller can
     * look at their update norm before it decides to {@link #upsert(String, Prepared)} them, without doing the work
     * twice.
     */
    public Prepared prepare(AdapterModule factors) {
        Objects.requireNonNull(factors, "factors");
        return new Prepared(MinimalSemanticUnits.of(factors, options.canonical()), options.canonical());
    }

    /**
     * Publishes (or replaces) a prepared adapter: one update, the same as {@link #upsert(String, AdapterModule)} of
     * the factors it was prepared from.
     *
     * @throws IllegalArgumentException if the shape differs from the other live adapters' (state unchanged)
     */
    public void upsert(String adapterId, Prepared prepared) {
        Objects.requireNonNull(adapterId, "adapterId");
        Objects.requireNonNull(prepared, "prepared");
        MinimalSemanticUnits u = prepared.units;
        for (Map.Entry<String, LiveAdapter> e : live.entrySet()) {
            if (!e.getKey().equals(adapterId) && (u.dIn() != dIn || u.dOut() != dOut)) {
                throw new IllegalArgumentException("module " + module + ": adapter " + adapterId + " has dIn x dOut = "
                        + u.dIn() + " x " + u.dOut() + " but adapter " + e.getKey() + " has " + dIn + " x " + dOut);
            }
        }
        TreeMap<String, Prepared> one = new TreeMap<>();
        one.put(adapterId, prepared);
        upsertPrepared(one, u.dIn(), u.dOut());
    }

    /** An adapter's canonical units as {@link #prepare} made them, with their update norm on demand. */
    public static final class Prepared {
        private final MinimalSemanticUnits units;
        private final CanonicalForm canonical;
        private double updateNorm = Double.NaN;

        private Prepared(MinimalSemanticUnits units, CanonicalForm canonical) {
            this.units = units;
            this.canonical = canonical;
        }

        /** {@code ‖ΔW‖_F} of the units ({@link UpdateNorms#ofCanonicalUnits}): what {@link #updateNorm(String)} will say. */
        public double updateNorm() {
            if (Double.isNaN(updateNorm)) {
                updateNorm = UpdateNorms.ofCanonicalUnits(units.units(), 0, units.count(), units.dIn(), units.dOut(),
                        canonical);
            }
            return updateNorm;
        }
    }

    private void upsertPrepared(TreeMap<String, Prepared> fresh, int expIn, int expOut) {
        CentroidsBefore before = centroidsBefore();
        dropStepPool();
        boolean removed = false;
        for (String id : fresh.keySet()) {
            if (live.remove(id) != null) {
                sumOrder.remove(id);
                removed = true;
            }
        }
        if (removed) afterRemoval();
        double lambda = streaming.forgetting();
        if (lambda < 1) {
            for (LiveAdapter a : live.values()) {
                for (int i = 0; i < a.weight.length; i++) a.weight[i] = decayed(a.weight[i], lambda);
            }
        }
        List<LiveAdapter> added = new ArrayList<>();
        for (Map.Entry<String, Prepared> e : fresh.entrySet()) {
            MinimalSemanticUnits u = e.getValue().units;
            double[] w = new double[u.count()];
            Arrays.fill(w, u.weight());
            int[] assign = new int[u.count()];
            Arrays.fill(assign, -1);
            LiveAdapter a = new LiveAdapter(e.getKey(), u, w, assign);
            a.updateNorm = e.getValue().updateNorm;
            computeScalars(a);
            live.put(e.getKey(), a);
            sumOrder.add(e.getKey());
            added.add(a);
        }
        dropStepPool();
        dIn = expIn;
        dOut = expOut;
        afterInsertion(added, lambda < 1);
        trackDrift(before);
        countUpdate();
    }

    /**
     * Smallest weight forgetting decays a unit to: {@code 2^-900}. A unit's weight {@code w λ^t} would reach exactly 0
     * after about {@code 1075 / log2(1/λ)} upserts (1075 at {@code λ = 0.5}), and a zero weight is no sample weight
     * ({@link UnitPool} rejects it). At {@code 2^-900} relative to a fresh unit it still counts for nothing, while
     * {@code w x} stays a normal double for every {@code |x| ≥ 2^-120}, so a cluster of old units keeps an accurate
     * mean.
     */
    static final double DECAY_FLOOR = 0x1p-900;

    /** {@code w λ}, but not below {@link #DECAY_FLOOR} (a weight already below it, as given, stays as it is). */
    static double decayed(double w, double lambda) {
        double d = w * lambda;
        return d >= DECAY_FLOOR ? d : Math.min(w, DECAY_FLOOR);
    }

    /**
     * Withdraws an adapter: one update if it was live.
     *
     * @return whether the adapter was live
     */
    public boolean retract(String adapterId) {
        Objects.requireNonNull(adapterId, "adapterId");
        if (!live.containsKey(adapterId)) return false;
        CentroidsBefore before = centroidsBefore();
        live.remove(adapterId);
        sumOrder.remove(adapterId);
        dropStepPool();
        afterRemoval();
        trackDrift(before);
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
        if (firstAssignmentKeepsEveryUnit()) {
            // Lloyd's first assignment step keeps every unit in its cluster: it converges there, on the current
            // centroids, and the state stays as it is
            lastIterations = 1;
            lastConverged = true;
            certifiedRefinements++;
            return true;
        }
        UnitPool pool = stepPool();
        // the feature norms are the cached per-unit ‖f‖² (rowNorms' bits); the raw centroids and the inertia of a
        // plain lloyd() would be recomputed from the assignment below anyway. Units whose certificates still hold are
        // not measured in Lloyd's first step, and the gaps Lloyd leaves are the new certificates.
        RankWiseClustering.LloydRun r = clustering.lloydRun(pool, stepFeatures(), gather(live.keySet(), a -> a.featureSq),
                featureCentroids, poolAssignment(), remainingGaps(), true, null);
        adoptFullPass(r.k(), r.iterations(), r.converged(), r.assignment(), r.featureCentroids(), r.gaps());
        return r.converged();
    }

    /** Rebuilds the clustering from scratch with the batch algorithm on the live pool (same seed). */
    public void recluster() {
        rebuild();
    }

    // ------------------------------------------------------------------ outputs

    /**
     * The merged module of the current clusters after {@link DualReweighting}; empty when no adapter is live.
     * {@link MergedModule#iterations()} is that of the last rebuild or refinement. Never reads the units.
     */
    public Optional<MergedModule> merged() {
        if (live.isEmpty()) return Optional.empty();
        double[] w = gather(live.keySet(), a -> a.weight), norms = gather(live.keySet(), a -> a.unitNorm);
        return Optional.of(DualReweighting.apply(currentResult(), w, norms, dIn, dOut, meanRank(),
                options.parameterReweighting(), options.outputReweighting()));
    }

    /** A snapshot of the current clustering (copies), or empty when no adapter is live. */
    public Optional<ClusteringResult> clusteringResult() {
        if (live.isEmpty()) return Optional.empty();
        ClusteringResult r = currentResult();
        return Optional.of(new ClusteringResult(r.k(), r.requestedK(), r.dim(), r.centroids().clone(),
                r.featureCentroids().clone(), r.assignment(), r.clusterWeight().clone(), r.inertia(), r.iterations(),
                r.converged()));
    }

    /** The stored pool (ids in order, units by rank index) with the current decayed weights; a new object. */
    public UnitPool pool() {
        return poolOf(new ArrayList<>(live.keySet()));
    }

    /**
     * {@code ‖Σ b aᵀ‖_F} of a live adapter's stored units ({@link UpdateNorms#ofCanonicalUnits} over its rows, the
     * same value and bits as computed on {@link #pool()}), cached while the adapter stays live: a module step need not
     * copy the pool or recompute its peers' norms.
     *
     * @throws IllegalArgumentException if {@code adapterId} is not live (names module and adapter)
     */
    public double updateNorm(String adapterId) {
        return ensureUpdateNorm(liveAdapter(adapterId));
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
        live.forEach((id, a) -> m.put(id, a.sourceRank));
        return Collections.unmodifiableSortedMap(m);
    }

    /** Merge weight of each live adapter (as published, before forgetting), by id. */
    public SortedMap<String, Double> liveWeights() {
        TreeMap<String, Double> m = new TreeMap<>();
        live.forEach((id, a) -> m.put(id, a.mergeWeight));
        return Collections.unmodifiableSortedMap(m);
    }

    /** Number of pooled units {@code n}. */
    public int poolSize() {
        int n = 0;
        for (LiveAdapter a : live.values()) n += a.count;
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

    private LiveAdapter liveAdapter(String adapterId) {
        Objects.requireNonNull(adapterId, "adapterId");
        LiveAdapter a = live.get(adapterId);
        if (a == null) {
            throw new IllegalArgumentException("module " + module + ": adapter " + adapterId + " is not live");
        }
        return a;
    }

    private void countUpdate() {
        updates++;
        updatesSinceRefine++;
        if (streaming.refineEvery() > 0 && updatesSinceRefine >= streaming.refineEvery()) refine();
    }

    private int resolveTargetK() {
        if (options.k() > 0) return options.k();
        int max = 0;
        for (LiveAdapter a : live.values()) max = Math.max(max, a.sourceRank);
        return max;
    }

    private void afterInsertion(List<LiveAdapter> added, boolean decayed) {
        int kT = resolveTargetK();
        if (!clustered || kT != targetK || poolSize() <= kT) {
            rebuild();
            return;
        }
        // mini-batch step: assign the new units to the nearest current centroid (feature space)
        int dim = dIn + dOut;
        double[] cNorms = new double[k];
        SquaredDistances.rowNorms(featureCentroids, k, dim, cNorms);
        for (LiveAdapter a : added) {
            // all of the adapter's units at once (the blocked kernel; each distance is the same sum in the same
            // order as unit by unit, so the same bits)
            double[] dist = new double[a.count * k];
            SquaredDistances.compute(a.features, a.featureSq, a.count, featureCentroids, cNorms, k, dim, dist);
            for (int i = 0; i < a.count; i++) a.assignment[i] = RankWiseClustering.nearest(dist, i * k, k);
            certify(a, dist, 0, cNorms);
        }
        if (decayed) {
            recomputeInSumOrder();
            return;
        }
        // append the new units to the running sums, in sum order (the new adapters are last)
        boolean[] touched = new boolean[k];
        for (LiveAdapter a : added) {
            for (int i = 0; i < a.count; i++) {
                clusterWeight[a.assignment[i]] += a.weight[i];
                touched[a.assignment[i]] = true;
            }
        }
        for (LiveAdapter a : added) {
            RankWiseClustering.accumulate(a.units.units(), a.weight, a.assignment, a.count, dim, rawSums);
            if (featureSums != rawSums) {
                RankWiseClustering.accumulate(a.features, a.weight, a.assignment, a.count, dim, featureSums);
            }
        }
        for (int j = 0; j < k; j++) {
            if (!(clusterWeight[j] > 0)) {
                // an empty cluster waits for a re-seed, which needs the whole pool
                recomputeInSumOrder();
                return;
            }
        }
        for (int j = 0; j < k; j++) if (touched[j]) divideRow(j);
        inertia = sufficientStatisticsInertia();
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
            rawSums = null;
            featureSums = null;
            inertia = 0;
            lastIterations = 0;
            lastConverged = true;
            sumOrder.clear();
            restartDrift();
            return;
        }
        int kT = resolveTargetK();
        if (!clustered || kT != targetK || poolSize() <= kT) {
            rebuild();
            return;
        }
        recomputeInSumOrder();
    }

    /**
     * Clustered state: the sums, weights and centroids from the members in sum order, re-seeding empty clusters
     * (on the pool in sum order); writes the assignment back; inertia from the sufficient statistics.
     */
    private void recomputeInSumOrder() {
        UnitPool pool = poolOf(sumOrder);
        double[] f = pool.features(options.featureNorm());
        int n = pool.size(), dim = pool.dim();
        int[] assign = assignmentOf(sumOrder);
        double[] fc = featureCentroids.clone();
        double[] cw = new double[k];
        RankWiseClustering.weightedMeans(f, pool.weights(), assign, n, k, dim, fc, cw, true);
        RankWiseClustering.reseedEmpty(f, pool.weights(), assign, n, k, dim, fc, cw, new int[k]);
        writeBack(sumOrder, assign);
        setSums(pool, f, assign, fc);
        inertia = sufficientStatisticsInertia();
    }

    /**
     * Sums, weights and centroids of the clustered state from {@code pool} (in the order its sums are defined by)
     * and its assignment; {@code historyFc} gives the feature centroid of every empty cluster.
     */
    private void setSums(UnitPool pool, double[] f, int[] assign, double[] historyFc) {
        int n = pool.size(), dim = pool.dim();
        double[] cw = new double[k];
        rawSums = new double[k * dim];
        RankWiseClustering.weightedSums(pool.units(), pool.weights(), assign, n, k, dim, rawSums, cw);
        if (f == pool.units()) {
            featureSums = rawSums;
        } else {
            featureSums = new double[k * dim];
            RankWiseClustering.weightedSums(f, pool.weights(), assign, n, k, dim, featureSums, new double[k]);
        }
        clusterWeight = cw;
        // features that are the units themselves: the raw centroids are the feature centroids (empty rows zeroed),
        // built on demand by currentResult() instead of being kept twice
        centroids = featureSums == rawSums ? null : new double[k * dim];
        featureCentroids = historyFc.clone();
        for (int j = 0; j < k; j++) divideRow(j);
    }

    /** Centroid row {@code j} from its sums (raw: zero when empty; features: kept when empty). */
    private void divideRow(int j) {
        int dim = dIn + dOut, cr = j * dim;
        double cwj = clusterWeight[j];
        if (cwj > 0) {
            if (centroids != null) {
                for (int d = 0; d < dim; d++) centroids[cr + d] = rawSums[cr + d] / cwj;
            }
            for (int d = 0; d < dim; d++) featureCentroids[cr + d] = featureSums[cr + d] / cwj;
        } else if (centroids != null) {
            Arrays.fill(centroids, cr, cr + dim, 0.0);
        }
    }

    /** {@code Σ_j (Σ_{i∈j} w_i ‖f_i‖² − 2 c_j·F_j + n_j ‖c_j‖²)}, members in sum order, clamped at 0. */
    private double sufficientStatisticsInertia() {
        int dim = dIn + dOut;
        double[] q = new double[k];
        for (String id : sumOrder) {
            LiveAdapter a = live.get(id);
            for (int i = 0; i < a.count; i++) q[a.assignment[i]] += a.weight[i] * a.featureSq[i];
        }
        double s = 0;
        for (int j = 0; j < k; j++) {
            if (!(clusterWeight[j] > 0)) continue;
            int cr = j * dim;
            double cf = 0, cc = 0;
            for (int d = 0; d < dim; d++) {
                double c = featureCentroids[cr + d];
                cf += c * featureSums[cr + d];
                cc += c * c;
            }
            s += q[j] - 2 * cf + clusterWeight[j] * cc;
        }
        return Math.max(0.0, s);
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
        if (clustered) {
            adoptFullPass(r);
        } else {
            k = r.k();
            centroids = r.centroids();
            featureCentroids = r.featureCentroids();
            clusterWeight = r.clusterWeight();
            rawSums = null;
            featureSums = null;
            inertia = r.inertia();
            lastIterations = r.iterations();
            lastConverged = r.converged();
            sumOrder.clear();
            sumOrder.addAll(live.keySet());
            writeBack(sumOrder, r.assignment());
            restartDrift();
            for (LiveAdapter a : live.values()) Arrays.fill(a.gap, 0.0);
        }
    }

    /** Adopts a batch or Lloyd result on the pool in id order: sum order = id order, sums from the members. */
    private void adoptFullPass(ClusteringResult r) {
        adoptFullPass(r.k(), r.iterations(), r.converged(), r.assignment(), r.featureCentroids(), null);
    }

    /**
     * @param gaps certified gaps of the pool's units (id order) with respect to {@code historyFc}, as Lloyd leaves
     *             them, or {@code null} to measure every unit's certificate
     */
    private void adoptFullPass(int newK, int iterations, boolean converged, int[] assign, double[] historyFc, double[] gaps) {
        UnitPool pool = stepPool();
        double[] f = stepFeatures();
        k = newK;
        lastIterations = iterations;
        lastConverged = converged;
        sumOrder.clear();
        sumOrder.addAll(live.keySet());
        writeBack(sumOrder, assign);
        setSums(pool, f, assign, historyFc);
        inertia = RankWiseClustering.inertia(f, pool.weights(), assign, pool.size(), pool.dim(), featureCentroids);
        if (gaps == null) {
            certifyAll(f);
        } else {
            adoptGaps(gaps, historyFc);
        }
    }

    /**
     * After a Lloyd pass: its gaps become the certificates, shrunk by how far each centroid moved from Lloyd's
     * ({@code lloydFc}) to the one kept from the sums (the same values up to rounding, but a certificate must hold
     * for the centroids it is checked against).
     */
    private void adoptGaps(double[] gaps, double[] lloydFc) {
        restartDrift();
        double[] moves = new double[k];
        double[] shrunk = gaps.clone();
        RankWiseClustering.loosen(shrunk, poolAssignment(), shrunk.length, lloydFc, featureCentroids, k, dIn + dOut, moves);
        int u = 0;
        for (LiveAdapter a : live.values()) {
            for (int i = 0; i < a.count; i++) {
                a.gap[i] = shrunk[u++];
                a.ownDriftAt[i] = 0;
                a.maxDriftAt[i] = 0;
            }
        }
    }

    /**
     * Unit {@code i} of {@code a}: its certificate less its own cluster's drift and the largest drift since it was
     * measured. Positive: its own centroid is still certainly the nearest (triangle inequality); otherwise in doubt.
     * ({@code gap − moved > 0} exactly when {@code moved < gap}: a difference of finite doubles has the sign of the
     * exact one.)
     */
    private double remainingGap(LiveAdapter a, int i) {
        double moved = (drift[a.assignment[i]] - a.ownDriftAt[i]) + (maxDrift - a.maxDriftAt[i]);
        return a.gap[i] - moved;
    }

    /**
     * Each unit's certificate less the drift since it was measured (0 where it no longer holds), in id order: what
     * Lloyd's first step may rely on. None when the drift does not belong to these clusters.
     */
    private double[] remainingGaps() {
        if (drift.length != k) return null;
        double[] g = new double[poolSize()];
        int u = 0;
        for (LiveAdapter a : live.values()) {
            for (int i = 0; i < a.count; i++) {
                double left = remainingGap(a, i);
                g[u++] = left > 0 ? left : 0;
            }
        }
        return g;
    }

    private ClusteringResult currentResult() {
        return new ClusteringResult(k, targetK, dIn + dOut, rawCentroids(), featureCentroids, assignmentOf(live.keySet()),
                clusterWeight, inertia, lastIterations, lastConverged);
    }

    /**
     * The raw centroids: kept, or (features = units) the feature centroids with empty clusters' rows zeroed — the
     * same values, since both are {@code S_j / n_j} from the same sums.
     */
    private double[] rawCentroids() {
        if (centroids != null) return centroids;
        int dim = dIn + dOut;
        double[] c = featureCentroids.clone();
        for (int j = 0; j < k; j++) {
            if (!(clusterWeight[j] > 0)) Arrays.fill(c, j * dim, (j + 1) * dim, 0.0);
        }
        return c;
    }

    /** The pool of the given live adapters in that order, with their current decayed weights (loads units). */
    private UnitPool poolOf(List<String> ids) {
        if (live.isEmpty()) throw new IllegalStateException("module " + module + ": no live adapter");
        List<MinimalSemanticUnits> units = new ArrayList<>(ids.size());
        for (String id : ids) units.add(unitsOf(id, live.get(id)));
        return UnitPool.of(units, gather(ids, a -> a.weight));
    }

    /** The pool in id order, built on first need after the last change. */
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

    /** A per-unit array of the given live adapters, concatenated in that order. */
    private double[] gather(java.util.Collection<String> ids, Function<LiveAdapter, double[]> perUnit) {
        return concat(ids, perUnit, double[]::new);
    }

    private int[] assignmentOf(java.util.Collection<String> ids) {
        return concat(ids, a -> a.assignment, int[]::new);
    }

    /** The per-unit arrays ({@code double[]} or {@code int[]}) of the given live adapters, concatenated in that order. */
    private <T> T concat(java.util.Collection<String> ids, Function<LiveAdapter, T> perUnit, IntFunction<T> newArray) {
        int n = 0;
        for (String id : ids) n += live.get(id).count;
        T out = newArray.apply(n);
        int u = 0;
        for (String id : ids) {
            LiveAdapter a = live.get(id);
            System.arraycopy(perUnit.apply(a), 0, out, u, a.count);
            u += a.count;
        }
        return out;
    }

    private int[] poolAssignment() {
        return assignmentOf(live.keySet());
    }

    private void writeBack(List<String> ids, int[] assign) {
        int u = 0;
        for (String id : ids) {
            LiveAdapter a = live.get(id);
            for (int i = 0; i < a.count; i++) {
                // a unit that changes cluster outside a full pass (re-seeding) loses its certificate
                if (a.assignment[i] != assign[u + i]) a.gap[i] = 0;
            }
            System.arraycopy(assign, u, a.assignment, 0, a.count);
            u += a.count;
        }
    }

    // ------------------------------------------------------------------ refinement certificates

    /**
     * Certificates of {@code a}'s units from their squared distances to the current centroids ({@code dist}, rows of
     * {@code k} from row {@code firstRow}), with the current drift as their reference.
     */
    private void certify(LiveAdapter a, double[] dist, int firstRow, double[] cNorms) {
        double cMax = RankWiseClustering.largest(cNorms, k);
        for (int i = 0; i < a.count; i++) {
            int row = (firstRow + i) * k, own = a.assignment[i];
            a.gap[i] = RankWiseClustering.gapOf(dist, row, k, own, a.featureSq[i], cMax);
            a.ownDriftAt[i] = drift[own];
            a.maxDriftAt[i] = maxDrift;
        }
    }

    /** After a full pass: every unit certified against the final centroids ({@code f}: the pool's features in id order). */
    private void certifyAll(double[] f) {
        restartDrift();
        int dim = dIn + dOut, n = poolSize();
        double[] cNorms = new double[k];
        SquaredDistances.rowNorms(featureCentroids, k, dim, cNorms);
        double[] dist = new double[n * k];
        SquaredDistances.compute(f, gather(live.keySet(), a -> a.featureSq), n, featureCentroids, cNorms, k, dim, dist);
        int row = 0;
        for (LiveAdapter a : live.values()) {
            certify(a, dist, row, cNorms);
            row += a.count;
        }
    }

    /** The feature centroids before a step, to add their movement to the drift after it ({@link #trackDrift}). */
    private record CentroidsBefore(double[] featureCentroids, int k, long fullPasses) {
    }

    private CentroidsBefore centroidsBefore() {
        return new CentroidsBefore(featureCentroids.clone(), k, fullPasses);
    }

    /**
     * A full pass, or the clusters are gone: the drift starts again from zero (new certificates are measured, or none
     * are needed), and a step that did this adds no movement ({@link #trackDrift}).
     */
    private void restartDrift() {
        fullPasses++;
        drift = new double[k];
        maxDrift = 0;
    }

    /**
     * Adds the movement of every centroid in this step to {@link #drift} and {@link #maxDrift}, unless the step
     * restarted the drift or changed {@code k}.
     */
    private void trackDrift(CentroidsBefore before) {
        double[] was = before.featureCentroids();
        if (fullPasses != before.fullPasses() || !clustered || k != before.k() || was.length != featureCentroids.length) {
            return;
        }
        double[] moves = new double[k];
        double stepMax = RankWiseClustering.centroidMoves(was, featureCentroids, k, dIn + dOut, moves);
        for (int j = 0; j < k; j++) drift[j] += moves[j];
        maxDrift += stepMax;
    }

    /**
     * Whether a Lloyd assignment step on the current centroids would leave every unit in its cluster. A unit whose
     * certificate still holds ({@code (drift_own − then) + (maxDrift − then) < gap}: its own centroid is still
     * strictly the nearest) is not looked at; the units of an adapter with any other unit are loaded and assigned
     * exactly as Lloyd would (the same distance bits, lowest index on ties), and get fresh certificates when nothing
     * moves. Only the adapters in doubt are re-derived.
     */
    private boolean firstAssignmentKeepsEveryUnit() {
        if (drift.length != k) return false;
        int dim = dIn + dOut;
        double[] cNorms = null;
        List<LiveAdapter> checked = new ArrayList<>();
        List<double[]> distances = new ArrayList<>();
        for (LiveAdapter a : live.values()) {
            boolean doubtful = false;
            for (int i = 0; i < a.count && !doubtful; i++) doubtful = !(remainingGap(a, i) > 0);
            if (!doubtful) continue;
            if (cNorms == null) {
                cNorms = new double[k];
                SquaredDistances.rowNorms(featureCentroids, k, dim, cNorms);
            }
            double[] f = a.features != null ? a.features : features(unitsOf(a.key, a));
            double[] dist = new double[a.count * k];
            SquaredDistances.compute(f, a.featureSq, a.count, featureCentroids, cNorms, k, dim, dist);
            for (int i = 0; i < a.count; i++) {
                if (RankWiseClustering.nearest(dist, i * k, k) != a.assignment[i]) return false;
            }
            adaptersCheckedForRefinement++;
            checked.add(a);
            distances.add(dist);
        }
        for (int t = 0; t < checked.size(); t++) certify(checked.get(t), distances.get(t), 0, cNorms);
        return true;
    }

    /** Refinements that certificates showed to be no-ops, since this object was created or restored. */
    public long certifiedRefinements() {
        return certifiedRefinements;
    }

    /** Adapters whose units a certificate check loaded, since this object was created or restored. */
    long adaptersCheckedForRefinement() {
        return adaptersCheckedForRefinement;
    }

    /** {@code r̄} of the output reweighting: {@link DualReweighting#meanUnitCount} of the live adapters' units. */
    private double meanRank() {
        int[] counts = new int[live.size()];
        int t = 0;
        for (LiveAdapter a : live.values()) counts[t++] = a.count;
        return DualReweighting.meanUnitCount(counts);
    }

    /** The features of one adapter's units in assignment space (the units themselves without a feature norm). */
    private double[] features(MinimalSemanticUnits u) {
        if (options.featureNorm() == FeatureNorm.NONE) return u.units();
        return UnitPool.of(List.of(u)).features(options.featureNorm());
    }

    /** The per-unit scalars of an adapter whose units are in memory. */
    private void computeScalars(LiveAdapter a) {
        MinimalSemanticUnits u = a.units;
        int dim = u.dim();
        a.unitNorm = DualReweighting.unitNorms(u.units(), u.count(), dim, options.parameterReweighting());
        double[] f = features(u);
        a.features = f;
        a.featureSq = new double[u.count()];
        SquaredDistances.rowNorms(f, u.count(), dim, a.featureSq);
    }

    /** The units of a live adapter, re-derived through the factor source (and checked) when released. */
    private MinimalSemanticUnits unitsOf(String id, LiveAdapter a) {
        if (a.units != null) return a.units;
        if (factorSource == null) {
            throw new IllegalStateException("module " + module + ": the units of adapter " + id
                    + " are not in memory and there is no factor source");
        }
        AdapterModule factors = factorSource.apply(id);
        if (factors == null) {
            throw new IllegalStateException("module " + module + ": the factor source has nothing for live adapter " + id);
        }
        // the small matrices of the first canonicalisation let it repeat only the tall passes; the digest check below
        // holds the result to the units first derived either way
        MinimalSemanticUnits u = MinimalSemanticUnits.rederive(factors, options.canonical(), a.replay);
        check(id, a, u);
        a.units = u;
        if (a.replay == null) a.replay = u.replay();
        if (a.unitNorm == null) computeScalars(a);
        return u;
    }

    /** Units re-derived or read back for a live adapter must be the ones it had: count, shape and digest. */
    private void check(String id, LiveAdapter a, MinimalSemanticUnits u) {
        if (u.count() != a.count || u.dIn() != dIn || u.dOut() != dOut) {
            throw new IllegalStateException("module " + module + ": the units of adapter " + id + " have "
                    + u.count() + " units of " + u.dIn() + " x " + u.dOut() + " but the state expects "
                    + a.count + " of " + dIn + " x " + dOut);
        }
        if (a.unitsDigestKnown) {
            long d = digest(u);
            if (d != a.unitsDigest) {
                throw new IllegalStateException("module " + module + ": the units of adapter " + id
                        + " do not match the state (digest " + Long.toHexString(d) + ", expected "
                        + Long.toHexString(a.unitsDigest) + "): stale or foreign entry");
            }
        }
    }

    private void ensureDigest(LiveAdapter a) {
        if (!a.unitsDigestKnown) {
            a.unitsDigest = digest(a.units);
            a.unitsDigestKnown = true;
        }
    }

    private double ensureUpdateNorm(LiveAdapter a) {
        if (Double.isNaN(a.updateNorm)) {
            MinimalSemanticUnits u = unitsOf(a.key, a);
            a.updateNorm = UpdateNorms.ofCanonicalUnits(u.units(), 0, u.count(), u.dIn(), u.dOut(), options.canonical());
        }
        return a.updateNorm;
    }

    // ------------------------------------------------------------------ binary form

    /**
     * The whole state (options and units included) as bytes: {@link #FORMAT_VERSION}, the length and bytes of
     * {@link #toStateBytes()}, then per live adapter in id order its id and {@link #unitsBytes}. Loads released
     * units. Deterministic: equal states give equal bytes.
     */
    public byte[] toBytes() {
        byte[] state = toStateBytes();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(16 + state.length + 8 * poolSize() * Math.max(1, dIn + dOut));
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(FORMAT_VERSION);
            out.writeInt(state.length);
            out.write(state);
            out.writeInt(live.size());
            for (String id : live.keySet()) {
                byte[] u = unitsBytes(id);
                out.writeUTF(id);
                out.writeInt(u.length);
                out.write(u);
            }
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
        byte[] state;
        Map<String, byte[]> units = new TreeMap<>();
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
            byte version = in.readByte();
            if (version != FORMAT_VERSION) {
                throw new IllegalArgumentException("streaming cluster state: unknown format version " + version
                        + " (this build reads " + FORMAT_VERSION + ")");
            }
            int len = in.readInt();
            if (len < 0 || len > data.length) {
                throw new IllegalArgumentException("streaming cluster state: bad skeleton length " + len);
            }
            state = new byte[len];
            in.readFully(state);
            int adapters = in.readInt();
            if (adapters < 0 || adapters > data.length) {
                throw new IllegalArgumentException("streaming cluster state: bad adapter count " + adapters);
            }
            for (int t = 0; t < adapters; t++) {
                String id = in.readUTF();
                int n = in.readInt();
                if (n < 0 || n > data.length) {
                    throw new IllegalArgumentException("streaming cluster state: adapter " + id + " claims " + n + " bytes");
                }
                byte[] u = new byte[n];
                in.readFully(u);
                if (units.put(id, u) != null) {
                    throw new IllegalArgumentException("streaming cluster state: adapter " + id + " stored twice");
                }
            }
            if (in.available() > 0) {
                throw new IllegalArgumentException("streaming cluster state: " + in.available() + " trailing bytes");
            }
        } catch (EOFException e) {
            throw new IllegalArgumentException("streaming cluster state: truncated (" + data.length + " bytes)", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("streaming cluster state: unreadable: " + e.getMessage(), e);
        }
        try {
            return fromStateBytes(state, units::get);
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException("streaming cluster state: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------ split binary form

    /**
     * The immutable part of one live adapter ({@link MinimalSemanticUnits#toBytes()}: id, merge weight, source
     * rank, dIn, dOut, rank indices, folded canonical units) for a store entry keyed by adapter; unchanged for as
     * long as the adapter stays live (a replacement is a new version of it). Deterministic. Loads released units.
     *
     * @throws IllegalArgumentException if {@code adapterId} is not live (names module and adapter)
     */
    public byte[] unitsBytes(String adapterId) {
        LiveAdapter a = liveAdapter(adapterId);
        byte[] bytes = unitsOf(adapterId, a).toBytes();
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
     * decayed weight and cluster; then the feature centroids of the empty clusters; then the sum order (indices
     * into the id order) and the inertia — the values that are not a function of the members, see the class
     * comment; then the refinement certificates (the count and values of the per-cluster drift, the largest-drift
     * sum, and per live adapter in id order per unit its gap and its two drift references). Centroids, sums and cluster weights are not stored: {@link #fromStateBytes} recomputes them. The
     * size grows with the number of units, not with {@code dIn}/{@code dOut} (except for the empty-cluster rows).
     * Deterministic. Needs the units of adapters whose digest was never taken (those upserted since the last call
     * still are in memory).
     */
    public byte[] toStateBytes() {
        int dim = dIn + dOut;
        List<Integer> emptyRows = new ArrayList<>();
        if (clustered) {
            for (int j = 0; j < k; j++) if (!(clusterWeight[j] > 0)) emptyRows.add(j);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + module.length() + 20 * live.size()
                + 12 * poolSize() + emptyRows.size() * (4 + 8 * dim));
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(STATE_MAGIC);
            out.writeByte(STATE_FORMAT_VERSION);
            writeScalars(out);
            out.writeInt(live.size());
            for (Map.Entry<String, LiveAdapter> e : live.entrySet()) {
                LiveAdapter a = e.getValue();
                if (!a.unitsDigestKnown) {
                    unitsOf(e.getKey(), a);
                    ensureDigest(a);
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
            List<String> ids = new ArrayList<>(live.keySet());
            out.writeInt(sumOrder.size());
            for (String id : sumOrder) out.writeInt(Collections.binarySearch(ids, id));
            writeDouble(out, inertia);
            out.writeInt(drift.length);
            for (double v : drift) writeDouble(out, v);
            writeDouble(out, maxDrift);
            for (LiveAdapter a : live.values()) {
                for (int i = 0; i < a.count; i++) {
                    writeDouble(out, a.gap[i]);
                    writeDouble(out, a.ownDriftAt[i]);
                    writeDouble(out, a.maxDriftAt[i]);
                }
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
     * @throws IllegalArgumentException on a foreign skeleton, an unknown version, truncated or trailing bytes, or
     *                                  inconsistent content
     * @throws IllegalStateException    when a live adapter's units entry is missing, unreadable, or does not match the
     *                                  skeleton (stale or foreign entry: digest, count or shape differ; naming the
     *                                  adapter)
     */
    public static StreamingModuleClusters fromStateBytes(byte[] state, Function<String, byte[]> unitsBytesOf) {
        Objects.requireNonNull(unitsBytesOf, "unitsBytesOf");
        return restore(state, null, key -> {
            byte[] blob = unitsBytesOf.apply(key);
            if (blob == null) return null;
            try {
                return MinimalSemanticUnits.fromBytes(blob);
            } catch (IllegalArgumentException e) {
                // a blob that does not parse cannot have the digest the skeleton names: stale or foreign
                throw new IllegalStateException("the units entry of adapter " + key + " does not match the skeleton "
                        + "(unreadable: " + e.getMessage() + "): stale or foreign entry", e);
            }
        });
    }

    /**
     * Rebuilds a state from {@link #toStateBytes()} and the factors its live adapters were upserted with (see
     * {@link #setFactorSource}, which the restored state keeps). Every later result is bit-identical to the
     * original object's.
     *
     * @throws IllegalArgumentException on a foreign or inconsistent skeleton (as {@link #fromStateBytes})
     * @throws IllegalStateException    when the source has no factors for a live adapter, or they do not give the
     *                                  units the skeleton's digest names (naming the adapter)
     */
    public static StreamingModuleClusters restore(byte[] state, Function<String, AdapterModule> factorSource) {
        Objects.requireNonNull(factorSource, "factorSource");
        return restore(state, factorSource, null);
    }

    private static StreamingModuleClusters restore(byte[] state, Function<String, AdapterModule> factorSource,
                                                   Function<String, MinimalSemanticUnits> unitsOf) {
        Objects.requireNonNull(state, "state");
        StreamingModuleClusters s;
        String[] keys;
        long[] digests;
        double[][] weights;
        int[][] assigns;
        int[] emptyRows;
        double[][] emptyRowValues;
        int[] order;
        double inertia;
        double[] driftRead;
        double maxDriftRead;
        double[][] certificates;
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
            int orderSize = in.readInt();
            if (orderSize != adapters) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": sum order lists "
                        + orderSize + " adapters, " + adapters + " are live");
            }
            order = new int[orderSize];
            boolean[] seen = new boolean[adapters];
            for (int t = 0; t < orderSize; t++) {
                order[t] = in.readInt();
                if (order[t] < 0 || order[t] >= adapters || seen[order[t]]) {
                    throw new IllegalArgumentException("streaming cluster skeleton of module " + module
                            + ": bad sum order entry " + order[t]);
                }
                seen[order[t]] = true;
            }
            inertia = readDouble(in);
            int driftLength = in.readInt();
            if (driftLength < 0 || driftLength > s.k) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": " + driftLength
                        + " drift entries for k " + s.k);
            }
            driftRead = readDoubles(in, driftLength);
            maxDriftRead = readDouble(in);
            certificates = new double[adapters][];
            for (int t = 0; t < adapters; t++) certificates[t] = readDoubles(in, 3 * weights[t].length);
            // a certificate lets a refinement skip work: refuse values no operation produces
            boolean sane = Double.isFinite(maxDriftRead) && maxDriftRead >= 0;
            for (double v : driftRead) sane &= Double.isFinite(v) && v >= 0;
            for (double[] c : certificates) {
                for (int i = 0; i < c.length; i += 3) {
                    sane &= c[i] >= 0 && Double.isFinite(c[i + 1]) && c[i + 1] >= 0 && Double.isFinite(c[i + 2])
                            && c[i + 2] >= 0;
                }
            }
            if (!sane) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module
                        + ": a refinement certificate or drift is negative, NaN or infinite");
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

        s.factorSource = factorSource;
        for (int t = 0; t < keys.length; t++) {
            String key = keys[t];
            MinimalSemanticUnits u;
            if (unitsOf != null) {
                u = unitsOf.apply(key);
            } else {
                AdapterModule f = factorSource.apply(key);
                u = f == null ? null : MinimalSemanticUnits.of(f, s.options.canonical());
            }
            if (u == null) {
                throw new IllegalStateException("module " + s.module + ": the skeleton lists live adapter " + key
                        + " but its units entry is missing");
            }
            if (u.count() != weights[t].length || u.dIn() != s.dIn || u.dOut() != s.dOut) {
                throw new IllegalStateException("module " + s.module + ": the units entry of adapter " + key + " has "
                        + u.count() + " units of " + u.dIn() + " x " + u.dOut() + " but the skeleton expects "
                        + weights[t].length + " of " + s.dIn + " x " + s.dOut);
            }
            long d = digest(u);
            if (d != digests[t]) {
                throw new IllegalStateException("module " + s.module + ": the units entry of adapter " + key
                        + " does not match the skeleton (digest " + Long.toHexString(d) + ", expected "
                        + Long.toHexString(digests[t]) + "): stale or foreign entry");
            }
            LiveAdapter a = new LiveAdapter(key, u, weights[t], assigns[t]);
            a.unitsDigest = d;
            a.unitsDigestKnown = true;
            s.computeScalars(a);
            s.live.put(key, a);
        }
        for (int t : order) s.sumOrder.add(keys[t]);
        s.deriveFromMembers(emptyRows, emptyRowValues);
        s.inertia = inertia;
        s.drift = driftRead;
        s.maxDrift = maxDriftRead;
        for (int t = 0; t < keys.length; t++) {
            LiveAdapter a = s.live.get(keys[t]);
            double[] c = certificates[t];
            for (int i = 0; i < a.count; i++) {
                a.gap[i] = c[3 * i];
                a.ownDriftAt[i] = c[3 * i + 1];
                a.maxDriftAt[i] = c[3 * i + 2];
            }
        }
        return s;
    }

    /**
     * Recomputes the derived arrays from the members as the invariant of the class comment states (the same code
     * and unit order as the operations); the feature centroids of empty clusters come from
     * {@code emptyRows}/{@code emptyRowValues}, which must list exactly the clusters of zero weight.
     */
    private void deriveFromMembers(int[] emptyRows, double[][] emptyRowValues) {
        if (live.isEmpty()) {
            centroids = new double[0];
            featureCentroids = new double[0];
            clusterWeight = new double[0];
            return;
        }
        if (!clustered) {
            UnitPool pool = pool();
            centroids = pool.units().clone();
            featureCentroids = pool.features(options.featureNorm()).clone();
            clusterWeight = pool.weights().clone();
            return;
        }
        UnitPool pool = poolOf(sumOrder);
        double[] f = pool.features(options.featureNorm());
        int dim = pool.dim();
        int[] assign = assignmentOf(sumOrder);
        double[] fc = new double[k * dim];
        for (int e = 0; e < emptyRows.length; e++) {
            System.arraycopy(emptyRowValues[e], 0, fc, emptyRows[e] * dim, dim);
        }
        setSums(pool, f, assign, fc);
        int e = 0;
        for (int j = 0; j < k; j++) {
            boolean empty = !(clusterWeight[j] > 0);
            boolean listed = e < emptyRows.length && emptyRows[e] == j;
            if (empty != listed) {
                throw new IllegalArgumentException("streaming cluster skeleton of module " + module + ": cluster " + j
                        + (empty ? " has no member but no stored centroid" : " has members but a stored empty-cluster row"));
            }
            if (listed) e++;
        }
    }

    /** 64-bit digest of a units blob ({@link MinimalSemanticUnits#toBytes()}): CRC-32C in the high half, CRC-32 in the low half. */
    private static long digest(byte[] bytes) {
        return digestOf(sink -> sink.accept(ByteBuffer.wrap(bytes)));
    }

    /** {@link #digest(byte[])} of {@code units.toBytes()}, over a small reused buffer instead of the copy. */
    private static long digest(MinimalSemanticUnits units) {
        return digestOf(sink -> units.streamBytes(DIGEST_CHUNK_BYTES, sink));
    }

    /** The digest of the bytes that {@code bytes} hands, chunk by chunk, to the sink it is given. */
    private static long digestOf(Consumer<Consumer<ByteBuffer>> bytes) {
        CRC32C c1 = new CRC32C();
        CRC32 c2 = new CRC32();
        bytes.accept(chunk -> {
            c1.update(chunk.array(), chunk.position(), chunk.remaining());
            c2.update(chunk.array(), chunk.position(), chunk.remaining());
        });
        return (c1.getValue() << 32) | c2.getValue();
    }

    private static final int DIGEST_CHUNK_BYTES = 64 << 10;

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
