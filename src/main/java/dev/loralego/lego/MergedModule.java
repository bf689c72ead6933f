package dev.loralego.lego;

/**
 * One merged module: LoRA factors with scaling 1 ({@code ΔW_merged = B A}), {@code A ∈ R^{k × dIn}},
 * {@code B ∈ R^{dOut × k}}, row-major, plus what the merge observed.
 *
 * @param rank    {@code k}, the merged rank (clusters kept, or the rank of a baseline's factorisation)
 * @param dIn     input dimension
 * @param dOut    output dimension
 * @param a       row-major {@code k × dIn}
 * @param b       row-major {@code dOut × k}
 * @param inertia weighted k-means objective of the kept clustering (NaN for methods that do not cluster)
 * @param iterations Lloyd iterations of the kept run (0 for methods that do not cluster)
 */
public record MergedModule(int rank, int dIn, int dOut, double[] a, double[] b, double inertia, int iterations) {
    public MergedModule {
        if (a.length != (long) rank * dIn || b.length != (long) dOut * rank) {
            throw new IllegalArgumentException("factor sizes do not match rank " + rank + ", dIn " + dIn + ", dOut " + dOut);
        }
    }

    /** Dense {@code ΔW = B A}, row-major {@code dOut × dIn}. For tests and small modules only. */
    public double[] deltaW() {
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < rank; j++) {
                double bij = b[o * rank + j];
                if (bij == 0) continue;
                int ar = j * dIn, wr = o * dIn;
                for (int i = 0; i < dIn; i++) w[wr + i] += bij * a[ar + i];
            }
        }
        return w;
    }
}
