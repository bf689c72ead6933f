package dev.loralego.lego;

import java.util.Map;
import java.util.Objects;

/**
 * Validated options of a LoRA-LEGO merge (ALGORITHM.md §2–§4). Immutable.
 *
 * @param k                 merged rank for every module; {@code 0} means "largest source rank of the module"
 * @param kPerModule        per-module overrides of {@code k} (exact module names)
 * @param seed              seed of every random choice (k-means++, restarts, re-seeding)
 * @param nInit             k-means restarts; the lowest inertia wins
 * @param maxIter           Lloyd iteration cap per restart
 * @param canonical         canonical form of the units
 * @param featureNorm       assignment features
 * @param parameterReweighting norm-decay correction
 * @param outputReweighting whether {@code γ = sqrt(r̄ / k)} is applied
 */
public record LegoOptions(int k, Map<String, Integer> kPerModule, long seed, int nInit, int maxIter,
                          CanonicalForm canonical, FeatureNorm featureNorm,
                          ParameterReweighting parameterReweighting, boolean outputReweighting) {

    /** Defaults: k = largest source rank, seed 42, 4 restarts, 300 iterations, svd, none, L2, γ on. */
    public static LegoOptions defaults() {
        return new LegoOptions(0, Map.of(), 42L, 4, 300, CanonicalForm.SVD, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
    }

    public LegoOptions {
        kPerModule = Map.copyOf(Objects.requireNonNull(kPerModule, "kPerModule"));
        Objects.requireNonNull(canonical, "canonical");
        Objects.requireNonNull(featureNorm, "featureNorm");
        Objects.requireNonNull(parameterReweighting, "parameterReweighting");
        if (k < 0) throw new IllegalArgumentException("k must be >= 1 (or 0 for the largest source rank), got " + k);
        if (nInit < 1) throw new IllegalArgumentException("nInit must be >= 1, got " + nInit);
        if (maxIter < 1) throw new IllegalArgumentException("maxIter must be >= 1, got " + maxIter);
        kPerModule.forEach((m, v) -> {
            if (v < 1) throw new IllegalArgumentException("k for module " + m + " must be >= 1, got " + v);
        });
    }

    /** The requested k for a module, or 0 when it defaults to the largest source rank. */
    public int requestedK(String module) {
        return kPerModule.getOrDefault(module, k);
    }

    public LegoOptions withK(int newK) {
        return new LegoOptions(newK, kPerModule, seed, nInit, maxIter, canonical, featureNorm, parameterReweighting, outputReweighting);
    }

    public LegoOptions withSeed(long newSeed) {
        return new LegoOptions(k, kPerModule, newSeed, nInit, maxIter, canonical, featureNorm, parameterReweighting, outputReweighting);
    }

    public LegoOptions withCanonical(CanonicalForm c) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, c, featureNorm, parameterReweighting, outputReweighting);
    }
}
