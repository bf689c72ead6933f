package dev.loralego.lego;

import java.util.List;
import java.util.Objects;

/**
 * The LoRA factors of one adapter for one module (one adapted weight), as stored in PEFT:
 * {@code A ∈ R^{r × dIn}} and {@code B ∈ R^{dOut × r}}, both row-major, plus the adapter's PEFT
 * scaling {@code s} for this module and its merge weight {@code w > 0}.
 *
 * <p>{@code ΔW = s · B A}. Nothing here is folded yet; {@link MinimalSemanticUnits} folds the scaling.
 *
 * @param adapterId identifies the source adapter (provenance only, never used in arithmetic)
 * @param weight    merge weight {@code w_t}; a sample weight for LoRA-LEGO, a coefficient for baselines
 * @param scaling   PEFT scaling {@code s_t = alpha / r} (or {@code alpha / sqrt(r)} with rsLoRA)
 * @param rank      {@code r}
 * @param dIn       input dimension (columns of A)
 * @param dOut      output dimension (rows of B)
 * @param a         row-major {@code r × dIn}; not copied, not modified by this library
 * @param b         row-major {@code dOut × r}; not copied, not modified by this library
 */
public record AdapterModule(String adapterId, double weight, double scaling, int rank, int dIn, int dOut,
                            double[] a, double[] b) {
    public AdapterModule {
        Objects.requireNonNull(adapterId, "adapterId");
        if (!(weight > 0) || !Double.isFinite(weight)) {
            throw new IllegalArgumentException("merge weight must be finite and > 0, got " + weight + " for " + adapterId);
        }
        if (!(scaling > 0) || !Double.isFinite(scaling)) {
            throw new IllegalArgumentException("scaling must be finite and > 0, got " + scaling + " for " + adapterId);
        }
        if (rank < 1 || dIn < 1 || dOut < 1) {
            throw new IllegalArgumentException("rank, dIn, dOut must be >= 1, got " + rank + ", " + dIn + ", " + dOut);
        }
        if (a.length != (long) rank * dIn) {
            throw new IllegalArgumentException("A has " + a.length + " values, expected r*dIn = " + rank + "*" + dIn);
        }
        if (b.length != (long) dOut * rank) {
            throw new IllegalArgumentException("B has " + b.length + " values, expected dOut*r = " + dOut + "*" + rank);
        }
    }

    /** Dense {@code ΔW = s · B A}, row-major {@code dOut × dIn}. For tests and small modules only. */
    public double[] deltaW() {
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            int wr = o * dIn;
            for (int j = 0; j < rank; j++) {
                double bij = scaling * b[o * rank + j];
                if (bij == 0) continue;
                int ar = j * dIn;
                for (int i = 0; i < dIn; i++) w[wr + i] += bij * a[ar + i];
            }
        }
        return w;
    }

    /**
     * Checks that a module's adapters are non-empty and agree on {@code dIn} and {@code dOut}.
     *
     * @param module   module name, used in the message
     * @param adapters adapters targeting the module (not modified)
     * @throws IllegalArgumentException naming the module and the first adapter whose shape differs
     */
    public static void requireCommonShape(String module, List<AdapterModule> adapters) {
        Objects.requireNonNull(module, "module");
        Objects.requireNonNull(adapters, "adapters");
        if (adapters.isEmpty()) {
            throw new IllegalArgumentException("module " + module + ": no adapters to merge");
        }
        AdapterModule first = Objects.requireNonNull(adapters.get(0), "adapter 0 of module " + module);
        for (int t = 1; t < adapters.size(); t++) {
            AdapterModule m = Objects.requireNonNull(adapters.get(t), "adapter " + t + " of module " + module);
            if (m.dIn() != first.dIn() || m.dOut() != first.dOut()) {
                throw new IllegalArgumentException("module " + module + ": adapter " + m.adapterId() + " has dIn x dOut = "
                        + m.dIn() + " x " + m.dOut() + " but adapter " + first.adapterId() + " has "
                        + first.dIn() + " x " + first.dOut());
            }
        }
    }

    /**
     * Checks that every factor of a module's adapters is finite (what {@link MinimalSemanticUnits} requires of the
     * LoRA-LEGO merge), so that no method turns a corrupt adapter (an fp16 overflow, a NaN from training) into a
     * plausible-looking merge: TIES would zero the NaN entries in its trim, and the others would write NaN factors or
     * fail inside the factorisation.
     *
     * @throws IllegalArgumentException naming the module, the adapter and the first non-finite entry
     */
    public static void requireFinite(String module, List<AdapterModule> adapters) {
        for (AdapterModule m : adapters) {
            String bad = m.firstNonFinite();
            if (bad != null) throw new IllegalArgumentException("module " + module + ": " + bad);
        }
    }

    /**
     * The first non-finite factor entry of this adapter, as {@code "adapter ID: A[i] is NaN"} (A before B), or null
     * when every entry is finite.
     */
    String firstNonFinite() {
        String bad = firstNonFinite(a, "A");
        return bad != null ? bad : firstNonFinite(b, "B");
    }

    private String firstNonFinite(double[] v, String tensor) {
        for (int i = 0; i < v.length; i++) {
            if (!Double.isFinite(v[i])) return "adapter " + adapterId + ": " + tensor + "[" + i + "] is " + v[i];
        }
        return null;
    }

    /** The same factors with another merge weight. */
    public AdapterModule withWeight(double newWeight) {
        return new AdapterModule(adapterId, newWeight, scaling, rank, dIn, dOut, a, b);
    }
}
