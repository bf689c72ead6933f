package dev.loralego.bench;

import java.util.Objects;

/**
 * The loss of a low-rank update on one task's held-out samples, {@code L(ΔW) = mean_i ‖(W0 + ΔW) x_i − y_i‖²},
 * computed exactly (up to rounding) from the samples' second moments: with {@code t_i = y_i − W0 x_i},
 * {@code S_xx = mean x xᵀ}, {@code S_xt = mean x tᵀ} and {@code c = mean ‖t‖²},
 * {@code L(P Q) = tr((Q S_xx Qᵀ)(Pᵀ P)) − 2 tr(P Q S_xt) + c} for {@code ΔW = P Q}, {@code P ∈ R^{d_out×k}},
 * {@code Q ∈ R^{k×d_in}}. One evaluation costs {@code 2 k d_in (d_in + d_out)/2}-ish multiply-adds instead of a
 * pass over the samples. {@link #baseLoss()} is {@code L(0) = c}: the frozen base layer alone.
 */
public final class HeldOutLoss {

    private final int dIn;
    private final int dOut;
    private final int n;
    private final double[] sxx;
    private final double[] sxt;
    private final double base;

    private HeldOutLoss(int dIn, int dOut, int n, double[] sxx, double[] sxt, double base) {
        this.dIn = dIn;
        this.dOut = dOut;
        this.n = n;
        this.sxx = sxx;
        this.sxt = sxt;
        this.base = base;
    }

    /** The statistics of a sample set. */
    public static HeldOutLoss of(SkillWorld.Samples samples) {
        Objects.requireNonNull(samples, "samples");
        int n = samples.n(), d = samples.dim();
        if (n < 1) throw new IllegalArgumentException("no held-out samples");
        double[] x = samples.x(), t = samples.residualTargets();
        double[] sxx = new double[d * d], sxt = new double[d * d];
        double c = 0;
        for (int i = 0; i < n; i++) {
            int row = i * d;
            for (int p = 0; p < d; p++) {
                double xp = x[row + p];
                int sr = p * d;
                for (int q = 0; q < d; q++) {
                    sxx[sr + q] += xp * x[row + q];
                    sxt[sr + q] += xp * t[row + q];
                }
            }
            for (int o = 0; o < d; o++) c += t[row + o] * t[row + o];
        }
        double inv = 1.0 / n;
        for (int i = 0; i < sxx.length; i++) {
            sxx[i] *= inv;
            sxt[i] *= inv;
        }
        return new HeldOutLoss(d, d, n, sxx, sxt, c * inv);
    }

    /** {@code L(0)}: the loss of the base layer without any update. */
    public double baseLoss() {
        return base;
    }

    /** Number of held-out samples. */
    public int samples() {
        return n;
    }

    /**
     * {@code L(scale · B A)}.
     *
     * @param rank  {@code k}
     * @param a     row-major {@code k × dIn}
     * @param b     row-major {@code dOut × k}
     * @param scale scaling (PEFT {@code alpha / r} of a trained adapter, 1 for merged outputs)
     */
    public double loss(int rank, double[] a, double[] b, double scale) {
        if (a.length != (long) rank * dIn || b.length != (long) dOut * rank) {
            throw new IllegalArgumentException("factors do not match rank " + rank + ", dIn " + dIn + ", dOut " + dOut);
        }
        int k = rank;
        // M = A S_xx (k × dIn), N = A S_xt (k × dOut), as row updates
        double[] m = new double[k * dIn], nn = new double[k * dOut];
        for (int j = 0; j < k; j++) {
            int ar = j * dIn, mr = j * dIn, nr = j * dOut;
            for (int p = 0; p < dIn; p++) {
                double ajp = a[ar + p];
                if (ajp == 0) continue;
                int sr = p * dIn, tr = p * dOut;
                for (int q = 0; q < dIn; q++) m[mr + q] += ajp * sxx[sr + q];
                for (int o = 0; o < dOut; o++) nn[nr + o] += ajp * sxt[tr + o];
            }
        }
        // quadratic term: Σ_{j,l} (A S_xx Aᵀ)[j,l] (BᵀB)[l,j]
        double quad = 0;
        for (int j = 0; j < k; j++) {
            for (int l = 0; l < k; l++) {
                double asa = 0;
                int mr = j * dIn, ar = l * dIn;
                for (int q = 0; q < dIn; q++) asa += m[mr + q] * a[ar + q];
                double btb = 0;
                for (int o = 0; o < dOut; o++) btb += b[o * k + l] * b[o * k + j];
                quad += asa * btb;
            }
        }
        // cross term: tr(B A S_xt) = Σ_{o,j} B[o,j] N[j,o]
        double cross = 0;
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < k; j++) cross += b[o * k + j] * nn[j * dOut + o];
        }
        return scale * scale * quad - 2 * scale * cross + base;
    }

    /**
     * The normalised gain {@code (L_base − L_merged) / (L_base − L_own)}: 1 = as good as the task's own adapter,
     * 0 = no better than the base layer, negative = worse than the base layer.
     */
    public static double normalisedGain(double baseLoss, double ownLoss, double mergedLoss) {
        double denom = baseLoss - ownLoss;
        if (!(denom > 0)) {
            throw new IllegalArgumentException("the own adapter (loss " + ownLoss + ") does not beat the base layer (loss "
                    + baseLoss + "): the normalised gain is undefined");
        }
        return (baseLoss - mergedLoss) / denom;
    }
}
