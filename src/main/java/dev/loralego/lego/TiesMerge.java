package dev.loralego.lego;

import java.util.Arrays;
import java.util.List;

/**
 * The {@code ties} baseline: TIES-Merging (Yadav et al., "TIES-Merging: Resolving Interference When Merging
 * Models", NeurIPS 2023), on the dense updates {@code τ_t = w_t s_t B_t A_t}, then factorised to rank {@code k}.
 *
 * <ol>
 *   <li>Trim: keep exactly {@code m = clamp(round(density · dOut · dIn), 1, dOut · dIn)} entries of each
 *       {@code τ_t}, those of largest magnitude; at the threshold magnitude, the lowest row-major indices win.
 *       The rest become 0.</li>
 *   <li>Elect: {@code σ_e = sign(Σ_t trimmed_t[e])}; an entry whose sum is exactly 0 merges to 0.</li>
 *   <li>Disjoint mean: {@code merged[e] = λ · mean of trimmed_t[e] over the t with sign(trimmed_t[e]) = σ_e}.</li>
 *   <li>Factor: the leading {@code min(k, dOut, dIn)} singular triplets of the dense result, i.e. its best rank-k
 *       approximation ({@link LowRankFactorisation#ofDenseTruncated}: a Gram eigen-decomposition of order
 *       {@code min(dOut, dIn)} when {@code k} is small, else the full SVD).</li>
 * </ol>
 * Memory: four dense {@code dOut × dIn} double arrays and one int array whatever the number of adapters (each
 * {@code τ_t} is rebuilt for the second pass instead of being kept), plus about two more during the factorisation.
 * Time for a gpt2 {@code c_attn} module (768 × 2304, three adapters, k = 8) on one core: about 1 s for steps 1–3
 * (dominated by the six magnitude sorts of the trim) and 0.7 s for the factorisation (it was 3 s with the full SVD).
 */
public final class TiesMerge {

    private TiesMerge() {
    }

    /**
     * @param density fraction of entries kept per adapter, in {@code (0, 1]}
     * @param lambda  scale of the merged update
     * @param k       rank of the result, {@code ≥ 1}
     */
    public static MergedModule merge(String module, List<AdapterModule> adapters, double density, double lambda, int k) {
        AdapterModule.requireCommonShape(module, adapters);
        checkDensity(module, density);
        if (k < 1) throw new IllegalArgumentException("module " + module + ": k must be >= 1, got " + k);
        return DenseUpdates.factor(mergeDense(module, adapters, density, lambda), adapters.get(0).dOut(),
                adapters.get(0).dIn(), k);
    }

    /**
     * The dense merged update (steps 1–3: trim, elect, disjoint mean), row-major {@code dOut × dIn}, before
     * factorisation.
     *
     * @param density fraction of entries kept per adapter, in {@code (0, 1]}
     * @param lambda  scale of the merged update
     */
    public static double[] mergeDense(String module, List<AdapterModule> adapters, double density, double lambda) {
        AdapterModule.requireCommonShape(module, adapters);
        checkDensity(module, density);
        int dIn = adapters.get(0).dIn(), size = dIn * adapters.get(0).dOut();
        int keep = (int) Math.max(1, Math.min(size, Math.round(density * size)));
        double[] tau = new double[size], scratch = new double[size], rowBuf = new double[dIn];
        // elect: Σ_t trimmed_t
        double[] sum = new double[size];
        for (AdapterModule m : adapters) {
            DenseUpdates.full(m, m.weight(), tau, rowBuf);
            trimToTop(tau, keep, scratch);
            for (int e = 0; e < size; e++) sum[e] += tau[e];
        }
        // disjoint mean over the entries agreeing with the elected sign
        double[] acc = scratch;
        Arrays.fill(acc, 0.0);
        int[] count = new int[size];
        double[] mags = new double[size];
        for (AdapterModule m : adapters) {
            DenseUpdates.full(m, m.weight(), tau, rowBuf);
            trimToTop(tau, keep, mags);
            for (int e = 0; e < size; e++) {
                double v = tau[e];
                if (v != 0 && sum[e] != 0 && (v > 0) == (sum[e] > 0)) {
                    acc[e] += v;
                    count[e]++;
                }
            }
        }
        for (int e = 0; e < size; e++) acc[e] = count[e] > 0 ? lambda * (acc[e] / count[e]) : 0.0;
        return acc;
    }

    private static void checkDensity(String module, double density) {
        if (!(density > 0 && density <= 1)) {
            throw new IllegalArgumentException("module " + module + ": TIES density must be in (0, 1], got " + density);
        }
    }

    /**
     * Zeroes all but the {@code keep} entries of largest magnitude, in place; at the threshold magnitude the lowest
     * indices are kept.
     *
     * @param mags workspace of the same length
     */
    static void trimToTop(double[] v, int keep, double[] mags) {
        int size = v.length;
        for (int e = 0; e < size; e++) mags[e] = Math.abs(v[e]);
        Arrays.sort(mags);
        double threshold = mags[size - keep];
        int above = 0;
        for (int e = 0; e < size; e++) if (Math.abs(v[e]) > threshold) above++;
        int tiesLeft = keep - above;
        for (int e = 0; e < size; e++) {
            double mag = Math.abs(v[e]);
            if (mag > threshold) continue;
            if (mag == threshold && tiesLeft > 0) {
                tiesLeft--;
                continue;
            }
            v[e] = 0.0;
        }
    }
}
