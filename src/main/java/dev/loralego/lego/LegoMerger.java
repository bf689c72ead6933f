package dev.loralego.lego;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * The batch LoRA-LEGO merge of one module (Zhao et al., "Merging LoRAs like Playing LEGO", arXiv 2409.16167;
 * ALGORITHM.md §1–§4): minimal semantic units with scaling folded in, canonical form, rank-wise clustering, dual
 * reweighting. The output has scaling 1: {@code ΔW_merged = B A}.
 *
 * <p>Unit order: adapters are sorted by {@link AdapterModule#adapterId()} (natural {@code String} order), units by
 * rank index within an adapter, so the result does not depend on the order of the list and equals, bit for bit,
 * what {@link StreamingModuleClusters} computes from the same live set (see there). Adapter ids must be distinct.
 * {@code k} = {@link LegoOptions#requestedK(String)}, or the largest source rank when that is 0; it is clamped to
 * the pool size (units left after the canonical form). With {@link LegoOptions#K_AUTO}, {@link AutoRank} chooses
 * {@code k} from the pool and its clustering at that {@code k} is the one kept.
 */
public final class LegoMerger {

    private LegoMerger() {
    }

    /**
     * Everything a batch merge computed, for diagnostics and benchmarks.
     *
     * @param merged     the merged factors
     * @param pool       the clustered pool (adapters in id order)
     * @param clustering the kept clustering
     * @param adapters   the adapters in pool order
     */
    public record Outcome(MergedModule merged, UnitPool pool, ClusteringResult clustering, List<AdapterModule> adapters) {
    }

    /**
     * Merges one module.
     *
     * @param module   module name (for {@code k} overrides and messages)
     * @param adapters the adapters targeting it (not modified), distinct ids, equal {@code dIn} and {@code dOut}
     * @param options  merge options
     * @throws IllegalArgumentException on an empty list, differing shapes or duplicate ids (naming module and adapter)
     */
    public static MergedModule mergeModule(String module, List<AdapterModule> adapters, LegoOptions options) {
        return merge(module, adapters, options).merged();
    }

    /** As {@link #mergeModule}, returning the intermediate pool and clustering too. */
    public static Outcome merge(String module, List<AdapterModule> adapters, LegoOptions options) {
        Objects.requireNonNull(options, "options");
        List<AdapterModule> sorted = inPoolOrder(module, adapters);
        int k = resolveK(module, sorted, options);
        List<MinimalSemanticUnits> units = units(sorted, options.canonical());
        UnitPool pool = UnitPool.of(units);
        ClusteringResult clustering = k == LegoOptions.K_AUTO
                ? AutoRank.choose(pool, RankWiseClustering.of(options), options.seed(), options.autoEnergyShare()).clustering()
                : RankWiseClustering.of(options).cluster(pool, k, options.seed());
        MergedModule merged = DualReweighting.apply(clustering, pool, meanUnitCount(units),
                options.parameterReweighting(), options.outputReweighting());
        return new Outcome(merged, pool, clustering, sorted);
    }

    /**
     * The adapters sorted by id, after checking shape and distinct ids.
     *
     * @throws IllegalArgumentException naming the module and the offending adapter
     */
    public static List<AdapterModule> inPoolOrder(String module, List<AdapterModule> adapters) {
        AdapterModule.requireCommonShape(module, adapters);
        List<AdapterModule> sorted = new ArrayList<>(adapters);
        sorted.sort(Comparator.comparing(AdapterModule::adapterId));
        for (int t = 1; t < sorted.size(); t++) {
            if (sorted.get(t).adapterId().equals(sorted.get(t - 1).adapterId())) {
                throw new IllegalArgumentException("module " + module + ": adapter " + sorted.get(t).adapterId()
                        + " appears more than once");
            }
        }
        return sorted;
    }

    /**
     * {@code k} for a module: the requested one, the largest source rank when it is 0, or {@link LegoOptions#K_AUTO}
     * (chosen later from the pool by {@link AutoRank}).
     */
    public static int resolveK(String module, List<AdapterModule> adapters, LegoOptions options) {
        int k = options.requestedK(module);
        if (k > 0 || k == LegoOptions.K_AUTO) return k;
        int max = 0;
        for (AdapterModule m : adapters) max = Math.max(max, m.rank());
        return max;
    }

    /** The pooled, folded, canonicalised units of the adapters, in list order. */
    public static UnitPool pool(List<AdapterModule> adapters, CanonicalForm canonical) {
        return UnitPool.of(units(adapters, canonical));
    }

    private static List<MinimalSemanticUnits> units(List<AdapterModule> adapters, CanonicalForm canonical) {
        List<MinimalSemanticUnits> units = new ArrayList<>(adapters.size());
        for (AdapterModule m : adapters) units.add(MinimalSemanticUnits.of(m, canonical));
        return units;
    }

    /** {@code r̄} of the output reweighting ({@link DualReweighting#meanUnitCount}) of these adapters' units. */
    static double meanUnitCount(List<MinimalSemanticUnits> units) {
        int[] counts = new int[units.size()];
        for (int t = 0; t < counts.length; t++) counts[t] = units.get(t).count();
        return DualReweighting.meanUnitCount(counts);
    }
}
