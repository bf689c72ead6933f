package dev.loralego.lego;

/**
 * Dense {@code ΔW} rows of single adapters and the rank-k factorisation of a dense result, shared by the dense
 * baselines ({@link TiesMerge}, {@link DareMerge}). Package-private.
 */
final class DenseUpdates {

    private DenseUpdates() {
    }

    /** {@code out[i] = coef · s · Σ_j B[o, j] A[j, i]}: row {@code o} of {@code coef · ΔW}. */
    static void row(AdapterModule m, int o, double coef, double[] out) {
        int r = m.rank(), dIn = m.dIn();
        double[] a = m.a(), b = m.b();
        java.util.Arrays.fill(out, 0, dIn, 0.0);
        for (int j = 0; j < r; j++) {
            double bj = b[o * r + j];
            if (bj == 0) continue;
            int ar = j * dIn;
            for (int i = 0; i < dIn; i++) out[i] += bj * a[ar + i];
        }
        double f = coef * m.scaling();
        for (int i = 0; i < dIn; i++) out[i] *= f;
    }

    /** {@code coef · ΔW} into {@code out} ({@code dOut × dIn}, overwritten), using {@code rowBuf} ({@code dIn}). */
    static void full(AdapterModule m, double coef, double[] out, double[] rowBuf) {
        int dIn = m.dIn();
        for (int o = 0; o < m.dOut(); o++) {
            row(m, o, coef, rowBuf);
            System.arraycopy(rowBuf, 0, out, o * dIn, dIn);
        }
    }

    /**
     * Best rank-{@code k} factors of a dense matrix (truncated SVD, Eckart–Young), {@code B = U_k S_k^{1/2}},
     * {@code A = S_k^{1/2} V_kᵀ}, sign rule applied; rank {@code min(k, dOut, dIn)}. Only the leading {@code k}
     * triplets are computed when that is cheaper ({@link LowRankFactorisation#ofDenseTruncated}).
     */
    static MergedModule factor(double[] w, int dOut, int dIn, int k) {
        LowRankFactorisation.Factors f = LowRankFactorisation.ofDenseTruncated(w, dOut, dIn, k);
        LowRankFactorisation.fixSigns(f.a(), f.b(), f.rank(), dIn, dOut);
        return new MergedModule(f.rank(), dIn, dOut, f.a(), f.b(), Double.NaN, 0);
    }
}
