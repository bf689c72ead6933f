package dev.loralego.stream;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.StreamingModuleClusters;
import dev.loralego.lego.StreamingOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

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
     * from the factors the live adapters were upserted with ({@code stored}'s factor source: their buffered layers).
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
        // re-derive from what the adapters were upserted with, so the new state's units can be re-derived too
        SortedMap<String, AdapterModule> factors = new TreeMap<>();
        for (String id : stored.liveAdapters()) {
            AdapterModule f = stored.factorSource().apply(id);
            if (f == null) throw new IllegalStateException("module " + module + ": no stored layer for live adapter " + id);
            factors.put(id, f);
        }
        fresh.upsertAll(factors);
        return fresh;
    }
}
