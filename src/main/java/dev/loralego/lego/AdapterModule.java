package dev.loralego.lego;

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

    /** The same factors with another merge weight. */
    public AdapterModule withWeight(double newWeight) {
        return new AdapterModule(adapterId, newWeight, scaling, rank, dIn, dOut, a, b);
    }
}
