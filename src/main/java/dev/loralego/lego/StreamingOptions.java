package dev.loralego.lego;

/**
 * Options of the streaming form of LoRA-LEGO ({@link StreamingModuleClusters}, ALGORITHM.md §6). Immutable.
 *
 * @param forgetting  decay {@code λ ∈ (0, 1]} applied to every stored unit's weight before each upsert
 *                    ({@code n_j ← λ n_j}, Spark {@code StreamingKMeans} style); 1 = off (default)
 * @param refineEvery run {@link StreamingModuleClusters#refine()} automatically after this many updates (upserts
 *                    and retractions); 0 = never (default; the caller refines)
 */
public record StreamingOptions(double forgetting, int refineEvery) {
    public StreamingOptions {
        if (!(forgetting > 0 && forgetting <= 1)) {
            throw new IllegalArgumentException("forgetting must be in (0, 1], got " + forgetting);
        }
        if (refineEvery < 0) throw new IllegalArgumentException("refineEvery must be >= 0, got " + refineEvery);
    }

    /** No forgetting, no automatic refinement. */
    public static StreamingOptions defaults() {
        return new StreamingOptions(1.0, 0);
    }
}
