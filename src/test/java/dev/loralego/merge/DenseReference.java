package dev.loralego.merge;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

import java.util.Arrays;
import java.util.List;

/**
 * Obviously-correct dense reference computations for the merge tests: {@code B A} built entry by entry, Frobenius
 * distances, the Eckart–Young optimum from EJML's dense SVD, and TIES-Merging written out as in Yadav et al. (2023).
 * Slow on purpose; never used by main code.
 */
final class DenseReference {

    private DenseReference() {
    }

    /**
     * {@code w += coef · B A} entry by entry: {@code w[o, i] += coef · (Σ_j B[o, j] A[j, i])}, the inner sum in
     * {@code j} order. {@code B} row-major {@code dOut × r}, {@code A} row-major {@code r × dIn}.
     */
    static void addProduct(double[] w, double[] b, double[] a, int dOut, int r, int dIn, double coef) {
        for (int o = 0; o < dOut; o++) {
            int br = o * r, wr = o * dIn;
            for (int i = 0; i < dIn; i++) {
                double acc = 0;
                for (int j = 0; j < r; j++) acc += b[br + j] * a[j * dIn + i];
                w[wr + i] += coef * acc;
            }
        }
    }

    /** {@code coef · B A} as a new dense matrix. */
    static double[] product(double[] b, double[] a, int dOut, int r, int dIn, double coef) {
        double[] w = new double[dOut * dIn];
        addProduct(w, b, a, dOut, r, dIn, coef);
        return w;
    }

    static double frobenius(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    static double distance(double[] x, double[] y) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double d = x[i] - y[i];
            s += d * d;
        }
        return Math.sqrt(s);
    }

    /** {@code ‖x − ref‖_F / ‖ref‖_F}. */
    static double relativeError(double[] x, double[] ref) {
        return distance(x, ref) / frobenius(ref);
    }

    /**
     * The Eckart–Young optimum {@code min_{rank X ≤ k} ‖M − X‖_F = sqrt(Σ_{i > k} σ_i²)}, the singular values of the
     * dense {@code rows × cols} matrix {@code m} from EJML (values only), sorted here.
     */
    static double eckartYoungError(double[] m, int rows, int cols, int k) {
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(rows, cols, false, false, true);
        if (!svd.decompose(new DMatrixRMaj(rows, cols, true, m))) throw new IllegalStateException("SVD failed");
        double[] sv = Arrays.copyOf(svd.getSingularValues(), svd.numberOfSingularValues());
        Arrays.sort(sv);
        double tail = 0;
        for (int i = 0; i < sv.length - k; i++) tail += sv[i] * sv[i];
        return Math.sqrt(tail);
    }

    /** A dense update {@code τ = coef · s · B A} with its shape. */
    record DenseUpdate(double[] tau, int dOut, int dIn) {
    }

    /**
     * TIES-Merging as the paper states it: trim each {@code τ_t} to its {@code round(density · size)} entries of
     * largest magnitude (at the threshold magnitude the lowest row-major indices stay), elect the sign of the sum of
     * the trimmed updates per entry, and average, per entry, the trimmed values that agree with it; times λ.
     */
    static double[] ties(List<DenseUpdate> updates, double density, double lambda) {
        int size = updates.get(0).tau().length;
        int keep = (int) Math.max(1, Math.min(size, Math.round(density * size)));
        double[][] trimmed = new double[updates.size()][];
        for (int t = 0; t < updates.size(); t++) {
            double[] v = updates.get(t).tau().clone();
            double[] mags = new double[size];
            for (int e = 0; e < size; e++) mags[e] = Math.abs(v[e]);
            Arrays.sort(mags);
            double threshold = mags[size - keep];
            int kept = 0;
            for (int e = 0; e < size; e++) if (Math.abs(v[e]) > threshold) kept++;
            for (int e = 0; e < size; e++) {
                double mag = Math.abs(v[e]);
                if (mag > threshold) continue;
                if (mag == threshold && kept < keep) {
                    kept++;
                    continue;
                }
                v[e] = 0;
            }
            trimmed[t] = v;
        }
        double[] out = new double[size];
        for (int e = 0; e < size; e++) {
            double sum = 0;
            for (double[] v : trimmed) sum += v[e];
            if (sum == 0) continue;
            double acc = 0;
            int n = 0;
            for (double[] v : trimmed) {
                if (v[e] != 0 && (v[e] > 0) == (sum > 0)) {
                    acc += v[e];
                    n++;
                }
            }
            out[e] = n == 0 ? 0 : lambda * (acc / n);
        }
        return out;
    }
}
