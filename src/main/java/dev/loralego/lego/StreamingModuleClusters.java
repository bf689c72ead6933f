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
 * Forgetting ({@code λ < 1}) makes each stored unit's weight {@code w λ^(upserts since it arrived)}; all
 * clustering, retraction and reweighting use these decayed weights (so a retraction stays exact). Very long runs
 * with small {@code λ} drive old weights towards underflow; they then stop mattering, as intended.
 */
public final class StreamingModuleClusters {

    /** Leading byte of {@link #toBytes()}; bump when the layout changes, keep reading old versions. */
    public static final byte FORMAT_VERSION = 1;

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

    /** One live adapter: its units with per-unit decayed weights and clusters. */
    private static final class LiveAdapter {
        final MinimalSemanticUnits units;
        final double[] weight;
        final int[] assignment;

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
        boolean removed = false;
        for (String id : fresh.keySet()) removed |= live.remove(id) != null;
        if (removed) afterRemoval();
        double lambda = streaming.forgetting();
        if (lambda < 1) {
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
        UnitPool pool = pool();
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
        UnitPool pool = pool();
        return Optional.of(DualReweighting.apply(currentResult(pool), pool, meanRank(),
                options.parameterReweighting(), options.outputReweighting()));
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
        UnitPool pool = pool();
        double[] f = pool.features(options.featureNorm());
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
        UnitPool pool = pool();
        recomputeFromMembers(pool, pool.features(options.featureNorm()), poolAssignment());
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
        UnitPool pool = pool();
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
        double[] f = pool.features(options.featureNorm());
        double inertia = RankWiseClustering.inertia(f, pool.weights(), assign, pool.size(), pool.dim(), featureCentroids);
        return new ClusteringResult(k, targetK, pool.dim(), centroids, featureCentroids, assign, clusterWeight,
                inertia, lastIterations, lastConverged);
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
            String module = in.readUTF();
            int kOpt = in.readInt();
            long seed = in.readLong();
            int nInit = in.readInt();
            int maxIter = in.readInt();
            CanonicalForm canonical = CanonicalForm.valueOf(in.readUTF());
            FeatureNorm featureNorm = FeatureNorm.valueOf(in.readUTF());
            ParameterReweighting param = ParameterReweighting.valueOf(in.readUTF());
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
