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
 *   <li>Factor: truncated SVD of the dense result to rank {@code min(k, dOut, dIn)}
 *       ({@link LowRankFactorisation#ofDense}, cost {@code O(dOut · dIn · min(dOut, dIn))}).</li>
 * </ol>
 * Memory: four dense {@code dOut × dIn} double arrays and one int array whatever the number of adapters (each
 * {@code τ_t} is rebuilt for the second pass instead of being kept). Time is dominated by the dense SVD: about
 * 4 s for a gpt2 {@code c_attn} module (768 × 2304) on one core.
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
        if (!(density > 0 && density <= 1)) {
            throw new IllegalArgumentException("module " + module + ": TIES density must be in (0, 1], got " + density);
        }
        if (k < 1) throw new IllegalArgumentException("module " + module + ": k must be >= 1, got " + k);
        int dIn = adapters.get(0).dIn(), dOut = adapters.get(0).dOut(), size = dIn * dOut;
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
        return DenseUpdates.factor(acc, dOut, dIn, k);
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
