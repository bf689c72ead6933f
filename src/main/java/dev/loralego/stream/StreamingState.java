package dev.loralego.stream;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.StreamingModuleClusters;
import dev.loralego.lego.StreamingOptions;
import dev.loralego.lego.UnitPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;

/** Keeps a module's stored clusters in step with the group's current parameters. */
final class StreamingState {
    private static final Logger LOG = LoggerFactory.getLogger(StreamingState.class);

    private StreamingState() {
    }

    /**
     * The clusters to apply a task to: a new empty state when none is stored; the stored one when its options
     * equal {@code params}; otherwise (the operator changed the group's parameters) a new state re-clustered
     * from the live adapters: from the factors they were upserted with when the stored state has a factor source
     * (the service: their buffered layers), else from the stored units, which are already folded and canonical and
     * so enter the new state as factors with scaling 1 (same {@code ΔW}).
     */
    static StreamingModuleClusters reconcile(StreamingModuleClusters stored, String module, MergeParameters params) {
        // refinement is scheduled by the module merger (staggered across modules), not by the state itself
        StreamingOptions streaming = new StreamingOptions(params.decay(), 0);
        StreamingModuleClusters fresh = new StreamingModuleClusters(module, params.lego(), streaming);
        if (stored == null) return fresh;
        if (stored.options().equals(fresh.options()) && stored.streamingOptions().equals(streaming)) return stored;
        LOG.info("module {}: parameters changed, re-clustering {} stored unit(s)", module,
                stored.liveAdapters().isEmpty() ? 0 : stored.poolSize());
        if (stored.liveAdapters().isEmpty()) return fresh;
        if (stored.factorSource() != null) {
            // re-derive from what the adapters were upserted with, so the new state's units can be re-derived too
            SortedMap<String, AdapterModule> factors = new TreeMap<>();
            for (String id : stored.liveAdapters()) {
                AdapterModule f = stored.factorSource().apply(id);
                if (f == null) throw new IllegalStateException("module " + module + ": no stored layer for live adapter " + id);
                factors.put(id, f);
            }
            fresh.upsertAll(factors);
        } else {
            fresh.upsertAll(storedFactors(stored));
        }
        return fresh;
    }

    private static SortedMap<String, AdapterModule> storedFactors(StreamingModuleClusters stored) {
        UnitPool pool = stored.pool();
        List<String> ids = stored.liveAdapters();
        SortedMap<String, Double> weights = stored.liveWeights();
        int dIn = pool.dIn(), dOut = pool.dOut(), dim = pool.dim();
        TreeMap<String, AdapterModule> out = new TreeMap<>();
        int[] owner = pool.ownerAdapter();
        double[] units = pool.units();
        for (int t = 0; t < ids.size(); t++) {
            int r = 0;
            for (int o : owner) if (o == t) r++;
            double[] a = new double[r * dIn];
            double[] b = new double[dOut * r];
            int j = 0;
            for (int u = 0; u < owner.length; u++) {
                if (owner[u] != t) continue;
                System.arraycopy(units, u * dim, a, j * dIn, dIn);
                for (int o = 0; o < dOut; o++) b[o * r + j] = units[u * dim + dIn + o];
                j++;
            }
            String id = ids.get(t);
            out.put(id, new AdapterModule(id, weights.get(id), 1.0, r, dIn, dOut, a, b));
        }
        return out;
    }
}
