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
 * Time for a gpt2 {@code c_attn} module (768 × 2304, three adapters, k = 8) on one core: about 0.17 s for steps 1–3
 * (about 9 ms per trim with the radix select of {@code trimToTop}; six full magnitude sorts took 1 s) and 0.7 s for
 * the factorisation (it was 3 s with the full SVD).
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
        AdapterModule.requireFinite(module, adapters);
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
     * indices are kept. Same result as sorting all magnitudes ({@link java.util.Arrays#sort(double[])} order, NaN
     * largest), taking the {@code keep}-th largest as the threshold {@code t} and keeping, in index order, the entries
     * with {@code |v| > t}, then those with {@code |v| == t} while fewer than {@code keep - #(|v| > t)} were taken. So
     * NaN entries are always zeroed, and if {@code t} is NaN every entry is. Zeroed entries become {@code +0.0}.
     *
     * <p>{@code t} is found without sorting: a radix select on the bit patterns of {@code |v|} (monotone for
     * non-negative non-NaN doubles), 16 bits at a time from the top, each pass on the entries that share the digits
     * chosen so far. Linear time, whatever the ties.
     *
     * @param mags workspace of the same length
     */
    static void trimToTop(double[] v, int keep, double[] mags) {
        int size = v.length;
        double threshold = selectThreshold(v, keep, mags);
        if (Double.isNaN(threshold)) {
            Arrays.fill(v, 0.0);
            return;
        }
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

    private static final long ABS_MASK = 0x7FFF_FFFF_FFFF_FFFFL;
    private static final int[] REFINE_SHIFTS = {31, 15, 0};
    private static final long INF_BITS = Double.doubleToRawLongBits(Double.POSITIVE_INFINITY);

    /**
     * The {@code keep}-th largest of {@code |v|} in {@link java.util.Arrays#sort(double[])} order (all NaNs equal and
     * above +∞), i.e. {@code sorted[v.length - keep]}; {@code 1 ≤ keep ≤ v.length}.
     *
     * @param cand workspace of the same length (candidates of the later passes, as non-negative doubles)
     */
    static double selectThreshold(double[] v, int keep, double[] cand) {
        int size = v.length;
        int[] hist = new int[1 << 16];
        int nan = 0;
        for (int e = 0; e < size; e++) {
            long key = Double.doubleToRawLongBits(v[e]) & ABS_MASK;
            if (key > INF_BITS) nan++;
            else hist[(int) (key >>> 47)]++;
        }
        if (keep <= nan) return Double.NaN;
        int rank = keep - nan; // 1-based rank from the top among the non-NaN magnitudes
        int bucket = topBucket(hist, rank);
        rank -= above(hist, bucket);
        int n = 0;
        for (int e = 0; e < size; e++) {
            long key = Double.doubleToRawLongBits(v[e]) & ABS_MASK;
            if (key <= INF_BITS && (int) (key >>> 47) == bucket) cand[n++] = Double.longBitsToDouble(key);
        }
        // the candidates share bits 47..62; refine on bits 31..46, 15..30, then 0..15 (bit 15 already shared)
        for (int shift : REFINE_SHIFTS) {
            if (n == 1) break;
            Arrays.fill(hist, 0);
            for (int i = 0; i < n; i++) hist[(int) (Double.doubleToRawLongBits(cand[i]) >>> shift) & 0xFFFF]++;
            bucket = topBucket(hist, rank);
            rank -= above(hist, bucket);
            int kept = 0;
            for (int i = 0; i < n; i++) {
                if (((int) (Double.doubleToRawLongBits(cand[i]) >>> shift) & 0xFFFF) == bucket) cand[kept++] = cand[i];
            }
            n = kept;
        }
        return cand[0];
    }

    /** The highest bucket {@code b} with {@code Σ_{b' ≥ b} hist[b'] ≥ rank}. */
    private static int topBucket(int[] hist, int rank) {
        int b = hist.length - 1;
        for (int cum = hist[b]; cum < rank; cum += hist[b]) b--;
        return b;
    }

    /** {@code Σ_{b' > b} hist[b']}. */
    private static int above(int[] hist, int b) {
        int sum = 0;
        for (int i = b + 1; i < hist.length; i++) sum += hist[i];
        return sum;
    }
}
