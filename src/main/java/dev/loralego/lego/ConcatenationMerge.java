package dev.loralego.lego;

import java.util.List;

/**
 * The exact baselines {@code cat}, {@code linear} and {@code task_arithmetic} (ALGORITHM.md §7): the weighted sum
 * {@code c · Σ_t w_t ΔW_t} written as one LoRA of rank {@code Σ r_t} by stacking the factors, with
 * {@code sqrt(|c w_t s_t|)} folded into each side (the sign of {@code c} into {@code A}): column block {@code t} of
 * {@code B} is {@code sqrt(|c w_t s_t|) B_t}, row block {@code t} of {@code A} is
 * {@code sign(c) sqrt(|c w_t s_t|) A_t}. No cross terms (merging {@code A} and {@code B} element-wise would add
 * them), each scaling applied once. Blocks in list order.
 */
public final class ConcatenationMerge {

    private ConcatenationMerge() {
    }

    /** {@code cat}: exact {@code Σ w_t ΔW_t}. */
    public static MergedModule cat(String module, List<AdapterModule> adapters) {
        return scaledSum(module, adapters, 1.0);
    }

    /**
     * {@code linear}: exact weighted average {@code Σ w_t ΔW_t}. The weights must already be normalised by the caller
     * over ALL adapters of the merge (a module an adapter does not target counts as a zero {@code ΔW} for it), see
     * {@link MergeMethod#normaliseWeights(double[])}; at module level this is therefore {@link #cat}.
     */
    public static MergedModule linear(String module, List<AdapterModule> adapters) {
        return scaledSum(module, adapters, 1.0);
    }

    /** {@code task_arithmetic}: exact {@code λ · Σ w_t ΔW_t}. */
    public static MergedModule taskArithmetic(String module, List<AdapterModule> adapters, double lambda) {
        return scaledSum(module, adapters, lambda);
    }

    /** Exact {@code c · Σ w_t ΔW_t} as stacked factors of rank {@code Σ r_t}. */
    static MergedModule scaledSum(String module, List<AdapterModule> adapters, double c) {
        AdapterModule.requireCommonShape(module, adapters);
        AdapterModule.requireFinite(module, adapters);
        if (!Double.isFinite(c)) throw new IllegalArgumentException("module " + module + ": scale must be finite, got " + c);
        int dIn = adapters.get(0).dIn(), dOut = adapters.get(0).dOut();
        int total = 0;
        for (AdapterModule m : adapters) total += m.rank();
        double[] a = new double[total * dIn];
        double[] b = new double[dOut * total];
        int off = 0;
        for (AdapterModule m : adapters) {
            int r = m.rank();
            double h = Math.sqrt(Math.abs(c * m.weight() * m.scaling()));
            double ha = c < 0 ? -h : h;
            double[] ma = m.a(), mb = m.b();
            for (int j = 0; j < r * dIn; j++) a[off * dIn + j] = ha * ma[j];
            for (int o = 0; o < dOut; o++) {
                for (int j = 0; j < r; j++) b[o * total + off + j] = h * mb[o * r + j];
            }
            off += r;
        }
        return new MergedModule(total, dIn, dOut, a, b, Double.NaN, 0);
    }
}
