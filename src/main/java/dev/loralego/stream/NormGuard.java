package dev.loralego.stream;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.StreamingModuleClusters;
import dev.loralego.lego.UpdateNorms;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Keeps one adapter from taking over a module's merge: its update norm {@code ‖ΔW‖_F} is compared with the
 * median of the module's other live adapters (at least two of them); beyond
 * {@link MergeParameters#normOutlierFactor()} times that median, the policy applies — {@code reject}: the
 * adapter is left out of this module; {@code clip}: its factors are scaled so its norm equals the limit.
 * Either way the manifest's warnings say so. Depends only on the stored state, so a replay decides the same.
 */
final class NormGuard {
    /**
     * @param factors what to upsert (null: nothing, the adapter is left out)
     * @param note    the warning for the manifest, or null
     * @param shrink  the factor both of the incoming factors were scaled by ({@link #shrink}); 1 when not clipped
     */
    record Verdict(StreamingModuleClusters.Prepared factors, String note, double shrink) {
        Verdict(StreamingModuleClusters.Prepared factors, String note) {
            this(factors, note, 1.0);
        }
    }

    private NormGuard() {
    }

    /**
     * @param incoming the adapter's factors for this module
     * @param prepared the same, prepared by {@code clusters} (its norm is the one compared)
     */
    static Verdict check(StreamingModuleClusters clusters, AdapterModule incoming, StreamingModuleClusters.Prepared prepared,
                         MergeParameters params) {
        double factor = params.normOutlierFactor();
        if (factor == 0 || clusters.liveAdapters().isEmpty()) return new Verdict(prepared, null);
        List<Double> others = new ArrayList<>();
        for (String id : clusters.liveAdapters()) {
            // cached per adapter: the same value as over the pool's rows, without copying the pool every step
            if (!id.equals(incoming.adapterId())) others.add(clusters.updateNorm(id));
        }
        if (others.size() < 2) return new Verdict(prepared, null);
        double median = UpdateNorms.median(others.stream().mapToDouble(Double::doubleValue).toArray());
        double norm = prepared.updateNorm();
        double limit = factor * median;
        if (!(norm > limit) || median == 0) return new Verdict(prepared, null);
        String what = String.format(Locale.ROOT, "update norm of %s is %.4g, %.1fx the median %.4g of the module's other %d adapters (limit %.4gx)",
                incoming.adapterId(), norm, norm / median, median, others.size(), factor);
        if (params.normOutlierPolicy().equals("clip")) {
            double shrink = Math.sqrt(limit / norm);
            return new Verdict(clusters.prepare(shrink(incoming, shrink)), what + "; clipped to the limit", shrink);
        }
        return new Verdict(null, what + "; rejected");
    }

    /** {@code factors} with both A and B multiplied by {@code shrink} (so {@code ΔW} by its square); a new object. */
    static AdapterModule shrink(AdapterModule factors, double shrink) {
        if (shrink == 1.0) return factors;
        double[] a = factors.a().clone(), b = factors.b().clone();
        for (int i = 0; i < a.length; i++) a[i] *= shrink;
        for (int i = 0; i < b.length; i++) b[i] *= shrink;
        return new AdapterModule(factors.adapterId(), factors.weight(), factors.scaling(), factors.rank(),
                factors.dIn(), factors.dOut(), a, b);
    }
}
