package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.SingularOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Obviously-correct reference computations for the lego tests: dense products built entry by entry, per-pair
 * distances, naive weighted means, naive TIES and DARE. Slow on purpose; never used by main code.
 */
final class NaiveReference {

    /** Relative tolerance for results that are exact up to floating-point rounding. */
    static final double EXACT_TOL = 1e-10;

    private NaiveReference() {
    }

    static double gaussian(SplittableRandom rng) {
        // Box–Muller, deterministic given the rng
        double u1 = rng.nextDouble(), u2 = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    static double[] gaussians(SplittableRandom rng, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = gaussian(rng);
        return v;
    }

    static AdapterModule randomAdapter(String id, SplittableRandom rng, int r, int dIn, int dOut, double scaling,
                                       double weight) {
        return new AdapterModule(id, weight, scaling, r, dIn, dOut, gaussians(rng, r * dIn), gaussians(rng, dOut * r));
    }

    /** {@code s · B A} entry by entry, {@code B} row-major dOut × r, {@code A} row-major r × dIn. */
    static double[] product(double[] b, double[] a, int dOut, int r, int dIn, double s) {
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < dIn; i++) {
                double acc = 0;
                for (int j = 0; j < r; j++) acc += b[o * r + j] * a[j * dIn + i];
                w[o * dIn + i] = s * acc;
            }
        }
        return w;
    }

    static double[] deltaW(AdapterModule m) {
        return product(m.b(), m.a(), m.dOut(), m.rank(), m.dIn(), m.scaling());
    }

    static double[] deltaW(MergedModule m) {
        return product(m.b(), m.a(), m.dOut(), m.rank(), m.dIn(), 1.0);
    }

    /** {@code Σ_u b_u a_uᵀ} over units stored as rows {@code [a ; b]}. */
    static double[] unitsDeltaW(double[] units, int n, int dIn, int dOut) {
        int dim = dIn + dOut;
        double[] w = new double[dOut * dIn];
        for (int u = 0; u < n; u++) {
            for (int o = 0; o < dOut; o++) {
                for (int i = 0; i < dIn; i++) w[o * dIn + i] += units[u * dim + dIn + o] * units[u * dim + i];
            }
        }
        return w;
    }

    /** {@code Σ_t c_t · ΔW_t}. */
    static double[] weightedSum(List<AdapterModule> adapters, double[] coef) {
        AdapterModule f = adapters.get(0);
        double[] w = new double[f.dOut() * f.dIn()];
        for (int t = 0; t < adapters.size(); t++) {
            double[] d = deltaW(adapters.get(t));
            for (int e = 0; e < w.length; e++) w[e] += coef[t] * d[e];
        }
        return w;
    }

    static double frobenius(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    static double[] minus(double[] x, double[] y) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i] - y[i];
        return d;
    }

    static double relativeError(double[] actual, double[] expected) {
        double denom = Math.max(frobenius(expected), Double.MIN_NORMAL);
        return frobenius(minus(actual, expected)) / denom;
    }

    static void assertClose(double[] expected, double[] actual, double relTol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double err = relativeError(actual, expected);
        assertTrue(err <= relTol, what + ": relative error " + err + " > " + relTol);
    }

    /** Squared distance by explicit differences. */
    static double dist2(double[] x, int i, double[] c, int j, int dim) {
        double s = 0;
        for (int d = 0; d < dim; d++) {
            double diff = x[i * dim + d] - c[j * dim + d];
            s += diff * diff;
        }
        return s;
    }

    /** Weighted means of an assignment; zeros for an empty cluster. */
    static double[] weightedMeans(double[] x, double[] w, int[] assign, int k, int dim) {
        double[] c = new double[k * dim];
        double[] cw = new double[k];
        for (int i = 0; i < assign.length; i++) {
            cw[assign[i]] += w[i];
            for (int d = 0; d < dim; d++) c[assign[i] * dim + d] += w[i] * x[i * dim + d];
        }
        for (int j = 0; j < k; j++) {
            for (int d = 0; d < dim; d++) if (cw[j] > 0) c[j * dim + d] /= cw[j];
        }
        return c;
    }

    /** Dense SVD: {σ (descending), U (dOut × m row-major), V (dIn × m row-major)} via EJML. */
    static double[][] svd(double[] w, int dOut, int dIn) {
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(dOut, dIn, true, true, true);
        assertTrue(svd.decompose(DMatrixRMaj.wrap(dOut, dIn, w.clone())), "reference SVD failed");
        DMatrixRMaj u = svd.getU(null, false), s = svd.getW(null), v = svd.getV(null, false);
        SingularOps_DDRM.descendingOrder(u, false, s, v, false);
        int m = svd.numberOfSingularValues();
        double[] sigma = new double[m];
        for (int j = 0; j < m; j++) sigma[j] = s.get(j, j);
        return new double[][]{sigma, u.data, v.data};
    }

    /** Best rank-k approximation of a dense matrix, dense. */
    static double[] bestRankK(double[] w, int dOut, int dIn, int k) {
        double[][] s = svd(w, dOut, dIn);
        int m = s[0].length;
        double[] out = new double[dOut * dIn];
        for (int j = 0; j < Math.min(k, m); j++) {
            for (int o = 0; o < dOut; o++) {
                for (int i = 0; i < dIn; i++) out[o * dIn + i] += s[0][j] * s[1][o * m + j] * s[2][i * m + j];
            }
        }
        return out;
    }

    /** TIES (trim, elect, disjoint mean) on dense τ_t = w_t ΔW_t, with index-sorted trimming. */
    static double[] ties(List<AdapterModule> adapters, double density, double lambda) {
        int size = adapters.get(0).dOut() * adapters.get(0).dIn();
        int keep = (int) Math.max(1, Math.min(size, Math.round(density * size)));
        List<double[]> trimmed = new ArrayList<>();
        for (AdapterModule m : adapters) {
            double[] tau = deltaW(m);
            for (int e = 0; e < size; e++) tau[e] *= m.weight();
            List<Integer> order = new ArrayList<>();
            for (int e = 0; e < size; e++) order.add(e);
            order.sort(Comparator.<Integer>comparingDouble(e -> -Math.abs(tau[e])).thenComparingInt(e -> e));
            double[] t = new double[size];
            for (int q = 0; q < keep; q++) t[order.get(q)] = tau[order.get(q)];
            trimmed.add(t);
        }
        double[] out = new double[size];
        for (int e = 0; e < size; e++) {
            double sum = 0;
            for (double[] t : trimmed) sum += t[e];
            double acc = 0;
            int n = 0;
            for (double[] t : trimmed) {
                if (t[e] != 0 && Math.signum(t[e]) == Math.signum(sum)) {
                    acc += t[e];
                    n++;
                }
            }
            out[e] = n == 0 ? 0 : lambda * acc / n;
        }
        return out;
    }

    /** DARE with the documented per-adapter seeds: keep with probability density, rescale, weighted sum. */
    static double[] dare(String module, List<AdapterModule> adapters, double density, long seed) {
        int dOut = adapters.get(0).dOut(), dIn = adapters.get(0).dIn();
        double[] out = new double[dOut * dIn];
        for (int t = 0; t < adapters.size(); t++) {
            AdapterModule m = adapters.get(t);
            double[] d = deltaW(m);
            SplittableRandom rng = new SplittableRandom(DareMerge.adapterSeed(seed, module, t));
            for (int e = 0; e < d.length; e++) {
                boolean kept = rng.nextDouble() < density;
                if (kept) out[e] += m.weight() * d[e] / density;
            }
        }
        return out;
    }
}
