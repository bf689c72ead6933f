package dev.loralego.lego;

import java.util.Map;
import java.util.Objects;

/**
 * Validated options of a LoRA-LEGO merge (ALGORITHM.md §2–§4). Immutable.
 *
 * @param k                 merged rank for every module; {@code 0} means "largest source rank of the module",
 *                          {@link #K_AUTO} means "chosen per module by {@link AutoRank}"
 * @param kPerModule        per-module overrides of {@code k} (exact module names; {@link #K_AUTO} allowed)
 * @param seed              seed of every random choice (k-means++, restarts, re-seeding)
 * @param nInit             k-means restarts; the lowest inertia wins
 * @param maxIter           Lloyd iteration cap per restart
 * @param canonical         canonical form of the units
 * @param featureNorm       assignment features
 * @param parameterReweighting norm-decay correction
 * @param outputReweighting whether {@code γ = sqrt(r̄ / k)} is applied
 * @param autoEnergyShare   share {@code τ} of the pool's energy that {@code k} {@link #K_AUTO} keeps
 *                          ({@link AutoRank}); in {@code (0, 1]}, used only with {@link #K_AUTO}
 */
public record LegoOptions(int k, Map<String, Integer> kPerModule, long seed, int nInit, int maxIter,
                          CanonicalForm canonical, FeatureNorm featureNorm,
                          ParameterReweighting parameterReweighting, boolean outputReweighting,
                          double autoEnergyShare) {

    /** {@code k} value meaning "choose k per module with {@link AutoRank}" (batch merges only). */
    public static final int K_AUTO = -1;

    /** The options with {@link AutoRank#DEFAULT_ENERGY_SHARE} as {@code autoEnergyShare}. */
    public LegoOptions(int k, Map<String, Integer> kPerModule, long seed, int nInit, int maxIter,
                       CanonicalForm canonical, FeatureNorm featureNorm,
                       ParameterReweighting parameterReweighting, boolean outputReweighting) {
        this(k, kPerModule, seed, nInit, maxIter, canonical, featureNorm, parameterReweighting, outputReweighting,
                AutoRank.DEFAULT_ENERGY_SHARE);
    }

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
        if (k < 0 && k != K_AUTO) {
            throw new IllegalArgumentException("k must be >= 1 (or 0 for the largest source rank, or auto in merge), got " + k);
        }
        AutoRank.requireShare(autoEnergyShare);
        if (nInit < 1) throw new IllegalArgumentException("nInit must be >= 1, got " + nInit);
        if (maxIter < 1) throw new IllegalArgumentException("maxIter must be >= 1, got " + maxIter);
        kPerModule.forEach((m, v) -> {
            if (v < 1 && v != K_AUTO) {
                throw new IllegalArgumentException("k for module " + m + " must be >= 1 (or K_AUTO), got " + v);
            }
        });
    }

    /** The requested k for a module, 0 when it defaults to the largest source rank, {@link #K_AUTO} when automatic. */
    public int requestedK(String module) {
        return kPerModule.getOrDefault(module, k);
    }

    /** Whether {@code k} is chosen automatically for {@code module}. */
    public boolean autoK(String module) {
        return requestedK(module) == K_AUTO;
    }

    public LegoOptions withK(int newK) {
        return new LegoOptions(newK, kPerModule, seed, nInit, maxIter, canonical, featureNorm, parameterReweighting,
                outputReweighting, autoEnergyShare);
    }

    public LegoOptions withSeed(long newSeed) {
        return new LegoOptions(k, kPerModule, newSeed, nInit, maxIter, canonical, featureNorm, parameterReweighting,
                outputReweighting, autoEnergyShare);
    }

    public LegoOptions withCanonical(CanonicalForm c) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, c, featureNorm, parameterReweighting,
                outputReweighting, autoEnergyShare);
    }

    /** The same options with another feature norm. */
    public LegoOptions withFeatureNorm(FeatureNorm f) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, canonical, f, parameterReweighting,
                outputReweighting, autoEnergyShare);
    }

    /** The same options with another parameter reweighting. */
    public LegoOptions withParameterReweighting(ParameterReweighting p) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, canonical, featureNorm, p,
                outputReweighting, autoEnergyShare);
    }

    /** The same options with the output reweighting on or off. */
    public LegoOptions withOutputReweighting(boolean on) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, canonical, featureNorm, parameterReweighting,
                on, autoEnergyShare);
    }

    /** The same options with another {@code k auto} energy share. */
    public LegoOptions withAutoEnergyShare(double share) {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, canonical, featureNorm, parameterReweighting,
                outputReweighting, share);
    }
}
