package dev.loralego.lego;

import java.util.List;

/**
 * Options of the baseline merge methods (ALGORITHM.md §7). Immutable.
 *
 * @param k       rank of the factorised result of {@code svd}, {@code ties}, {@code dare}; 0 = largest source rank
 * @param density fraction kept: {@code ties} keeps the top {@code density} of entries by magnitude (default 0.2),
 *                {@code dare} keeps each entry with probability {@code density} (default 0.5); 0 = the method's
 *                default, otherwise in {@code (0, 1]}
 * @param lambda  scale {@code λ} of {@code ties} and {@code task_arithmetic} (default 1)
 * @param seed    seed of {@code dare}'s drop masks
 */
public record BaselineOptions(int k, double density, double lambda, long seed) {

    /** Default density of TIES (Yadav et al. 2023). */
    public static final double TIES_DEFAULT_DENSITY = 0.2;
    /** Default density of DARE (Yu et al. 2023). */
    public static final double DARE_DEFAULT_DENSITY = 0.5;

    public BaselineOptions {
        if (k < 0) throw new IllegalArgumentException("k must be >= 1 (or 0 for the largest source rank), got " + k);
        if (!(density == 0 || (density > 0 && density <= 1))) {
            throw new IllegalArgumentException("density must be in (0, 1] (or 0 for the method's default), got " + density);
        }
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    /** k = largest source rank, method-default density, λ = 1, seed 42. */
    public static BaselineOptions defaults() {
        return new BaselineOptions(0, 0, 1.0, 42L);
    }

    /** The same options with another rank. */
    public BaselineOptions withK(int newK) {
        return new BaselineOptions(newK, density, lambda, seed);
    }

    /** The same options with another density. */
    public BaselineOptions withDensity(double newDensity) {
        return new BaselineOptions(k, newDensity, lambda, seed);
    }

    /** The same options with another λ. */
    public BaselineOptions withLambda(double newLambda) {
        return new BaselineOptions(k, density, newLambda, seed);
    }

    /** The same options with another seed. */
    public BaselineOptions withSeed(long newSeed) {
        return new BaselineOptions(k, density, lambda, newSeed);
    }

    /** {@code density}, or {@code methodDefault} when it is 0. */
    public double densityOr(double methodDefault) {
        return density == 0 ? methodDefault : density;
    }

    /** {@code k}, or the largest source rank when it is 0. */
    public int resolveK(List<AdapterModule> adapters) {
        if (k > 0) return k;
        int max = 0;
        for (AdapterModule m : adapters) max = Math.max(max, m.rank());
        return max;
    }
}
