package dev.loralego.lego;

import java.util.List;

/**
 * The {@code svd} baseline (ALGORITHM.md §7): the best rank-{@code k} approximation (Eckart–Young) of
 * {@code Σ_t w_t ΔW_t}, computed from the stacked factors ({@link ConcatenationMerge#cat}) by QR of {@code B_cat}
 * and {@code A_catᵀ} and an SVD of the small {@code R_B R_Aᵀ} core ({@link LowRankFactorisation#ofProduct}),
 * never forming the dense matrix; each {@code s_t} is applied exactly once. Output {@code B = Q_B U_k S_k^{1/2}},
 * {@code A = S_k^{1/2} V_kᵀ Q_Aᵀ} with the sign rule, rank {@code min(k, dOut, dIn, Σ r_t)} (zero singular values
 * within that rank are kept as zero pairs). For the weighted AVERAGE the caller normalises the weights, as for
 * {@code linear}.
 */
public final class SvdMerge {

    private SvdMerge() {
    }

    /**
     * @param k rank of the result, {@code ≥ 1}
     */
    public static MergedModule merge(String module, List<AdapterModule> adapters, int k) {
        AdapterModule.requireCommonShape(module, adapters);
        if (k < 1) throw new IllegalArgumentException("module " + module + ": k must be >= 1, got " + k);
        MergedModule cat = ConcatenationMerge.cat(module, adapters);
        LowRankFactorisation.Factors f = LowRankFactorisation.ofProduct(cat.b(), cat.a(), cat.dOut(), cat.rank(), cat.dIn())
                .truncate(k);
        LowRankFactorisation.fixSigns(f.a(), f.b(), f.rank(), f.dIn(), f.dOut());
        return new MergedModule(f.rank(), f.dIn(), f.dOut(), f.a(), f.b(), Double.NaN, 0);
    }
}
